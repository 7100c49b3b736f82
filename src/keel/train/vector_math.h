// Small vector kernels the training ops share, written so the compiler vectorizes
// them: a dot product in sixteen partial sums (a single running sum is a chain of
// dependent additions that GCC must not reorder, so it stays scalar). The order of
// additions is fixed, so results are the same on every call and thread count.
#pragma once

#include <cstdint>

namespace keel::train {

inline float dot_product(const float* a, const float* b, int64_t n) {
  constexpr int64_t kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] += a[i + j] * b[i + j];
  }
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int64_t j = 0; j < kLanes; ++j) s += lanes[j];
  return s;
}

}  // namespace keel::train
