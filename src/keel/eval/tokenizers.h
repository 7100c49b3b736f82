// sacrebleu 2.6.0's BLEU tokenizers, reproduced so that Keel's BLEU sees exactly the
// tokens sacrebleu sees: "13a" (mteval-v13a: four HTML entities, then the regex rules
// of sacrebleu's TokenizerRegexp), "none", "intl" (mteval-v14: Unicode punctuation
// and symbols, as the Python `regex` module classifies them) and "char". Used by
// bleu.cpp. Input must be valid UTF-8 (check with is_valid_utf8() first): invalid
// bytes are not diagnosed here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

enum class BleuTokenizer { k13a, kNone, kIntl, kChar };

// "13a", "none", "intl" or "char"; anything else is kInvalidArgument.
Result<BleuTokenizer> parse_bleu_tokenizer(std::string_view name);
// The name sacrebleu writes in its signature ("tok:13a").
std::string_view bleu_tokenizer_name(BleuTokenizer tokenizer);

// Exactly what sacrebleu's tokenizer object returns for `line`: tokens joined by
// single spaces (13a, intl), every character joined by spaces (char) or the line
// unchanged (none). sacrebleu's BLEU calls it on the right-stripped (and optionally
// lowercased) segment.
std::string tokenize(BleuTokenizer tokenizer, std::string_view line);

// Working memory for tokenize_into(), reused from call to call (one per thread).
struct TokenizerScratch {
  std::string text;  // the tokenized line; tokens point into it
  std::string spare;
  std::u32string wide, wide_spare;
};

// The tokens BLEU counts for `line`: tokenize(line).split() in Python terms. Replaces
// `tokens` with views into scratch.text, valid until the next call with the same
// scratch. Allocation-free once the buffers have grown: this is the hot path.
void tokenize_into(BleuTokenizer tokenizer, std::string_view line, TokenizerScratch& scratch,
                   std::vector<std::string_view>& tokens);

// Python's str.split() with no arguments, as views into text (appended to out).
void split_py_whitespace(std::string_view text, std::vector<std::string_view>& out);
// Python's str.rstrip() with no arguments, as a view into text.
std::string_view rstrip_py_whitespace(std::string_view text);
// Byte length of the Python whitespace character that starts at p (0 if none).
// REQUIRES: p < end, and [p, end) is valid UTF-8.
size_t py_space_length(const char* p, const char* end);

// Numbers distinct tokens 1, 2, 3, ... in order of first sight, so that BLEU and chrF++
// can count n-grams as tuples of small integers. Tokens are compared byte for byte, so
// two different tokens never share an id; the bytes are copied in, so the caller's
// buffers may change after intern() returns. clear() is O(1): reuse one per thread.
class TokenInterner {
 public:
  void clear();
  uint32_t intern(std::string_view token);
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0, length = 0;
    uint32_t id = 0;
    uint32_t generation = 0;  // the slot is empty unless this equals generation_
  };
  void grow();
  std::vector<Slot> slots_;  // open addressing, linear probing; size is a power of two
  std::string bytes_;        // the interned tokens, back to back
  uint32_t count_ = 0;
  uint32_t generation_ = 1;
};

// A 64-bit hash of bytes (not cryptographic; for hash tables).
uint64_t hash_bytes(std::string_view bytes);
// Mixes a 64-bit value so that every input bit affects every output bit.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// The Unicode classes the intl tokenizer's regexes use: \p{P}, \p{S} and \p{N} of the
// Python `regex` module (general categories; its Unicode tables are newer than
// utf8proc's, and the characters assigned since are filled in by hand).
bool is_intl_punctuation(char32_t c);
bool is_intl_symbol(char32_t c);
bool is_intl_number(char32_t c);

}  // namespace keel::eval
