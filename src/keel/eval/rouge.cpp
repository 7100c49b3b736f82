#include "keel/eval/rouge.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <system_error>
#include <thread>

#include "keel/eval/porter_stemmer.h"

namespace keel::eval {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

// --- Rouge types -------------------------------------------------------------------

struct RougeType {
  enum class Kind { kNgram, kLcs, kSummaryLcs };
  Kind kind;
  int n;  // n-gram order for kNgram
};

Result<RougeType> parse_type(const std::string& name) {
  if (name == "rougeL") return RougeType{RougeType::Kind::kLcs, 0};
  if (name == "rougeLsum") return RougeType{RougeType::Kind::kSummaryLcs, 0};
  // rouge-score accepts rouge[0-9] and rejects n = 0 with its own message.
  if (name.size() == 6 && name.compare(0, 5, "rouge") == 0 && name[5] >= '0' && name[5] <= '9') {
    int n = name[5] - '0';
    if (n == 0) return invalid_argument("rougen requires positive n: " + name);
    return RougeType{RougeType::Kind::kNgram, n};
  }
  return invalid_argument("unknown rouge type '" + name + "' (expected rouge1 to rouge9, rougeL or rougeLsum)");
}

struct ParsedTypes {
  std::vector<std::string> names;
  std::vector<RougeType> types;
};

Result<ParsedTypes> parse_types(const std::vector<std::string>& names) {
  ParsedTypes out;
  for (const std::string& name : names) {
    if (std::find(out.names.begin(), out.names.end(), name) != out.names.end()) continue;
    KEEL_ASSIGN_OR_RETURN(RougeType type, parse_type(name));
    out.names.push_back(name);
    out.types.push_back(type);
  }
  return out;
}

// rouge-score's scoring.fmeasure, same operation order so the doubles agree.
double fmeasure(double precision, double recall) {
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

RougeScore make_score(double precision, double recall) {
  return {precision, recall, fmeasure(precision, recall)};
}

// Same answer as is_valid_utf8() (the tests hold them together on bad sequences), in
// one inline pass: validation was a seventh of the scoring time through utf8proc.
bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// --- Token interning -----------------------------------------------------------------

// Maps token text to dense ids 0, 1, 2, ... so that the metrics compare integers.
// Open addressing with linear probing; the table is at most half full.
class TokenInterner {
 public:
  TokenInterner() : slots_(256, 0) {}

  uint32_t intern(std::string_view text) {
    uint64_t h = hash(text);
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      uint32_t slot = slots_[i];
      if (slot == 0) break;
      uint32_t id = slot - 1;
      if (hashes_[id] == h && this->text(id) == text) return id;
    }
    uint32_t id = static_cast<uint32_t>(hashes_.size());
    begins_.push_back(arena_.size());
    arena_.append(text);
    ends_.push_back(arena_.size());
    hashes_.push_back(h);
    if (2 * hashes_.size() > slots_.size()) {
      rehash(slots_.size() * 2);
    } else {
      insert_slot(id);
    }
    return id;
  }

  std::string_view text(uint32_t id) const {
    return std::string_view(arena_).substr(begins_[id], ends_[id] - begins_[id]);
  }
  size_t size() const { return hashes_.size(); }

 private:
  static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  }
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t k;
      std::memcpy(&k, s.data() + i, 8);
      h = mix(h ^ k);
    }
    uint64_t k = 0;
    std::memcpy(&k, s.data() + i, s.size() - i);
    return mix(h ^ k);
  }
  void insert_slot(uint32_t id) {
    size_t mask = slots_.size() - 1;
    size_t i = hashes_[id] & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = id + 1;
  }
  void rehash(size_t new_size) {
    slots_.assign(new_size, 0);
    for (uint32_t id = 0; id < hashes_.size(); ++id) insert_slot(id);
  }

  std::string arena_;
  std::vector<size_t> begins_, ends_;
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> slots_;  // id + 1; 0 is empty
};

// --- LCS -----------------------------------------------------------------------------

// Scratch memory for the LCS routines, reused across calls so that scoring many
// segments allocates only while the largest one grows it.
struct LcsScratch {
  std::vector<uint32_t> slot_of_id;  // token id -> row of `masks`, kNone when absent
  std::vector<uint64_t> masks;       // positions of each token within one 64-position block of `a`
  std::vector<uint32_t> touched;     // ids whose slot_of_id entry is set
  std::vector<uint32_t> b_present;   // the symbols of `b` that occur in `a`
  std::vector<uint8_t> carries;      // carry into the current block, per symbol of b_present
  // lcs_indices
  std::vector<uint32_t> checkpoints;  // DP rows 0, B, 2B, ... (each cols + 1 values)
  std::vector<uint32_t> row_a, row_b;
  std::vector<uint64_t> directions;  // one bit per cell of the current block
};

