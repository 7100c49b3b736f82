#include "keel/eval/bleu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

#include "keel/eval/segment_ranges.h"
#include "keel/eval/text.h"
#include "keel/eval/tokenizers.h"

namespace keel::eval {
namespace {

constexpr int kMaxOrder = 4;  // sacrebleu's MAX_NGRAM_ORDER

enum class Smoothing { kExp, kFloor, kAddK, kNone };

// The options, checked and resolved once per call.
struct BleuParams {
  BleuTokenizer tokenizer = BleuTokenizer::k13a;
  bool lowercase = false;
  Smoothing smoothing = Smoothing::kExp;
  std::string smooth_name;
  double smooth_value = 0.0;  // floor/add-k: the option or its default; unused otherwise
  bool effective_order = false;
  int threads = 1;
};

Result<BleuParams> resolve(const BleuOptions& options) {
  BleuParams p;
  KEEL_ASSIGN_OR_RETURN(p.tokenizer, parse_bleu_tokenizer(options.tokenize));
  p.lowercase = options.lowercase;
  p.smooth_name = options.smooth_method;
  if (options.smooth_method == "exp") {
    p.smoothing = Smoothing::kExp;
  } else if (options.smooth_method == "floor") {
    p.smoothing = Smoothing::kFloor;
    p.smooth_value = options.smooth_value.value_or(0.1);
  } else if (options.smooth_method == "add-k") {
    p.smoothing = Smoothing::kAddK;
    p.smooth_value = options.smooth_value.value_or(1.0);
  } else if (options.smooth_method == "none") {
    p.smoothing = Smoothing::kNone;
  } else {
    return invalid_argument("unknown BLEU smoothing method '" + options.smooth_method +
                            "' (known: exp, floor, add-k, none)");
  }
  p.effective_order = options.effective_order;
  if (options.threads < 0) return invalid_argument("threads must be 0 (automatic) or positive");
  p.threads = options.threads;
  return p;
}

// Per-segment sufficient statistics, summed over a corpus. Integers, so the sum does
// not depend on the order of addition (or the number of threads).
struct BleuStats {
  int64_t sys_len = 0, ref_len = 0;
  std::array<int64_t, kMaxOrder> correct{}, total{};

  void add(const BleuStats& o) {
    sys_len += o.sys_len;
    ref_len += o.ref_len;
    for (int n = 0; n < kMaxOrder; ++n) {
      correct[n] += o.correct[n];
      total[n] += o.total[n];
    }
  }
};

// An n-gram of token ids (each >= 1), zero-padded to four: n-grams of different orders
// never compare equal, and the key is exact (no hash collisions to worry about).
struct NgramKey {
  uint64_t lo = 0, hi = 0;
  bool operator==(const NgramKey&) const = default;
};

inline NgramKey make_key(const uint32_t* ids, int n) {
  NgramKey k;
  k.lo = ids[0];
  if (n > 1) k.lo |= static_cast<uint64_t>(ids[1]) << 32;
  if (n > 2) k.hi = ids[2];
  if (n > 3) k.hi |= static_cast<uint64_t>(ids[3]) << 32;
  return k;
}

inline uint64_t hash_key(const NgramKey& k) { return mix64(k.lo ^ mix64(k.hi + 0x9E3779B97F4A7C15ULL)); }

// The references' n-grams of one segment with, for each, the largest count it has in
// any single reference (sacrebleu merges references with max), and the budget left
// for clipping the hypothesis' matches.
class ReferenceNgrams {
 public:
  void reset(size_t expected) {
    if (++generation_ == 0) {
      for (Slot& s : slots_) s.generation = 0;
      generation_ = 1;
    }
    size_t want = 64;
    while (want < expected * 2) want *= 2;
    if (slots_.size() < want) slots_.assign(want, Slot{});
  }

  // Counts one occurrence of key in reference `ref`.
  void add(const NgramKey& key, uint32_t ref) {
    Slot& s = find_or_insert(key);
    if (s.ref != ref) {
      s.ref = ref;
      s.in_ref = 0;
    }
    s.budget = std::max(s.budget, ++s.in_ref);
  }

  // True (and one less left) if the hypothesis n-gram still has a reference match
  // to clip against: summed over occurrences this is sum(min(hyp count, ref count)).
  bool consume(const NgramKey& key) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.generation != generation_) return false;
      if (s.key == key) {
        if (s.budget == 0) return false;
        --s.budget;
        return true;
      }
    }
  }

 private:
  struct Slot {
    NgramKey key;
    uint32_t budget = 0;  // max count over references, minus matches used
    uint32_t in_ref = 0;  // count in reference `ref`
    uint32_t ref = 0;
    uint32_t generation = 0;  // empty unless equal to generation_
  };

  Slot& find_or_insert(const NgramKey& key) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash_key(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.generation != generation_) {
        s.key = key;
        s.budget = s.in_ref = 0;
        s.ref = UINT32_MAX;
        s.generation = generation_;
        return s;
      }
      if (s.key == key) return s;
    }
  }

  std::vector<Slot> slots_;  // reset() sizes it to at least twice the n-grams added
  uint32_t generation_ = 0;
};

