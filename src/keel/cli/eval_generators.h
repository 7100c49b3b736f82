// The Generator implementations `keel eval run` chooses from: the local engine (a
// GGUF model, generation batched through the engine's BatchScheduler, log-likelihoods
// from one InferenceSession) and a remote OpenAI-compatible endpoint (a running Keel
// server, vLLM, llama.cpp's server, a hosted API) through the server module's HTTP
// client. They live in the CLI because eval may depend on neither the engine nor the
// server (ARCHITECTURE.md's layering); eval sees only eval::Generator.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "keel/cli/model_files.h"
#include "keel/eval/generator.h"
#include "keel/registry/remote_models.h"

namespace keel::cli {

struct LocalGeneratorOptions {
  int threads = 1;
  int batch_size = 8;           // sequences decoded together
  int64_t context_length = 0;  // 0: min(model's, 4096)
};

// What generates (an evaluated model, a judge): a registered version (a local file or a
// remote endpoint), a GGUF file, or a model name at an endpoint given directly.
struct ResolvedModel {
  std::string reference;  // NAME@VERSION, the file, or the endpoint's model name
  std::optional<registry::ModelVersion> version;
  std::optional<registry::RemoteEndpoint> remote;
  std::string local_reference;  // for load_model
  std::string sha256;           // of a local file's bytes, when known
};

// `model` is NAME[@VERSION|@ALIAS] or a GGUF file; with `endpoint`, the model name there.
Result<ResolvedModel> resolve_model(CliContext& ctx, const std::string& model, const std::string& endpoint,
                                    const std::string& api_key_env);

// The generator for a resolved model: the local engine (the model loaded) or the endpoint.
Result<std::unique_ptr<eval::Generator>> open_generator(CliContext& ctx, const ResolvedModel& model,
                                                        const LocalGeneratorOptions& options);

// Takes the loaded model (with weights).
Result<std::unique_ptr<eval::Generator>> make_local_generator(LoadedModel model, const LocalGeneratorOptions& options);

// Sends /completions (or /chat/completions for chat tasks) to endpoint.base_url, a
// batch's requests at once, with the key from $endpoint.api_key_env when it names one.
// Log-likelihoods come from /completions echoing the prompt with its tokens'
// log-probabilities (echo, logprobs, max_tokens 0), as a Keel server and vLLM answer;
// an endpoint that refuses that (most hosted APIs) fails such a task with its message.
Result<std::unique_ptr<eval::Generator>> make_remote_generator(const registry::RemoteEndpoint& endpoint);

}  // namespace keel::cli
