#include "keel/engine/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

namespace keel::engine {

double negative_log_likelihood(std::span<const float> logits, int32_t target) {
  float max_logit = logits[0];
  for (float v : logits) max_logit = std::max(max_logit, v);
  double sum_exp = 0;
  for (float v : logits) sum_exp += std::exp(v - max_logit);  // float exp, double sum
  return -(logits[static_cast<size_t>(target)] - max_logit - std::log(sum_exp));
}

Result<PerplexityResult> perplexity(InferenceSession& session, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options,
                                    const std::function<Status(const PerplexityProgress&)>& on_chunk) {
  const int64_t n_ctx = options.context;
  if (n_ctx < 4)
    return invalid_argument("the perplexity context must be at least 4 tokens, is " + std::to_string(n_ctx));
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < perplexity_min_tokens(n_ctx)) {
    return invalid_argument("perplexity with a context of " + std::to_string(n_ctx) + " needs at least " +
                            std::to_string(perplexity_min_tokens(n_ctx)) + " tokens, the text has only " +
                            std::to_string(n_tokens) + " (use a longer text or a smaller context)");
  }
  if (session.context_length() < n_ctx) {
    return failed_precondition("the session holds " + std::to_string(session.context_length()) +
                               " positions, perplexity needs " + std::to_string(n_ctx));
  }
  const int64_t vocab = session.model().config().vocab_size;
  const int64_t first = n_ctx / 2;  // the first half of a chunk is only context
  PerplexityResult result;
  result.tokens = n_tokens;
  result.context = n_ctx;
  result.chunks = n_tokens / n_ctx;
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  for (int64_t i = 0; i < result.chunks; ++i) {
    const auto begin = tokens.begin() + i * n_ctx;
    std::copy(begin, begin + n_ctx, chunk.begin());
    if (options.bos >= 0) chunk[0] = options.bos;
    session.reset();
    const auto start = std::chrono::steady_clock::now();
    KEEL_ASSIGN_OR_RETURN(std::vector<float> logits, session.forward(chunk, LogitsFor::kEveryToken));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.seconds += seconds;
    // The logits at position j predict token j + 1 of the chunk.
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      std::span<const float> row(logits.data() + j * vocab, static_cast<size_t>(vocab));
      const double v = negative_log_likelihood(row, chunk[static_cast<size_t>(j + 1)]);
      nll += v;
      nll2 += v * v;
      ++count;
    }
    result.running_perplexity.push_back(std::exp(nll / static_cast<double>(count)));
    if (on_chunk) {
      KEEL_RETURN_IF_ERROR(on_chunk({.chunk = i + 1,
                                     .chunks = result.chunks,
                                     .running_perplexity = result.running_perplexity.back(),
                                     .chunk_seconds = seconds}));
    }
  }
  session.reset();
  result.scored_tokens = count;
  result.mean_nll = nll / static_cast<double>(count);
  result.perplexity = std::exp(result.mean_nll);
  const double variance = nll2 / static_cast<double>(count) - result.mean_nll * result.mean_nll;
  if (variance > 0) result.uncertainty = std::sqrt(variance / static_cast<double>(count - 1)) * result.perplexity;
  return result;
}

}  // namespace keel::engine
