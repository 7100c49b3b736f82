// The Jinja lexer: template source to tokens, with jinja2's whitespace rules as Hugging
// Face transformers configures them (trim_blocks, lstrip_blocks, no trailing newline
// kept), "-" / "+" whitespace control on every tag, comments dropped and {% raw %}
// bodies kept as text. Used by the parser (jinja_parser.h). Positions are 1-based
// line and column (in bytes) of the original source.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine::jinja {

enum class TokenKind {
  kData,           // template text, already whitespace-trimmed
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // text: the literal's value, escapes resolved
  kInteger,
  kFloat,
  kOperator,  // text: the operator ("+", "//", "[", ...)
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;
  int column = 1;
};

// Tokenizes source. Errors (an unterminated tag, comment or string, a character that
// cannot start a token, unbalanced brackets) are kInvalidArgument naming line:column.
Result<std::vector<Token>> tokenize(std::string_view source);

}  // namespace keel::engine::jinja
