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
  if (examples <= 0 || o.batch <= 0 || o.epochs <= 0 || o.accumulation <= 0) return 0;
  const int64_t per_step = o.batch * o.accumulation;
  const int64_t per_epoch = (examples + per_step - 1) / per_step;
  const int64_t all = per_epoch * o.epochs;
  return o.max_steps > 0 ? std::min(all, o.max_steps) : all;
}

namespace {

std::vector<TrainingSequence> sequences_of(std::span<const SftExample> examples) {
  std::vector<TrainingSequence> out;
  out.reserve(examples.size());
  for (const SftExample& e : examples) out.push_back({e.tokens, e.targets});
  return out;
}

// The mean loss per target token, `batch` examples at a time.
Result<double> mean_loss(LoraModel& trainer, std::span<const SftExample> examples, int64_t batch) {
  double sum = 0;
  int64_t targets = 0;
  for (size_t first = 0; first < examples.size(); first += static_cast<size_t>(batch)) {
    const auto rows = sequences_of(examples.subspan(first, std::min(examples.size() - first, static_cast<size_t>(batch))));
    KEEL_ASSIGN_OR_RETURN(LossAndTargets l, trainer.loss(rows));
    sum += l.loss * static_cast<double>(l.target_tokens);
    targets += l.target_tokens;
  }
  if (targets == 0) return invalid_argument("the validation examples have no target token");
  return sum / static_cast<double>(targets);
}

}  // namespace

Result<double> sft_loss(const engine::Model& model, LoraWeights& lora, std::span<const SftExample> examples,
                        int64_t batch, int threads) {
  if (examples.empty()) return invalid_argument("no examples to compute a loss on");
  if (batch < 1) return invalid_argument("batch must be at least 1");
  KEEL_ASSIGN_OR_RETURN(auto trainer, LoraModel::create(model, lora, {.threads = threads}));
  return mean_loss(*trainer, examples, batch);
}

Result<SftResult> train_sft(const engine::Model& model, LoraWeights& lora, AdamW& optimizer,
                            std::span<const SftExample> examples, const SftOptions& o, const SftHooks& hooks,
                            SftValidation* validation) {
  if (examples.empty()) return invalid_argument("no training examples");
  if (o.epochs < 1 || o.batch < 1 || o.accumulation < 1 || o.max_steps < 0 || o.start_step < 0 ||
      o.checkpoint_every < 0 || o.eval_every < 0 || o.patience < 0) {
    return invalid_argument(
        "epochs, batch and accumulation must be at least 1; max_steps, start_step, checkpoint_every, eval_every and "
        "patience not negative");
  }
  const bool validating = validation != nullptr && !validation->examples.empty();
  if (o.patience > 0 && !validating) return invalid_argument("early stopping (patience) needs validation examples");
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
  const int64_t per_step = o.batch * o.accumulation;
  // Validation after `step`: the state moves on, the best adapters are kept; true when
  // training should stop early.
  auto validate = [&](int64_t step) -> Result<bool> {
    KEEL_ASSIGN_OR_RETURN(double loss, mean_loss(*trainer, validation->examples, o.batch));
    SftValidationState& v = validation->state;
    if (loss < v.best_loss) {
      v = {.best_loss = loss, .best_step = step, .stale = 0};
      validation->best = lora;
    } else {
      ++v.stale;
    }
    if (hooks.on_validation) hooks.on_validation(step, loss, v);
    return o.patience > 0 && v.stale >= o.patience;
  };
  std::vector<size_t> order(examples.size());
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < o.epochs && step < steps; ++epoch) {
    std::iota(order.begin(), order.end(), size_t{0});
    std::mt19937_64 rng(o.seed + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t first = 0; first < n && step < steps; first += per_step) {
      if (step < o.start_step) {  // taken before the checkpoint this training resumed from
        ++step;
        continue;
      }
      const int64_t end = std::min(n, first + per_step);
      int64_t tokens = 0, targets = 0;
      for (int64_t i = first; i < end; ++i) {
        const SftExample& e = examples[order[static_cast<size_t>(i)]];
        tokens += static_cast<int64_t>(e.tokens.size());
        targets += e.target_count();
      }
      lora.zero_grad();
      double loss_sum = 0;
      int64_t micro = 0;
      for (int64_t m = first; m < end; m += o.batch, ++micro) {
        std::vector<TrainingSequence> batch;
        for (int64_t i = m; i < std::min(end, m + o.batch); ++i) {
          const SftExample& e = examples[order[static_cast<size_t>(i)]];
          batch.push_back({e.tokens, e.targets});
        }
        // Each micro-batch's dropout masks are its own (one per step without accumulation).
        const auto dropout_step = static_cast<uint64_t>(step * o.accumulation + micro);
        KEEL_ASSIGN_OR_RETURN(LossAndTargets l, trainer->forward_backward(batch, dropout_step, targets));
        loss_sum += l.loss * static_cast<double>(l.target_tokens);
      }
      const double loss = loss_sum / static_cast<double>(targets);
      const float lr = schedule.at(step);
      auto params = lora.parameters();
      if (!std::isfinite(loss)) return not_finite(step + 1, "loss");
      auto norm = optimizer.step(params, lr);
      if (!norm.ok() && !std::isfinite(global_grad_norm(params))) return not_finite(step + 1, "gradient norm");
      KEEL_RETURN_IF_ERROR(norm.status());
      ++step;
      if (result.steps == 0) result.first_loss = loss;
      ++result.steps;
      result.last_loss = loss;
      result.tokens += tokens;
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (hooks.on_step) hooks.on_step({step, steps, loss, lr, *norm, targets, result.seconds, tokens});
      bool stop = false;
      if (validating && ((o.eval_every > 0 && step % o.eval_every == 0) || step == steps)) {
        KEEL_ASSIGN_OR_RETURN(stop, validate(step));
        result.stopped_early = stop && step < steps;
      }
      if (hooks.on_checkpoint && ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || step == steps || stop)) {
        KEEL_RETURN_IF_ERROR(hooks.on_checkpoint(step, lora, optimizer));
      }
      if (stop) return result;
    }
  }
  return result;
}

}  // namespace keel::train
