// The "c4" step: the C4 cleaning rules (Raffel et al. 2020, section 2.2) as
// datatrove's C4QualityFilter applies them, line by line: a line is removed when it
// has a word over max_word_length characters, does not end in terminal punctuation
// (. ? ! " ') or ends in "...", has fewer than min_words_per_line words, mentions
// "javascript", or holds a cookie / terms-of-use phrase; Wikipedia-style citations
// ([1], [edit], [citation needed]) are cut from lines. A document is dropped when a
// kept line holds "lorem ipsum" or a curly brace, or when fewer than min_sentences
// sentences remain. The kept lines become the new text. A chat record (record_text.h)
// has its lines removed message by message and its sentences counted over them all.
// Drop reasons: lorem_ipsum, curly_bracket, too_few_sentences. Changes count removed
// lines: lines_too_long_word, lines_no_terminal_punct, lines_too_few_words,
// lines_javascript, lines_policy (and "citations" for lines cut).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/english_words.h"
#include "keel/data/operator.h"

namespace keel::data {

struct C4QualityOptions {
  std::string field = "text";
  bool remove_citations = true;
  bool filter_no_terminal_punct = true;
  int64_t min_sentences = 5;       // -1: off
  int64_t min_words_per_line = 3;  // -1: off
  int64_t max_word_length = 1000;  // -1: off
  bool filter_lorem_ipsum = true;
  bool filter_javascript = true;
  bool filter_curly_bracket = true;
  bool filter_policy = true;

  void describe(ParamSet* params);
  Status validate() const;
};

struct C4Result {
  std::string reason;  // empty: kept
  std::string text;    // the kept lines, when kept
  // Lines removed per rule, and lines whose citations were cut.
  size_t too_long_word = 0, no_terminal_punct = 0, too_few_words = 0, javascript = 0, policy = 0, citations = 0;
  int64_t sentences = 0;  // in the kept lines (counted unless min_sentences is -1)
};

// Sentences are counted with the tokenizer's sentence rules, line by line.
C4Result c4_quality(std::string_view text, const C4QualityOptions& options, const EnglishWordTokenizer& tokenizer);

// Removes [digits], [edit] and [citation needed].
std::string remove_citations(std::string_view line);

class C4QualityFilter : public RecordOperator {
 public:
  static Result<std::unique_ptr<C4QualityFilter>> create(C4QualityOptions options);
  std::string_view name() const override { return "c4"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  C4QualityFilter(C4QualityOptions options, std::shared_ptr<const EnglishWordTokenizer> tokenizer)
      : options_(std::move(options)), tokenizer_(std::move(tokenizer)) {}
  C4QualityOptions options_;
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
  std::vector<std::string*> parts_;  // the record being processed
};

}  // namespace keel::data
