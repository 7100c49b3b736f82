// The "length" step: keeps records whose text length, in characters (code points)
// and in words (runs without whitespace), lies within bounds. A bound of 0 is no
// bound. Drop reasons: "too_few_chars", "too_many_chars", "too_few_words",
// "too_many_words", "no_text_field".
#pragma once

#include <memory>
#include <string>

#include "keel/data/operator.h"

namespace keel::data {

struct LengthFilterOptions {
  std::string field = "text";
  int64_t min_chars = 0;
  int64_t max_chars = 0;
  int64_t min_words = 0;
  int64_t max_words = 0;

  void describe(ParamSet* params);
  Status validate() const;
};

class LengthFilter : public RecordOperator {
 public:
  static Result<std::unique_ptr<LengthFilter>> create(LengthFilterOptions options);
  std::string_view name() const override { return "length"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  explicit LengthFilter(LengthFilterOptions options) : options_(std::move(options)) {}
  LengthFilterOptions options_;
};

}  // namespace keel::data
