// Text normalisation for duplicate detection. Byte-level and ASCII-only on purpose:
// fast, locale-free and identical on every machine. Non-ASCII bytes pass through
// unchanged (so "É" and "é" stay different; documented, not an accident).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::data {

// Exact-duplicate key text: ASCII letters lowercased, runs of ASCII whitespace
// collapsed to one space, leading and trailing whitespace dropped.
std::string normalize_for_exact(std::string_view text);

// Near-duplicate word view (after datatrove's simplify_text, ASCII subset): lowercase,
// every run of digits becomes "0", ASCII punctuation separates words like whitespace.
// Appends the words of text to *words as views into *storage (which it rewrites).
void simplified_words(std::string_view text, std::string* storage, std::vector<std::string_view>* words);

// Near-duplicate character view: lowercase, whitespace runs collapsed to one space,
// trimmed. Character n-grams are taken over this text's code points.
std::string simplified_chars(std::string_view text);

}  // namespace keel::data
