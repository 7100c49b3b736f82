#include "keel/eval/chrf.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

#include "keel/eval/bleu.h"
#include "keel/eval/segment_ranges.h"
#include "keel/eval/text.h"
#include "keel/eval/tokenizers.h"

namespace keel::eval {
namespace {

constexpr int kMaxCharOrder = 6;  // 6 code points of 21 bits fill a 128-bit key
constexpr int kMaxWordOrder = 3;  // 3 token ids of 32 bits, plus a tag bit
constexpr int kMaxOrders = kMaxCharOrder + kMaxWordOrder;

struct ChrfParams {
  int char_order = 6, word_order = 0, beta = 2;
  bool lowercase = false, whitespace = false, eps_smoothing = false;
  int threads = 1;
  int orders() const { return char_order + word_order; }
};

Result<ChrfParams> resolve(const ChrfOptions& o) {
  if (o.char_order < 1 || o.char_order > kMaxCharOrder) return invalid_argument("chrF char_order must be 1..6");
  if (o.word_order < 0 || o.word_order > kMaxWordOrder) return invalid_argument("chrF word_order must be 0..3");
  if (o.beta < 0) return invalid_argument("chrF beta must be >= 0");
  if (o.threads < 0) return invalid_argument("threads must be 0 (automatic) or positive");
  ChrfParams p;
  p.char_order = o.char_order;
  p.word_order = o.word_order;
  p.beta = o.beta;
  p.lowercase = o.lowercase;
  p.whitespace = o.whitespace;
  p.eps_smoothing = o.eps_smoothing;
  p.threads = o.threads;
  return p;
}

// [hyp n-grams, ref n-grams, matches] per order; integers, so sums are exact.
using ChrfStats = std::array<int64_t, 3 * kMaxOrders>;

// CHRF._compute_f_score, operation for operation, so the double is sacrebleu's.
double f_score(const ChrfStats& stats, const ChrfParams& p) {
  const double eps = 1e-16;
  double score = 0.0;
  int effective_order = 0;
  const double factor = static_cast<double>(p.beta) * p.beta;  // beta ** 2, exact
  double avg_prec = 0.0, avg_rec = 0.0;
  for (int i = 0; i < p.orders(); ++i) {
    const int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? static_cast<double>(n_match) / static_cast<double>(n_hyp) : eps;
    const double rec = n_ref > 0 ? static_cast<double>(n_match) / static_cast<double>(n_ref) : eps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? ((1 + factor) * prec * rec / denom) : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (p.eps_smoothing) return 100 * score / p.orders();
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec != 0) {
    score = (1 + factor) * avg_prec * avg_rec;
    score /= ((factor * avg_prec) + avg_rec);
    return 100 * score;
  }
  return 0.0;
}

// A character n-gram (code points + 1, 21 bits each, three per word, zero-padded) or
// a word n-gram (token ids >= 1, 32 bits each, with the top bit of hi set). Exact:
// different n-grams, of any order or kind, never share a key.
struct NgramKey {
  uint64_t lo = 0, hi = 0;
  bool operator==(const NgramKey&) const = default;
};
constexpr uint64_t kWordTag = 1ULL << 63;

inline uint64_t hash_key(const NgramKey& k) { return mix64(k.lo ^ mix64(k.hi + 0x9E3779B97F4A7C15ULL)); }

// One reference's n-gram counts; the hypothesis consumes them to count clipped matches.
class ReferenceCounts {
 public:
  void reset(size_t expected) {
    if (++generation_ == 0) {
      for (Slot& s : slots_) s.generation = 0;
      generation_ = 1;
    }
    size_t want = 64;
    while (want < expected * 2) want *= 2;
    if (slots_.size() < want) slots_.assign(want, Slot{});
    mask_ = slots_.size() - 1;
  }

  void add(const NgramKey& key) {
    for (size_t i = hash_key(key) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.generation != generation_) {
        s.key = key;
        s.count = 1;
        s.generation = generation_;
        return;
      }
      if (s.key == key) {
        ++s.count;
        return;
      }
    }
  }

  // True (and one fewer left) while the reference has an unmatched copy of key;
  // summed over the hypothesis' n-grams this is sum(min(hyp count, ref count)).
  bool consume(const NgramKey& key) {
    for (size_t i = hash_key(key) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.generation != generation_) return false;
      if (s.key == key) {
        if (s.count == 0) return false;
        --s.count;
        return true;
      }
    }
  }

 private:
  struct Slot {
    NgramKey key;
    uint32_t count = 0;
    uint32_t generation = 0;  // empty unless equal to generation_
  };
  std::vector<Slot> slots_;  // reset() sizes it to at least twice the n-grams added
  size_t mask_ = 0;
  uint32_t generation_ = 0;
};

