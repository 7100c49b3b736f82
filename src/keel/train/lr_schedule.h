// Learning rate per optimizer step: linear warmup from 0, then constant, linear decay
// or cosine decay to 0 at total_steps (transformers' get_constant_schedule_with_warmup,
// get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup, step for step).
// Steps count from 0: the trainer asks for the rate of step i before taking it.
#pragma once

#include <cstdint>
#include <string_view>

#include "keel/util/status.h"

namespace keel::train {

enum class LrDecay { kConstant, kLinear, kCosine };

// "constant", "linear", "cosine"; kInvalidArgument for anything else.
Result<LrDecay> parse_lr_decay(std::string_view name);

struct LrSchedule {
  float peak = 2e-4f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  LrDecay decay = LrDecay::kCosine;

  // kInvalidArgument for a negative or non-finite peak, negative warmup, total_steps < 1
  // or warmup_steps > total_steps.
  Status check() const;
  // peak * step / warmup during warmup; then 1, (total - step) / (total - warmup), or
  // 0.5 (1 + cos(pi progress)) with progress = (step - warmup) / (total - warmup),
  // never below 0. Past total_steps the rate stays at its end value (transformers'
  // cosine would climb again).
  float at(int64_t step) const;
};

}  // namespace keel::train
