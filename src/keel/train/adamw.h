// AdamW (Loshchilov & Hutter; torch.optim.AdamW's arithmetic) over the LoRA
// parameters, with gradient clipping by global norm (torch.nn.utils.clip_grad_norm_):
// the trainer calls step() once per optimizer step with that step's learning rate
// (lr_schedule.h). The moments are kept per parameter in the order given; a caller
// must pass the same parameters, in the same order, to every step.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keel/train/lora.h"
#include "keel/util/status.h"

namespace keel::train {

struct AdamWOptions {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;   // decoupled: p -= lr * weight_decay * p
  float max_grad_norm = 1.0f;  // clip the global L2 norm to this; 0: no clipping
};

// Validates options: betas in [0, 1), epsilon > 0, weight_decay >= 0, max_grad_norm >= 0.
Status check_adamw_options(const AdamWOptions& options);

// sqrt(sum of squares) over every gradient (summed in double).
double global_grad_norm(std::span<const ParameterRef> parameters);
// Scales every gradient by max_norm / (norm + 1e-6) when the global norm exceeds
// max_norm (torch's clip_grad_norm_); returns the norm before clipping.
double clip_grad_norm(std::span<const ParameterRef> parameters, double max_norm);

class AdamW {
 public:
  explicit AdamW(const AdamWOptions& options) : options_(options) {}

  // Clips (when max_grad_norm > 0), then for every element, with t = steps() + 1:
  //   p -= lr * wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  //   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
  // Returns the gradient norm before clipping. kInvalidArgument when the parameters
  // differ in count or sizes from the first step's, or the gradient norm is not finite
  // (nothing is updated then).
  Result<double> step(std::span<const ParameterRef> parameters, float learning_rate);

  int64_t steps() const { return steps_; }
  const AdamWOptions& options() const { return options_; }
  // First and second moments of parameter i (for checkpoints and tests).
  const std::vector<float>& first_moment(size_t i) const { return m_[i]; }
  const std::vector<float>& second_moment(size_t i) const { return v_[i]; }
  size_t parameter_count() const { return m_.size(); }
  // Continues from a checkpoint: `steps` steps taken, moments per parameter in the order
  // step() will be given them. kInvalidArgument when m and v differ in shape.
  Status restore(int64_t steps, std::vector<std::vector<float>> m, std::vector<std::vector<float>> v);

 private:
  AdamWOptions options_;
  int64_t steps_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

}  // namespace keel::train
