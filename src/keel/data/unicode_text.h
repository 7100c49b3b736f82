// Code-point level helpers for the text operators: UTF-8 decoding, Python's notions of
// whitespace, line breaks and letters (str.isspace, str.splitlines, str.isalpha), and
// the punctuation / symbol class the quality filters count. The filters follow rules
// published as Python code, so "a character" here means a code point, as in Python.
// Input must be valid UTF-8 (every RecordReader checks); invalid bytes decode as U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace keel::data {

// Decodes the code point at text[*pos] and advances *pos past it.
char32_t next_code_point(std::string_view text, size_t* pos);
void append_utf8(char32_t cp, std::string* out);
// Number of code points (Python's len()).
size_t code_point_count(std::string_view text);

// Python's str.isspace() for one code point.
bool is_python_space(char32_t cp);
// A line boundary for Python's str.splitlines(): \n \r \v \f \x1c \x1d \x1e \x85 U+2028 U+2029.
bool is_line_boundary(char32_t cp);
// Python's str.isalpha(): Unicode categories Lu Ll Lt Lm Lo.
bool is_letter(char32_t cp);
// Unicode punctuation (P*) and symbols (S*), and control characters: what the Gopher
// rules call a "symbol" character. (datatrove lists its characters by hand; this is the
// Unicode class that list samples.)
bool is_punctuation_or_symbol(char32_t cp);

// Python's str.splitlines() (without keepends): "\r\n" is one boundary, and a trailing
// boundary does not start an empty last line.
std::vector<std::string_view> split_lines(std::string_view text);
// Python's str.strip() / str.split() with no arguments.
std::string_view strip_space(std::string_view text);
std::string_view strip_space_right(std::string_view text);
std::string_view strip_space_left(std::string_view text);
std::vector<std::string_view> split_on_space(std::string_view text);

// ASCII letters lowercased; other bytes unchanged (for matching ASCII phrases).
std::string ascii_lower(std::string_view text);

}  // namespace keel::data
