// The "gopher_quality" step: the quality rules of Gopher's MassiveText (Rae et al.
// 2021, appendix A1), with datatrove's GopherQualityFilter defaults and its order of
// checks. Words are English words (english_words.h); a "symbol word" is one made only of
// punctuation and symbols. Every threshold is configurable; 0 turns a rule off (as a
// falsy value does in datatrove).
// Drop reasons, checked in this order: gopher_short_doc, gopher_long_doc,
// gopher_below_avg_threshold, gopher_above_avg_threshold, gopher_too_many_hashes,
// gopher_too_many_ellipsis, gopher_too_many_bullets, gopher_too_many_end_ellipsis,
// gopher_below_alpha_threshold, gopher_too_few_stop_words.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/english_words.h"
#include "keel/data/operator.h"

namespace keel::data {

struct GopherQualityOptions {
  std::string field = "text";
  int64_t min_doc_words = 50;  // words that are not symbol words
  int64_t max_doc_words = 100000;
  double min_avg_word_length = 3;  // mean length of the non-symbol words, characters
  double max_avg_word_length = 10;
  double max_symbol_word_ratio = 0.1;     // "#" per word, and "..." or "…" per word
  double max_bullet_lines_ratio = 0.9;    // lines starting with "•" or "-"
  double max_ellipsis_lines_ratio = 0.3;  // lines ending with "..." or "…"
  double min_alpha_words_ratio = 0.8;     // words with at least one letter
  int64_t min_stop_words = 2;             // distinct stop words present (case-sensitive)
  std::vector<std::string> stop_words = {"the", "be", "to", "of", "and", "that", "have", "with"};

  void describe(ParamSet* params);
  Status validate() const;
};

// The reason a text fails the rules, or "" when it passes.
std::string gopher_quality_reason(std::string_view text, const std::vector<std::string>& words,
                                  const GopherQualityOptions& options);

class GopherQualityFilter : public RecordOperator {
 public:
  static Result<std::unique_ptr<GopherQualityFilter>> create(GopherQualityOptions options);
  std::string_view name() const override { return "gopher_quality"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  GopherQualityFilter(GopherQualityOptions options, std::shared_ptr<const EnglishWordTokenizer> tokenizer)
      : options_(std::move(options)), tokenizer_(std::move(tokenizer)) {}
  GopherQualityOptions options_;
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
};

}  // namespace keel::data
