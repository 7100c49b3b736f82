#include "keel/data/gopher_quality_filter.h"

#include <set>

#include "keel/data/record_text.h"
#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

// Non-overlapping occurrences, as Python's str.count.
size_t count_of(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

bool has_non_symbol(std::string_view word) {
  size_t pos = 0;
  while (pos < word.size()) {
    if (!is_punctuation_or_symbol(next_code_point(word, &pos))) return true;
  }
  return false;
}

bool has_letter(std::string_view word) {
  size_t pos = 0;
  while (pos < word.size()) {
    if (is_letter(next_code_point(word, &pos))) return true;
  }
  return false;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

void GopherQualityOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("min_doc_words", &min_doc_words, "Fewest non-symbol words (0: off)");
  p->add("max_doc_words", &max_doc_words, "Most non-symbol words (0: off)");
  p->add("min_avg_word_length", &min_avg_word_length, "Least mean word length in characters (0: off)");
  p->add("max_avg_word_length", &max_avg_word_length, "Greatest mean word length in characters (0: off)");
  p->add("max_symbol_word_ratio", &max_symbol_word_ratio, "Most '#' and most ellipses per word (0: off)");
  p->add("max_bullet_lines_ratio", &max_bullet_lines_ratio, "Most lines starting with a bullet (0: off)");
  p->add("max_ellipsis_lines_ratio", &max_ellipsis_lines_ratio, "Most lines ending with an ellipsis (0: off)");
  p->add("min_alpha_words_ratio", &min_alpha_words_ratio, "Least share of words with a letter (0: off)");
  p->add("min_stop_words", &min_stop_words, "Fewest distinct stop words present (0: off)");
  p->add("stop_words", &stop_words, "The stop words");
}

Status GopherQualityOptions::validate() const {
  if (min_doc_words < 0 || max_doc_words < 0 || min_stop_words < 0) {
    return invalid_argument("gopher_quality word counts must not be negative");
  }
  for (double r : {min_avg_word_length, max_avg_word_length, max_symbol_word_ratio, max_bullet_lines_ratio,
                   max_ellipsis_lines_ratio, min_alpha_words_ratio}) {
    if (r < 0) return invalid_argument("gopher_quality thresholds must not be negative");
  }
  return Status::Ok();
}

std::string gopher_quality_reason(std::string_view text, const std::vector<std::string>& words,
                                  const GopherQualityOptions& o) {
  const double n_words = static_cast<double>(words.size());
  std::vector<const std::string*> non_symbol;
  for (const auto& w : words) {
    if (has_non_symbol(w)) non_symbol.push_back(&w);
  }
  auto n_non_symbol = static_cast<int64_t>(non_symbol.size());
  if (o.min_doc_words > 0 && n_non_symbol < o.min_doc_words) return "gopher_short_doc";
  if (o.max_doc_words > 0 && n_non_symbol > o.max_doc_words) return "gopher_long_doc";
  if (!non_symbol.empty()) {  // datatrove's mean of no words is NaN, which passes both bounds
    double total = 0;
    for (const auto* w : non_symbol) total += static_cast<double>(code_point_count(*w));
    double mean = total / static_cast<double>(non_symbol.size());
    if (o.min_avg_word_length > 0 && mean < o.min_avg_word_length) return "gopher_below_avg_threshold";
    if (o.max_avg_word_length > 0 && mean > o.max_avg_word_length) return "gopher_above_avg_threshold";
  }
  if (words.empty()) return "";  // the ratios below have no denominator; datatrove would fail here
  if (o.max_symbol_word_ratio > 0) {
    if (static_cast<double>(count_of(text, "#")) / n_words > o.max_symbol_word_ratio) return "gopher_too_many_hashes";
    double ellipses = static_cast<double>(count_of(text, "...") + count_of(text, "…"));
    if (ellipses / n_words > o.max_symbol_word_ratio) return "gopher_too_many_ellipsis";
  }
  std::vector<std::string_view> lines = split_lines(text);
  if (!lines.empty()) {
    const double n_lines = static_cast<double>(lines.size());
    if (o.max_bullet_lines_ratio > 0) {
      size_t bullets = 0;
      for (auto line : lines) {
        std::string_view s = strip_space_left(line);
        bullets += starts_with(s, "•") || starts_with(s, "-");
      }
      if (static_cast<double>(bullets) / n_lines > o.max_bullet_lines_ratio) return "gopher_too_many_bullets";
    }
    if (o.max_ellipsis_lines_ratio > 0) {
      size_t ellipsis_lines = 0;
      for (auto line : lines) {
        std::string_view s = strip_space_right(line);
        ellipsis_lines += ends_with(s, "...") || ends_with(s, "…");
      }
      if (static_cast<double>(ellipsis_lines) / n_lines > o.max_ellipsis_lines_ratio) {
        return "gopher_too_many_end_ellipsis";
      }
    }
  }
  if (o.min_alpha_words_ratio > 0) {
    size_t alpha = 0;
    for (const auto& w : words) alpha += has_letter(w);
    if (static_cast<double>(alpha) / n_words < o.min_alpha_words_ratio) return "gopher_below_alpha_threshold";
  }
  if (o.min_stop_words > 0) {
    std::set<std::string_view> present;
    std::set<std::string_view> stop(o.stop_words.begin(), o.stop_words.end());
    for (const auto& w : words) {
      if (stop.count(w) > 0) present.insert(w);
    }
    if (static_cast<int64_t>(present.size()) < o.min_stop_words) return "gopher_too_few_stop_words";
  }
  return "";
}

Result<std::unique_ptr<GopherQualityFilter>> GopherQualityFilter::create(GopherQualityOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  KEEL_ASSIGN_OR_RETURN(auto tokenizer, EnglishWordTokenizer::create());
  return std::unique_ptr<GopherQualityFilter>(new GopherQualityFilter(std::move(options), std::move(tokenizer)));
}

Verdict GopherQualityFilter::process(Record* record, bool* /*changed*/) {
  std::string joined;  // a chat's messages
  const std::string* text = record_text(*record, options_.field, &joined);
  if (text == nullptr) return Verdict::Drop("no_text_field");
  std::string reason = gopher_quality_reason(*text, tokenizer_->words(*text), options_);
  return reason.empty() ? Verdict::Keep() : Verdict::Drop(std::move(reason));
}

}  // namespace keel::data