// Hyyrö's bit-vector LCS: V has a 0 bit for each position of `a` matched so far; per
// symbol c of `b`: U = V & M[c]; V = (V + U) | (V - U). The LCS length is the number of
// 0 bits. Ids of `a` must index s.slot_of_id (dense ids); ids of `b` beyond it, or
// kNone, are tokens absent from `a`.
size_t lcs_length_dense(std::span<const uint32_t> a, std::span<const uint32_t> b, LcsScratch& s) {
  if (a.empty() || b.empty()) return 0;
  // Gives each distinct token of a[begin, end) (at most 64) a mask of its positions.
  auto build_masks = [&s, a](size_t begin, size_t end) {
    uint32_t distinct = 0;
    for (size_t i = begin; i < end; ++i) {
      uint32_t id = a[i];
      if (s.slot_of_id[id] == kNone) {
        s.slot_of_id[id] = distinct;
        s.masks[distinct++] = 0;
        s.touched.push_back(id);
      }
      s.masks[s.slot_of_id[id]] |= uint64_t{1} << (i - begin);
    }
  };
  auto clear_masks = [&s] {
    for (uint32_t id : s.touched) s.slot_of_id[id] = kNone;
    s.touched.clear();
  };
  auto live_bits = [](size_t bits) { return bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1; };
  s.masks.resize(64);

  if (a.size() <= 64) {
    build_masks(0, a.size());
    uint64_t v = ~uint64_t{0};
    for (uint32_t id : b) {
      uint32_t slot = id < s.slot_of_id.size() ? s.slot_of_id[id] : kNone;
      if (slot == kNone) continue;  // U = 0 leaves V unchanged
      uint64_t u = v & s.masks[slot];
      v = (v + u) | (v - u);
    }
    clear_masks();
    return static_cast<size_t>(__builtin_popcountll(~v & live_bits(a.size())));
  }

  // Longer `a`: one 64-position block at a time, left to right. The carry out of
  // block w at step k of b is the carry into block w + 1 at step k, so one carry bit
  // per step links the blocks, and memory stays O(|a| + |b|) instead of a mask of
  // |a| bits for every distinct token. Symbols of b absent from a add zero to every
  // block with no carry, so they are dropped first.
  build_masks(0, 0);
  for (uint32_t id : a) {
    if (s.slot_of_id[id] == kNone) {
      s.slot_of_id[id] = 0;
      s.touched.push_back(id);
    }
  }
  s.b_present.clear();
  for (uint32_t id : b) {
    if (id < s.slot_of_id.size() && s.slot_of_id[id] != kNone) s.b_present.push_back(id);
  }
  clear_masks();
  s.carries.assign(s.b_present.size(), 0);
  size_t zeros = 0;
  for (size_t begin = 0; begin < a.size(); begin += 64) {
    size_t end = std::min(a.size(), begin + 64);
    build_masks(begin, end);
    uint64_t v = ~uint64_t{0};
    for (size_t k = 0; k < s.b_present.size(); ++k) {
      uint32_t slot = s.slot_of_id[s.b_present[k]];
      uint64_t u = slot == kNone ? 0 : v & s.masks[slot];
      uint64_t sum;
      bool c1 = __builtin_add_overflow(v, u, &sum);
      bool c2 = __builtin_add_overflow(sum, uint64_t{s.carries[k]}, &sum);
      s.carries[k] = c1 || c2;
      v = sum | (v - u);
    }
    clear_masks();
    zeros += static_cast<size_t>(__builtin_popcountll(~v & live_bits(end - begin)));
  }
  return zeros;
}

// One DP row: cur[j] = LCS(ref[..i], can[..j]) from prev (row i - 1). When dir is
// given, bit j records t[i][j-1] > t[i-1][j], the test rouge-score's backtrack makes
// where the tokens differ.
void lcs_row(uint32_t token, std::span<const uint32_t> can, const uint32_t* prev, uint32_t* cur, uint64_t* dir) {
  cur[0] = 0;
  for (size_t j = 1; j <= can.size(); ++j) {
    uint32_t left = cur[j - 1];
    uint32_t up = prev[j];
    if (token == can[j - 1]) {
      cur[j] = prev[j - 1] + 1;
    } else {
      cur[j] = left > up ? left : up;
    }
    if (dir != nullptr && left > up) dir[j / 64] |= uint64_t{1} << (j % 64);
  }
}

