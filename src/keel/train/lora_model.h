// The training forward and backward pass of an engine Model (a llama-family decoder:
// the engine's architecture description says RoPE style and biases) with LoRA
// adapters: one call runs a micro-batch of sequences (rows concatenated, each
// attending within itself from position 0), computes the mean cross-entropy over all
// target positions, and adds d(loss)/d(A), d(loss)/d(B) into the adapters' gradients.
// The base weights stay frozen and quantized in the GGUF mapping. Activations of every
// layer are kept for the backward, or, with gradient checkpointing, only each layer's
// input (the layer forward is recomputed in the backward). Borrows the Model and the
// LoraWeights, which must outlive it; not thread-safe itself (it owns a ComputePool).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"
#include "keel/train/lora.h"
#include "keel/util/status.h"

namespace keel::train {

// One sequence: targets[t] is the token position t must predict (usually
// tokens[t + 1]), or -1 where no loss is taken (prompt tokens, padding).
struct TrainingSequence {
  std::span<const int32_t> tokens;
  std::span<const int32_t> targets;
};

// targets[t] = tokens[t + 1] where loss_mask[t + 1] is set, else -1 (the last is -1).
// An empty loss_mask means every next token counts.
std::vector<int32_t> next_token_targets(std::span<const int32_t> tokens, std::span<const uint8_t> loss_mask = {});

struct LoraModelOptions {
  int threads = 1;
  bool gradient_checkpointing = false;
  // Output-layer rows whose logits exist at one time (vocab floats each).
  int64_t loss_chunk_tokens = 128;
};

struct LossAndTargets {
  double loss = 0;            // mean over target positions
  int64_t target_tokens = 0;  // positions with a target
};

class LoraModel {
 public:
  // kInvalidArgument for a model whose family needs what training does not implement
  // yet (q/k norms, post-norms, GeGLU, sliding windows, scaled embeddings), for bad
  // options, or for adapters made for another model.
  static Result<std::unique_ptr<LoraModel>> create(const engine::Model& model, LoraWeights& lora,
                                                   const LoraModelOptions& options);
  ~LoraModel();

  // Forward and backward over the micro-batch: returns the mean loss and ADDS its
  // gradients into the adapters' grad_a / grad_b (call LoraWeights::zero_grad first).
  // `step` picks the dropout masks. The gradients are of the sum of the target losses
  // divided by `gradient_targets` (0: this batch's target count, so of the mean): a
  // step whose examples come in several micro-batches (gradient accumulation) passes
  // the step's whole target count, and the added gradients are those of its mean.
  // kInvalidArgument for an empty batch, an empty sequence or one longer than the
  // model's context, mismatched lengths, ids outside the vocabulary, or no target at all.
  Result<LossAndTargets> forward_backward(std::span<const TrainingSequence> batch, uint64_t step = 0,
                                          int64_t gradient_targets = 0);
  // The same loss without dropout and without gradients (evaluation). With row_loss,
  // also each row's loss (the batch's rows in order; 0 where there is no target).
  Result<LossAndTargets> loss(std::span<const TrainingSequence> batch, std::vector<double>* row_loss = nullptr);

  // Bytes of the stored activations of the last forward_backward (at its peak).
  size_t activation_bytes() const { return activation_bytes_; }
  const engine::Model& model() const { return model_; }

 private:
  struct LayerActivations;
  struct Batch;
  struct Buffers;
  LoraModel(const engine::Model& model, LoraWeights& lora, const LoraModelOptions& options);

  Result<Batch> prepare(std::span<const TrainingSequence> batch) const;
  // The layer forward from x_in (saved in a), leaving its output in x_out.
  void layer_forward(int64_t layer, const Batch& batch, float dropout, uint64_t step, LayerActivations& a,
                     float* x_out);
  // dx holds d(loss)/d(layer output) on entry and d(loss)/d(layer input) on return.
  void layer_backward(int64_t layer, const Batch& batch, float dropout, uint64_t step, LayerActivations& a,
                      std::vector<float>& dx);
  Result<LossAndTargets> run(std::span<const TrainingSequence> batch, bool backward, uint64_t step,
                             int64_t gradient_targets, std::vector<double>* row_loss);

  const engine::Model& model_;
  LoraWeights& lora_;
  LoraModelOptions options_;
  std::unique_ptr<engine::ComputePool> pool_;
  std::unique_ptr<Buffers> buffers_;  // reused by every call
  size_t activation_bytes_ = 0;
};

}  // namespace keel::train
