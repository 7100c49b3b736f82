// Corpus and sentence BLEU, computed exactly as sacrebleu 2.6.0's BLEU class computes
// them (same tokenizers, smoothing, effective order, closest-reference length, and the
// same score and signature strings), so Keel's numbers can be quoted as sacrebleu's.
// Used by `keel eval` and the evaluation service. What a caller must not get wrong:
// refs is indexed [stream][segment] — refs[k] is the k-th reference of every segment,
// as in sacrebleu's corpus_score — not [segment][stream].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

// The sacrebleu release whose numbers and signature strings these reproduce.
inline constexpr const char* kSacrebleuVersion = "2.6.0";

struct BleuOptions {
  std::string tokenize = "13a";       // "13a", "none", "intl" or "char"
  bool lowercase = false;
  std::string smooth_method = "exp";  // "exp", "floor", "add-k" or "none"
  std::optional<double> smooth_value; // floor: 0.1 and add-k: 1 when unset
  bool effective_order = false;       // sacrebleu's sentence_bleu() turns this on
  int threads = 1;                    // 0: one per hardware thread; results never depend on it
};

// sacrebleu's sentence_bleu() defaults: effective_order on, the rest as BleuOptions.
BleuOptions sentence_bleu_defaults();

struct BleuScore {
  double score = 0.0;              // 0..100
  std::vector<double> precisions;  // n-gram precisions in percent, n = 1..4, after smoothing
  // The sufficient statistics: clipped n-gram matches and hypothesis n-grams per order.
  // Unlike sacrebleu's BLEUScore.counts/totals these never include add-k's k (sacrebleu
  // adds k to orders 2..4 of its copies when smooth_method is add-k).
  std::vector<int64_t> counts, totals;
  double bp = 0.0;     // brevity penalty
  double ratio = 0.0;  // sys_len / ref_len (0 when ref_len is 0)
  int64_t sys_len = 0, ref_len = 0;
  std::string signature;  // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"

  // str(BLEUScore): "BLEU = 22.56 57.1/30.0/15.8/5.6 (BP = 1.000 ratio = 1.040 hyp_len = 52 ref_len = 50)".
  std::string format() const;
  // The part after the score: "57.1/30.0/15.8/5.6 (BP = ... ref_len = 50)".
  std::string verbose() const;
};

// BLEU of hyps against refs[k][i] (reference stream k, segment i). Errors: unknown
// tokenizer or smoothing method, no segments or no reference streams, a stream whose
// length differs from hyps, invalid UTF-8 (the message names the first bad segment).
Result<BleuScore> corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                              const BleuOptions& options);

// BLEU of one hypothesis against one or more references, as sacrebleu's sentence_bleu.
Result<BleuScore> sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs,
                                const BleuOptions& options = sentence_bleu_defaults());

}  // namespace keel::eval
