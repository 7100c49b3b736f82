// The "normalize" step: rewrites one text field so that the same text reads the same
// bytes. In order: HTML to text (html_text.h; when asked), Unicode normalisation (NFC
// or NFKC, utf8proc), then whitespace and control characters (clean_whitespace).
// Counts records changed per reason: "html", "unicode", "whitespace", "control".
// A record whose text ends up empty is dropped ("empty_after_normalize").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/operator.h"

namespace keel::data {

struct NormalizeOptions {
  std::string field = "text";
  std::string unicode = "nfc";  // "nfc", "nfkc" or "none"
  bool html = false;            // strip HTML to text
  bool whitespace = true;       // clean_whitespace
  bool collapse_spaces = true;  // runs of spaces inside a line (not its indentation) become one
  bool drop_empty = true;

  void describe(ParamSet* params);
  Status validate() const;
};

// What clean_whitespace changed.
struct WhitespaceChanges {
  bool whitespace = false;
  bool control = false;
};

// Line breaks unified to "\n" (\r\n, \r, \v, \f, U+0085, U+2028, U+2029); Unicode
// spaces (U+00A0, U+2000..U+200A, U+202F, U+205F, U+3000, U+1680) become ' '; zero-width
// spaces and byte-order marks (U+200B, U+2060, U+FEFF) and control characters other
// than \t and \n (C0, DEL, C1) are removed; trailing spaces of every line removed;
// runs of spaces and tabs after a line's indentation collapsed (when asked); more than
// one blank line in a row becomes one; blank lines at either end removed.
std::string clean_whitespace(std::string_view text, bool collapse_spaces, WhitespaceChanges* changes);

// Unicode normalisation form "nfc" or "nfkc" (stable, composed).
Result<std::string> unicode_normalize(std::string_view text, std::string_view form);

class NormalizeOperator : public RecordOperator {
 public:
  static Result<std::unique_ptr<NormalizeOperator>> create(NormalizeOptions options);
  std::string_view name() const override { return "normalize"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  explicit NormalizeOperator(NormalizeOptions options) : options_(std::move(options)) {}
  // What normalising changed, by reason.
  struct Changes {
    bool html = false, unicode = false, whitespace = false, control = false;
  };
  // The normalised text; sets the reasons it changed in *changes.
  std::string normalize(const std::string& text, Changes* changes) const;
  NormalizeOptions options_;
  std::vector<std::string*> parts_;  // the record being processed
};

}  // namespace keel::data
