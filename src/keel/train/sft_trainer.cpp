#include "keel/train/sft_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "keel/train/lora_model.h"

namespace keel::train {

namespace {

Status not_finite(int64_t step, const char* what) {
  return failed_precondition("the " + std::string(what) + " of step " + std::to_string(step) +
                             " is not finite (the learning rate may be too high); training stopped before applying it");
}

}  // namespace

int64_t sft_step_count(int64_t examples, const SftOptions& o) {
  if (examples <= 0 || o.batch <= 0 || o.epochs <= 0) return 0;
  const int64_t per_epoch = (examples + o.batch - 1) / o.batch;
  const int64_t all = per_epoch * o.epochs;
  return o.max_steps > 0 ? std::min(all, o.max_steps) : all;
}

Result<SftResult> train_sft(const engine::Model& model, LoraWeights& lora, AdamW& optimizer,
                            std::span<const SftExample> examples, const SftOptions& o, const SftHooks& hooks) {
  if (examples.empty()) return invalid_argument("no training examples");
  if (o.epochs < 1 || o.batch < 1 || o.max_steps < 0 || o.start_step < 0 || o.checkpoint_every < 0) {
    return invalid_argument("epochs and batch must be at least 1; max_steps, start_step and checkpoint_every not negative");
  }
  KEEL_RETURN_IF_ERROR(check_adamw_options(o.adamw));
  const auto n = static_cast<int64_t>(examples.size());
  const int64_t steps = sft_step_count(n, o);
  const LrSchedule schedule{o.learning_rate, std::min(o.warmup_steps, steps), steps, o.decay};
  KEEL_RETURN_IF_ERROR(schedule.check());
  KEEL_ASSIGN_OR_RETURN(
      auto trainer,
      LoraModel::create(model, lora, {.threads = o.threads, .gradient_checkpointing = o.gradient_checkpointing}));
  if (o.start_step > steps) {
    return invalid_argument("the training was resumed at step " + std::to_string(o.start_step) + " of " +
                            std::to_string(steps));
  }
  if (optimizer.steps() != o.start_step) {
    return invalid_argument("the optimizer has taken " + std::to_string(optimizer.steps()) +
                            " steps, the training resumes after " + std::to_string(o.start_step));
  }
  SftResult result;
  const auto start = std::chrono::steady_clock::now();
  std::vector<size_t> order(examples.size());
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < o.epochs && step < steps; ++epoch) {
    std::iota(order.begin(), order.end(), size_t{0});
    std::mt19937_64 rng(o.seed + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t first = 0; first < n && step < steps; first += o.batch) {
      if (step < o.start_step) {  // taken before the checkpoint this training resumed from
        ++step;
        continue;
      }
      std::vector<TrainingSequence> batch;
      int64_t tokens = 0;
      for (int64_t i = first; i < std::min(n, first + o.batch); ++i) {
        const SftExample& e = examples[order[static_cast<size_t>(i)]];
        batch.push_back({e.tokens, e.targets});
        tokens += static_cast<int64_t>(e.tokens.size());
      }
      lora.zero_grad();
      KEEL_ASSIGN_OR_RETURN(LossAndTargets loss, trainer->forward_backward(batch, static_cast<uint64_t>(step)));
      const float lr = schedule.at(step);
      auto params = lora.parameters();
      if (!std::isfinite(loss.loss)) return not_finite(step + 1, "loss");
      auto norm = optimizer.step(params, lr);
      if (!norm.ok() && !std::isfinite(global_grad_norm(params))) return not_finite(step + 1, "gradient norm");
      KEEL_RETURN_IF_ERROR(norm.status());
      ++step;
      if (result.steps == 0) result.first_loss = loss.loss;
      ++result.steps;
      result.last_loss = loss.loss;
      result.tokens += tokens;
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (hooks.on_step) hooks.on_step({step, steps, loss.loss, lr, *norm, loss.target_tokens, result.seconds, tokens});
      if (hooks.on_checkpoint && ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || step == steps)) {
        KEEL_RETURN_IF_ERROR(hooks.on_checkpoint(step, lora, optimizer));
      }
    }
  }
  return result;
}

}  // namespace keel::train
