// The supervised fine-tuning loop: epochs over encoded examples (sft_data.h) in a
// seeded shuffled order, `accumulation` micro-batches of `batch` examples per optimizer
// step (the gradient of the step's mean loss over all its target tokens), LoRA
// forward/backward (lora_model.h), AdamW with clipping (adamw.h) at the schedule's
// rate (lr_schedule.h). Optionally a validation loss on held-out examples every
// `eval_every` steps, the adapters of the lowest one kept, and early stopping after
// `patience` evaluations without a lower one. Progress goes to callbacks; the trained
// adapters are left in the LoraWeights the caller passed (adapter_gguf.h writes them).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>

#include "keel/engine/model.h"
#include "keel/train/adamw.h"
#include "keel/train/lora.h"
#include "keel/train/lr_schedule.h"
#include "keel/train/sft_data.h"
#include "keel/util/status.h"

namespace keel::train {

struct SftOptions {
  int64_t epochs = 1;
  int64_t max_steps = 0;  // > 0: stop after this many steps
  int64_t batch = 1;      // examples per micro-batch (computed at once)
  int64_t accumulation = 1;  // micro-batches per optimizer step
  float learning_rate = 2e-4f;
  int64_t warmup_steps = 0;
  LrDecay decay = LrDecay::kCosine;
  AdamWOptions adamw;
  int threads = 1;
  bool gradient_checkpointing = false;
  uint64_t seed = 0;  // the order of examples in each epoch
  // Steps already taken (a resumed training): skipped without computing; the adapters
  // and the optimizer passed in hold their result. The example order and LoRA's dropout
  // masks depend only on the seed and the step, so the steps after follow the same
  // course as an uninterrupted training's.
  int64_t start_step = 0;
  int64_t checkpoint_every = 0;  // > 0: SftHooks::on_checkpoint after every that many steps
  // With validation examples (SftValidation): the validation loss after every that many
  // steps (0: only after the last) ...
  int64_t eval_every = 0;
  // ... and, when > 0, training stops after this many evaluations in a row without a
  // lower validation loss than the best so far (early stopping).
  int64_t patience = 0;
};

// Where validation stands: the lowest loss so far, its step, and the evaluations since.
// Kept in checkpoints (sft_checkpoint.h), so that a resumed training stops where the
// uninterrupted one would.
struct SftValidationState {
  double best_loss = std::numeric_limits<double>::infinity();
  int64_t best_step = 0;  // 0: no evaluation yet
  int64_t stale = 0;      // evaluations since the best one
};

// Held-out examples, and (in and out) the state of their evaluation: for a resumed
// training, the checkpoint's state and best adapters.
struct SftValidation {
  std::span<const SftExample> examples;
  SftValidationState state;
  std::optional<LoraWeights> best;  // the adapters at state.best_step
};

struct SftProgress {
  int64_t step = 0;  // 1-based, after the step
  int64_t steps = 0;
  double loss = 0;  // of this step's micro-batch, before the update
  float learning_rate = 0;
  double grad_norm = 0;  // before clipping
  int64_t target_tokens = 0;
  double seconds = 0;  // since training (this call) started
  int64_t tokens = 0;  // input tokens of this step's micro-batch
};

struct SftResult {
  int64_t steps = 0;  // taken by this call (after start_step)
  bool stopped_early = false;  // by SftOptions::patience, before the planned steps
  double first_loss = 0;
  double last_loss = 0;
  int64_t tokens = 0;  // tokens seen (inputs), all steps
  double seconds = 0;
};

struct SftHooks {
  std::function<void(const SftProgress&)> on_step;
  // After each validation, with its loss and the state it leaves (improved when
  // state.best_step == step).
  std::function<void(int64_t step, double loss, const SftValidationState& state)> on_validation;
  // After every checkpoint_every-th step and after the last; an error ends training
  // with it.
  std::function<Status(int64_t step, const LoraWeights& lora, const AdamW& optimizer)> on_checkpoint;
};

// The number of steps train_sft takes for `examples` examples.
int64_t sft_step_count(int64_t examples, const SftOptions& options);

// Trains `lora` in place with `optimizer` (fresh, or restored for a resumed training).
// kInvalidArgument for no examples, bad options, or adapters of another model; an error
// of a step ends training with that error (the adapters keep the steps before it). A
// loss or gradient that is not finite stops training before the step is applied
// (kFailedPrecondition naming the step; the last checkpoint stays the last good state).
// With `validation` (and examples in it), its state and best adapters are updated as
// training goes; an early stop calls on_checkpoint for the step it stops at.
Result<SftResult> train_sft(const engine::Model& model, LoraWeights& lora, AdamW& optimizer,
                            std::span<const SftExample> examples, const SftOptions& options,
                            const SftHooks& hooks = {}, SftValidation* validation = nullptr);

// The mean loss per target token of `examples` (no dropout, no gradients), computed
// `batch` examples at a time.
Result<double> sft_loss(const engine::Model& model, LoraWeights& lora, std::span<const SftExample> examples,
                        int64_t batch = 1, int threads = 1);

}  // namespace keel::train
