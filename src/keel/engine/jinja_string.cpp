#include "keel/engine/jinja_string.h"

#include <algorithm>

namespace keel::engine::jinja {

std::vector<Utf8Char> utf8_chars(std::string_view s) {
  std::vector<Utf8Char> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    uint32_t cp = c;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool valid = len == 1 ? c < 0x80 : i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if (valid && len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) valid = false;
    if (valid && len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) valid = false;
    if (!valid) {
      len = 1;
      cp = c;
    }
    out.push_back({cp, s.substr(i, len)});
    i += len;
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  return ascii ? s.size() : utf8_chars(s).size();
}

bool is_python_space(uint32_t cp) {
  if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return true;
  if (cp < 0x80) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

namespace {

// A bad byte decodes to itself (< 0x100); only a real character may count as space.
bool char_is_space(const Utf8Char& c) {
  return (c.bytes.size() > 1 || c.code_point < 0x80) && is_python_space(c.code_point);
}

bool is_line_break(const Utf8Char& c) {
  const uint32_t cp = c.code_point;
  if (c.bytes.size() == 1) return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E);
  return cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

std::string python_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  const auto cs = utf8_chars(s);
  std::vector<std::string_view> strip_set;
  if (chars) {
    for (const auto& c : utf8_chars(*chars)) strip_set.push_back(c.bytes);
  }
  auto strippable = [&](const Utf8Char& c) {
    if (!chars) return char_is_space(c);
    return std::find(strip_set.begin(), strip_set.end(), c.bytes) != strip_set.end();
  };
  size_t begin = 0, end = cs.size();
  if (left) {
    while (begin < end && strippable(cs[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strippable(cs[end - 1])) --end;
  }
  if (begin == end) return "";
  const size_t from = static_cast<size_t>(cs[begin].bytes.data() - s.data());
  const size_t to = static_cast<size_t>(cs[end - 1].bytes.data() - s.data()) + cs[end - 1].bytes.size();
  return std::string(s.substr(from, to - from));
}

std::vector<std::string> python_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t pos = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      const size_t hit = s.find(*sep, pos);
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(pos, hit - pos));
      pos = hit + sep->size();
    }
    out.emplace_back(s.substr(pos));
    return out;
  }
  const auto cs = utf8_chars(s);
  size_t i = 0;
  while (i < cs.size()) {
    while (i < cs.size() && char_is_space(cs[i])) ++i;
    if (i == cs.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      // The rest, with its trailing whitespace stripped, is the last part.
      out.push_back(
          python_strip(s.substr(static_cast<size_t>(cs[i].bytes.data() - s.data())), std::nullopt, false, true));
      return out;
    }
    std::string word;
    while (i < cs.size() && !char_is_space(cs[i])) word += cs[i++].bytes;
    out.push_back(std::move(word));
  }
  return out;
}

std::vector<std::string> python_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (maxsplit < 0) return python_split(s, sep, maxsplit);
  std::vector<std::string> out;
  if (sep) {
    size_t end = s.size();
    while (static_cast<int64_t>(out.size()) < maxsplit && end >= sep->size()) {
      const size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  const auto cs = utf8_chars(s);
  size_t i = cs.size();
  while (i > 0) {
    while (i > 0 && char_is_space(cs[i - 1])) --i;
    if (i == 0) break;
    if (static_cast<int64_t>(out.size()) == maxsplit) {
      const size_t end = static_cast<size_t>(cs[i - 1].bytes.data() - s.data()) + cs[i - 1].bytes.size();
      out.push_back(python_strip(s.substr(0, end), std::nullopt, true, false));
      break;
    }
    size_t j = i;
    while (j > 0 && !char_is_space(cs[j - 1])) --j;
    std::string word;
    for (size_t k = j; k < i; ++k) word += cs[k].bytes;
    out.push_back(std::move(word));
    i = j;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> python_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  const auto cs = utf8_chars(s);
  std::string line;
  for (size_t i = 0; i < cs.size(); ++i) {
    if (!is_line_break(cs[i])) {
      line += cs[i].bytes;
      continue;
    }
    std::string end(cs[i].bytes);
    if (cs[i].code_point == '\r' && i + 1 < cs.size() && cs[i + 1].code_point == '\n') {
      end += '\n';
      ++i;
    }
    if (keepends) line += end;
    out.push_back(std::move(line));
    line.clear();
  }
  if (!line.empty()) out.push_back(std::move(line));
  return out;
}

std::string python_replace(std::string_view s, std::string_view old_text, std::string_view new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts new_text before every character and at the end.
    const auto cs = utf8_chars(s);
    int64_t done = 0;
    for (const auto& c : cs) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      out += c.bytes;
    }
    if (count < 0 || done < count) out += new_text;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += new_text;
    pos = hit + old_text.size();
    ++done;
  }
  out += s.substr(pos);
  return out;
}

int64_t python_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
  int64_t n = 0;
  size_t pos = 0;
  while ((pos = s.find(sub, pos)) != std::string_view::npos) {
    ++n;
    pos += sub.size();
  }
  return n;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

namespace {
bool is_ascii_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
}  // namespace

std::string python_title(std::string_view s) {
  std::string out(s);
  bool previous_cased = false;
  for (char& c : out) {
    const bool letter = is_ascii_letter(c);
    if (letter) {
      if (previous_cased && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (!previous_cased && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    // Bytes of a multi-byte character count as cased letters (most scripts are).
    previous_cased = letter || static_cast<unsigned char>(c) >= 0x80;
  }
  return out;
}

std::string python_capitalize(std::string_view s) {
  std::string out = ascii_lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

}  // namespace keel::engine::jinja
