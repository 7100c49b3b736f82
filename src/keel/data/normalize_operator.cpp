#include "keel/data/normalize_operator.h"

#include <utf8proc.h>

#include <cstdlib>

#include "keel/data/html_text.h"
#include "keel/data/record_text.h"
#include "keel/data/unicode_text.h"

namespace keel::data {

void NormalizeOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("unicode", &unicode, "Unicode normalisation: nfc, nfkc or none");
  p->add("html", &html, "Strip HTML to text (entities decoded, script/style dropped, blocks become lines)");
  p->add("whitespace", &whitespace, "Fix line breaks, Unicode spaces, control characters, blank lines");
  p->add("collapse_spaces", &collapse_spaces, "Collapse runs of spaces inside lines (indentation kept)");
  p->add("drop_empty", &drop_empty, "Drop records whose text is empty afterwards");
}

Status NormalizeOptions::validate() const {
  if (unicode != "nfc" && unicode != "nfkc" && unicode != "none") {
    return invalid_argument("unicode must be nfc, nfkc or none, not \"" + unicode + "\"");
  }
  if (field.empty()) return invalid_argument("field must not be empty");
  return Status::Ok();
}

Result<std::string> unicode_normalize(std::string_view text, std::string_view form) {
  int flags = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  if (form == "nfkc") {
    flags |= UTF8PROC_COMPAT;
  } else if (form != "nfc") {
    return invalid_argument("unknown Unicode normalisation form \"" + std::string(form) + "\"");
  }
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &out, static_cast<utf8proc_option_t>(flags));
  if (n < 0) return invalid_argument(std::string("Unicode normalisation: ") + utf8proc_errmsg(n));
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::string clean_whitespace(std::string_view text, bool collapse_spaces, WhitespaceChanges* changes) {
  // Pass 1: code points mapped one by one.
  std::string mapped;
  mapped.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t at = pos;
    char32_t cp = next_code_point(text, &pos);
    if (cp == '\r') {
      if (pos < text.size() && text[pos] == '\n') ++pos;
      mapped.push_back('\n');
      changes->whitespace = true;
    } else if (cp == '\n' || cp == '\t') {
      mapped.push_back(static_cast<char>(cp));
    } else if (cp == 0x0B || cp == 0x0C || cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
      mapped.push_back('\n');
      changes->whitespace = true;
    } else if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F ||
               cp == 0x3000) {
      mapped.push_back(' ');
      changes->whitespace = true;
    } else if (cp == 0x200B || cp == 0x2060 || cp == 0xFEFF) {
      changes->whitespace = true;
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      changes->control = true;
    } else {
      mapped.append(text.substr(at, pos - at));
    }
  }
  // Pass 2: lines. Trailing blanks go, inner runs collapse, blank lines merge.
  std::string out;
  out.reserve(mapped.size());
  int blank_run = 0;
  bool any_line = false;
  size_t start = 0;
  while (start <= mapped.size()) {
    size_t nl = mapped.find('\n', start);
    size_t end = nl == std::string::npos ? mapped.size() : nl;
    std::string_view line(mapped.data() + start, end - start);
    size_t trimmed_end = line.size();
    while (trimmed_end > 0 && (line[trimmed_end - 1] == ' ' || line[trimmed_end - 1] == '\t')) --trimmed_end;
    std::string_view kept = line.substr(0, trimmed_end);
    if (kept.empty()) {
      if (any_line) ++blank_run;
    } else {
      if (any_line) {
        out.push_back('\n');
        if (blank_run > 0) out.push_back('\n');
      }
      blank_run = 0;
      any_line = true;
      size_t indent = 0;
      while (indent < kept.size() && (kept[indent] == ' ' || kept[indent] == '\t')) ++indent;
      out.append(kept.substr(0, indent));
      if (!collapse_spaces) {
        out.append(kept.substr(indent));
      } else {
        bool in_run = false;
        for (size_t k = indent; k < kept.size(); ++k) {
          char c = kept[k];
          if (c == ' ' || c == '\t') {
            if (!in_run) out.push_back(' ');
            in_run = true;
          } else {
            out.push_back(c);
            in_run = false;
          }
        }
      }
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (out != mapped) changes->whitespace = true;
  return out;
}

Result<std::unique_ptr<NormalizeOperator>> NormalizeOperator::create(NormalizeOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  return std::unique_ptr<NormalizeOperator>(new NormalizeOperator(std::move(options)));
}

Verdict NormalizeOperator::process(Record* record, bool* changed) {
  if (!text_parts(record, options_.field, &parts_)) return Verdict::Drop("no_text_field");
  // A chat is normalised message by message, and is empty when every message is.
  std::vector<std::string> normalized;
  normalized.reserve(parts_.size());
  Changes changes;  // of any message: each reason counts the record once
  bool empty = true;
  for (const std::string* text : parts_) {
    normalized.push_back(normalize(*text, &changes));
    empty = empty && strip_space(normalized.back()).empty();
  }
  if (changes.html) note("html");
  if (changes.unicode) note("unicode");
  if (changes.whitespace) note("whitespace");
  if (changes.control) note("control");
  if (options_.drop_empty && empty) return Verdict::Drop("empty_after_normalize");
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (normalized[i] != *parts_[i]) {
      *changed = true;
      *parts_[i] = std::move(normalized[i]);
    }
  }
  return Verdict::Keep();
}

std::string NormalizeOperator::normalize(const std::string& text, Changes* changes) const {
  std::string value = text;
  if (options_.html && looks_like_html(value)) {
    std::string stripped = html_to_text(value);
    if (stripped != value) {
      changes->html = true;
      value = std::move(stripped);
    }
  }
  if (options_.unicode != "none") {
    auto normalized = unicode_normalize(value, options_.unicode);
    // Valid UTF-8 always normalises; on the impossible failure the text stays as it was.
    if (normalized.ok() && *normalized != value) {
      changes->unicode = true;
      value = std::move(*normalized);
    }
  }
  if (options_.whitespace) {
    WhitespaceChanges found;
    std::string cleaned = clean_whitespace(value, options_.collapse_spaces, &found);
    changes->whitespace = changes->whitespace || found.whitespace;
    changes->control = changes->control || found.control;
    value = std::move(cleaned);
  }
  return value;
}

}  // namespace keel::data