// sacrebleu's _get_closest_ref_len: the nearest length, the shorter one on a tie.
int64_t closest_ref_len(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t best_diff = -1, best = -1;
  for (int64_t len : ref_lens) {
    int64_t diff = hyp_len > len ? hyp_len - len : len - hyp_len;
    if (best_diff == -1 || diff < best_diff) {
      best_diff = diff;
      best = len;
    } else if (diff == best_diff && len < best) {
      best = len;
    }
  }
  return best;
}

// Computes one segment's statistics at a time; owns all the working memory, so one
// instance per thread makes the hot loop allocation-free after warm-up.
class SegmentCounter {
 public:
  explicit SegmentCounter(const BleuParams& params) : params_(params) {}

  // refs: the segment's references, one per stream. Fails only on invalid UTF-8
  // (the message says which text; the caller adds the segment number).
  Status count(std::string_view hyp, const std::vector<std::string_view>& refs, BleuStats& out) {
    interner_.clear();
    ids_.clear();
    ref_ends_.clear();
    ref_lens_.clear();
    for (size_t k = 0; k < refs.size(); ++k) {
      if (!load(refs[k])) return invalid_argument("reference " + std::to_string(k) + " is not valid UTF-8");
      ref_lens_.push_back(static_cast<int64_t>(ids_.size() - (ref_ends_.empty() ? 0 : ref_ends_.back())));
      ref_ends_.push_back(ids_.size());
    }
    const size_t ref_ids = ids_.size();
    if (!load(hyp)) return invalid_argument("hypothesis is not valid UTF-8");

    table_.reset(ref_ids * kMaxOrder);
    size_t begin = 0;
    for (size_t k = 0; k < refs.size(); ++k) {
      const size_t end = ref_ends_[k];
      for (int n = 1; n <= kMaxOrder; ++n) {
        for (size_t i = begin; i + n <= end; ++i) table_.add(make_key(&ids_[i], n), static_cast<uint32_t>(k));
      }
      begin = end;
    }

    BleuStats s;
    const size_t hyp_len = ids_.size() - ref_ids;
    s.sys_len = static_cast<int64_t>(hyp_len);
    s.ref_len = closest_ref_len(s.sys_len, ref_lens_);
    for (int n = 1; n <= kMaxOrder; ++n) {
      if (hyp_len < static_cast<size_t>(n)) break;
      s.total[n - 1] = static_cast<int64_t>(hyp_len - n + 1);
      for (size_t i = ref_ids; i + n <= ids_.size(); ++i) {
        if (table_.consume(make_key(&ids_[i], n))) ++s.correct[n - 1];
      }
    }
    out = s;
    return Status::Ok();
  }

 private:
  // BLEU._preprocess_segment (lowercase, rstrip, tokenize), then the tokens' ids
  // appended to ids_. False when text is not valid UTF-8.
  bool load(std::string_view text) {
    if (!is_valid_utf8(text)) return false;
    if (params_.lowercase) {
      lowered_ = py_lower(text);
      text = lowered_;
    }
    tokenize_into(params_.tokenizer, rstrip_py_whitespace(text), scratch_, tokens_);
    for (std::string_view t : tokens_) ids_.push_back(interner_.intern(t));
    return true;
  }

  const BleuParams& params_;
  TokenizerScratch scratch_;
  std::string lowered_;
  std::vector<std::string_view> tokens_;
  TokenInterner interner_;
  std::vector<uint32_t> ids_;       // all references' token ids, then the hypothesis'
  std::vector<size_t> ref_ends_;    // where each reference's ids end in ids_
  std::vector<int64_t> ref_lens_;
  ReferenceNgrams table_;
};

// Sums the statistics of segments [begin, end). On invalid input, stops and reports
// the first bad segment of the range.
struct RangeResult {
  BleuStats stats;
  Status status;
};

void count_range(const BleuParams& params, const std::vector<std::string>& hyps,
                 const std::vector<std::vector<std::string>>& refs, size_t begin, size_t end, RangeResult& result) {
  SegmentCounter counter(params);
  std::vector<std::string_view> seg_refs(refs.size());
  BleuStats seg;
  for (size_t i = begin; i < end; ++i) {
    for (size_t k = 0; k < refs.size(); ++k) seg_refs[k] = refs[k][i];
    Status st = counter.count(hyps[i], seg_refs, seg);
    if (!st.ok()) {
      result.status = st.with_context("segment " + std::to_string(i));
      return;
    }
    result.stats.add(seg);
  }
}