std::vector<uint32_t> lcs_indices_impl(std::span<const uint32_t> ref, std::span<const uint32_t> can, size_t block_rows,
                                       LcsScratch& s) {
  std::vector<uint32_t> out;
  const size_t rows = ref.size();
  const size_t cols = can.size();
  if (rows == 0 || cols == 0) return out;
  // Small tables (the usual sentence pair) are one block with no checkpoint pass.
  // Large ones keep DP rows every B rows (32 bits a cell) and one block of direction
  // bits; B = sqrt(32 * rows) balances the two.
  constexpr size_t kSingleBlockCells = size_t{1} << 22;
  size_t block = block_rows;
  if (block == 0) {
    block = rows * cols <= kSingleBlockCells
                ? rows
                : static_cast<size_t>(std::ceil(std::sqrt(32.0 * static_cast<double>(rows))));
  }
  block = std::clamp<size_t>(block, 1, rows);
  const size_t width = cols + 1;
  const size_t dir_words = (cols + 1 + 63) / 64;
  const size_t n_blocks = (rows + block - 1) / block;

  s.row_a.assign(width, 0);
  s.row_b.assign(width, 0);
  s.checkpoints.assign(width * n_blocks, 0);  // checkpoint k is DP row k * block; row 0 is zeros
  if (n_blocks > 1) {
    uint32_t* prev = s.row_a.data();
    uint32_t* cur = s.row_b.data();
    for (size_t i = 1; i < (n_blocks - 1) * block + 1; ++i) {
      lcs_row(ref[i - 1], can, prev, cur, nullptr);
      std::swap(prev, cur);
      if (i % block == 0) std::copy_n(prev, width, s.checkpoints.begin() + (i / block) * width);
    }
  }

  size_t i = rows;
  size_t j = cols;
  while (i > 0 && j > 0) {
    const size_t k = (i - 1) / block;
    const size_t base = k * block;
    // Direction bits for rows base+1 .. i, recomputed from checkpoint k.
    s.directions.assign((i - base) * dir_words, 0);
    std::copy_n(s.checkpoints.begin() + k * width, width, s.row_a.begin());
    uint32_t* prev = s.row_a.data();
    uint32_t* cur = s.row_b.data();
    for (size_t r = base + 1; r <= i; ++r) {
      lcs_row(ref[r - 1], can, prev, cur, &s.directions[(r - base - 1) * dir_words]);
      std::swap(prev, cur);
    }
    // rouge-score's _backtrack_norec within the block.
    while (i > base && j > 0) {
      if (ref[i - 1] == can[j - 1]) {
        out.push_back(static_cast<uint32_t>(i - 1));
        --i;
        --j;
      } else if ((s.directions[(i - base - 1) * dir_words + j / 64] >> (j % 64)) & 1) {
        --j;
      } else {
        --i;
      }
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// --- Tokenizing and scoring ----------------------------------------------------------

struct Tokens {
  std::vector<uint32_t> ids;
  // End (exclusive) of each "\n"-separated sentence that has tokens. Sentences
  // without tokens change no ROUGE-Lsum count, so they are not recorded.
  std::vector<uint32_t> sentence_ends;
};

// Per-thread state: interned tokens, stem cache and scratch buffers.
class Workspace {
 public:
  explicit Workspace(bool use_stemmer) : use_stemmer_(use_stemmer) {}

  // rouge-score's tokenize(): lowercase (Python), runs of [a-z0-9], stem those longer
  // than 3 characters. Text must be valid UTF-8.
  void tokenize(std::string_view text, Tokens* out) {
    out->ids.clear();
    out->sentence_ends.clear();
    current_.clear();
    const size_t n = text.size();
    for (size_t p = 0; p < n; ++p) {
      unsigned char c = static_cast<unsigned char>(text[p]);
      if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
          current_.push_back(static_cast<char>(c));
        } else if (c >= 'A' && c <= 'Z') {
          current_.push_back(static_cast<char>(c + 32));
        } else {
          flush(out);
          if (c == '\n') end_sentence(out);
        }
        continue;
      }
      // Only two characters lowercase to something with an ASCII letter (checked over
      // all of Unicode against Python): U+212A KELVIN SIGN -> "k", and U+0130 -> "i"
      // followed by U+0307, which is not alphanumeric. Every other non-ASCII character
      // separates tokens. Continuation bytes never equal the lead bytes tested here.
      if (c == 0xE2 && p + 2 < n && static_cast<unsigned char>(text[p + 1]) == 0x84 &&
          static_cast<unsigned char>(text[p + 2]) == 0xAA) {
        current_.push_back('k');
        p += 2;
      } else if (c == 0xC4 && p + 1 < n && static_cast<unsigned char>(text[p + 1]) == 0xB0) {
        current_.push_back('i');
        flush(out);
        p += 1;
      } else {
        flush(out);
      }
    }
    flush(out);
    end_sentence(out);
  }

  std::string_view token_text(uint32_t id) const { return interner_.text(id); }

  // Scores target against prediction for each type into out[0 .. types.size()).
  void score(const Tokens& target, const Tokens& prediction, std::span<const RougeType> types, RougeScore* out) {
    grow_id_arrays();
    for (size_t t = 0; t < types.size(); ++t) {
      switch (types[t].kind) {
        case RougeType::Kind::kNgram:
          out[t] = score_ngrams(target.ids, prediction.ids, types[t].n);
          break;
        case RougeType::Kind::kLcs:
          out[t] = score_lcs(target.ids, prediction.ids);
          break;
        case RougeType::Kind::kSummaryLcs:
          out[t] = score_summary_lcs(target, prediction);
          break;
      }
    }
  }

 private:
  void flush(Tokens* out) {
    if (current_.empty()) return;
    uint32_t id = interner_.intern(current_);
    if (use_stemmer_ && current_.size() > 3) id = stemmed(id);
    current_.clear();
    if (id != kNone) out->ids.push_back(id);
  }

  static void end_sentence(Tokens* out) {
    uint32_t end = static_cast<uint32_t>(out->ids.size());
    uint32_t start = out->sentence_ends.empty() ? 0 : out->sentence_ends.back();
    if (end > start) out->sentence_ends.push_back(end);
  }

  // Stem of token `id`, cached per distinct token; kNone when the stem is not a valid
  // token (rouge-score drops it; Porter never produces one from [a-z0-9]+, but the
  // check is theirs).
  uint32_t stemmed(uint32_t id) {
    if (stem_of_.size() <= id) stem_of_.resize(std::max<size_t>(id + 1, 2 * stem_of_.size()), kUnknown);
    if (stem_of_[id] != kUnknown) return stem_of_[id];
    std::string stem = porter_stem(interner_.text(id));
    bool valid = !stem.empty();
    for (char c : stem) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
    uint32_t result = valid ? interner_.intern(stem) : kNone;
    stem_of_[id] = result;
    return result;
  }

  void grow_id_arrays() {
    size_t n = interner_.size();
    if (lcs_.slot_of_id.size() < n) {
      size_t size = std::max(n, 2 * lcs_.slot_of_id.size());
      lcs_.slot_of_id.resize(size, kNone);
      count_r_.resize(size, 0);
      count_c_.resize(size, 0);
    }
  }

  // rouge-score's _score_ngrams over _create_ngrams counts: overlap is the sum over
  // n-grams of min(count in target, count in prediction).
  RougeScore score_ngrams(std::span<const uint32_t> target, std::span<const uint32_t> prediction, int n) {
    const size_t order = static_cast<size_t>(n);
    const size_t target_count = target.size() >= order ? target.size() - order + 1 : 0;
    const size_t prediction_count = prediction.size() >= order ? prediction.size() - order + 1 : 0;
    size_t overlap = 0;
    if (target_count > 0 && prediction_count > 0) {
      if (order <= 2) {
        auto keys = [order](std::span<const uint32_t> ids, size_t count, std::vector<uint64_t>& out) {
          out.resize(count);
          for (size_t i = 0; i < count; ++i) {
            out[i] = order == 1 ? ids[i] : (uint64_t{ids[i]} << 32) | ids[i + 1];
          }
          std::sort(out.begin(), out.end());
        };
        keys(target, target_count, keys_a_);
        keys(prediction, prediction_count, keys_b_);
        overlap = sorted_overlap(keys_a_, keys_b_, std::less<uint64_t>());
      } else {
        // Longer n-grams: sort start positions by the n ids that follow them.
        auto sorted_starts = [order](std::span<const uint32_t> ids, size_t count, std::vector<uint32_t>& out) {
          out.resize(count);
          for (size_t i = 0; i < count; ++i) out[i] = static_cast<uint32_t>(i);
          std::sort(out.begin(), out.end(), [&](uint32_t x, uint32_t y) {
            return std::lexicographical_compare(ids.begin() + x, ids.begin() + x + order, ids.begin() + y,
                                                ids.begin() + y + order);
          });
        };
        sorted_starts(target, target_count, starts_a_);
        sorted_starts(prediction, prediction_count, starts_b_);
        size_t i = 0, j = 0;
        while (i < starts_a_.size() && j < starts_b_.size()) {
          auto a = target.begin() + starts_a_[i];
          auto b = prediction.begin() + starts_b_[j];
          if (std::lexicographical_compare(a, a + order, b, b + order)) {
            ++i;
          } else if (std::lexicographical_compare(b, b + order, a, a + order)) {
            ++j;
          } else {
            ++overlap;
            ++i;
            ++j;
          }
        }
      }
    }
    double precision = static_cast<double>(overlap) / static_cast<double>(std::max<size_t>(prediction_count, 1));
    double recall = static_cast<double>(overlap) / static_cast<double>(std::max<size_t>(target_count, 1));
    return make_score(precision, recall);
  }

  template <typename Less>
  static size_t sorted_overlap(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b, Less less) {
    size_t i = 0, j = 0, overlap = 0;
    while (i < a.size() && j < b.size()) {
      if (less(a[i], b[j])) {
        ++i;
      } else if (less(b[j], a[i])) {
        ++j;
      } else {
        ++overlap;
        ++i;
        ++j;
      }
    }
    return overlap;
  }

  // rouge-score's _score_lcs.
  RougeScore score_lcs(std::span<const uint32_t> target, std::span<const uint32_t> prediction) {
    if (target.empty() || prediction.empty()) return RougeScore{};
    // The bit vectors run along the shorter text.
    size_t lcs = target.size() <= prediction.size() ? lcs_length_dense(target, prediction, lcs_)
                                                    : lcs_length_dense(prediction, target, lcs_);
    return make_score(static_cast<double>(lcs) / static_cast<double>(prediction.size()),
                      static_cast<double>(lcs) / static_cast<double>(target.size()));
  }

  // rouge-score's _summary_level_lcs: for each reference sentence, the union of one LCS
  // with each candidate sentence; each union token is a hit while both texts still have
  // an unused copy of it.
  RougeScore score_summary_lcs(const Tokens& target, const Tokens& prediction) {
    const size_t m = target.ids.size();
    const size_t n = prediction.ids.size();
    if (m == 0 || n == 0) return RougeScore{};
    for (uint32_t id : target.ids) ++count_r_[id];
    for (uint32_t id : prediction.ids) ++count_c_[id];
    size_t hits = 0;
    uint32_t r_begin = 0;
    for (uint32_t r_end : target.sentence_ends) {
      std::span<const uint32_t> ref(target.ids.data() + r_begin, r_end - r_begin);
      in_union_.assign(ref.size(), 0);
      uint32_t c_begin = 0;
      for (uint32_t c_end : prediction.sentence_ends) {
        std::span<const uint32_t> can(prediction.ids.data() + c_begin, c_end - c_begin);
        for (uint32_t index : lcs_indices_impl(ref, can, 0, lcs_)) in_union_[index] = 1;
        c_begin = c_end;
      }
      for (size_t i = 0; i < ref.size(); ++i) {
        if (!in_union_[i]) continue;
        uint32_t token = ref[i];
        if (count_c_[token] > 0 && count_r_[token] > 0) {
          ++hits;
          --count_c_[token];
          --count_r_[token];
        }
      }
      r_begin = r_end;
    }
    for (uint32_t id : target.ids) count_r_[id] = 0;
    for (uint32_t id : prediction.ids) count_c_[id] = 0;
    return make_score(static_cast<double>(hits) / static_cast<double>(n),
                      static_cast<double>(hits) / static_cast<double>(m));
  }

  static constexpr uint32_t kUnknown = kNone - 1;

  bool use_stemmer_;
  TokenInterner interner_;
  std::vector<uint32_t> stem_of_;  // raw token id -> stemmed id, kNone (dropped) or kUnknown
  std::string current_;
  std::vector<uint64_t> keys_a_, keys_b_;
  std::vector<uint32_t> starts_a_, starts_b_;
  LcsScratch lcs_;
  std::vector<int32_t> count_r_, count_c_;  // by token id; all zero between calls
  std::vector<char> in_union_;
};

// Scores one segment: against one target (score) or several (score_multi).
void score_segment(Workspace& ws, std::span<const std::string_view> targets, std::string_view prediction,
                   std::span<const RougeType> types, Tokens& prediction_tokens, Tokens& target_tokens,
                   std::vector<RougeScore>& scratch, RougeScore* out) {
  ws.tokenize(prediction, &prediction_tokens);
  for (size_t k = 0; k < targets.size(); ++k) {
    ws.tokenize(targets[k], &target_tokens);
    if (k == 0) {
      ws.score(target_tokens, prediction_tokens, types, out);
      continue;
    }
    scratch.resize(types.size());
    ws.score(target_tokens, prediction_tokens, types, scratch.data());
    // numpy.argmax: the first maximum wins, so only a strictly larger f replaces.
    for (size_t t = 0; t < types.size(); ++t) {
      if (scratch[t].fmeasure > out[t].fmeasure) out[t] = scratch[t];
    }
  }
}

Result<RougeScores> score_one(std::span<const std::string_view> targets, std::string_view prediction,
                              const RougeOptions& options) {
  KEEL_ASSIGN_OR_RETURN(ParsedTypes parsed, parse_types(options.types));
  if (targets.empty()) return invalid_argument("rouge score_multi needs at least one target");
  if (!valid_utf8(prediction)) return invalid_argument("rouge: prediction is not valid UTF-8");
  for (size_t k = 0; k < targets.size(); ++k) {
    if (!valid_utf8(targets[k])) return invalid_argument("rouge: target " + std::to_string(k) + " is not valid UTF-8");
  }
  Workspace ws(options.use_stemmer);
  Tokens prediction_tokens, target_tokens;
  std::vector<RougeScore> row(parsed.types.size()), scratch;
  score_segment(ws, targets, prediction, parsed.types, prediction_tokens, target_tokens, scratch, row.data());
  RougeScores out;
  for (size_t t = 0; t < parsed.names.size(); ++t) out[parsed.names[t]] = row[t];
  return out;
}

// Runs work(worker, begin, end) over [0, n) in chunks on up to `threads` threads (the
// caller is one of them). Chunks are claimed dynamically; callers write results by
// index, so the outcome does not depend on the schedule.
template <typename Work>
void parallel_for(size_t n, int threads, size_t chunk, Work work) {
  size_t workers = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(threads), (n + chunk - 1) / chunk));
  std::atomic<size_t> next{0};
  auto run = [&](size_t worker) {
    for (;;) {
      size_t begin = next.fetch_add(chunk);
      if (begin >= n) break;
      work(worker, begin, std::min(n, begin + chunk));
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(run, w);
    } catch (const std::system_error&) {
      break;  // fewer threads than asked: same results, just slower
    }
  }
  run(0);
  for (std::thread& t : pool) t.join();
}

