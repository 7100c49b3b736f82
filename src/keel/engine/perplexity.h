// Perplexity of a tokenized text, computed the way llama.cpp's `llama-perplexity` tool
// does by default, so the two numbers can be compared: chunks of `context` tokens, the
// first token of each replaced by BOS, only the second half of each chunk scored. Used
// by `keel perplexity` and the llama.cpp agreement test. A caller must pass the tokens
// of the whole text (with the leading BOS when the model adds one), at least 2 * context.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "keel/engine/forward.h"
#include "keel/util/status.h"

namespace keel::engine {

struct PerplexityOptions {
  int64_t context = 512;  // tokens per chunk (llama-perplexity's -c); at least 4
  // Replaces the first token of every chunk when >= 0 (llama.cpp does this when the
  // vocabulary adds BOS); -1 leaves the chunks as they are.
  int32_t bos = -1;
};

// Reported after each chunk.
struct PerplexityProgress {
  int64_t chunk = 0;  // 1-based
  int64_t chunks = 0;
  double running_perplexity = 0;  // exp(mean NLL) over the chunks so far
  double chunk_seconds = 0;       // the forward pass of this chunk
};

struct PerplexityResult {
  double perplexity = 0;
  // llama.cpp's "+/-": perplexity * sqrt(var(NLL) / (scored - 1)); 0 when the variance
  // is not positive (llama.cpp prints an error there instead).
  double uncertainty = 0;
  double mean_nll = 0;
  int64_t tokens = 0;  // tokens given
  int64_t context = 0;
  int64_t chunks = 0;                      // tokens / context, rounded down; the tail is not scored
  int64_t scored_tokens = 0;               // chunks * (context - context / 2 - 1)
  std::vector<double> running_perplexity;  // one per chunk, as llama.cpp prints them
  double seconds = 0;                      // forward passes only
};

// The fewest tokens perplexity() accepts for a context (llama.cpp's 2 * n_ctx).
inline int64_t perplexity_min_tokens(int64_t context) {
  return 2 * context;
}

// -log softmax(logits)[target], as llama.cpp's perplexity tool computes it: the
// maximum and exp() in float, their sum and the log in double. REQUIRES: target indexes logits.
double negative_log_likelihood(std::span<const float> logits, int32_t target);

// Runs every chunk through `session` (reset before each; its context_length() must be
// at least options.context). kInvalidArgument for a context below 4 or too few tokens
// (the message says how many are needed), kFailedPrecondition when the session's
// context is too small; errors from the forward pass or from on_chunk end the run.
Result<PerplexityResult> perplexity(InferenceSession& session, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options,
                                    const std::function<Status(const PerplexityProgress&)>& on_chunk = {});

}  // namespace keel::engine
