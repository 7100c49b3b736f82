#include "keel/engine/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>

namespace keel::engine {
namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

uint64_t rotate_left(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// NaN sorts below everything and +infinity would turn exp(l - max) into NaN: both are
// replaced so the ordering below stays a strict total order.
float sanitize(float logit) {
  if (std::isnan(logit)) return kNegativeInfinity;
  if (logit > FLT_MAX) return FLT_MAX;
  return logit;
}

bool is_finite(float x) {
  return std::isfinite(x);
}

std::string show(float x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::string s = std::to_string(x);
  while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

// Higher logit first, lower id first among equals: a strict total order, so the
// standard algorithms' results do not depend on their implementation. A function
// object (not a function pointer) so that the sorts inline it.
struct Better {
  template <typename T>
  bool operator()(const T& a, const T& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
constexpr Better better;

struct Scored {
  float logit;
  int32_t id;
};

}  // namespace

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Xoshiro256StarStar::Xoshiro256StarStar(uint64_t seed) {
  SplitMix64 seeder(seed);
  for (auto& word : state_) word = seeder.next();
}

uint64_t Xoshiro256StarStar::next() {
  const uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotate_left(state_[3], 45);
  return result;
}

double Xoshiro256StarStar::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

Status validate(const SamplingOptions& o, int64_t vocab_size) {
  if (!is_finite(o.temperature) || o.temperature < 0) {
    return invalid_argument("temperature must be a finite number >= 0 (0 is greedy), not " + show(o.temperature));
  }
  if (o.top_k < 0) return invalid_argument("top_k must be >= 0 (0 is off), not " + std::to_string(o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) {
    return invalid_argument("top_p must be in (0, 1] (1 is off), not " + show(o.top_p));
  }
  if (!(o.min_p >= 0 && o.min_p <= 1)) {
    return invalid_argument("min_p must be in [0, 1] (0 is off), not " + show(o.min_p));
  }
  if (!is_finite(o.repetition_penalty) || o.repetition_penalty <= 0) {
    return invalid_argument("repetition penalty must be a finite number > 0 (1 is off), not " +
                            show(o.repetition_penalty));
  }
  if (o.penalty_last_n < -1) {
    return invalid_argument("the penalty window must be >= -1 (-1: whole history, 0: off), not " +
                            std::to_string(o.penalty_last_n));
  }
  if (!is_finite(o.presence_penalty)) return invalid_argument("presence penalty must be finite");
  if (!is_finite(o.frequency_penalty)) return invalid_argument("frequency penalty must be finite");
  for (const auto& [id, bias] : o.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return invalid_argument("logit bias for token " + std::to_string(id) + ", outside the vocabulary of " +
                              std::to_string(vocab_size) + " tokens");
    }
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
      return invalid_argument("logit bias for token " + std::to_string(id) + " must be a number or -inf, not " +
                              show(bias));
    }
  }
  return Status::Ok();
}

Result<TokenLogprobs> compute_logprobs(std::span<const float> logits, int32_t chosen, int top_n) {
  if (logits.empty()) return invalid_argument("logprobs of an empty logit row");
  if (chosen < 0 || static_cast<size_t>(chosen) >= logits.size()) {
    return invalid_argument("token " + std::to_string(chosen) + " is outside the logit row of " +
                            std::to_string(logits.size()));
  }
  if (top_n < 0 || top_n > kMaxTopLogprobs) {
    return invalid_argument("top logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], not " +
                            std::to_string(top_n));
  }
  // One pass: the max, and the top_n best kept sorted (a rare insertion into <= 20).
  float max = kNegativeInfinity;
  std::vector<Scored> top;
  top.reserve(static_cast<size_t>(top_n) + 1);
  for (size_t i = 0; i < logits.size(); ++i) {
    const Scored s{sanitize(logits[i]), static_cast<int32_t>(i)};
    max = std::max(max, s.logit);
    if (top_n == 0) continue;
    if (top.size() < static_cast<size_t>(top_n) || better(s, top.back())) {
      top.insert(std::upper_bound(top.begin(), top.end(), s, better), s);
      if (top.size() > static_cast<size_t>(top_n)) top.pop_back();
    }
  }
  if (max == kNegativeInfinity) return invalid_argument("logprobs of a logit row with no finite value");
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(sanitize(l)) - max);
  const double log_total = static_cast<double>(max) + std::log(sum);
  auto logprob = [&](float logit) { return static_cast<float>(static_cast<double>(logit) - log_total); };
  TokenLogprobs out;
  out.chosen = {chosen, logprob(sanitize(logits[static_cast<size_t>(chosen)]))};
  out.top.reserve(top.size());
  for (const auto& s : top) out.top.push_back({s.id, logprob(s.logit)});
  return out;
}

Sampler::Sampler(const SamplingOptions& options, int64_t vocab_size)
    : options_(options), vocab_size_(vocab_size), rng_(options.seed) {}

Result<Sampler> Sampler::create(const SamplingOptions& options, int64_t vocab_size) {
  if (vocab_size <= 0 || vocab_size > std::numeric_limits<int32_t>::max()) {
    return invalid_argument("vocabulary size " + std::to_string(vocab_size) + " is out of range");
  }
  KEEL_RETURN_IF_ERROR(validate(options, vocab_size));
  return Sampler(options, vocab_size);
}

Status Sampler::adjust(std::span<const float> logits, std::span<const int32_t> history) {
  if (static_cast<int64_t>(logits.size()) != vocab_size_) {
    return invalid_argument("the sampler got " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                            std::to_string(vocab_size_));
  }
  adjusted_.resize(logits.size());
  std::transform(logits.begin(), logits.end(), adjusted_.begin(), sanitize);
  for (const auto& [id, bias] : options_.logit_bias) {
    adjusted_[static_cast<size_t>(id)] = sanitize(adjusted_[static_cast<size_t>(id)] + bias);
  }

  const SamplingOptions& o = options_;
  const bool penalize = o.repetition_penalty != 1.0f || o.presence_penalty != 0.0f || o.frequency_penalty != 0.0f;
  if (!penalize || o.penalty_last_n == 0 || history.empty()) return Status::Ok();
  const size_t n =
      o.penalty_last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(o.penalty_last_n));
  window_.assign(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  for (int32_t id : window_) {
    if (id < 0 || id >= vocab_size_) {
      return invalid_argument("token " + std::to_string(id) + " in the history is outside the vocabulary of " +
                              std::to_string(vocab_size_));
    }
  }
  std::sort(window_.begin(), window_.end());
  for (size_t i = 0; i < window_.size();) {
    size_t j = i;
    while (j < window_.size() && window_[j] == window_[i]) ++j;
    const auto count = static_cast<float>(j - i);
    float& l = adjusted_[static_cast<size_t>(window_[i])];
    if (o.repetition_penalty != 1.0f) l = l <= 0 ? l * o.repetition_penalty : l / o.repetition_penalty;
    l = sanitize(l - (count * o.frequency_penalty + o.presence_penalty));
    i = j;
  }
  return Status::Ok();
}

float Sampler::best_logit() const {
  if (sorted_ > 0) return candidates_[0].logit;
  float best = candidates_[0].logit;
  for (const auto& c : candidates_) best = std::max(best, c.logit);
  return best;
}

void Sampler::sort_prefix(size_t n) {
  n = std::min(n, candidates_.size());
  if (n <= sorted_) return;
  const auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(sorted_);
  const auto middle = candidates_.begin() + static_cast<std::ptrdiff_t>(n);
  if (middle != candidates_.end()) std::nth_element(first, middle, candidates_.end(), better);
  std::sort(first, middle, better);
  sorted_ = n;
}

void Sampler::top_p(float p) {
  if (p >= 1.0f) return;
  const float max = best_logit();
  double total = 0;
  for (const auto& c : candidates_) total += std::exp(static_cast<double>(c.logit) - max);
  const double target = static_cast<double>(p) * total;
  double cumulative = 0;
  size_t i = 0;
  for (size_t block = 64;; block *= 4) {
    sort_prefix(block);
    for (; i < sorted_; ++i) {
      cumulative += std::exp(static_cast<double>(candidates_[i].logit) - max);
      if (cumulative >= target) {
        candidates_.resize(i + 1);
        sorted_ = i + 1;
        return;
      }
    }
    if (sorted_ == candidates_.size()) return;  // rounding: p of the total was never reached
  }
}

void Sampler::min_p(float p) {
  if (p <= 0.0f) return;
  const float max = best_logit();
  // p_i >= p * p_max  <=>  l_i >= l_max + log(p).
  const float threshold = max + std::log(p);
  // Order is kept; if a sorted candidate goes, every unsorted one (all worse) goes too.
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [&](const Candidate& c) { return c.logit < threshold && c.logit != max; }),
                    candidates_.end());
  sorted_ = std::min(sorted_, candidates_.size());
}

