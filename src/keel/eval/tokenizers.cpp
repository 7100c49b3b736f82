#include "keel/eval/tokenizers.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "keel/eval/text.h"

namespace keel::eval {
namespace {

// str.replace(from, to) (all non-overlapping occurrences, left to right).
void replace_all(std::string& s, std::string_view from, std::string_view to, std::string& spare) {
  size_t pos = s.find(from);
  if (pos == std::string::npos) return;
  spare.clear();
  size_t start = 0;
  while (pos != std::string::npos) {
    spare.append(s, start, pos - start);
    spare.append(to);
    start = pos + from.size();
    pos = s.find(from, start);
  }
  spare.append(s, start, std::string::npos);
  s.swap(spare);
}

// The first rule's character class, [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII punctuation
// and symbols except ' , - . (it also holds the space, which apply_13a_regex_rules skips).
constexpr bool in_13a_pad_class(unsigned char c) {
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
         (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == 0x2F;
}
constexpr bool is_ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// Position of the first '.' or ',' in s at or after from (s.size() if none).
size_t find_period_or_comma(const std::string& s, size_t from) {
  const char* p = s.data();
  for (size_t n = s.size(); from < n; ++from) {
    if (is_period_or_comma(p[from])) return from;
  }
  return s.size();
}

// The four regex substitutions of sacrebleu's TokenizerRegexp, applied one after the
// other as re.sub does: left to right, non-overlapping. Why bytes are enough: every
// character a pattern names is ASCII, and [^0-9] consuming one byte of a multi-byte
// character instead of the whole character changes nothing, because an ASCII byte
// never occurs inside a multi-byte sequence.
//
// Rules 2-4 can only match where s has a '.', ',' or '-', so each pass searches for
// those and copies the text between in bulk: same result as visiting every position.
void apply_13a_regex_rules(std::string& s, std::string& spare) {
  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 ". The class includes the space character;
  // padding a space with spaces cannot change a later rule's match (those only look
  // at whether a neighbour is a digit, a '.'/',' or a '-') nor the final split, so
  // spaces are left alone, which keeps the strings short.
  spare.clear();
  for (size_t i = 0, n = s.size(); i < n;) {
    size_t j = i;
    while (j < n && (s[j] == ' ' || !in_13a_pad_class(static_cast<unsigned char>(s[j])))) ++j;
    spare.append(s, i, j - i);
    if (j == n) break;
    spare.push_back(' ');
    spare.push_back(s[j]);
    spare.push_back(' ');
    i = j + 1;
  }
  s.swap(spare);

  if (find_period_or_comma(s, 0) != s.size()) {
    // ([^0-9])([\.,]) -> "\1 \2 "   (period and comma unless preceded by a digit).
    // A match starts at an unconsumed position i whose next character is '.' or ','.
    spare.clear();
    for (size_t i = 0, n = s.size(); i < n;) {
      size_t x = find_period_or_comma(s, i + 1);
      if (x == n) {
        spare.append(s, i, n - i);
        break;
      }
      spare.append(s, i, x - 1 - i);  // positions before x - 1 cannot start a match
      if (!is_ascii_digit(static_cast<unsigned char>(s[x - 1]))) {
        spare.push_back(s[x - 1]);
        spare.push_back(' ');
        spare.push_back(s[x]);
        spare.push_back(' ');
        i = x + 1;
      } else {
        spare.push_back(s[x - 1]);
        i = x;
      }
    }
    s.swap(spare);

    // ([\.,])([^0-9]) -> " \1 \2"   (period and comma unless followed by a digit)
    spare.clear();
    for (size_t i = 0, n = s.size(); i < n;) {
      size_t x = find_period_or_comma(s, i);
      spare.append(s, i, x - i);
      if (x == n) break;
      if (x + 1 < n && !is_ascii_digit(static_cast<unsigned char>(s[x + 1]))) {
        spare.push_back(' ');
        spare.push_back(s[x]);
        spare.push_back(' ');
        spare.push_back(s[x + 1]);
        i = x + 2;
      } else {
        spare.push_back(s[x]);
        i = x + 1;
      }
    }
    s.swap(spare);
  }

  // ([0-9])(-) -> "\1 \2 "   (dash after a digit)
  if (s.find('-', 1) != std::string::npos) {
    spare.clear();
    for (size_t i = 0, n = s.size(); i < n;) {
      size_t d = s.find('-', i + 1);
      if (d == std::string::npos) {
        spare.append(s, i, n - i);
        break;
      }
      spare.append(s, i, d - 1 - i);
      spare.push_back(s[d - 1]);
      if (is_ascii_digit(static_cast<unsigned char>(s[d - 1]))) {
        spare.append(" - ");
        i = d + 1;
      } else {
        i = d;
      }
    }
    s.swap(spare);
  }
}

// Tokenizer13a.__call__ up to (not including) the final ' '.join(line.split()).
void prepare_13a(std::string_view line, TokenizerScratch& scratch) {
  std::string& s = scratch.text;
  s.assign(line);
  replace_all(s, "<skipped>", "", scratch.spare);
  replace_all(s, "-\n", "", scratch.spare);
  replace_all(s, "\n", " ", scratch.spare);
  if (s.find('&') != std::string::npos) {
    // Sequential, as sacrebleu does: "&amp;quot;" becomes "&quot;", not '"'.
    replace_all(s, "&quot;", "\"", scratch.spare);
    replace_all(s, "&amp;", "&", scratch.spare);
    replace_all(s, "&lt;", "<", scratch.spare);
    replace_all(s, "&gt;", ">", scratch.spare);
  }
  s.insert(s.begin(), ' ');
  s.push_back(' ');
  apply_13a_regex_rules(s, scratch.spare);
}

// TokenizerV14International.__call__ up to the final join: three regex substitutions
// over code points, then back to UTF-8 in scratch.text.
void prepare_intl(std::string_view line, TokenizerScratch& scratch) {
  std::u32string& a = scratch.wide;
  std::u32string& b = scratch.wide_spare;
  a.clear();
  for (const char *p = line.data(), *end = p + line.size(); p < end;) a.push_back(next_code_point(p));

  // (\P{N})(\p{P}) -> "\1 \2 "
  b.clear();
  for (size_t i = 0, n = a.size(); i < n;) {
    if (i + 1 < n && !is_intl_number(a[i]) && is_intl_punctuation(a[i + 1])) {
      b.push_back(a[i]);
      b.push_back(U' ');
      b.push_back(a[i + 1]);
      b.push_back(U' ');
      i += 2;
    } else {
      b.push_back(a[i++]);
    }
  }
  // (\p{P})(\P{N}) -> " \1 \2"
  a.clear();
  for (size_t i = 0, n = b.size(); i < n;) {
    if (i + 1 < n && is_intl_punctuation(b[i]) && !is_intl_number(b[i + 1])) {
      a.push_back(U' ');
      a.push_back(b[i]);
      a.push_back(U' ');
      a.push_back(b[i + 1]);
      i += 2;
    } else {
      a.push_back(b[i++]);
    }
  }
  // (\p{S}) -> " \1 "
  scratch.text.clear();
  for (char32_t c : a) {
    if (is_intl_symbol(c)) {
      scratch.text.push_back(' ');
      append_utf8(scratch.text, c);
      scratch.text.push_back(' ');
    } else {
      append_utf8(scratch.text, c);
    }
  }
}

struct CodePointRange {
  char32_t first, last;
  char major;  // 'P', 'S' or 'N'
};

// Characters that utf8proc 2.8 (Unicode 15.0) leaves unassigned but the `regex`
// module sacrebleu uses (2026.11.19) classifies as P, S or N, found by comparing the
// two over all code points. Consulted only where utf8proc says unassigned, so a newer
// utf8proc makes entries redundant, not wrong. tests/fixtures/eval/bleu_chrf.json
// holds the regex module's classes; tokenizers_test.cpp checks every code point.
constexpr CodePointRange kNewerAssignments[] = {
    {0x1B4E, 0x1B4F, 'P'}, {0x1B7F, 0x1B7F, 'P'}, {0x20C1, 0x20C4, 'S'}, {0x2427, 0x2429, 'S'},
    {0x2B96, 0x2B96, 'S'}, {0x2E60, 0x2E63, 'P'}, {0x2FFC, 0x2FFF, 'S'}, {0x31E4, 0x31E5, 'S'},
    {0x31EF, 0x31EF, 'S'}, {0xFBC3, 0xFBD2, 'S'}, {0xFD90, 0xFD91, 'S'}, {0xFDC8, 0xFDCE, 'S'},
    {0x10D40, 0x10D49, 'N'}, {0x10D6E, 0x10D6E, 'P'}, {0x10D8E, 0x10D8F, 'S'}, {0x10EC9, 0x10ECA, 'S'},
    {0x10ED0, 0x10ED0, 'P'}, {0x10ED1, 0x10ED8, 'S'}, {0x113D4, 0x113D5, 'P'}, {0x113D7, 0x113D8, 'P'},
    {0x116D0, 0x116E3, 'N'}, {0x11BE1, 0x11BE1, 'P'}, {0x11BF0, 0x11BF9, 'N'}, {0x11DE0, 0x11DE9, 'N'},
    {0x1246F, 0x1246F, 'N'}, {0x12475, 0x1247F, 'N'}, {0x12550, 0x12686, 'N'}, {0x16130, 0x16139, 'N'},
    {0x16D6D, 0x16D6F, 'P'}, {0x16D70, 0x16D79, 'N'}, {0x16FF4, 0x16FF6, 'N'}, {0x1CC00, 0x1CCEF, 'S'},
    {0x1CCF0, 0x1CCF9, 'N'}, {0x1CCFA, 0x1CCFC, 'S'}, {0x1CD00, 0x1CEB3, 'S'}, {0x1CEBA, 0x1CED0, 'S'},
    {0x1CED2, 0x1CED4, 'S'}, {0x1CEDD, 0x1CEFD, 'S'}, {0x1D1EB, 0x1D1FF, 'S'}, {0x1D253, 0x1D25A, 'S'},
    {0x1D25D, 0x1D25E, 'S'}, {0x1D260, 0x1D27F, 'S'}, {0x1DB00, 0x1DB1C, 'S'}, {0x1E5F1, 0x1E5FA, 'N'},
    {0x1E5FF, 0x1E5FF, 'P'}, {0x1F1AE, 0x1F1AE, 'S'}, {0x1F6D8, 0x1F6D9, 'S'}, {0x1F777, 0x1F77A, 'S'},
    {0x1F7DA, 0x1F7DB, 'S'}, {0x1F7F1, 0x1F7FF, 'S'}, {0x1F8B2, 0x1F8BB, 'S'}, {0x1F8C0, 0x1F8C1, 'S'},
    {0x1F8D0, 0x1F8D8, 'S'}, {0x1FA54, 0x1FA57, 'S'}, {0x1FA89, 0x1FA8F, 'S'}, {0x1FABE, 0x1FABE, 'S'},
    {0x1FAC6, 0x1FAC6, 'S'}, {0x1FAC8, 0x1FAC8, 'S'}, {0x1FACC, 0x1FACD, 'S'}, {0x1FADC, 0x1FADD, 'S'},
    {0x1FADF, 0x1FADF, 'S'}, {0x1FAE9, 0x1FAEB, 'S'}, {0x1FAEF, 0x1FAEF, 'S'}, {0x1FAF9, 0x1FAFA, 'S'},
    {0x1FBCB, 0x1FBEF, 'S'}, {0x1FBFA, 0x1FBFA, 'S'},
};

char intl_major_category(char32_t c) {
  char major = unicode_major_category(c);
  if (major != 'C') return major;
  auto it = std::upper_bound(std::begin(kNewerAssignments), std::end(kNewerAssignments), c,
                             [](char32_t v, const CodePointRange& r) { return v < r.first; });
  if (it != std::begin(kNewerAssignments) && c <= std::prev(it)->last) return std::prev(it)->major;
  return 'C';
}

}  // namespace

Result<BleuTokenizer> parse_bleu_tokenizer(std::string_view name) {
  if (name == "13a") return BleuTokenizer::k13a;
  if (name == "none") return BleuTokenizer::kNone;
  if (name == "intl") return BleuTokenizer::kIntl;
  if (name == "char") return BleuTokenizer::kChar;
  return invalid_argument("unknown BLEU tokenizer '" + std::string(name) + "' (known: 13a, none, intl, char)");
}

std::string_view bleu_tokenizer_name(BleuTokenizer tokenizer) {
  switch (tokenizer) {
    case BleuTokenizer::k13a: return "13a";
    case BleuTokenizer::kNone: return "none";
    case BleuTokenizer::kIntl: return "intl";
    case BleuTokenizer::kChar: return "char";
  }
  return "?";
}

size_t py_space_length(const char* p, const char* end) {
  auto b0 = static_cast<unsigned char>(p[0]);
  if (b0 < 0x80) return ((b0 >= 0x09 && b0 <= 0x0D) || (b0 >= 0x1C && b0 <= 0x20)) ? 1 : 0;
  size_t left = static_cast<size_t>(end - p);
  if (b0 == 0xC2) return (left >= 2 && (static_cast<unsigned char>(p[1]) == 0x85 ||
                                        static_cast<unsigned char>(p[1]) == 0xA0)) ? 2 : 0;
  if (b0 < 0xE1 || b0 > 0xE3 || left < 3) return 0;
  const char32_t c = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(p[1]) & 0x3Fu) << 6) |
                     (static_cast<unsigned char>(p[2]) & 0x3Fu);
  return is_py_space(c) ? 3 : 0;
}