// splitmix64: a small, well-mixed generator whose stream is the same everywhere.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) without modulo bias (Lemire).
  uint64_t below(uint64_t bound) {
    unsigned __int128 m = static_cast<unsigned __int128>(next()) * bound;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < bound) {
      uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(next()) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
};

// numpy.percentile's default ("linear") on sorted values, with numpy's _lerp.
double percentile_linear(const std::vector<double>& sorted, double q) {
  double h = q * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(h));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double g = h - static_cast<double>(lo);
  double a = sorted[lo], b = sorted[hi];
  double diff = b - a;
  return g >= 0.5 ? b - diff * (1 - g) : a + diff * g;
}

std::vector<RougeInterval> bootstrap(const RougeCorpusResult& result, const RougeOptions& options, int threads) {
  const size_t segments = result.scores.size() / result.types.size();
  const size_t columns = result.types.size() * 3;
  const size_t samples = static_cast<size_t>(options.bootstrap_samples);
  std::vector<double> means(samples * columns);
  parallel_for(samples, threads, 8, [&](size_t, size_t begin, size_t end) {
    std::vector<double> sums(columns);
    for (size_t s = begin; s < end; ++s) {
      // One generator per sample, seeded from (seed, sample): the draws do not depend
      // on which thread takes the sample.
      SplitMix64 seeder{options.seed ^ (0xD1B54A32D192ED03ULL * (s + 1))};
      SplitMix64 rng{seeder.next()};
      std::fill(sums.begin(), sums.end(), 0.0);
      for (size_t draw = 0; draw < segments; ++draw) {
        const RougeScore* row = &result.scores[rng.below(segments) * result.types.size()];
        for (size_t t = 0; t < result.types.size(); ++t) {
          sums[t * 3] += row[t].precision;
          sums[t * 3 + 1] += row[t].recall;
          sums[t * 3 + 2] += row[t].fmeasure;
        }
      }
      for (size_t c = 0; c < columns; ++c) means[s * columns + c] = sums[c] / static_cast<double>(segments);
    }
  });
  const double delta = (1 - options.confidence) / 2;
  std::vector<RougeInterval> out(result.types.size());
  std::vector<double> column(samples);
  for (size_t c = 0; c < columns; ++c) {
    for (size_t s = 0; s < samples; ++s) column[s] = means[s * columns + c];
    std::sort(column.begin(), column.end());
    double values[3] = {percentile_linear(column, delta), percentile_linear(column, 0.5),
                        percentile_linear(column, 1 - delta)};
    RougeInterval& interval = out[c / 3];
    RougeScore* bounds[3] = {&interval.low, &interval.mid, &interval.high};
    for (int b = 0; b < 3; ++b) {
      double* field = c % 3 == 0 ? &bounds[b]->precision : c % 3 == 1 ? &bounds[b]->recall : &bounds[b]->fmeasure;
      *field = values[b];
    }
  }
  return out;
}