Result<int32_t> Sampler::prepare(std::span<const float> logits, std::span<const int32_t> history) {
  KEEL_RETURN_IF_ERROR(adjust(logits, history));
  static const Status kAllBanned =
      failed_precondition("no token can be sampled: every logit is -inf or NaN (all banned by the logit bias?)");

  if (options_.temperature == 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < adjusted_.size(); ++i) {
      if (adjusted_[i] > adjusted_[best]) best = i;
    }
    if (adjusted_[best] == kNegativeInfinity) return kAllBanned;
    return static_cast<int32_t>(best);
  }

  candidates_.clear();
  sorted_ = 0;
  const int32_t k = options_.top_k;
  if (k > 0 && static_cast<size_t>(k) < adjusted_.size()) {
    // Top-k in one pass: a heap of the k best so far, its worst on top, so that most
    // tokens cost one comparison; then sorted best first.
    candidates_.reserve(static_cast<size_t>(k));
    for (size_t i = 0; i < adjusted_.size(); ++i) {
      if (adjusted_[i] == kNegativeInfinity) continue;
      const Candidate c{adjusted_[i], static_cast<int32_t>(i)};
      if (candidates_.size() < static_cast<size_t>(k)) {
        candidates_.push_back(c);
        std::push_heap(candidates_.begin(), candidates_.end(), better);
      } else if (better(c, candidates_.front())) {
        std::pop_heap(candidates_.begin(), candidates_.end(), better);
        candidates_.back() = c;
        std::push_heap(candidates_.begin(), candidates_.end(), better);
      }
    }
    std::sort_heap(candidates_.begin(), candidates_.end(), better);
    sorted_ = candidates_.size();
  } else {
    candidates_.reserve(adjusted_.size());
    for (size_t i = 0; i < adjusted_.size(); ++i) {
      if (adjusted_[i] != kNegativeInfinity) candidates_.push_back({adjusted_[i], static_cast<int32_t>(i)});
    }
  }
  if (candidates_.empty()) return kAllBanned;
  top_p(options_.top_p);
  min_p(options_.min_p);
  return -1;
}

