// English sentences and words the way the quality filters count them. datatrove's
// Gopher filters count words with NLTK's word_tokenize (Punkt sentences, then the
// improved Treebank rules) and its C4 filter counts Punkt sentences per line; this is
// our implementation of those published rules. The Treebank rules are reproduced as
// written (PCRE2, Unicode classes). Sentence breaks follow Punkt's rules without its
// trained English statistics (which no package we may use ships): a break after ? or
// !, after a period ending a word that is not a listed abbreviation or an initial,
// after a number unless a lowercase word follows; none at an ellipsis.
// A tokenizer is immutable after create() and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::data {

// Sentences of text as views into it; each ends at its terminal punctuation (the
// whitespace between sentences belongs to neither). Text with no break is one sentence;
// empty or blank text has none.
std::vector<std::string_view> split_sentences(std::string_view text);

class EnglishWordTokenizer {
 public:
  static Result<std::shared_ptr<const EnglishWordTokenizer>> create();
  ~EnglishWordTokenizer();
  EnglishWordTokenizer(const EnglishWordTokenizer&) = delete;
  EnglishWordTokenizer& operator=(const EnglishWordTokenizer&) = delete;

  // Words and punctuation tokens, in order: "Don't stop." -> Do n't stop .
  std::vector<std::string> words(std::string_view text) const;
  // The Treebank rules on one sentence.
  std::vector<std::string> sentence_words(std::string_view sentence) const;

 private:
  struct Rule;
  EnglishWordTokenizer() = default;
  std::string apply(size_t first, size_t last, std::string text) const;
  std::vector<std::unique_ptr<Rule>> rules_;
};

}  // namespace keel::data