// sacrebleu's string.punctuation, which chrF++ splits off the ends of words.
constexpr bool is_ascii_punctuation(unsigned char c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

// True when word (valid UTF-8, not empty) is a single code point.
bool is_one_code_point(std::string_view w) {
  auto b0 = static_cast<unsigned char>(w[0]);
  size_t len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
  return w.size() == len;
}

// Where one text's n-grams lie in SegmentScorer::keys_: order o (0-based; character
// orders first, then word orders) is [begin[o], begin[o + 1]).
struct TextNgrams {
  std::array<size_t, kMaxOrders + 1> begin{};
};

// Computes one segment's statistics at a time, choosing the reference with the best
// F-score as sacrebleu does; owns its working memory (one instance per thread).
class SegmentScorer {
 public:
  explicit SegmentScorer(const ChrfParams& params) : params_(params) {}

  Status score(std::string_view hyp, const std::vector<std::string_view>& refs, ChrfStats& best_stats) {
    keys_.clear();
    interner_.clear();
    texts_.resize(refs.size() + 1);
    for (size_t k = 0; k < refs.size(); ++k) {
      if (!extract(refs[k], texts_[k])) {
        return invalid_argument("reference " + std::to_string(k) + " is not valid UTF-8");
      }
    }
    const TextNgrams& h = texts_[refs.size()];
    if (!extract(hyp, texts_[refs.size()])) return invalid_argument("hypothesis is not valid UTF-8");

    const int orders = params_.orders();
    double best_f = -1.0;
    best_stats.fill(0);
    for (size_t k = 0; k < refs.size(); ++k) {
      const TextNgrams& r = texts_[k];
      table_.reset(r.begin[orders] - r.begin[0]);
      for (size_t i = r.begin[0]; i < r.begin[orders]; ++i) table_.add(keys_[i]);
      ChrfStats stats{};
      for (int o = 0; o < orders; ++o) {
        const auto n_hyp = static_cast<int64_t>(h.begin[o + 1] - h.begin[o]);
        const auto n_ref = static_cast<int64_t>(r.begin[o + 1] - r.begin[o]);
        int64_t matches = 0;
        for (size_t i = h.begin[o]; i < h.begin[o + 1]; ++i) matches += table_.consume(keys_[i]);
        stats[3 * o] = n_ref > 0 ? n_hyp : 0;  // "hyp_count if ref_ngrams else 0"
        stats[3 * o + 1] = n_ref;
        stats[3 * o + 2] = matches;
      }
      const double f = f_score(stats, params_);
      if (f > best_f) {  // strictly better: the first of equally good references wins
        best_f = f;
        best_stats = stats;
      }
    }
    return Status::Ok();
  }

 private:
  // Appends text's character and word n-gram keys to keys_, order by order.
  bool extract(std::string_view text, TextNgrams& out) {
    if (!is_valid_utf8(text)) return false;
    if (params_.lowercase) {
      lowered_ = py_lower(text);
      text = lowered_;
    }
    // Character n-grams over the text without whitespace (''.join(line.split())).
    cps_.clear();
    for (const char *p = text.data(), *end = p + text.size(); p < end;) {
      char32_t c = next_code_point(p);
      if (params_.whitespace || !is_py_space(c)) cps_.push_back(c + 1);
    }
    const size_t len = cps_.size();
    out.begin[0] = keys_.size();
    for (int n = 1; n <= params_.char_order; ++n) {
      // Order n's keys extend order n-1's, which sit just before them in keys_.
      const size_t prev = n == 1 ? 0 : out.begin[n - 2];
      const int field = n - 1;
      const int shift = 21 * (field % 3);
      for (size_t i = 0; i + n <= len; ++i) {
        NgramKey k = n == 1 ? NgramKey{} : keys_[prev + i];
        const uint64_t v = static_cast<uint64_t>(cps_[i + field]) << shift;
        if (field < 3) {
          k.lo |= v;
        } else {
          k.hi |= v;
        }
        keys_.push_back(k);
      }
      out.begin[n] = keys_.size();
    }
    if (params_.word_order > 0) {
      // CHRF._remove_punctuation: one ASCII punctuation mark split off the end of a
      // word, or else off its start; one-character words stay whole.
      words_.clear();
      split_py_whitespace(text, words_);
      ids_.clear();
      for (std::string_view w : words_) {
        if (is_one_code_point(w)) {
          ids_.push_back(interner_.intern(w));
        } else if (is_ascii_punctuation(static_cast<unsigned char>(w.back()))) {
          ids_.push_back(interner_.intern(w.substr(0, w.size() - 1)));
          ids_.push_back(interner_.intern(w.substr(w.size() - 1)));
        } else if (is_ascii_punctuation(static_cast<unsigned char>(w.front()))) {
          ids_.push_back(interner_.intern(w.substr(0, 1)));
          ids_.push_back(interner_.intern(w.substr(1)));
        } else {
          ids_.push_back(interner_.intern(w));
        }
      }
      for (int n = 1; n <= params_.word_order; ++n) {
        for (size_t i = 0; i + n <= ids_.size(); ++i) {
          NgramKey k{ids_[i], kWordTag};
          if (n > 1) k.lo |= static_cast<uint64_t>(ids_[i + 1]) << 32;
          if (n > 2) k.hi |= ids_[i + 2];
          keys_.push_back(k);
        }
        out.begin[params_.char_order + n] = keys_.size();
      }
    }
    return true;
  }

  const ChrfParams& params_;
  std::string lowered_;
  std::u32string cps_;  // code points + 1 (so that 0 can pad a key)
  std::vector<std::string_view> words_;
  std::vector<uint32_t> ids_;
  TokenInterner interner_;  // word ids, shared by the segment's texts
  std::vector<NgramKey> keys_;
  std::vector<TextNgrams> texts_;  // the references', then the hypothesis'
  ReferenceCounts table_;
};

struct RangeResult {
  ChrfStats stats{};
  Status status;
};

void score_range(const ChrfParams& params, const std::vector<std::string>& hyps,
                 const std::vector<std::vector<std::string>>& refs, size_t begin, size_t end, RangeResult& result) {
  SegmentScorer scorer(params);
  std::vector<std::string_view> seg_refs(refs.size());
  ChrfStats seg;
  for (size_t i = begin; i < end; ++i) {
    for (size_t k = 0; k < refs.size(); ++k) seg_refs[k] = refs[k][i];
    Status st = scorer.score(hyps[i], seg_refs, seg);
    if (!st.ok()) {
      result.status = st.with_context("segment " + std::to_string(i));
      return;
    }
    for (size_t j = 0; j < seg.size(); ++j) result.stats[j] += seg[j];
  }
}

ChrfScore make_score(const ChrfStats& stats, const ChrfParams& p, size_t nrefs) {
  ChrfScore out;
  out.score = f_score(stats, p);
  out.name = "chrF" + std::to_string(p.beta) + std::string(static_cast<size_t>(p.word_order), '+');
  out.stats.assign(stats.begin(), stats.begin() + 3 * p.orders());
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + string&&.
  std::string& sig = out.signature;
  sig.append("nrefs:").append(std::to_string(nrefs)).append("|case:").append(p.lowercase ? "lc" : "mixed");
  sig.append("|eff:").append(p.eps_smoothing ? "no" : "yes");
  sig.append("|nc:").append(std::to_string(p.char_order)).append("|nw:").append(std::to_string(p.word_order));
  sig.append("|space:").append(p.whitespace ? "yes" : "no").append("|version:").append(kSacrebleuVersion);
  return out;
}

}  // namespace

