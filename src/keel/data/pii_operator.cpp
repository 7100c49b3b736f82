#include "keel/data/pii_operator.h"

#include "keel/data/record_text.h"

namespace keel::data {

void PiiStepOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("mode", &mode, "redact ([EMAIL]), mask (****) or hash ([EMAIL:sha256 prefix])");
}

Result<std::unique_ptr<PiiOperator>> PiiOperator::create(PiiStepOptions options) {
  KEEL_ASSIGN_OR_RETURN(RedactionMode mode, parse_redaction_mode(options.mode));
  KEEL_ASSIGN_OR_RETURN(auto scanner, PiiScanner::create());
  return std::unique_ptr<PiiOperator>(new PiiOperator(std::move(options.field), mode, std::move(scanner)));
}

Verdict PiiOperator::process(Record* record, bool* changed) {
  if (!text_parts(record, field_, &parts_)) return Verdict::Keep();
  for (std::string* text : parts_) {  // a string field, or each message of a chat
    PiiCounts counts{};
    auto clean = scanner_->redact(*text, mode_, &counts);
    if (!clean.ok()) continue;  // Hyperscan scan errors cannot happen on valid UTF-8 text
    bool found = false;
    for (size_t t = 0; t < kPiiTypeCount; ++t) {
      if (counts[t] == 0) continue;
      found = true;
      note(std::string(pii_type_name(static_cast<PiiType>(t))), counts[t]);
    }
    if (found) {
      *text = std::move(*clean);
      *changed = true;
    }
  }
  return Verdict::Keep();
}

}  // namespace keel::data