// Sorted distinct values of a, and every element of a and b as an index into them
// (kNone for values of b not in a): dense ids for lcs_length_dense.
void densify(std::span<const uint32_t> a, std::span<const uint32_t> b, std::vector<uint32_t>& da,
             std::vector<uint32_t>& db) {
  std::vector<uint32_t> alphabet(a.begin(), a.end());
  std::sort(alphabet.begin(), alphabet.end());
  alphabet.erase(std::unique(alphabet.begin(), alphabet.end()), alphabet.end());
  auto index = [&](uint32_t x) {
    auto it = std::lower_bound(alphabet.begin(), alphabet.end(), x);
    return it != alphabet.end() && *it == x ? static_cast<uint32_t>(it - alphabet.begin()) : kNone;
  };
  da.clear();
  db.clear();
  for (uint32_t x : a) da.push_back(index(x));
  for (uint32_t x : b) db.push_back(index(x));
}

}  // namespace

Result<RougeScores> rouge_score(std::string_view target, std::string_view prediction, const RougeOptions& options) {
  std::string_view targets[1] = {target};
  return score_one(targets, prediction, options);
}

Result<RougeScores> rouge_score_multi(const std::vector<std::string>& targets, std::string_view prediction,
                                      const RougeOptions& options) {
  std::vector<std::string_view> views(targets.begin(), targets.end());
  return score_one(views, prediction, options);
}

