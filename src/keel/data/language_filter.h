// The "language" step: identifies the language of the text with CLD2 (Compact
// Language Detector 2) and keeps records in an allowed language detected with enough
// confidence. Confidence is the share of the text CLD2 attributes to its top language
// (0..1). Languages are CLD2's codes ("en", "fr", "de", "zh", "ja", ...).
// Drop reasons: "language_not_allowed", "low_language_confidence", "unknown_language".
// With annotate, kept records get "language" and "language_score" fields.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/operator.h"

namespace keel::data {

struct LanguageGuess {
  std::string code;       // "un" when CLD2 cannot tell
  double confidence = 0;  // share of the text in that language, 0..1
  bool reliable = false;  // CLD2's own judgement (false for short or mixed text)
};

LanguageGuess identify_language(std::string_view text);

struct LanguageFilterOptions {
  std::string field = "text";
  std::vector<std::string> languages = {"en"};  // empty: any language
  double min_confidence = 0.65;
  bool annotate = false;

  void describe(ParamSet* params);
  Status validate() const;
};

class LanguageFilter : public RecordOperator {
 public:
  static Result<std::unique_ptr<LanguageFilter>> create(LanguageFilterOptions options);
  std::string_view name() const override { return "language"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  explicit LanguageFilter(LanguageFilterOptions options) : options_(std::move(options)) {}
  LanguageFilterOptions options_;
};

}  // namespace keel::data
