#include "keel/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace keel::train {

Result<LrDecay> parse_lr_decay(std::string_view name) {
  if (name == "constant") return LrDecay::kConstant;
  if (name == "linear") return LrDecay::kLinear;
  if (name == "cosine") return LrDecay::kCosine;
  return invalid_argument("unknown learning-rate schedule \"" + std::string(name) +
                          "\" (known: constant, linear, cosine)");
}

Status LrSchedule::check() const {
  if (!(peak >= 0) || !std::isfinite(peak)) return invalid_argument("learning rate must be a finite number >= 0");
  if (warmup_steps < 0) return invalid_argument("warmup steps must not be negative");
  if (total_steps < 1) return invalid_argument("total steps must be at least 1");
  if (warmup_steps > total_steps) {
    return invalid_argument("warmup steps (" + std::to_string(warmup_steps) + ") exceed total steps (" +
                            std::to_string(total_steps) + ")");
  }
  return Status::Ok();
}

float LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) {
    return peak *
           static_cast<float>(static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps)));
  }
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  double factor = 1.0;
  switch (decay) {
    case LrDecay::kConstant:
      factor = 1.0;
      break;
    case LrDecay::kLinear:
      factor = std::max(0.0, static_cast<double>(total_steps - step) / span);
      break;
    case LrDecay::kCosine:
      factor = std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
      break;
  }
  return static_cast<float>(peak * factor);
}

}  // namespace keel::train
