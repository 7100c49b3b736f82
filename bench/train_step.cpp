// One LoRA training step (forward, backward, AdamW) of a GGUF model on one sequence of
// random tokens: tokens/s of forward+backward, the optimizer step's time, the stored
// activations and the process's peak RSS. Run one configuration per process so the
// peak RSS belongs to it:
//   keel_bench_train_step MODEL.gguf [--tokens 512] [--threads 2] [--rank 8]
//                         [--modules q,k,v,o,gate,up,down] [--checkpointing] [--steps 2]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/train/adamw.h"
#include "keel/train/lora_model.h"

namespace {

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  using namespace keel;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s MODEL.gguf [--tokens N] [--threads N] [--rank N] [--modules LIST] "
                 "[--checkpointing] [--steps N]\n",
                 argv[0]);
    return 2;
  }
  int64_t tokens = 512, rank = 8, steps = 2;
  int threads = 2;
  bool checkpointing = false;
  std::string modules = "q,k,v,o,gate,up,down";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--tokens")
      tokens = std::atoll(next().c_str());
    else if (a == "--threads")
      threads = std::atoi(next().c_str());
    else if (a == "--rank")
      rank = std::atoll(next().c_str());
    else if (a == "--steps")
      steps = std::atoll(next().c_str());
    else if (a == "--modules")
      modules = next();
    else if (a == "--checkpointing")
      checkpointing = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  auto file = engine::GgufFile::open(argv[1]);
  if (!file.ok()) return std::fprintf(stderr, "%s\n", file.status().to_string().c_str()), 1;
  auto model = engine::Model::load(**file);
  if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().to_string().c_str()), 1;
  auto targets_modules = train::parse_lora_modules(modules);
  if (!targets_modules.ok()) return std::fprintf(stderr, "%s\n", targets_modules.status().to_string().c_str()), 1;
  auto lora = train::LoraWeights::create(
      **model, {.rank = rank, .alpha = 2.0f * rank, .dropout = 0.05f, .seed = 1, .modules = *targets_modules});
  if (!lora.ok()) return std::fprintf(stderr, "%s\n", lora.status().to_string().c_str()), 1;
  auto trainer =
      train::LoraModel::create(**model, *lora, {.threads = threads, .gradient_checkpointing = checkpointing});
  if (!trainer.ok()) return std::fprintf(stderr, "%s\n", trainer.status().to_string().c_str()), 1;

  std::vector<int32_t> ids(static_cast<size_t>(tokens));
  uint64_t state = 42;
  for (auto& id : ids) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    id = static_cast<int32_t>((state >> 33) % static_cast<uint64_t>((*model)->config().vocab_size));
  }
  const auto targets = train::next_token_targets(ids);
  const train::TrainingSequence seq{ids, targets};
  train::AdamW adam({.weight_decay = 0.0f, .max_grad_norm = 1.0f});
  std::printf("model %s, %lld tokens, %d threads, rank %lld on %s, %lld LoRA parameters, checkpointing %s\n", argv[1],
              static_cast<long long>(tokens), threads, static_cast<long long>(rank), modules.c_str(),
              static_cast<long long>(lora->parameter_count()), checkpointing ? "on" : "off");
  using Clock = std::chrono::steady_clock;
  for (int64_t step = 0; step < steps; ++step) {
    lora->zero_grad();
    const auto start = Clock::now();
    auto r = (*trainer)->forward_backward(std::span(&seq, 1), static_cast<uint64_t>(step));
    const auto mid = Clock::now();
    if (!r.ok()) return std::fprintf(stderr, "%s\n", r.status().to_string().c_str()), 1;
    auto params = lora->parameters();
    auto norm = adam.step(params, 1e-4f);
    const auto end = Clock::now();
    if (!norm.ok()) return std::fprintf(stderr, "%s\n", norm.status().to_string().c_str()), 1;
    const double fb = std::chrono::duration<double>(mid - start).count();
    const double opt = std::chrono::duration<double>(end - mid).count();
    std::printf("step %lld: loss %.4f, grad norm %.4f, forward+backward %.2f s (%.1f tokens/s), AdamW %.1f ms\n",
                static_cast<long long>(step), r->loss, *norm, fb, static_cast<double>(tokens) / fb, opt * 1e3);
  }
  std::printf("stored activations %.1f MiB, peak RSS %.1f MiB\n",
              static_cast<double>((*trainer)->activation_bytes()) / (1024.0 * 1024.0), peak_rss_mib());
  return 0;
}
