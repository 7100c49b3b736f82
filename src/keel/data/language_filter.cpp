#include "keel/data/language_filter.h"

#include <cld2/public/compact_lang_det.h>

#include <algorithm>

#include "keel/data/record_text.h"

namespace keel::data {

LanguageGuess identify_language(std::string_view text) {
  CLD2::Language top3[3];
  int percent3[3] = {0, 0, 0};
  int text_bytes = 0;
  bool reliable = false;
  // CLD2 takes an int length; beyond the first 1 MiB its answer would not change.
  int length = static_cast<int>(std::min<size_t>(text.size(), size_t{1} << 20));
  CLD2::Language lang =
      CLD2::DetectLanguageSummary(text.data(), length, /*is_plain_text=*/true, top3, percent3, &text_bytes, &reliable);
  LanguageGuess guess;
  // With no letters to go on CLD2 still names a language, at 0 percent: unknown.
  bool unknown = lang == CLD2::UNKNOWN_LANGUAGE || percent3[0] == 0;
  guess.code = unknown ? "un" : CLD2::LanguageCode(lang);
  guess.confidence = unknown ? 0.0 : percent3[0] / 100.0;
  guess.reliable = reliable;
  return guess;
}

void LanguageFilterOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("languages", &languages, "Allowed languages, CLD2 codes (empty: any)");
  p->add("min_confidence", &min_confidence, "Least share of the text in the detected language, 0..1");
  p->add("annotate", &annotate, "Add \"language\" and \"language_score\" fields to kept records");
}

Status LanguageFilterOptions::validate() const {
  if (!(min_confidence >= 0 && min_confidence <= 1)) return invalid_argument("min_confidence must be in 0..1");
  for (const auto& code : languages) {
    CLD2::Language lang = CLD2::GetLanguageFromName(code.c_str());
    if (lang == CLD2::UNKNOWN_LANGUAGE || code != CLD2::LanguageCode(lang)) {
      return invalid_argument("unknown language code \"" + code + "\" (CLD2 codes: en, fr, de, es, zh, ja, ...)");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<LanguageFilter>> LanguageFilter::create(LanguageFilterOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  return std::unique_ptr<LanguageFilter>(new LanguageFilter(std::move(options)));
}

Verdict LanguageFilter::process(Record* record, bool* changed) {
  std::string joined;  // a chat's messages
  const std::string* text = record_text(*record, options_.field, &joined);
  if (text == nullptr) return Verdict::Drop("no_text_field");
  LanguageGuess guess = identify_language(*text);
  if (guess.code == "un") return Verdict::Drop("unknown_language");
  const auto& allowed = options_.languages;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), guess.code) == allowed.end()) {
    return Verdict::Drop("language_not_allowed");
  }
  if (guess.confidence < options_.min_confidence) return Verdict::Drop("low_language_confidence");
  if (options_.annotate) {
    (*record)["language"] = guess.code;
    (*record)["language_score"] = guess.confidence;
    *changed = true;
    note("annotated");
  }
  return Verdict::Keep();
}

}  // namespace keel::data
