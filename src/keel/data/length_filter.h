// The "length" step: keeps records whose text length, in characters (code points),
// in words (runs without whitespace) and in tokens of a model's tokenizer, lies within
// bounds. A bound of 0 is no bound. The tokenizer is named by the `tokenizer` parameter
// (a model file or registered model) and given by the program that runs the step
// (set_token_counter), since this library does not load models. Drop reasons:
// "too_few_chars", "too_many_chars", "too_few_words", "too_many_words",
// "too_few_tokens", "too_many_tokens", "untokenizable", "no_text_field".
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "keel/data/operator.h"

namespace keel::data {

struct LengthFilterOptions {
  std::string field = "text";
  int64_t min_chars = 0;
  int64_t max_chars = 0;
  int64_t min_words = 0;
  int64_t max_words = 0;
  std::string tokenizer;  // needed by min_tokens / max_tokens
  int64_t min_tokens = 0;
  int64_t max_tokens = 0;

  void describe(ParamSet* params);
  Status validate() const;
};

class LengthFilter : public RecordOperator {
 public:
  using TokenCounter = std::function<Result<size_t>(std::string_view text)>;

  static Result<std::unique_ptr<LengthFilter>> create(LengthFilterOptions options);
  std::string_view name() const override { return "length"; }
  // The model whose tokenizer the token bounds need ("" when there are none), and the
  // counter that runs it; without one, records are dropped as "untokenizable".
  const std::string& tokenizer() const { return options_.tokenizer; }
  bool counts_tokens() const { return options_.min_tokens > 0 || options_.max_tokens > 0; }
  void set_token_counter(TokenCounter count) { count_tokens_ = std::move(count); }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  explicit LengthFilter(LengthFilterOptions options) : options_(std::move(options)) {}
  LengthFilterOptions options_;
  TokenCounter count_tokens_;
};

}  // namespace keel::data
