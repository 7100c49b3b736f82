#include "keel/data/c4_quality_filter.h"

#include <utf8proc.h>

#include "keel/data/english_words.h"
#include "keel/data/record_text.h"
#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

constexpr std::string_view kPolicyPhrases[] = {"terms of use", "privacy policy", "cookie policy",
                                               "uses cookies", "use of cookies", "use cookies"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Length of a citation starting at line[pos] == '[', or 0.
size_t citation_at(std::string_view line, size_t pos) {
  std::string_view rest = line.substr(pos + 1);
  if (rest.substr(0, 5) == "edit]") return 6;
  if (rest.substr(0, 16) == "citation needed]") return 17;
  size_t i = 0;
  while (i < rest.size()) {
    size_t at = i;
    char32_t cp = next_code_point(rest, &i);
    if (cp == ']') return i + 1;
    if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) != UTF8PROC_CATEGORY_ND) {
      (void)at;
      return 0;
    }
  }
  return 0;
}

}  // namespace

std::string remove_citations(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size();) {
    if (line[i] == '[') {
      size_t n = citation_at(line, i);
      if (n > 0) {
        i += n;
        continue;
      }
    }
    out.push_back(line[i++]);
  }
  return out;
}

void C4QualityOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("remove_citations", &remove_citations, "Cut [1], [edit], [citation needed] from lines");
  p->add("filter_no_terminal_punct", &filter_no_terminal_punct, "Remove lines not ending in . ? ! \" '");
  p->add("min_sentences", &min_sentences, "Fewest sentences a document keeps (-1: off)");
  p->add("min_words_per_line", &min_words_per_line, "Fewest words a line keeps (-1: off)");
  p->add("max_word_length", &max_word_length, "Remove lines with a longer word (-1: off)");
  p->add("filter_lorem_ipsum", &filter_lorem_ipsum, "Drop documents with \"lorem ipsum\"");
  p->add("filter_javascript", &filter_javascript, "Remove lines mentioning javascript");
  p->add("filter_curly_bracket", &filter_curly_bracket, "Drop documents with a curly brace");
  p->add("filter_policy", &filter_policy, "Remove lines with cookie / terms-of-use phrases");
}

Status C4QualityOptions::validate() const {
  if (min_sentences < -1 || min_words_per_line < -1 || max_word_length < -1) {
    return invalid_argument("c4 limits must be -1 (off) or more");
  }
  return Status::Ok();
}

C4Result c4_quality(std::string_view text, const C4QualityOptions& o, const EnglishWordTokenizer& tokenizer) {
  C4Result result;
  std::vector<std::string> kept;
  int64_t& sentences = result.sentences;
  for (std::string_view raw : split_lines(text)) {
    std::string_view stripped = strip_space(raw);
    std::vector<std::string_view> words = split_on_space(stripped);
    if (o.max_word_length != -1) {
      bool too_long = false;
      for (auto w : words) too_long = too_long || static_cast<int64_t>(code_point_count(w)) > o.max_word_length;
      if (too_long) {
        ++result.too_long_word;
        continue;
      }
    }
    std::string line(stripped);
    if (o.remove_citations) {
      std::string cut = remove_citations(line);
      if (cut.size() != line.size()) ++result.citations;
      line = std::move(cut);
    }
    if (o.filter_no_terminal_punct) {
      char last = line.empty() ? '\0' : line.back();
      bool terminal = last == '.' || last == '?' || last == '!' || last == '"' || last == '\'';
      if (!terminal || ends_with(line, "...")) {
        ++result.no_terminal_punct;
        continue;
      }
    }
    if (static_cast<int64_t>(words.size()) < o.min_words_per_line) {
      ++result.too_few_words;
      continue;
    }
    std::string lower = ascii_lower(line);
    if (o.filter_lorem_ipsum && lower.find("lorem ipsum") != std::string::npos) {
      result.reason = "lorem_ipsum";
      return result;
    }
    if (o.filter_javascript && lower.find("javascript") != std::string::npos) {
      ++result.javascript;
      continue;
    }
    if (o.filter_curly_bracket && line.find('{') != std::string::npos) {
      result.reason = "curly_bracket";
      return result;
    }
    if (o.filter_policy) {
      bool policy = false;
      for (auto phrase : kPolicyPhrases) policy = policy || lower.find(phrase) != std::string::npos;
      if (policy) {
        ++result.policy;
        continue;
      }
    }
    if (o.min_sentences != -1) sentences += static_cast<int64_t>(tokenizer.sentence_count(line));
    kept.push_back(std::move(line));
  }
  if (sentences < o.min_sentences) {
    result.reason = "too_few_sentences";
    return result;
  }
  std::string joined;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i > 0) joined.push_back('\n');
    joined.append(kept[i]);
  }
  result.text = std::string(strip_space(joined));
  return result;
}

Result<std::unique_ptr<C4QualityFilter>> C4QualityFilter::create(C4QualityOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  KEEL_ASSIGN_OR_RETURN(auto tokenizer, EnglishWordTokenizer::create());
  return std::unique_ptr<C4QualityFilter>(new C4QualityFilter(std::move(options), std::move(tokenizer)));
}

Verdict C4QualityFilter::process(Record* record, bool* changed) {
  if (!text_parts(record, options_.field, &parts_)) return Verdict::Drop("no_text_field");
  // Each message of a chat on its own, with the sentence minimum over them all.
  C4QualityOptions per_part = options_;
  if (per_part.min_sentences > 0) per_part.min_sentences = 0;
  std::vector<C4Result> results;
  results.reserve(parts_.size());
  int64_t sentences = 0;
  for (const std::string* text : parts_) {
    results.push_back(c4_quality(*text, per_part, *tokenizer_));
    if (!results.back().reason.empty()) return Verdict::Drop(std::move(results.back().reason));
    sentences += results.back().sentences;
  }
  if (sentences < options_.min_sentences) return Verdict::Drop("too_few_sentences");
  for (size_t i = 0; i < parts_.size(); ++i) {
    C4Result& r = results[i];
    if (r.too_long_word > 0) note("lines_too_long_word", r.too_long_word);
    if (r.no_terminal_punct > 0) note("lines_no_terminal_punct", r.no_terminal_punct);
    if (r.too_few_words > 0) note("lines_too_few_words", r.too_few_words);
    if (r.javascript > 0) note("lines_javascript", r.javascript);
    if (r.policy > 0) note("lines_policy", r.policy);
    if (r.citations > 0) note("citations", r.citations);
    if (r.text != *parts_[i]) {
      *changed = true;
      *parts_[i] = std::move(r.text);
    }
  }
  return Verdict::Keep();
}

}  // namespace keel::data
