#include "keel/server/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace keel::server {

RateLimiter::Bucket& RateLimiter::refill(const std::string& key, const RateLimits& limits, Clock::time_point now) {
  const auto rpm = static_cast<double>(limits.requests_per_minute);
  const auto tpm = static_cast<double>(limits.tokens_per_minute);
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{limits, rpm, tpm, now});
  Bucket& b = it->second;
  if (fresh) return b;
  if (b.limits.requests_per_minute != limits.requests_per_minute) {  // a limit changed: a full allowance of the new one
    b.requests = rpm;
  }
  if (b.limits.tokens_per_minute != limits.tokens_per_minute) b.tokens = std::min(b.tokens, tpm);
  b.limits = limits;
  if (now > b.updated) {
    const double minutes = std::chrono::duration<double>(now - b.updated).count() / 60.0;
    b.requests = std::min(rpm, b.requests + minutes * rpm);
    b.tokens = std::min(tpm, b.tokens + minutes * tpm);
    b.updated = now;
  }
  return b;
}

std::optional<int64_t> RateLimiter::admit(const std::string& key, const OwnLimits& own, Clock::time_point now) {
  const RateLimits limits{own.requests_per_minute.value_or(limits_.requests_per_minute),
                          own.tokens_per_minute.value_or(limits_.tokens_per_minute)};
  if (limits.requests_per_minute <= 0 && limits.tokens_per_minute <= 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  Bucket& b = refill(key, limits, now);
  double wait_seconds = 0;
  // A millionth of slack: a refill computed in floating point may fall a hair short.
  constexpr double kSlack = 1e-6;
  if (limits.requests_per_minute > 0 && b.requests < 1 - kSlack) {
    wait_seconds = (1 - b.requests) * 60.0 / static_cast<double>(limits.requests_per_minute);
  }
  if (limits.tokens_per_minute > 0 && b.tokens < -kSlack) {
    wait_seconds = std::max(wait_seconds, -b.tokens * 60.0 / static_cast<double>(limits.tokens_per_minute));
  }
  if (wait_seconds > 0) return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_seconds)));
  if (limits.requests_per_minute > 0) b.requests = std::max(0.0, b.requests - 1);
  return std::nullopt;
}

void RateLimiter::charge_tokens(const std::string& key, int64_t tokens, Clock::time_point now) {
  if (tokens <= 0) return;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end() || it->second.limits.tokens_per_minute <= 0) return;  // admitted without a token limit
  refill(key, it->second.limits, now).tokens -= static_cast<double>(tokens);
}

}  // namespace keel::server
