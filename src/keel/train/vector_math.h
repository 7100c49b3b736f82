// Small vector kernels the training ops share, written so the compiler vectorizes
// them: a dot product in sixteen partial sums (a single running sum is a chain of
// dependent additions that GCC must not reorder, so it stays scalar), and exp in plain
// arithmetic (std::exp is a library call per element, which no loop around it can
// vectorize). The order of additions is fixed, so results are the same on every call
// and thread count.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

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

// exp(x) within 2 ulp of std::exp (Cephes' expf): x = k ln 2 + r with |r| <= ln 2 / 2
// (ln 2 in two parts, so r is exact), exp(r) = 1 + r + r^2 p(r) with p of degree 5,
// and 2^k made in the exponent bits. 0 below -87.33 (where exp leaves the normal
// floats), infinity above 88.72; NaN stays NaN.
inline float exp_float(float x) {
  const float clamped = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : x);
  const float k = std::floor(clamped * 1.44269504088896341f + 0.5f);
  float r = clamped - k * 0.693359375f;
  r -= k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  // 2^k as 2^k1 * 2^k2, k1 = floor(k / 2): k runs up to 128, past the largest exponent
  // of a float, but each half stays a normal float and each product is exact.
  const auto ki = static_cast<int32_t>(k);
  const int32_t k1 = ki >> 1, k2 = ki - k1;
  const int32_t bits1 = (k1 + 127) << 23, bits2 = (k2 + 127) << 23;
  float scale1, scale2;
  std::memcpy(&scale1, &bits1, sizeof(scale1));
  std::memcpy(&scale2, &bits2, sizeof(scale2));
  float y = e * scale1 * scale2;
  y = x < -87.33654f ? 0.0f : y;
  y = x > 88.72283f ? INFINITY : y;
  return x != x ? x : y;
}

}  // namespace keel::train
