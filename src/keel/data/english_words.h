// English words and sentences the way the quality filters count them. datatrove
// (0.10.1) counts English words and sentences with spaCy's blank English pipeline: its
// rule-based tokenizer (whitespace, then prefix / suffix / infix rules and special
// cases) and its rule-based sentencizer. This is our implementation of those rules:
// the prefix, suffix and infix patterns as spaCy publishes them (PCRE2; Unicode letter
// and symbol classes stand in for spaCy's per-script lists), special cases for English
// contractions (don't -> do n't, I'm -> I 'm, dont -> do nt; lower and title case, ' or
// ’), times (10am), abbreviations that keep their period, and a few emoticons, joined
// back when the affix rules split them apart; and sentence breaks after a terminal mark
// (Unicode Sentence_Terminal) at the next token that is not punctuation. Not covered:
// most of spaCy's emoticons. tests/data/datatrove_equivalence_test.cpp measures the
// result against datatrove document by document.
// A tokenizer is immutable after create() and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/util/status.h"

namespace keel::data {

class EnglishWordTokenizer {
 public:
  // Hashes std::string and std::string_view alike (lookups without a copy).
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  static Result<std::shared_ptr<const EnglishWordTokenizer>> create();
  ~EnglishWordTokenizer();
  EnglishWordTokenizer(const EnglishWordTokenizer&) = delete;
  EnglishWordTokenizer& operator=(const EnglishWordTokenizer&) = delete;

  // Every token as a view into text, whitespace tokens included: a whitespace run
  // after a word is a token less its first space ("a  b" -> a, " ", b).
  std::vector<std::string_view> tokens(std::string_view text) const;
  // The tokens that are not whitespace: "Don't stop." -> Do n't stop .
  std::vector<std::string> words(std::string_view text) const;
  // Sentences in text: one, plus one per terminal mark ('.', '!', '?', ...) that a
  // later non-punctuation token follows. 0 for blank text.
  size_t sentence_count(std::string_view text) const;

 private:
  struct Regex;
  EnglishWordTokenizer() = default;
  void tokenize_chunk(std::string_view chunk, std::vector<std::string_view>* out) const;
  void split_chunk(std::string_view chunk, std::vector<std::string_view>* out) const;
  // Length of the prefix / suffix the rules find in s (0: none).
  size_t prefix_length(std::string_view s) const;
  size_t suffix_length(std::string_view s) const;
  bool is_url(std::string_view s) const;
  void split_infixes(std::string_view s, std::vector<std::string_view>* out) const;
  // A special case: appends its pieces and returns true.
  bool special(std::string_view s, std::vector<std::string_view>* out) const;

  bool is_special(std::string_view s) const { return s.size() <= max_special_ && specials_.find(s) != specials_.end(); }

  std::unique_ptr<Regex> prefix_, suffix_, infix_, url_;
  // Special cases: the lengths of the pieces a string splits into ({n}: kept whole).
  std::unordered_map<std::string, std::vector<size_t>, StringHash, std::equal_to<>> specials_;
  size_t max_special_ = 0;  // bytes of the longest special case
};

}  // namespace keel::data
