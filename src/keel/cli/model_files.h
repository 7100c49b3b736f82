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

// Opens MODEL's file and its tokenizer, and its weights when with_weights. A registered
// LoRA adapter version (registry/adapters.h) opens as its base with the adapter folded in.
Result<LoadedModel> load_model(CliContext& ctx, const std::string& reference, bool with_weights);

// Registers the LoRA adapter file as a new version of `name`, tagged base_model with
// its base pinned (NAME@VERSION, or an absolute path) after checking the adapter fits
// it; run_id, when given, is the training run that made it.
Result<registry::ImportResult> register_adapter(CliContext& ctx, const std::string& adapter, const std::string& name,
                                                const std::string& base, const std::string& run_id);

// The base model file with the adapter folded in (adapted matrices in F16, the rest as
// the base has them; train/merge.h), written under scratch_dir and unlinked once mapped.
Result<std::unique_ptr<engine::GgufFile>> fold_adapter_file(const std::string& scratch_dir, const std::string& base_file,
                                                            const std::string& adapter_file);

// MODEL with a LoRA adapter (a GGUF adapter file for it) folded in: the adapted matrices
// in F16, the rest as the base has them (train/merge.h), in a file under the home's tmp/
// that is unlinked once mapped.
Result<LoadedModel> load_model_with_lora(CliContext& ctx, const std::string& reference, const std::string& adapter);

}  // namespace keel::cli
