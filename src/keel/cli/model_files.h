// How engine commands (tokenize, generate, chat, perplexity, bench) find a model: MODEL
// is a path to a GGUF file, or a registered NAME / NAME@VERSION / NAME@alias whose file
// lives in the artifact store. A path wins when a regular file exists there.
#pragma once

#include <memory>
#include <string>

#include "keel/cli/context.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/tokenizer.h"
#include "keel/util/status.h"

namespace keel::cli {

// The local file of MODEL; an error names both readings when neither fits.
Result<std::string> resolve_model_path(CliContext& ctx, const std::string& model);

struct LoadedModel {
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<engine::Model> model;  // only when asked for; borrows `file`
};

// Opens MODEL's file and its tokenizer, and its weights when with_weights.
Result<LoadedModel> load_model(CliContext& ctx, const std::string& reference, bool with_weights);

}  // namespace keel::cli
