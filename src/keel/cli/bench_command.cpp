// `keel bench`: the engine's speed on one model file, as llama.cpp's llama-bench measures
// it: prompt processing (one batch of -p tokens) and generation (-n single-token forward
// passes, greedy, end-of-sequence ignored) at -t threads, plus the process's peak RSS.
// bench/engine_vs_llamacpp runs it beside llama.cpp. MODEL is a path to a GGUF file or
// a name (NAME, NAME@VERSION) in the registry.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "keel/cli/commands.h"
#include "keel/cli/model_files.h"
#include "keel/engine/forward.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/quant.h"

namespace keel::cli {
namespace {

struct BenchOptions {
  std::string model;
  int64_t prompt_tokens = 512;
  int64_t generated_tokens = 128;
  int threads = 1;
};


// The type most of the layers' weight bytes are in ("Q4_1" for the default model).
std::string main_weight_type(const engine::Model& model) {
  std::map<std::string, int64_t> bytes;
  for (const engine::LayerWeights& l : model.layers()) {
    for (const engine::WeightMatrix* w :
         {&l.attention_q, &l.attention_k, &l.attention_v, &l.attention_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
      bytes[std::string(engine::tensor_type_traits(w->type).name)] += w->rows * w->row_bytes;
    }
  }
  std::string best;
  int64_t most = -1;
  for (const auto& [name, total] : bytes) {
    if (total > most) best = name, most = total;
  }
  return best;
}

double peak_rss_mib() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: KiB
}

Status run_bench(CliContext& ctx, const BenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  KEEL_ASSIGN_OR_RETURN(std::string path, resolve_model_path(ctx, o.model));
  KEEL_ASSIGN_OR_RETURN(auto file, engine::GgufFile::open(path));
  KEEL_ASSIGN_OR_RETURN(auto model, engine::Model::load(*file));
  const int64_t vocab = model->config().vocab_size;
  engine::SessionOptions so;
  so.threads = o.threads;
  so.context_length = o.prompt_tokens + o.generated_tokens;
  if (so.context_length > model->config().context_length) {
    return invalid_argument("-p + -n = " + std::to_string(so.context_length) + " exceeds the model's context of " +
                            std::to_string(model->config().context_length));
  }
  KEEL_ASSIGN_OR_RETURN(auto session, engine::InferenceSession::create(*model, so));

  // Fixed, spread-out ids (speed does not depend on them; bench/engine_vs_llamacpp.py
  // feeds llama.cpp the same ones).
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (int64_t i = 0; i < o.prompt_tokens; ++i)
    prompt[static_cast<size_t>(i)] = static_cast<int32_t>((17 + 7919 * i) % vocab);

  // One warm-up token: maps in every weight page and starts the workers, as llama-bench's
  // warm-up run does.
  KEEL_RETURN_IF_ERROR(session->forward(std::span<const int32_t>(prompt.data(), 1)).status());
  session->reset();

  const auto prompt_start = Clock::now();
  KEEL_ASSIGN_OR_RETURN(std::vector<float> logits, session->forward(prompt));
  const auto decode_start = Clock::now();
  for (int64_t i = 0; i < o.generated_tokens; ++i) {
    const auto next = static_cast<int32_t>(engine::argmax(logits));
    KEEL_ASSIGN_OR_RETURN(logits, session->forward(std::span<const int32_t>(&next, 1)));
  }
  const auto end = Clock::now();
  const double prompt_seconds = std::chrono::duration<double>(decode_start - prompt_start).count();
  const double decode_seconds = std::chrono::duration<double>(end - decode_start).count();
  const double pp = static_cast<double>(o.prompt_tokens) / prompt_seconds;
  const double tg = decode_seconds > 0 ? static_cast<double>(o.generated_tokens) / decode_seconds : 0.0;
  const std::string type = main_weight_type(*model);
  const std::string kernels(engine::kernel_isa_name(engine::quant_kernels().isa()));
  const double rss = peak_rss_mib();
  if (ctx.json()) {
    print_json({{"model", o.model},
                {"type", type},
                {"kernels", kernels},
                {"threads", o.threads},
                {"prompt_tokens", o.prompt_tokens},
                {"generated_tokens", o.generated_tokens},
                {"prompt_seconds", prompt_seconds},
                {"generate_seconds", decode_seconds},
                {"prompt_tokens_per_s", pp},
                {"generated_tokens_per_s", tg},
                {"peak_rss_mib", rss}});
  } else {
    std::printf(
        "%s (%s, %s kernels), %d thread%s: prompt %lld tokens %.1f tokens/s; generation %lld tokens %.1f "
        "tokens/s; peak RSS %.1f MiB\n",
        o.model.c_str(), type.c_str(), kernels.c_str(), o.threads, o.threads == 1 ? "" : "s",
        static_cast<long long>(o.prompt_tokens), pp, static_cast<long long>(o.generated_tokens), tg, rss);
  }
  return Status::Ok();
}

}  // namespace

void add_bench_command(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto o = std::make_shared<BenchOptions>();
  auto* bench = app.add_subcommand("bench", "Measure the engine's prompt and generation speed on a model");
  bench->add_option("-m,--model", o->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  bench->add_option("-p,--prompt-tokens", o->prompt_tokens, "Prompt tokens, processed as one batch")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  bench->add_option("-n,--generated-tokens", o->generated_tokens, "Tokens to generate, one forward pass each")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  bench->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  bench->callback([&ctx, &outcome, o] { outcome = run_bench(ctx, *o); });
}

}  // namespace keel::cli
