#include "keel/data/length_filter.h"

#include "keel/data/record_text.h"
#include "keel/data/unicode_text.h"

namespace keel::data {

void LengthFilterOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("min_chars", &min_chars, "Fewest characters (0: no bound)");
  p->add("max_chars", &max_chars, "Most characters (0: no bound)");
  p->add("min_words", &min_words, "Fewest words (0: no bound)");
  p->add("max_words", &max_words, "Most words (0: no bound)");
  p->add("tokenizer", &tokenizer, "Model whose tokenizer counts tokens: a GGUF file or a registered model");
  p->add("min_tokens", &min_tokens, "Fewest tokens (0: no bound; needs tokenizer)");
  p->add("max_tokens", &max_tokens, "Most tokens (0: no bound; needs tokenizer)");
}

Status LengthFilterOptions::validate() const {
  if (min_chars < 0 || max_chars < 0 || min_words < 0 || max_words < 0 || min_tokens < 0 || max_tokens < 0) {
    return invalid_argument("length bounds must not be negative");
  }
  if (max_tokens > 0 && min_tokens > max_tokens) return invalid_argument("min_tokens is above max_tokens");
  if ((min_tokens > 0 || max_tokens > 0) && tokenizer.empty()) {
    return invalid_argument("min_tokens and max_tokens need a tokenizer: a model file or registered model");
  }
  if (max_chars > 0 && min_chars > max_chars) return invalid_argument("min_chars is above max_chars");
  if (max_words > 0 && min_words > max_words) return invalid_argument("min_words is above max_words");
  return Status::Ok();
}

Result<std::unique_ptr<LengthFilter>> LengthFilter::create(LengthFilterOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  return std::unique_ptr<LengthFilter>(new LengthFilter(std::move(options)));
}

Verdict LengthFilter::process(Record* record, bool* /*changed*/) {
  std::string joined;  // a chat's messages
  const std::string* text = record_text(*record, options_.field, &joined);
  if (text == nullptr) return Verdict::Drop("no_text_field");
  if (options_.min_chars > 0 || options_.max_chars > 0) {
    auto chars = static_cast<int64_t>(code_point_count(*text));
    if (options_.min_chars > 0 && chars < options_.min_chars) return Verdict::Drop("too_few_chars");
    if (options_.max_chars > 0 && chars > options_.max_chars) return Verdict::Drop("too_many_chars");
  }
  if (options_.min_words > 0 || options_.max_words > 0) {
    auto words = static_cast<int64_t>(split_on_space(*text).size());
    if (options_.min_words > 0 && words < options_.min_words) return Verdict::Drop("too_few_words");
    if (options_.max_words > 0 && words > options_.max_words) return Verdict::Drop("too_many_words");
  }
  if (counts_tokens()) {
    if (!count_tokens_) return Verdict::Drop("untokenizable");
    auto counted = count_tokens_(*text);
    if (!counted.ok()) return Verdict::Drop("untokenizable");
    const auto tokens = static_cast<int64_t>(*counted);
    if (options_.min_tokens > 0 && tokens < options_.min_tokens) return Verdict::Drop("too_few_tokens");
    if (options_.max_tokens > 0 && tokens > options_.max_tokens) return Verdict::Drop("too_many_tokens");
  }
  return Verdict::Keep();
}

}  // namespace keel::data
