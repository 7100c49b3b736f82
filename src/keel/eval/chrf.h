// chrF and chrF++ (character n-gram F-score, plus word n-grams for ++), computed
// exactly as sacrebleu 2.6.0's CHRF class computes them: whitespace removed before
// character n-grams, sacrebleu's punctuation splitting for word n-grams, its
// effective-order averaging (or eps smoothing), and the best reference per segment.
// Used by `keel eval` and the evaluation service. What a caller must not get wrong:
// refs is indexed [stream][segment], as in sacrebleu's corpus_score.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

struct ChrfOptions {
  int char_order = 6;          // 1..6
  int word_order = 0;          // 0..3; 2 is chrF++
  int beta = 2;                // >= 0; recall weighs beta times as much as precision
  bool lowercase = false;
  bool whitespace = false;     // keep whitespace inside character n-grams
  bool eps_smoothing = false;  // chrF++.py-style smoothing instead of effective order
  int threads = 1;             // 0: one per hardware thread; results never depend on it
};

struct ChrfScore {
  double score = 0.0;  // 0..100
  std::string name;    // "chrF2", or "chrF2++" with word_order 2
  // Summed statistics of the chosen references: for each order (character orders
  // 1..char_order, then word orders 1..word_order) hypothesis n-grams, reference
  // n-grams and matches. Hypothesis n-grams count as 0 where the reference has none.
  std::vector<int64_t> stats;
  std::string signature;  // "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"

  // str(CHRFScore): "chrF2 = 55.23".
  std::string format() const;
};

// chrF of hyps against refs[k][i] (reference stream k, segment i). Errors: orders
// out of range, beta < 0, no segments or no reference streams, a stream whose length
// differs from hyps, invalid UTF-8 (the message names the first bad segment).
Result<ChrfScore> corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                              const ChrfOptions& options = {});

// chrF of one hypothesis against one or more references, as sacrebleu's sentence_chrf.
Result<ChrfScore> sentence_chrf(const std::string& hyp, const std::vector<std::string>& refs,
                                const ChrfOptions& options = {});

}  // namespace keel::eval
