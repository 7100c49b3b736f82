// The supervised fine-tuning loop: epochs over encoded examples (sft_data.h) in a
// seeded shuffled order, a micro-batch of `batch` examples per optimizer step, LoRA
// forward/backward (lora_model.h), AdamW with clipping (adamw.h) at the schedule's
// rate (lr_schedule.h). Progress goes to a callback after every step; the trained
// adapters are left in the LoraWeights the caller passed (adapter_gguf.h writes them).
#pragma once

#include <cstdint>
#include <functional>
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
  int64_t batch = 1;      // examples per step
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
  double first_loss = 0;
  double last_loss = 0;
  int64_t tokens = 0;  // tokens seen (inputs), all steps
  double seconds = 0;
};

struct SftHooks {
  std::function<void(const SftProgress&)> on_step;
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
Result<SftResult> train_sft(const engine::Model& model, LoraWeights& lora, AdamW& optimizer,
                            std::span<const SftExample> examples, const SftOptions& options,
                            const SftHooks& hooks = {});

}  // namespace keel::train
