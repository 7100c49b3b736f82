#include "keel/util/json_members.h"

#include <cctype>

#include "keel/util/json.h"

namespace keel {
namespace {

// A recursive-descent checker over the text; each value is skipped, not built.
class Scanner {
 public:
  Scanner(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

  Status members(std::vector<JsonMember>& out) {
    skip_space();
    if (!eat('{')) return error("expected a JSON object");
    skip_space();
    if (eat('}')) return end();
    for (;;) {
      skip_space();
      const size_t key_start = i_;
      if (peek() != '"') return error("expected a member name");
      KEEL_RETURN_IF_ERROR(string());
      JsonMember m;
      const std::string_view raw = s_.substr(key_start + 1, i_ - key_start - 2);
      if (raw.find('\\') == std::string_view::npos) {
        m.key = std::string(raw);
      } else {
        auto decoded = parse_json(s_.substr(key_start, i_ - key_start));
        if (!decoded.ok() || !decoded->is_string()) return error("bad member name");
        m.key = decoded->get<std::string>();
      }
      skip_space();
      if (!eat(':')) return error("expected ':'");
      skip_space();
      const size_t value_start = i_;
      KEEL_RETURN_IF_ERROR(value(1));
      m.value = s_.substr(value_start, i_ - value_start);
      out.push_back(std::move(m));
      skip_space();
      if (eat(',')) continue;
      if (eat('}')) return end();
      return error("expected ',' or '}'");
    }
  }

 private:
  Status end() {
    skip_space();
    if (i_ != s_.size()) return error("unexpected text after the object");
    return Status::Ok();
  }

  Status value(int depth) {
    if (depth > max_depth_) return error("nested deeper than " + std::to_string(max_depth_) + " levels");
    switch (peek()) {
      case '"':
        return string();
      case '{': {
        ++i_;
        skip_space();
        if (eat('}')) return Status::Ok();
        for (;;) {
          skip_space();
          if (peek() != '"') return error("expected a member name");
          KEEL_RETURN_IF_ERROR(string());
          skip_space();
          if (!eat(':')) return error("expected ':'");
          skip_space();
          KEEL_RETURN_IF_ERROR(value(depth + 1));
          skip_space();
          if (eat(',')) continue;
          if (eat('}')) return Status::Ok();
          return error("expected ',' or '}'");
        }
      }
      case '[': {
        ++i_;
        skip_space();
        if (eat(']')) return Status::Ok();
        for (;;) {
          skip_space();
          KEEL_RETURN_IF_ERROR(value(depth + 1));
          skip_space();
          if (eat(',')) continue;
          if (eat(']')) return Status::Ok();
          return error("expected ',' or ']'");
        }
      }
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  // A string from its opening quote: escapes checked, no control characters, and the
  // bytes valid UTF-8.
  Status string() {
    ++i_;
    for (;;) {
      if (i_ >= s_.size()) return error("unterminated string");
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return Status::Ok();
      }
      if (c < 0x20) return error("control character in a string");
      if (c == '\\') {
        ++i_;
        if (i_ >= s_.size()) return error("unterminated string");
        const char e = s_[i_++];
        if (e == 'u') {
          for (int k = 0; k < 4; ++k, ++i_) {
            if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) return error("bad \\u escape");
          }
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return error("bad escape");
        }
        continue;
      }
      if (c < 0x80) {
        ++i_;
        continue;
      }
      KEEL_RETURN_IF_ERROR(utf8_sequence(c));
    }
  }

  Status utf8_sequence(unsigned char lead) {
    int extra = 0;
    unsigned min = 0;
    unsigned cp = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1, min = 0x80, cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2, min = 0x800, cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3, min = 0x10000, cp = lead & 0x07;
    } else {
      return error("invalid UTF-8");
    }
    if (i_ + extra >= s_.size()) return error("invalid UTF-8");
    for (int k = 1; k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(s_[i_ + k]);
      if ((b & 0xC0) != 0x80) return error("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return error("invalid UTF-8");
    i_ += extra + 1;
    return Status::Ok();
  }

  Status number() {
    const size_t start = i_;
    eat('-');
    if (!eat('0') && digits() == 0) return error(i_ == start ? "expected a value" : "bad number");
    if (eat('.') && digits() == 0) return error("bad number");
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (!eat('+')) eat('-');
      if (digits() == 0) return error("bad number");
    }
    return Status::Ok();
  }

  size_t digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ - start;
  }

  Status literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return error("expected a value");
    i_ += word.size();
    return Status::Ok();
  }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (i_ >= s_.size() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  Status error(const std::string& what) const {
    return invalid_argument("not a valid JSON object: " + what + " at byte " + std::to_string(i_));
  }

  std::string_view s_;
  size_t i_ = 0;
  const int max_depth_;
};

}  // namespace

Result<std::vector<JsonMember>> json_object_members(std::string_view text, int max_depth) {
  std::vector<JsonMember> out;
  KEEL_RETURN_IF_ERROR(Scanner(text, max_depth).members(out));
  return out;
}

std::string json_object_text(const std::vector<JsonMember>& members) {
  size_t size = 2;
  for (const JsonMember& m : members) size += m.key.size() + m.value.size() + 8;
  std::string out;
  out.reserve(size);
  out += '{';
  for (const JsonMember& m : members) {
    if (out.size() > 1) out += ',';
    out += dump_json(Json(m.key));
    out += ':';
    out += m.value;
  }
  out += '}';
  return out;
}

}  // namespace keel
