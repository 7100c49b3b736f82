// ROUGE-N, ROUGE-L and ROUGE-Lsum exactly as Google's rouge-score 0.1.2 computes them
// (RougeScorer with its DefaultTokenizer), for `keel eval` and the metric tests.
// Tokens are the runs of [a-z0-9] in Python's str.lower() of the text; with
// use_stemmer, tokens longer than 3 characters go through NLTK's Porter stemmer
// (porter_stemmer.h). rougeLsum splits sentences on "\n" only, as rouge-score does
// without split_summaries. Scores are fractions in [0, 1].
// The one thing a caller must not get wrong: the argument order is (target,
// prediction), reference first, as in rouge-score's score(target, prediction).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

struct RougeScore {
  double precision = 0;
  double recall = 0;
  double fmeasure = 0;
};

struct RougeOptions {
  // "rouge1".."rouge9", "rougeL", "rougeLsum". A type listed twice is scored once.
  std::vector<std::string> types = {"rouge1", "rouge2", "rougeL", "rougeLsum"};
  bool use_stemmer = false;
  // Worker threads for rouge_corpus (0: one per hardware thread). Results do not
  // depend on it.
  int threads = 1;
  // Bootstrap resampling for rouge_corpus, as rouge-score's BootstrapAggregator does
  // it (resample segments with replacement `bootstrap_samples` times; low/high are the
  // percentiles of the resampled means at (1 -/+ confidence) / 2 with numpy's default
  // linear interpolation, mid is their median). 0 samples: no interval. The resampling
  // uses Keel's own seeded generator, not numpy's stream, so intervals equal
  // rouge-score's only statistically; the same seed always gives the same interval,
  // whatever the thread count.
  int bootstrap_samples = 0;
  double confidence = 0.95;
  uint64_t seed = 0;
};

using RougeScores = std::map<std::string, RougeScore>;

// rouge-score's RougeScorer(types, use_stemmer).score(target, prediction).
// Errors: unknown type, rouge0, text that is not UTF-8.
Result<RougeScores> rouge_score(std::string_view target, std::string_view prediction, const RougeOptions& options);

// score_multi(targets, prediction): for each type, the score against the target with
// the highest f-measure (the first such target on ties). Errors as rouge_score, and
// for an empty target list.
Result<RougeScores> rouge_score_multi(const std::vector<std::string>& targets, std::string_view prediction,
                                      const RougeOptions& options);

struct RougeInterval {
  RougeScore low, mid, high;
};

struct RougeCorpusResult {
  std::vector<std::string> types;  // column order of the vectors below
  // One row of types.size() scores per segment: scores[i * types.size() + t].
  std::vector<RougeScore> scores;
  std::vector<RougeScore> mean;          // mean[t]: plain mean over segments, in order
  std::vector<RougeInterval> intervals;  // intervals[t]; empty without bootstrap

  const RougeScore& at(size_t segment, size_t type) const { return scores[segment * types.size() + type]; }
};

// Scores predictions[i] against reference streams: references[k][i] is the k-th
// reference of segment i (the layout of NAME.ref0, NAME.ref1, ...). One stream scores
// with score(), several with score_multi(). Errors: as rouge_score, no stream, a
// stream whose length differs from predictions, a bad bootstrap setting.
Result<RougeCorpusResult> rouge_corpus(const std::vector<std::string>& predictions,
                                       const std::vector<std::vector<std::string>>& references,
                                       const RougeOptions& options);

// rouge-score's DefaultTokenizer(use_stemmer).tokenize(text).
Result<std::vector<std::string>> rouge_tokenize(std::string_view text, bool use_stemmer);

// Building blocks on interned token ids, public so that tests can hold each fast path
// against its plain reference.
namespace rouge_detail {

// Length of a longest common subsequence: bit-parallel (Hyyrö), O(|a|·|b|/64) time,
// O(|a| + |b|) memory.
size_t lcs_length(std::span<const uint32_t> a, std::span<const uint32_t> b);
// The same by the textbook two-row dynamic programme.
size_t lcs_length_reference(std::span<const uint32_t> a, std::span<const uint32_t> b);

// The positions in `ref` of the one LCS that rouge-score's lcs_ind() reads out of its
// table (_backtrack_norec's tie-breaking), ascending. rouge-score keeps the whole
// (|ref|+1)·(|can|+1) table; this keeps one bit per cell for tables up to 4M cells,
// and beyond that DP rows every `block_rows` rows plus one block of bits, about
// |can|·sqrt(2·|ref|) bytes, recomputing each block once (0: block size chosen so).
std::vector<uint32_t> lcs_indices(std::span<const uint32_t> ref, std::span<const uint32_t> can, size_t block_rows = 0);
// The same from rouge-score's full (|ref|+1)·(|can|+1) table.
std::vector<uint32_t> lcs_indices_reference(std::span<const uint32_t> ref, std::span<const uint32_t> can);

}  // namespace rouge_detail

}  // namespace keel::eval
