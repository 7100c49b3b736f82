// Picks the next token from a model's logits: logit bias, llama.cpp's penalties, top-k,
// top-p, min-p and temperature, then a draw from our own seeded PRNG (or argmax when
// the temperature is 0), plus OpenAI-style log-probabilities of the raw logits. Used by
// generate() (generation.h) and the OpenAI server. A Sampler owns its PRNG state, so
// one Sampler serves one sequence: sharing it between sequences changes their draws.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine {

// splitmix64 (Steele, Lea, Flood 2014): seeds Xoshiro256StarStar from one uint64.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();

 private:
  uint64_t state_;
};

// xoshiro256** 1.0 (Blackman, Vigna 2018), its state filled by four SplitMix64 draws
// from the seed. The same seed gives the same numbers on every platform and compiler.
class Xoshiro256StarStar {
 public:
  explicit Xoshiro256StarStar(uint64_t seed);
  uint64_t next();
  // Uniform in [0, 1): the top 53 bits of next() times 2^-53 (exact in a double).
  double uniform();

 private:
  std::array<uint64_t, 4> state_{};
};

// Every field's neutral value switches its step off; the defaults are plain greedy
// decoding. Penalties count the tokens of the last `penalty_last_n` entries of the
// history given to Sampler::sample (llama.cpp applies all three penalties over that
// window; OpenAI's presence/frequency formula is used for those two).
struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties); else logits / T
  int32_t top_k = 0;         // 0: off; keep the k most likely tokens
  float top_p = 1.0f;        // 1: off; keep the smallest set whose probability reaches p, in (0, 1]
  float min_p = 0.0f;        // 0: off; keep tokens with p >= min_p * p(most likely), in [0, 1]
  // llama.cpp's repeat penalty: a seen token's logit is divided by it when positive,
  // multiplied by it otherwise. 1: off; must be > 0.
  float repetition_penalty = 1.0f;
  int32_t penalty_last_n = 64;     // window of the penalties; 0: no penalties; -1: whole history
  float presence_penalty = 0.0f;   // OpenAI: logit -= presence * [count > 0]
  float frequency_penalty = 0.0f;  // OpenAI: logit -= frequency * count
  uint64_t seed = 0;
  // Added to a token's logit before anything else (OpenAI's logit_bias); -infinity bans it.
  std::map<int32_t, float> logit_bias;
};

// kInvalidArgument naming the first bad field: a NaN or infinite value, a negative
// temperature or top_k, top_p outside (0, 1], min_p outside [0, 1], a repetition
// penalty <= 0, penalty_last_n < -1, a logit_bias id outside [0, vocab_size) or a
// bias that is NaN or +infinity.
Status validate(const SamplingOptions& options, int64_t vocab_size);

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
};

// The chosen token's log-probability and the most likely alternatives.
struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // most likely first, lowest id first on ties
};

inline constexpr int kMaxTopLogprobs = 20;

struct TokenProbability {
  int32_t token = -1;
  double probability = 0;
};

// The log-softmax of the raw logits (before bias, penalties and temperature, as OpenAI
// reports them) at `chosen` and at the `top_n` (0..kMaxTopLogprobs) largest logits.
// NaN logits count as -infinity. kInvalidArgument for an empty row, `chosen` outside
// it or top_n out of range.
Result<TokenLogprobs> compute_logprobs(std::span<const float> logits, int32_t chosen, int top_n);

// The sampling chain, in llama.cpp's common-sampler order:
//   logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> draw.
// top-p and min-p see probabilities before the temperature (as in llama.cpp); top-p's
// probabilities are renormalised over what top-k kept. With temperature 0 the chain
// stops after the penalties and takes the argmax (lowest id on ties), drawing no random
// number. Otherwise each call draws exactly one uniform() u and returns the first
// remaining candidate whose cumulative weight exp((l - max) / T) exceeds u * total,
// walking candidates most likely first when top-k or top-p sorted them and by id
// otherwise. Ties between equal logits are broken by the lower id everywhere, so results
// do not depend on the standard library; exp() is the only platform-dependent step.
// Top-k keeps a k-element heap in one pass and sorts only the k kept; top-p sorts a
// growing prefix (64, 256, ... candidates) until it holds probability p: neither sorts
// the whole vocabulary unless the distribution is very flat.
class Sampler {
 public:
  static Result<Sampler> create(const SamplingOptions& options, int64_t vocab_size);

  // The next token. `history` holds the sequence so far (prompt and generated tokens,
  // oldest first); only its last penalty_last_n entries matter. kInvalidArgument when
  // logits.size() != vocab_size or a history id is outside the vocabulary;
  // kFailedPrecondition when every token's logit is -infinity (all banned) or NaN.
  Result<int32_t> sample(std::span<const float> logits, std::span<const int32_t> history);

  // The distribution sample() would draw from, without drawing: the candidates left
  // after the filters with their probabilities softmax(l / T) (summing to 1), in the
  // order the draw walks them. With temperature 0, the argmax alone with probability 1.
  // The same errors as sample(). For tests and for explaining a choice.
  Result<std::vector<TokenProbability>> distribution(std::span<const float> logits, std::span<const int32_t> history);

  const SamplingOptions& options() const { return options_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  Sampler(const SamplingOptions& options, int64_t vocab_size);

  // logits (NaN -> -inf) with the bias and penalties applied, into adjusted_.
  Status adjust(std::span<const float> logits, std::span<const int32_t> history);
  // adjust(), then the argmax (temperature 0) or the filters into candidates_ (-1).
  Result<int32_t> prepare(std::span<const float> logits, std::span<const int32_t> history);
  // The draw's weight exp((l - max) / T) of each candidate, into weights_; returns the sum.
  double weigh();
  void top_p(float p);
  void min_p(float p);
  // The largest logit among the (non-empty) candidates.
  float best_logit() const;
  // Makes candidates_[0, n) the n best, sorted (n is clipped to the size).
  void sort_prefix(size_t n);

  SamplingOptions options_;
  int64_t vocab_size_;
  Xoshiro256StarStar rng_;
  std::vector<float> adjusted_;
  std::vector<Candidate> candidates_;
  std::vector<double> weights_;
  size_t sorted_ = 0;  // candidates_[0, sorted_) are the best, in order
  std::vector<int32_t> window_;
};

}  // namespace keel::engine
