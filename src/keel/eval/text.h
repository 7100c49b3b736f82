// Python-compatible Unicode text operations for metrics whose reference
// implementations are Python (sacrebleu, rouge-score, SQuAD): str.split(),
// str.strip(), str.lower() (full case mapping, final sigma) and the whitespace set
// that str.isspace() and re's \s use. Input is UTF-8; check it with is_valid_utf8()
// at the boundary — the decoders here replace invalid bytes with U+FFFD.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::eval {

bool is_valid_utf8(std::string_view text);

std::u32string to_u32(std::string_view utf8);
std::string to_utf8(std::u32string_view text);
void append_utf8(std::string& out, char32_t c);

// str.isspace() for one character (also re's \s on str patterns).
bool is_py_space(char32_t c);

// str.split() with no arguments: runs of whitespace separate, no empty fields.
std::vector<std::string> py_split(std::string_view text);
// str.strip() with no arguments.
std::string py_strip(std::string_view text);
// str.lower().
std::string py_lower(std::string_view text);
std::u32string py_lower(std::u32string_view text);

// Unicode general category, first letter: 'L', 'M', 'N', 'P', 'S', 'Z', 'C'.
char unicode_major_category(char32_t c);

}  // namespace keel::eval
