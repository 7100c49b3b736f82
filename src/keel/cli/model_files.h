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
#include "keel/registry/model_registry.h"
#include "keel/util/status.h"

namespace keel::cli {

// The local file of MODEL; an error names both readings when neither fits.
Result<std::string> resolve_model_path(CliContext& ctx, const std::string& model);

struct LoadedModel {
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<engine::Model> model;  // only when asked for; borrows `file`
};

// What the registry records about a model file, from its GGUF header.
Result<registry::ModelFileFacts> read_model_facts(const std::string& path);

// Opens MODEL's file and its tokenizer, and its weights when with_weights.
Result<LoadedModel> load_model(CliContext& ctx, const std::string& reference, bool with_weights);

// MODEL with a LoRA adapter (a GGUF adapter file for it) folded in: the adapted matrices
// in F16, the rest as the base has them (train/merge.h), in a file under the home's tmp/
// that is unlinked once mapped.
Result<LoadedModel> load_model_with_lora(CliContext& ctx, const std::string& reference, const std::string& adapter);

}  // namespace keel::cli
