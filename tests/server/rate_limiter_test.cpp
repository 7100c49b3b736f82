// RateLimiter: requests and tokens per minute per key, refilled continuously.
#include "keel/server/rate_limiter.h"

#include <gtest/gtest.h>

namespace keel::server {
namespace {

using std::chrono::seconds;

TEST(RateLimiter, AdmitsAMinutesRequestsThenAsksToWaitForTheNext) {
  RateLimiter limiter({.requests_per_minute = 3});
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.admit("k", {}, t0).has_value()) << i;
  auto wait = limiter.admit("k", {}, t0);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 20);  // one request comes back every 20 s
  EXPECT_FALSE(limiter.admit("other", {}, t0).has_value());  // keys are separate
  EXPECT_TRUE(limiter.admit("k", {}, t0 + seconds(19)).has_value());
  EXPECT_FALSE(limiter.admit("k", {}, t0 + seconds(21)).has_value());
  // Idle for an hour: the bucket holds one minute's allowance, not sixty.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.admit("k", {}, t0 + seconds(3600)).has_value());
  EXPECT_TRUE(limiter.admit("k", {}, t0 + seconds(3600)).has_value());
}

TEST(RateLimiter, TokenDebtBlocksUntilRepaid) {
  RateLimiter limiter({.tokens_per_minute = 600});  // 10 tokens a second
  const auto t0 = RateLimiter::Clock::now();
  EXPECT_FALSE(limiter.admit("k", {}, t0).has_value());
  limiter.charge_tokens("k", 650, t0);  // 50 tokens into debt
  auto wait = limiter.admit("k", {}, t0);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 5);
  EXPECT_FALSE(limiter.admit("k", {}, t0 + seconds(5)).has_value());
}

TEST(RateLimiter, NoLimitsAdmitEverything) {
  RateLimiter limiter({});
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(limiter.admit("k").has_value());
  limiter.charge_tokens("k", 1000000);  // nothing to charge against
  EXPECT_FALSE(limiter.admit("k").has_value());
}

TEST(RateLimiter, AKeysOwnLimitsReplaceTheServersForThatKeyOnly) {
  RateLimiter limiter({.requests_per_minute = 2});
  const auto t0 = RateLimiter::Clock::now();
  const OwnLimits generous{.requests_per_minute = 5};
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.admit("big", generous, t0).has_value()) << i;
  EXPECT_TRUE(limiter.admit("big", generous, t0).has_value());
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(limiter.admit("small", {}, t0).has_value()) << i;
  EXPECT_TRUE(limiter.admit("small", {}, t0).has_value());
  // A key with only a token limit of its own keeps the server's request limit.
  const OwnLimits tokens_only{.tokens_per_minute = 60};
  EXPECT_FALSE(limiter.admit("t", tokens_only, t0).has_value());
  limiter.charge_tokens("t", 90, t0);  // 30 into debt: 30 s at one token a second
  auto wait = limiter.admit("t", tokens_only, t0);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, 30);
  // A server without limits still holds a limited key to its own.
  RateLimiter open({});
  const OwnLimits one{.requests_per_minute = 1};
  EXPECT_FALSE(open.admit("k", one, t0).has_value());
  EXPECT_TRUE(open.admit("k", one, t0).has_value());
  EXPECT_FALSE(open.admit("other", {}, t0).has_value());
}

}  // namespace
}  // namespace keel::server
