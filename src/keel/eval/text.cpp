#include "keel/eval/text.h"

#include <utf8proc.h>

#include <cstdint>
#include <cstring>

namespace keel::eval {

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    // ASCII, the common case: skip eight bytes at a time while no high bit is set.
    uint64_t word;
    if (left >= 8 && (std::memcpy(&word, p, 8), (word & 0x8080808080808080ULL) == 0)) {
      p += 8;
      left -= 8;
      continue;
    }
    if (*p < 0x80) {
      ++p;
      --left;
      continue;
    }
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0 || c < 0) return false;
    p += n;
    left -= n;
  }
  return true;
}

std::u32string to_u32(std::string_view utf8) {
  std::u32string out;
  out.reserve(utf8.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(utf8.size());
  while (left > 0) {
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0 || c < 0) {
      out.push_back(U'\uFFFD');
      n = 1;
    } else {
      out.push_back(static_cast<char32_t>(c));
    }
    p += n;
    left -= n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

bool is_py_space(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace: bidi class WS, B or S, or category Zs.
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680:
    case 0x2000: case 0x2001: case 0x2002: case 0x2003: case 0x2004: case 0x2005:
    case 0x2006: case 0x2007: case 0x2008: case 0x2009: case 0x200A:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return false;
  }
}

std::vector<std::string> py_split(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  bool in_word = false;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t c;
    utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    if (n <= 0 || c < 0) {
      c = 0xFFFD;
      n = 1;
    }
    if (is_py_space(static_cast<char32_t>(c))) {
      if (in_word) out.push_back(std::move(current));
      current.clear();
      in_word = false;
    } else {
      append_utf8(current, static_cast<char32_t>(c));
      in_word = true;
    }
    p += n;
    left -= n;
  }
  if (in_word) out.push_back(std::move(current));
  return out;
}

std::string py_strip(std::string_view text) {
  std::u32string u = to_u32(text);
  size_t b = 0, e = u.size();
  while (b < e && is_py_space(u[b])) ++b;
  while (e > b && is_py_space(u[e - 1])) --e;
  return to_utf8(std::u32string_view(u).substr(b, e - b));
}

namespace {

bool is_cased(char32_t c) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  return p->category == UTF8PROC_CATEGORY_LU || p->category == UTF8PROC_CATEGORY_LL ||
         p->category == UTF8PROC_CATEGORY_LT || utf8proc_toupper(static_cast<utf8proc_int32_t>(c)) != static_cast<utf8proc_int32_t>(c) ||
         utf8proc_tolower(static_cast<utf8proc_int32_t>(c)) != static_cast<utf8proc_int32_t>(c);
}

bool is_case_ignorable(char32_t c) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  return p->category == UTF8PROC_CATEGORY_MN || p->category == UTF8PROC_CATEGORY_ME ||
         p->category == UTF8PROC_CATEGORY_CF || p->category == UTF8PROC_CATEGORY_LM ||
         p->category == UTF8PROC_CATEGORY_SK || c == U'\'' || c == U'.' || c == U':' || c == 0x00AD ||
         c == 0x2019 || c == 0x00B7;
}

// Unicode's Final_Sigma condition, as CPython's handle_capital_sigma checks it.
bool final_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  bool cased_before = false;
  while (j > 0) {
    char32_t c = s[--j];
    if (is_case_ignorable(c)) continue;
    cased_before = is_cased(c);
    break;
  }
  if (!cased_before) return false;
  for (size_t k = i + 1; k < s.size(); ++k) {
    char32_t c = s[k];
    if (is_case_ignorable(c)) continue;
    return !is_cased(c);
  }
  return true;
}

}  // namespace

std::u32string py_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t c = text[i];
    if (c < 0x80) {
      out.push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
    } else if (c == 0x0130) {  // SpecialCasing: İ -> i + COMBINING DOT ABOVE
      out.push_back(U'i');
      out.push_back(0x0307);
    } else if (c == 0x03A3) {  // Σ: final sigma rule
      out.push_back(final_sigma(text, i) ? 0x03C2 : 0x03C3);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

std::string py_lower(std::string_view text) {
  bool ascii = true;
  for (char ch : text) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    std::string out(text);
    for (auto& ch : out) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
    }
    return out;
  }
  return to_utf8(py_lower(to_u32(text)));
}

char unicode_major_category(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: return 'L';
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: return 'M';
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return 'N';
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO: return 'P';
    case UTF8PROC_CATEGORY_SM: case UTF8PROC_CATEGORY_SC: case UTF8PROC_CATEGORY_SK: case UTF8PROC_CATEGORY_SO: return 'S';
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: return 'Z';
    default: return 'C';
  }
}

}  // namespace keel::eval
