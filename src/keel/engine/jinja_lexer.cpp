#include "keel/engine/jinja_lexer.h"

#include <array>
#include <cstdio>
#include <cstring>

#include "keel/engine/jinja_string.h"
#include "keel/engine/tokenizer_pretokenizer.h"

namespace keel::engine::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

// jinja2's operators, longest first so "//" wins over "/".
constexpr std::array<const char*, 26> kOperators = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                                    "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                                    ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // jinja2 treats \r\n, \r and \n as line breaks and writes each as \n; without
    // keep_trailing_newline it drops one newline at the very end.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  Result<std::vector<Token>> run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_opener(pos_);
      if (start == std::string::npos) {
        emit_data(src_.substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      const char kind = src_[start + 1];  // '{', '%' or '#'
      char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      const size_t after_open = start + 2 + (sign != '\0' ? 1 : 0);
      std::string text = src_.substr(pos_, start - pos_);
      strip_before_tag(text, sign, kind != '{', line_starting);
      emit_data(std::move(text), pos_);

      if (kind == '#') {
        KEEL_RETURN_IF_ERROR(skip_comment(start, after_open, line_starting));
        continue;
      }
      if (kind == '%') {
        size_t raw_body = 0;
        if (match_raw_begin(after_open, raw_body)) {
          KEEL_RETURN_IF_ERROR(lex_raw(start, raw_body, line_starting));
          continue;
        }
      }
      push(kind == '{' ? TokenKind::kVariableBegin : TokenKind::kBlockBegin, kind == '{' ? "{{" : "{%", start);
      pos_ = after_open;
      KEEL_RETURN_IF_ERROR(lex_tag(kind == '{', start, line_starting));
    }
    push(TokenKind::kEnd, "", src_.size());
    return std::move(tokens_);
  }

 private:
  size_t find_opener(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // "-" strips all whitespace before the tag; otherwise lstrip_blocks removes the
  // spaces and tabs that open the tag's line, except before {{ }} and after "+".
  static void strip_before_tag(std::string& text, char sign, bool lstrip_applies, bool line_starting) {
    if (sign == '-') {
      text = python_strip(text, std::nullopt, false, true);
      return;
    }
    if (sign == '+' || !lstrip_applies) return;
    const size_t newline = text.rfind('\n');
    const size_t line_begin = newline == std::string::npos ? 0 : newline + 1;
    if (line_begin == 0 && !line_starting) return;
    if (line_begin == text.size()) return;
    for (const auto& c : utf8_chars(std::string_view(text).substr(line_begin))) {
      if (!is_python_space(c.code_point) || (c.bytes.size() == 1 && c.code_point >= 0x80)) return;
    }
    text.resize(line_begin);
  }

  void emit_data(std::string text, size_t at) {
    if (text.empty()) return;
    push(TokenKind::kData, std::move(text), at);
  }

  void push(TokenKind kind, std::string text, size_t at) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    position(at, t.line, t.column);
    tokens_.push_back(std::move(t));
  }

  void position(size_t at, int& line, int& column) {
    // Tokens come in source order, so the line count advances incrementally.
    while (line_pos_ < at && line_pos_ < src_.size()) {
      if (src_[line_pos_] == '\n') {
        ++line_;
        line_start_ = line_pos_ + 1;
      }
      ++line_pos_;
    }
    line = line_;
    column = static_cast<int>(at - line_start_) + 1;
  }

  Status error_at(size_t at, const std::string& message) {
    int line = 0, column = 0;
    if (at < line_pos_) {
      // Rare (errors only): count from the start.
      line_pos_ = 0;
      line_ = 1;
      line_start_ = 0;
    }
    position(at, line, column);
    return invalid_argument("line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + message);
  }

  void skip_whitespace() {
    while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
  }

  // Comments end at the first "+#}", "-#}" (eating whitespace after) or "#}" (eating
  // one newline: trim_blocks).
  Status skip_comment(size_t start, size_t body, bool& line_starting) {
    for (size_t i = body; i + 1 < src_.size(); ++i) {
      const bool signed_end = (src_[i] == '+' || src_[i] == '-') && src_.compare(i + 1, 2, "#}") == 0;
      if (signed_end) {
        pos_ = i + 3;
        if (src_[i] == '-') skip_whitespace();
      } else if (src_.compare(i, 2, "#}") == 0) {
        pos_ = i + 2;
        if (pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
      } else {
        continue;
      }
      line_starting = src_[pos_ - 1] == '\n';
      return Status::Ok();
    }
    return error_at(start, "unterminated comment: '{#' has no matching '#}'");
  }

  // {%[-+]? raw [-]?%}: body is set to where the raw text begins.
  bool match_raw_begin(size_t after_open, size_t& body) {
    size_t i = after_open;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0) return false;
    i += 3;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "-%}") == 0) {
      i += 3;
      while (i < src_.size() && is_space(src_[i])) ++i;
    } else if (src_.compare(i, 2, "%}") == 0) {
      i += 2;
    } else {
      return false;
    }
    body = i;
    return true;
  }

  Status lex_raw(size_t start, size_t body, bool& line_starting) {
    for (size_t i = src_.find("{%", body); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t j = i + 2;
      char sign = '\0';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) sign = src_[j++];
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_space(src_[j])) ++j;
      size_t end = 0;
      if (src_.compare(j, 3, "+%}") == 0) {
        end = j + 3;
      } else if (src_.compare(j, 3, "-%}") == 0) {
        end = j + 3;
        while (end < src_.size() && is_space(src_[end])) ++end;
      } else if (src_.compare(j, 2, "%}") == 0) {
        end = j + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      std::string text = src_.substr(body, i - body);
      strip_before_tag(text, sign, true, false);
      emit_data(std::move(text), body);
      pos_ = end;
      line_starting = src_[pos_ - 1] == '\n';
      return Status::Ok();
    }
    return error_at(start, "unterminated raw block: '{% raw %}' has no matching '{% endraw %}'");
  }

  // The inside of {{ }} or {% %}: names, literals and operators up to the closing tag
  // (which only counts outside brackets, so "{{ {'a': {}} }}" works).
  Status lex_tag(bool variable, size_t start, bool& line_starting) {
    std::vector<char> brackets;
    while (true) {
      if (pos_ >= src_.size()) {
        return error_at(start, variable ? "unterminated '{{': missing '}}'" : "unterminated '{%': missing '%}'");
      }
      if (brackets.empty()) {
        const size_t at = pos_;
        bool closed = false;
        if (variable) {
          if (src_.compare(pos_, 3, "-}}") == 0) {
            pos_ += 3;
            skip_whitespace();
            closed = true;
          } else if (src_.compare(pos_, 2, "}}") == 0) {
            pos_ += 2;
            closed = true;
          }
        } else {
          if (src_.compare(pos_, 3, "+%}") == 0) {
            pos_ += 3;
            closed = true;
          } else if (src_.compare(pos_, 3, "-%}") == 0) {
            pos_ += 3;
            skip_whitespace();
            closed = true;
          } else if (src_.compare(pos_, 2, "%}") == 0) {
            pos_ += 2;
            if (pos_ < src_.size() && src_[pos_] == '\n') ++pos_;  // trim_blocks
            closed = true;
          }
        }
        if (closed) {
          push(variable ? TokenKind::kVariableEnd : TokenKind::kBlockEnd, variable ? "}}" : "%}", at);
          line_starting = src_[pos_ - 1] == '\n';
          return Status::Ok();
        }
      }
      const char c = src_[pos_];
      if (is_space(c)) {
        skip_whitespace();
        continue;
      }
      if (is_digit(c)) {
        KEEL_RETURN_IF_ERROR(lex_number());
        continue;
      }
      if (is_name_start(c)) {
        const size_t begin = pos_;
        while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
        push(TokenKind::kName, src_.substr(begin, pos_ - begin), begin);
        continue;
      }
      if (c == '\'' || c == '"') {
        KEEL_RETURN_IF_ERROR(lex_string());
        continue;
      }
      bool matched = false;
      for (const char* op : kOperators) {
        const size_t len = std::strlen(op);
        if (src_.compare(pos_, len, op) != 0) continue;
        const char o = op[0];
        if (len == 1 && (o == '(' || o == '[' || o == '{')) {
          if (brackets.size() >= 256) return error_at(pos_, "brackets nested too deeply");
          brackets.push_back(o == '(' ? ')' : o == '[' ? ']' : '}');
        } else if (len == 1 && (o == ')' || o == ']' || o == '}')) {
          if (brackets.empty()) return error_at(pos_, std::string("unexpected '") + o + "'");
          if (brackets.back() != o) {
            return error_at(pos_, std::string("unexpected '") + o + "', expected '" + brackets.back() + "'");
          }
          brackets.pop_back();
        }
        push(TokenKind::kOperator, op, pos_);
        pos_ += len;
        matched = true;
        break;
      }
      if (!matched) {
        char shown[8];
        std::snprintf(shown, sizeof(shown), "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        return error_at(pos_,
                        "unexpected character '" + (c > 0x20 && c < 0x7f ? std::string(1, c) : shown) + "' in tag");
      }
    }
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Integers (decimal with "_", 0x / 0o / 0b) and floats ("1.5", "2e10", "1_000.5").
  Status lex_number() {
    const size_t begin = pos_;
    auto digits = [&](size_t i) {
      // (\d+_)*\d+ starting at i: returns the end, or i when none.
      size_t j = i;
      while (true) {
        size_t k = j;
        while (k < src_.size() && is_digit(src_[k])) ++k;
        if (k == j) return j == i ? i : j;
        j = k;
        if (j + 1 < src_.size() && src_[j] == '_' && is_digit(src_[j + 1])) {
          ++j;
          continue;
        }
        return j;
      }
    };
    const bool after_dot = begin > 0 && src_[begin - 1] == '.';
    size_t int_end = digits(begin);
    size_t float_end = 0;
    if (!after_dot) {
      size_t j = int_end;
      bool fraction = false;
      if (j + 1 < src_.size() && src_[j] == '.' && is_digit(src_[j + 1])) {
        j = digits(j + 1);
        fraction = true;
      }
      if (j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
        size_t k = j + 1;
        if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
        const size_t exp_end = digits(k);
        if (exp_end > k) float_end = exp_end;
      }
      if (float_end == 0 && fraction) float_end = j;
    }
    if (float_end > 0) {
      std::string text;
      for (size_t i = begin; i < float_end; ++i) {
        if (src_[i] != '_') text += src_[i];
      }
      Token t;
      t.kind = TokenKind::kFloat;
      t.text = text;
      t.float_value = std::strtod(text.c_str(), nullptr);
      position(begin, t.line, t.column);
      tokens_.push_back(std::move(t));
      pos_ = float_end;
      return Status::Ok();
    }
    int base = 10;
    size_t i = begin;
    if (src_[i] == '0' && i + 1 < src_.size()) {
      const char p = static_cast<char>(src_[i + 1] | 0x20);
      if (p == 'x') base = 16;
      if (p == 'o') base = 8;
      if (p == 'b') base = 2;
    }
    uint64_t value = 0;
    bool overflow = false;
    auto add_digit = [&](int d) {
      if (value > (static_cast<uint64_t>(INT64_MAX) - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
        overflow = true;
      }
      value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    };
    if (base != 10) {
      i += 2;
      size_t digit_count = 0;
      while (i < src_.size()) {
        if (src_[i] == '_' && i + 1 < src_.size() && hex_value(src_[i + 1]) >= 0 && hex_value(src_[i + 1]) < base) {
          ++i;
          continue;
        }
        const int d = hex_value(src_[i]);
        if (d < 0 || d >= base) break;
        add_digit(d);
        ++digit_count;
        ++i;
      }
      if (digit_count == 0) {
        base = 10;  // a lone "0"; the letter lexes as a name
        i = begin + 1;
        value = 0;
      }
    } else if (src_[i] == '0') {
      // "0", "00", "0_0": leading zeros only make a zero.
      ++i;
      while (i < src_.size() && (src_[i] == '0' || (src_[i] == '_' && i + 1 < src_.size() && src_[i + 1] == '0'))) {
        ++i;
      }
    } else {
      i = int_end;
      for (size_t k = begin; k < int_end; ++k) {
        if (src_[k] != '_') add_digit(src_[k] - '0');
      }
    }
    if (overflow) return error_at(begin, "integer literal does not fit in 64 bits");
    Token t;
    t.kind = TokenKind::kInteger;
    t.text = src_.substr(begin, i - begin);
    t.int_value = static_cast<int64_t>(value);
    position(begin, t.line, t.column);
    tokens_.push_back(std::move(t));
    pos_ = i;
    return Status::Ok();
  }

  // A quoted string with Python's escapes (\n, \t, \\, \', \", \xHH, \uXXXX,
  // \UXXXXXXXX, octal); an unknown escape keeps its backslash, as Python does.
  Status lex_string() {
    const size_t begin = pos_;
    const char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) return error_at(begin, "unterminated string literal");
      const char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        value += c;
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) return error_at(begin, "unterminated string literal");
      const char e = src_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\n':
          break;  // a line continuation
        case '\\':
        case '\'':
        case '"':
          value += e;
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'v':
          value += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t count = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < count; ++k) {
            const int d = pos_ + k < src_.size() ? hex_value(src_[pos_ + k]) : -1;
            if (d < 0) return error_at(pos_ - 2, std::string("truncated \\") + e + " escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(d);
          }
          if (cp > 0x10FFFF) return error_at(pos_ - 2, "\\U escape out of range in string literal");
          pos_ += count;
          utf8_append(cp, value);
          break;
        }
        case 'N':
          return error_at(pos_ - 2, "\\N{...} escapes are not supported in string literals");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
            }
            utf8_append(cp, value);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    Token t;
    t.kind = TokenKind::kString;
    t.text = std::move(value);
    position(begin, t.line, t.column);
    tokens_.push_back(std::move(t));
    return Status::Ok();
  }

  std::string src_;
  size_t pos_ = 0;
  std::vector<Token> tokens_;
  // Incremental position tracking for position().
  size_t line_pos_ = 0;
  size_t line_start_ = 0;
  int line_ = 1;
};

}  // namespace

Result<std::vector<Token>> tokenize(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace keel::engine::jinja