namespace {

// Per leading byte: 1 for an ASCII whitespace byte, 2 where a multi-byte whitespace
// character may start (C2, E1, E2, E3), 0 where none can.
struct SpaceLeadTable {
  unsigned char kind[256] = {};
  constexpr SpaceLeadTable() {
    for (int b = 0x09; b <= 0x0D; ++b) kind[b] = 1;
    for (int b = 0x1C; b <= 0x20; ++b) kind[b] = 1;
    kind[0xC2] = kind[0xE1] = kind[0xE2] = kind[0xE3] = 2;
  }
};
constexpr SpaceLeadTable kSpaceLead;

inline size_t space_length_fast(const char* p, const char* end) {
  switch (kSpaceLead.kind[static_cast<unsigned char>(*p)]) {
    case 0: return 0;
    case 1: return 1;
    default: return py_space_length(p, end);
  }
}

}  // namespace

void split_py_whitespace(std::string_view text, std::vector<std::string_view>& out) {
  const char* p = text.data();
  const char* end = p + text.size();
  const char* word = nullptr;
  while (p < end) {
    size_t space = space_length_fast(p, end);
    if (space) {
      if (word) out.emplace_back(word, static_cast<size_t>(p - word));
      word = nullptr;
      p += space;
    } else {
      if (!word) word = p;
      ++p;  // continuation bytes never start a whitespace character
    }
  }
  if (word) out.emplace_back(word, static_cast<size_t>(end - word));
}

