// The training ops' vector kernels (vector_math.h) against the standard library.
#include "keel/train/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace keel::train {
namespace {

TEST(ExpFloat, WithinTwoUlpOfStdExpAcrossTheFloatRange) {
  int64_t checked = 0;
  for (float x = -87.3f; x < 88.7f; x = std::nextafter(x + 1e-4f * (1 + std::fabs(x)), INFINITY)) {
    const float want = std::exp(x), got = exp_float(x);
    const float ulp = std::nextafter(want, INFINITY) - want;
    ASSERT_LE(std::fabs(got - want), 2 * ulp) << x;
    ++checked;
  }
  EXPECT_GT(checked, 50000);
  // Densely where softmax arguments (x - max <= 0) and SiLU's exp(-g) mostly are.
  for (float x = -20.0f; x < 20.0f; x += 1e-4f) {
    const float want = std::exp(x), got = exp_float(x);
    ASSERT_LE(std::fabs(got - want), 2 * (std::nextafter(want, INFINITY) - want)) << x;
  }
  EXPECT_EQ(exp_float(0.0f), 1.0f);
  EXPECT_EQ(exp_float(-100.0f), 0.0f);
  EXPECT_EQ(exp_float(-INFINITY), 0.0f);
  EXPECT_EQ(exp_float(100.0f), INFINITY);
  EXPECT_TRUE(std::isnan(exp_float(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
}  // namespace keel::train
