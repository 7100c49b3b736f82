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

// Decodes the code point at p and advances p past it. REQUIRES: valid UTF-8 at p
// (check with is_valid_utf8 first); the hot loops of the metrics use this.
inline char32_t next_code_point(const char*& p) {
  auto b0 = static_cast<unsigned char>(*p++);
  if (b0 < 0x80) return b0;
  if (b0 < 0xE0) return ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(*p++) & 0x3Fu);
  if (b0 < 0xF0) {
    char32_t c = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(p[0]) & 0x3Fu) << 6) |
                 (static_cast<unsigned char>(p[1]) & 0x3Fu);
    p += 2;
    return c;
  }
  char32_t c = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(p[0]) & 0x3Fu) << 12) |
               ((static_cast<unsigned char>(p[1]) & 0x3Fu) << 6) | (static_cast<unsigned char>(p[2]) & 0x3Fu);
  p += 3;
  return c;
}

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