std::string ChrfScore::format() const {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", score);
  return name + " = " + buf;
}

Result<ChrfScore> corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                              const ChrfOptions& options) {
  KEEL_ASSIGN_OR_RETURN(ChrfParams params, resolve(options));
  KEEL_RETURN_IF_ERROR(check_reference_streams("chrF", hyps.size(), refs));
  size_t threads = segment_threads(params.threads, hyps.size());
  std::vector<RangeResult> parts(threads);
  for_each_segment_range(hyps.size(), threads, [&](size_t t, size_t begin, size_t end) {
    score_range(params, hyps, refs, begin, end, parts[t]);
  });

  ChrfStats total{};
  for (const RangeResult& part : parts) {
    if (!part.status.ok()) return part.status;  // ranges are in order: the first bad segment
    for (size_t j = 0; j < total.size(); ++j) total[j] += part.stats[j];
  }
  return make_score(total, params, refs.size());
}

Result<ChrfScore> sentence_chrf(const std::string& hyp, const std::vector<std::string>& refs,
                                const ChrfOptions& options) {
  KEEL_ASSIGN_OR_RETURN(ChrfParams params, resolve(options));
  if (refs.empty()) return invalid_argument("chrF needs at least one reference");
  SegmentScorer scorer(params);
  std::vector<std::string_view> views(refs.begin(), refs.end());
  ChrfStats stats;
  KEEL_RETURN_IF_ERROR(scorer.score(hyp, views, stats));
  return make_score(stats, params, refs.size());
}

}  // namespace keel::eval