Result<RougeCorpusResult> rouge_corpus(const std::vector<std::string>& predictions,
                                       const std::vector<std::vector<std::string>>& references,
                                       const RougeOptions& options) {
  KEEL_ASSIGN_OR_RETURN(ParsedTypes parsed, parse_types(options.types));
  if (references.empty()) return invalid_argument("rouge: no reference stream given");
  for (size_t k = 0; k < references.size(); ++k) {
    if (references[k].size() != predictions.size()) {
      return invalid_argument("rouge: reference stream " + std::to_string(k) + " has " +
                              std::to_string(references[k].size()) + " segments but there are " +
                              std::to_string(predictions.size()) + " predictions");
    }
  }
  if (options.threads < 0) return invalid_argument("rouge: threads must be 0 (automatic) or more");
  if (options.bootstrap_samples < 0) return invalid_argument("rouge: bootstrap_samples must not be negative");
  if (!(options.confidence >= 0 && options.confidence <= 1)) {
    return invalid_argument("rouge: confidence must be in [0, 1]");
  }
  if (options.bootstrap_samples > 0 && predictions.empty()) {
    return invalid_argument("rouge: cannot bootstrap an empty corpus");
  }
  int threads = options.threads;
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  RougeCorpusResult result;
  result.types = parsed.names;
  const size_t n_types = parsed.types.size();
  const size_t n = predictions.size();
  result.scores.resize(n * n_types);
  if (n_types == 0) return result;

  // Each worker keeps its own interner; ids differ between workers but a segment is
  // scored entirely by one worker, so the scores do not.
  const size_t max_workers = static_cast<size_t>(threads);
  std::vector<std::unique_ptr<Workspace>> workspaces(max_workers);
  std::vector<size_t> first_bad(max_workers, std::numeric_limits<size_t>::max());
  parallel_for(n, threads, 64, [&](size_t worker, size_t begin, size_t end) {
    if (!workspaces[worker]) workspaces[worker] = std::make_unique<Workspace>(options.use_stemmer);
    Workspace& ws = *workspaces[worker];
    Tokens prediction_tokens, target_tokens;
    std::vector<RougeScore> scratch;
    std::vector<std::string_view> targets(references.size());
    for (size_t i = begin; i < end; ++i) {
      bool ok = valid_utf8(predictions[i]);
      for (size_t k = 0; k < references.size(); ++k) {
        targets[k] = references[k][i];
        ok = ok && valid_utf8(targets[k]);
      }
      if (!ok) {
        first_bad[worker] = std::min(first_bad[worker], i);
        continue;
      }
      score_segment(ws, targets, predictions[i], parsed.types, prediction_tokens, target_tokens, scratch,
                    &result.scores[i * n_types]);
    }
  });
  size_t bad = *std::min_element(first_bad.begin(), first_bad.end());
  if (bad != std::numeric_limits<size_t>::max()) {
    return invalid_argument("rouge: segment " + std::to_string(bad) +
                            " (prediction or a reference) is not valid UTF-8");
  }

  // Plain left-to-right sums, independent of the thread count.
  result.mean.assign(n_types, RougeScore{});
  if (n > 0) {
    for (size_t t = 0; t < n_types; ++t) {
      double p = 0, r = 0, f = 0;
      for (size_t i = 0; i < n; ++i) {
        const RougeScore& s = result.scores[i * n_types + t];
        p += s.precision;
        r += s.recall;
        f += s.fmeasure;
      }
      double count = static_cast<double>(n);
      result.mean[t] = RougeScore{p / count, r / count, f / count};
    }
  }
  if (options.bootstrap_samples > 0) result.intervals = bootstrap(result, options, threads);
  return result;
}

