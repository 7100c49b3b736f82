// Per-key limits of the OpenAI-compatible API: requests per minute and tokens per
// minute, as token buckets that refill continuously (a full minute's allowance at
// most). A request is admitted while its key has a request left and is not in token
// debt; its prompt and completion tokens are charged when it ends, so one large
// request may overdraw and the next ones wait. Each key has the server's limits
// unless it carries its own (stored with the API key); a key's bucket follows the
// limits of its latest request. Thread-safe; keys are API key ids (or the caller's
// address when auth is off).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace keel::server {

struct RateLimits {
  int64_t requests_per_minute = 0;  // 0: no limit
  int64_t tokens_per_minute = 0;    // 0: no limit
};

// A key's own limits, where it has them.
struct OwnLimits {
  std::optional<int64_t> requests_per_minute;
  std::optional<int64_t> tokens_per_minute;
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(RateLimits limits) : limits_(limits) {}

  // nullopt: admitted, one request charged. Otherwise the whole seconds to wait
  // (Retry-After, at least 1) and nothing is charged. `own` are the key's own limits
  // (either may be unset: the server's then).
  std::optional<int64_t> admit(const std::string& key, const OwnLimits& own = {}, Clock::time_point now = Clock::now());
  void charge_tokens(const std::string& key, int64_t tokens, Clock::time_point now = Clock::now());
  const RateLimits& limits() const { return limits_; }

 private:
  struct Bucket {
    RateLimits limits;
    double requests;
    double tokens;
    Clock::time_point updated;
  };
  // REQUIRES: mutex_ held.
  Bucket& refill(const std::string& key, const RateLimits& limits, Clock::time_point now);

  const RateLimits limits_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // REQUIRES: mutex_ held
};

}  // namespace keel::server