std::string_view rstrip_py_whitespace(std::string_view text) {
  // Backwards, one character at a time: the cost is the trailing whitespace, not the line.
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    const char* p = text.data() + start;
    if (space_length_fast(p, text.data() + end) != end - start) break;
    end = start;
  }
  return text.substr(0, end);
}

bool is_intl_punctuation(char32_t c) { return intl_major_category(c) == 'P'; }
bool is_intl_symbol(char32_t c) { return intl_major_category(c) == 'S'; }
bool is_intl_number(char32_t c) { return intl_major_category(c) == 'N'; }

void tokenize_into(BleuTokenizer tokenizer, std::string_view line, TokenizerScratch& scratch,
                   std::vector<std::string_view>& tokens) {
  tokens.clear();
  switch (tokenizer) {
    case BleuTokenizer::k13a:
      prepare_13a(line, scratch);
      break;
    case BleuTokenizer::kIntl:
      prepare_intl(line, scratch);
      break;
    case BleuTokenizer::kNone:
      scratch.text.assign(line);
      break;
    case BleuTokenizer::kChar: {
      // " ".join(line).split(): every code point that is not whitespace is a token.
      scratch.text.assign(line);
      const char* p = scratch.text.data();
      const char* end = p + scratch.text.size();
      while (p < end) {
        const char* start = p;
        if (size_t space = py_space_length(p, end)) {
          p += space;
          continue;
        }
        next_code_point(p);
        tokens.emplace_back(start, static_cast<size_t>(p - start));
      }
      return;
    }
  }
  split_py_whitespace(scratch.text, tokens);
}

