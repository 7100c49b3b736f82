// The "gopher_repetition" step: Gopher's repetition rules (Rae et al. 2021, table A1)
// as datatrove's GopherRepetitionFilter applies them: the share of duplicate
// paragraphs and lines (by count and by characters), the characters covered by the
// most frequent n-gram (n = 2, 3, 4) and by duplicate n-grams (n = 5..10), each over
// the characters of the whole text. Thresholds are configurable; 0 turns a rule off.
// Drop reasons: dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac,
// top_{n}_gram, duplicated_{n}_n_grams; an empty text: empty.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/english_words.h"
#include "keel/data/operator.h"

namespace keel::data {

struct GopherRepetitionOptions {
  std::string field = "text";
  double dup_line_frac = 0.3;
  double dup_para_frac = 0.3;
  double dup_line_char_frac = 0.2;
  double dup_para_char_frac = 0.2;
  std::vector<double> top_ngram_sizes = {2, 3, 4};
  std::vector<double> top_ngram_fracs = {0.2, 0.18, 0.16};
  std::vector<double> dup_ngram_sizes = {5, 6, 7, 8, 9, 10};
  std::vector<double> dup_ngram_fracs = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};

  void describe(ParamSet* params);
  Status validate() const;
};

std::string gopher_repetition_reason(std::string_view text, const std::vector<std::string>& words,
                                     const GopherRepetitionOptions& options);

// Exposed for tests. Elements seen before (count, characters).
std::pair<size_t, size_t> duplicate_elements(const std::vector<std::string_view>& elements);
// Characters (n-gram joined with spaces) times occurrences of the most frequent n-gram;
// ties go to the n-gram seen first. 0 when there are fewer than n words.
size_t top_ngram_chars(const std::vector<std::string>& words, size_t n);
// Characters of duplicate n-grams (words joined without spaces), scanning left to
// right and jumping past each duplicate so no word counts twice.
size_t duplicate_ngram_chars(const std::vector<std::string>& words, size_t n);

class GopherRepetitionFilter : public RecordOperator {
 public:
  static Result<std::unique_ptr<GopherRepetitionFilter>> create(GopherRepetitionOptions options);
  std::string_view name() const override { return "gopher_repetition"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  GopherRepetitionFilter(GopherRepetitionOptions options, std::shared_ptr<const EnglishWordTokenizer> tokenizer)
      : options_(std::move(options)), tokenizer_(std::move(tokenizer)) {}
  GopherRepetitionOptions options_;
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
};

}  // namespace keel::data
