// The paired bootstrap interval (paired_bootstrap.h): what it must be on cases whose
// answer is known, its determinism, and its errors.
#include "keel/eval/paired_bootstrap.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace keel::eval {
namespace {

TEST(PairedBootstrap, KnownCasesAndDeterminism) {
  // The same scores: every resample's difference is 0.
  const std::vector<double> a = {0.1, 0.5, 0.9, 0.3, 0.7};
  auto same = paired_bootstrap(a, a, 200);
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_EQ(same->mean_delta, 0);
  EXPECT_EQ(same->low, 0);
  EXPECT_EQ(same->high, 0);
  EXPECT_EQ(same->b_better, 0);
  // A constant shift: the interval is that shift exactly.
  std::vector<double> shifted;
  for (double x : a) shifted.push_back(x + 0.25);
  auto shift = paired_bootstrap(a, shifted, 200);
  ASSERT_TRUE(shift.ok());
  EXPECT_NEAR(shift->low, 0.25, 1e-12);
  EXPECT_NEAR(shift->high, 0.25, 1e-12);
  EXPECT_EQ(shift->b_better, 1);
  // Exact match flipped on 30 of 100 examples one way and 10 the other: mean +0.2, and the
  // interval holds it, within the normal approximation's reach (sd of the mean ~0.063).
  std::vector<double> x(100, 0), y(100, 0);
  for (int i = 0; i < 30; ++i) y[i] = 1;
  for (int i = 30; i < 40; ++i) x[i] = 1;
  auto flips = paired_bootstrap(x, y, 2000, 0.95, 7);
  ASSERT_TRUE(flips.ok());
  EXPECT_NEAR(flips->mean_delta, 0.2, 1e-12);
  EXPECT_LT(flips->low, 0.2);
  EXPECT_GT(flips->high, 0.2);
  EXPECT_NEAR(flips->low, 0.2 - 1.96 * 0.0632, 0.03);
  EXPECT_NEAR(flips->high, 0.2 + 1.96 * 0.0632, 0.03);
  EXPECT_GT(flips->b_better, 0.99);
  // Seeded: the same call gives the same interval; another seed, a slightly other one.
  auto again = paired_bootstrap(x, y, 2000, 0.95, 7);
  EXPECT_EQ(again->low, flips->low);
  EXPECT_EQ(again->high, flips->high);
  // A narrower confidence gives a narrower interval.
  auto narrow = paired_bootstrap(x, y, 2000, 0.5, 7);
  EXPECT_GT(narrow->low, flips->low);
  EXPECT_LT(narrow->high, flips->high);
}

TEST(PairedBootstrap, BadInputIsAnError) {
  const std::vector<double> a = {1, 2}, b = {1}, none;
  EXPECT_FALSE(paired_bootstrap(a, b).ok());
  EXPECT_FALSE(paired_bootstrap(none, none).ok());
  EXPECT_FALSE(paired_bootstrap(a, a, 0).ok());
  EXPECT_FALSE(paired_bootstrap(a, a, 10, 1.0).ok());
  const std::vector<double> nan = {1, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_FALSE(paired_bootstrap(a, nan).ok());
}

}  // namespace
}  // namespace keel::eval
