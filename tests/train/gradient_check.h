// Finite-difference checks for the trainer's tests: central differences of a scalar
// loss (computed in double from F32 activations) against an analytic gradient.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace keel::train::testing {

inline std::vector<float> random_vector(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// sum_i w[i] * y[i] in double: the scalar a test differentiates.
inline double weighted_sum(const std::vector<float>& y, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * w[i];
  return s;
}

// Checks analytic[i] against (loss(x + eps e_i) - loss(x - eps e_i)) / 2 eps for every
// i (or every stride-th): |numeric - analytic| <= tolerance * (max |analytic| + 1e-3)
// elementwise, so a wrong derivative anywhere fails, while F32 rounding does not.
inline void expect_gradient(const std::string& what, std::vector<float>& x, const std::vector<float>& analytic,
                            const std::function<double()>& loss, float eps = 1e-2f, double tolerance = 1e-2,
                            size_t stride = 1) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  double scale = 1e-3;
  for (float g : analytic) scale = std::max(scale, static_cast<double>(std::fabs(g)));
  double worst = 0;
  size_t worst_i = 0;
  double worst_numeric = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float old = x[i];
    x[i] = old + eps;
    const double up = loss();
    x[i] = old - eps;
    const double down = loss();
    x[i] = old;
    const double numeric = (up - down) / (2.0 * eps);
    const double err = std::fabs(numeric - analytic[i]);
    if (err > worst) worst = err, worst_i = i, worst_numeric = numeric;
  }
  EXPECT_LE(worst, tolerance * scale) << what << ": element " << worst_i << " analytic " << analytic[worst_i]
                                      << " numeric " << worst_numeric << " (max |gradient| " << scale << ")";
}

}  // namespace keel::train::testing