std::string tokenize(BleuTokenizer tokenizer, std::string_view line) {
  if (tokenizer == BleuTokenizer::kNone) return std::string(line);
  if (tokenizer == BleuTokenizer::kChar) {
    // " ".join(line): whitespace characters stay, padded like the others.
    std::string out;
    for (const char *p = line.data(), *end = p + line.size(); p < end;) {
      const char* start = p;
      next_code_point(p);
      if (start != line.data()) out.push_back(' ');
      out.append(start, static_cast<size_t>(p - start));
    }
    return out;
  }
  TokenizerScratch scratch;
  std::vector<std::string_view> tokens;
  tokenize_into(tokenizer, line, scratch, tokens);
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out.push_back(' ');
    out.append(tokens[i]);
  }
  return out;
}

uint64_t hash_bytes(std::string_view bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebULL;
  }
  return mix64(h);
}

void TokenInterner::clear() {
  count_ = 0;
  bytes_.clear();
  if (++generation_ == 0) {  // wrapped: stale slots could look current, so wipe them
    for (Slot& s : slots_) s.generation = 0;
    generation_ = 1;
  }
}

void TokenInterner::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.generation != generation_) continue;
    size_t i = s.hash & mask;
    while (slots_[i].generation == generation_) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

uint32_t TokenInterner::intern(std::string_view token) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const uint64_t h = hash_bytes(token);
  const size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (slots_[i].generation == generation_) {
    const Slot& s = slots_[i];
    if (s.hash == h && s.length == token.size() &&
        std::memcmp(bytes_.data() + s.offset, token.data(), token.size()) == 0) {
      return s.id;
    }
    i = (i + 1) & mask;
  }
  Slot& s = slots_[i];
  s.hash = h;
  s.offset = static_cast<uint32_t>(bytes_.size());
  s.length = static_cast<uint32_t>(token.size());
  s.id = ++count_;
  s.generation = generation_;
  bytes_.append(token);
  return s.id;
}

}  // namespace keel::eval