std::string format_fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string make_signature(const BleuParams& p, size_t nrefs) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + string&&.
  std::string sig = "nrefs:";
  sig.append(std::to_string(nrefs)).append("|case:").append(p.lowercase ? "lc" : "mixed");
  sig.append("|eff:").append(p.effective_order ? "yes" : "no");
  sig.append("|tok:").append(bleu_tokenizer_name(p.tokenizer));
  sig.append("|smooth:").append(p.smooth_name);
  if (p.smoothing == Smoothing::kFloor || p.smoothing == Smoothing::kAddK) {
    sig.append("[").append(format_fixed(p.smooth_value, 2)).append("]");
  }
  sig.append("|version:").append(kSacrebleuVersion);
  return sig;
}

// BLEU.compute_bleu, operation for operation, so that the floating-point result is
// the same double sacrebleu computes (Python floats are IEEE doubles, and math.exp
// and math.log are the C library's).
BleuScore score_from_stats(const BleuStats& s, const BleuParams& p, size_t nrefs) {
  BleuScore out;
  out.counts.assign(s.correct.begin(), s.correct.end());
  out.totals.assign(s.total.begin(), s.total.end());
  out.sys_len = s.sys_len;
  out.ref_len = s.ref_len;
  out.ratio = s.ref_len ? static_cast<double>(s.sys_len) / static_cast<double>(s.ref_len) : 0.0;
  out.signature = make_signature(p, nrefs);
  out.bp = 1.0;
  if (s.sys_len < s.ref_len) {
    out.bp = s.sys_len > 0 ? std::exp(1.0 - static_cast<double>(s.ref_len) / static_cast<double>(s.sys_len)) : 0.0;
  }
  out.precisions.assign(kMaxOrder, 0.0);
  if (std::all_of(s.correct.begin(), s.correct.end(), [](int64_t c) { return c == 0; })) {
    out.score = 0.0;  // sacrebleu's early exit (its issue #141)
    return out;
  }
  double smooth_mteval = 1.0;
  int eff_order = kMaxOrder;
  for (int n = 1; n <= kMaxOrder; ++n) {
    double correct = static_cast<double>(s.correct[n - 1]);
    double total = static_cast<double>(s.total[n - 1]);
    if (p.smoothing == Smoothing::kAddK && n > 1) {
      correct += p.smooth_value;
      total += p.smooth_value;
    }
    if (total == 0) break;
    if (p.effective_order) eff_order = n;
    if (correct == 0) {
      if (p.smoothing == Smoothing::kExp) {
        smooth_mteval *= 2;
        out.precisions[n - 1] = 100.0 / (smooth_mteval * total);
      } else if (p.smoothing == Smoothing::kFloor) {
        out.precisions[n - 1] = 100.0 * p.smooth_value / total;
      }
    } else {
      out.precisions[n - 1] = 100.0 * correct / total;
    }
  }
  // sacrebleu's my_log floors log(0) at -9999999999; Python's sum() of floats adds
  // left to right from 0 (3.11 does not compensate), as this loop does.
  double log_sum = 0.0;
  for (int n = 0; n < eff_order; ++n) {
    log_sum += out.precisions[n] == 0.0 ? -9999999999.0 : std::log(out.precisions[n]);
  }
  out.score = out.bp * std::exp(log_sum / eff_order);
  return out;
}

}  // namespace

BleuOptions sentence_bleu_defaults() {
  BleuOptions o;
  o.effective_order = true;
  return o;
}

std::string BleuScore::verbose() const {
  std::string s;
  for (size_t i = 0; i < precisions.size(); ++i) {
    if (i) s.push_back('/');
    s += format_fixed(precisions[i], 1);
  }
  s += " (BP = " + format_fixed(bp, 3) + " ratio = " + format_fixed(ratio, 3) +
       " hyp_len = " + std::to_string(sys_len) + " ref_len = " + std::to_string(ref_len) + ")";
  return s;
}

std::string BleuScore::format() const { return "BLEU = " + format_fixed(score, 2) + " " + verbose(); }

Result<BleuScore> corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                              const BleuOptions& options) {
  KEEL_ASSIGN_OR_RETURN(BleuParams params, resolve(options));
  KEEL_RETURN_IF_ERROR(check_reference_streams("BLEU", hyps.size(), refs));
  size_t threads = segment_threads(params.threads, hyps.size());
  std::vector<RangeResult> parts(threads);
  for_each_segment_range(hyps.size(), threads, [&](size_t t, size_t begin, size_t end) {
    count_range(params, hyps, refs, begin, end, parts[t]);
  });

  BleuStats total;
  for (const RangeResult& part : parts) {
    if (!part.status.ok()) return part.status;  // ranges are in order: the first bad segment
    total.add(part.stats);
  }
  return score_from_stats(total, params, refs.size());
}

Result<BleuScore> sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs,
                                const BleuOptions& options) {
  KEEL_ASSIGN_OR_RETURN(BleuParams params, resolve(options));
  if (refs.empty()) return invalid_argument("BLEU needs at least one reference");
  SegmentCounter counter(params);
  std::vector<std::string_view> views(refs.begin(), refs.end());
  BleuStats stats;
  KEEL_RETURN_IF_ERROR(counter.count(hyp, views, stats));
  return score_from_stats(stats, params, refs.size());
}

}  // namespace keel::eval
