// A fine-tuning's checkpoint: everything train_sft needs to go on as if it had not
// stopped (sft_trainer.h): the adapters, AdamW's moments and step count, and the step
// reached, with the training's configuration as the caller gives it (JSON text, kept
// as it is). One GGUF file, written atomically: general.type "keel.sft_checkpoint",
// keel.checkpoint.{step, adamw_steps, config, lora.rank, lora.alpha, lora.dropout,
// lora.seed, lora.modules}, and per parameter (LoraWeights::parameters' names, e.g.
// "blk.3.attn_q.lora_a") the F32 tensors NAME, NAME.adam_m and NAME.adam_v. A training
// with validation also keeps where it stands (keel.checkpoint.validation.{best_loss,
// best_step, stale}) and, once evaluated, the best adapters as NAME.best.
#pragma once

#include <string>

#include "keel/engine/model.h"
#include "keel/train/adamw.h"
#include "keel/train/lora.h"
#include "keel/train/sft_trainer.h"
#include "keel/util/status.h"

namespace keel::train {

struct SftCheckpoint {
  int64_t step = 0;
  LoraWeights lora;
  AdamW optimizer{AdamWOptions{}};
  std::string config;  // as given to write_sft_checkpoint
  // Set when the training validates (its examples are the caller's to give again).
  std::optional<SftValidation> validation;
};

Status write_sft_checkpoint(const std::string& path, const engine::Model& model, const LoraWeights& lora,
                            const AdamW& optimizer, int64_t step, const std::string& config,
                            const SftValidation* validation = nullptr);

// kInvalidArgument when the file is not a checkpoint, or not one for `model` (other
// matrices or shapes), or is inconsistent; `adamw` gives the optimizer's options (not
// stored: they are part of the caller's configuration).
Result<SftCheckpoint> read_sft_checkpoint(const std::string& path, const engine::Model& model,
                                          const AdamWOptions& adamw);

}  // namespace keel::train