double Sampler::weigh() {
  // Temperature: exp((l - max) / T) is softmax(l / T) up to the normaliser, without
  // overflow for a tiny T.
  const float max = best_logit();
  const double temperature = options_.temperature;
  weights_.resize(candidates_.size());
  double total = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    weights_[i] = std::exp((static_cast<double>(candidates_[i].logit) - max) / temperature);
    total += weights_[i];
  }
  return total;
}

Result<int32_t> Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  KEEL_ASSIGN_OR_RETURN(int32_t greedy, prepare(logits, history));
  if (greedy >= 0) return greedy;
  const double total = weigh();
  const double u = rng_.uniform() * total;
  double cumulative = 0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (weights_[i] <= 0) continue;
    cumulative += weights_[i];
    last_positive = candidates_[i].id;
    if (cumulative > u) return last_positive;
  }
  return last_positive;  // rounding: u * total landed past the cumulative sum
}

Result<std::vector<TokenProbability>> Sampler::distribution(std::span<const float> logits,
                                                            std::span<const int32_t> history) {
  KEEL_ASSIGN_OR_RETURN(int32_t greedy, prepare(logits, history));
  if (greedy >= 0) return std::vector<TokenProbability>{{greedy, 1.0}};
  const double total = weigh();
  std::vector<TokenProbability> out;
  out.reserve(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) out.push_back({candidates_[i].id, weights_[i] / total});
  return out;
}

}  // namespace keel::engine
