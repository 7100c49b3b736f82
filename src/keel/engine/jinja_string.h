// Python str operations on UTF-8 strings, for the Jinja interpreter: length, indexing
// and slicing by code point, strip/split/splitlines with Python's idea of whitespace
// and line breaks, case mapping. Invalid UTF-8 never fails: each bad byte counts as
// one character and passes through unchanged. Case mapping covers ASCII only
// (other characters are left as they are).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::engine::jinja {

// One character: its code point (or the byte, for an invalid one) and its bytes.
struct Utf8Char {
  uint32_t code_point;
  std::string_view bytes;
};
// The characters of s in order.
std::vector<Utf8Char> utf8_chars(std::string_view s);
// len(s) in Python.
size_t utf8_length(std::string_view s);

// Python's str.isspace() for one code point.
bool is_python_space(uint32_t code_point);

// str.strip / lstrip / rstrip: chars unset strips whitespace; else any of those characters.
std::string python_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit): sep unset splits on runs of whitespace and drops empty parts.
std::vector<std::string> python_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
// str.rsplit(sep, maxsplit).
std::vector<std::string> python_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
// str.splitlines(keepends).
std::vector<std::string> python_splitlines(std::string_view s, bool keepends);
// str.replace(old, new, count); count < 0 replaces all.
std::string python_replace(std::string_view s, std::string_view old_text, std::string_view new_text, int64_t count);
// str.count(sub).
int64_t python_count(std::string_view s, std::string_view sub);

std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);
// str.title(): upper after a non-letter, lower elsewhere.
std::string python_title(std::string_view s);
// str.capitalize(): first upper, rest lower.
std::string python_capitalize(std::string_view s);

}  // namespace keel::engine::jinja