Result<std::vector<std::string>> rouge_tokenize(std::string_view text, bool use_stemmer) {
  if (!valid_utf8(text)) return invalid_argument("rouge: text is not valid UTF-8");
  Workspace ws(use_stemmer);
  Tokens tokens;
  ws.tokenize(text, &tokens);
  std::vector<std::string> out;
  out.reserve(tokens.ids.size());
  for (uint32_t id : tokens.ids) out.emplace_back(ws.token_text(id));
  return out;
}

namespace rouge_detail {

size_t lcs_length(std::span<const uint32_t> a, std::span<const uint32_t> b) {
  std::vector<uint32_t> da, db;
  densify(a, b, da, db);
  LcsScratch scratch;
  scratch.slot_of_id.assign(a.size(), kNone);
  return lcs_length_dense(da, db, scratch);
}

size_t lcs_length_reference(std::span<const uint32_t> a, std::span<const uint32_t> b) {
  std::vector<uint32_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<uint32_t> lcs_indices(std::span<const uint32_t> ref, std::span<const uint32_t> can, size_t block_rows) {
  LcsScratch scratch;
  return lcs_indices_impl(ref, can, block_rows, scratch);
}

std::vector<uint32_t> lcs_indices_reference(std::span<const uint32_t> ref, std::span<const uint32_t> can) {
  // rouge-score's _lcs_table and _backtrack_norec, as written.
  const size_t rows = ref.size(), cols = can.size();
  std::vector<std::vector<uint32_t>> t(rows + 1, std::vector<uint32_t>(cols + 1, 0));
  for (size_t i = 1; i <= rows; ++i) {
    for (size_t j = 1; j <= cols; ++j) {
      t[i][j] = ref[i - 1] == can[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
    }
  }
  std::vector<uint32_t> lcs;
  size_t i = rows, j = cols;
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      lcs.insert(lcs.begin(), static_cast<uint32_t>(i - 1));
      --i;
      --j;
    } else if (t[i][j - 1] > t[i - 1][j]) {
      --j;
    } else {
      --i;
    }
  }
  return lcs;
}

}  // namespace rouge_detail

}  // namespace keel::eval
