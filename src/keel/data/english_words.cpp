#include "keel/data/english_words.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <array>
#include <set>

#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

// Abbreviations that end in a period without ending a sentence (lowercase, without
// the final period). Punkt learns these from a corpus; this list holds the common ones.
const std::set<std::string, std::less<>>& abbreviations() {
  static const std::set<std::string, std::less<>> kAbbreviations = {
      "mr",     "mrs", "ms",  "dr",   "prof", "sr",  "jr",  "st",  "vs",  "etc",  "e.g",   "i.e",
      "inc",    "ltd", "co",  "corp", "jan",  "feb", "mar", "apr", "jun", "jul",  "aug",   "sep",
      "sept",   "oct", "nov", "dec",  "u.s",  "u.k", "a.m", "p.m", "no",  "vol",  "fig",   "gen",
      "col",    "lt",  "sgt", "capt", "gov",  "sen", "rep", "rev", "ave", "blvd", "dept",  "est",
      "approx", "mt",  "ft",  "cf",   "al",   "pp",  "ed",  "eds", "p",   "ca",   "u.s.a", "ph.d"};
  return kAbbreviations;
}

// Characters that may follow the terminal mark of a sentence inside its last token.
bool is_closing(char32_t cp) {
  switch (cp) {
    case '"':
    case '\'':
    case ')':
    case ']':
    case '}':
    case ';':
    case '*':
    case ':':
    case '@':
    case '(':
    case '{':
    case '[':
    case 0x201D:
    case 0x2019:
    case 0xBB:
      return true;
    default:
      return false;
  }
}

bool is_opening(char32_t cp) {
  switch (cp) {
    case '"':
    case '\'':
    case '(':
    case '[':
    case '{':
    case '<':
    case '`':
    case 0x201C:
    case 0x2018:
    case 0xAB:
      return true;
    default:
      return false;
  }
}

bool starts_lower(std::string_view token) {
  size_t pos = 0;
  while (pos < token.size()) {
    char32_t cp = next_code_point(token, &pos);
    if (is_opening(cp)) continue;
    return utf8proc_islower(static_cast<utf8proc_int32_t>(cp));
  }
  return false;
}

bool is_number(std::string_view type) {
  bool digit = false;
  for (char c : type) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != ',' && c != '.' && c != '-') {
      return false;
    }
  }
  return digit;
}

bool is_initial(std::string_view type) {
  size_t pos = 0;
  if (type.empty()) return false;
  char32_t cp = next_code_point(type, &pos);
  return pos == type.size() && is_letter(cp);
}

// Whether a token (a run without whitespace) that is followed by another token ends
// a sentence.
bool ends_sentence(std::string_view token, std::string_view next) {
  // The terminal mark may sit before closing quotes or brackets: "stop." (end.)
  size_t end = token.size();
  while (end > 0) {
    size_t begin = end - 1;
    while (begin > 0 && (static_cast<unsigned char>(token[begin]) & 0xC0) == 0x80) --begin;
    size_t pos = begin;
    if (!is_closing(next_code_point(token, &pos))) break;
    end = begin;
  }
  std::string_view core = token.substr(0, end);
  if (core.empty()) return false;
  char last = core.back();
  if (last == '?' || last == '!') return true;
  if (last != '.') return false;
  // An ellipsis: Punkt breaks there only when its trained statistics call the next word
  // a sentence starter; without them it does not.
  if (core.size() >= 2 && core[core.size() - 2] == '.') return false;
  size_t start = 0;
  while (start < core.size()) {
    size_t pos = start;
    if (!is_opening(next_code_point(core, &pos))) break;
    start = pos;
  }
  std::string type = ascii_lower(core.substr(start, core.size() - 1 - start));
  if (type.empty()) return false;
  const auto& abbrev = abbreviations();
  if (abbrev.count(type) > 0) return false;
  size_t dash = type.rfind('-');
  if (dash != std::string::npos && abbrev.count(std::string_view(type).substr(dash + 1)) > 0) return false;
  if (is_initial(type)) return false;
  if (is_number(type)) return !starts_lower(next);
  return true;
}

}  // namespace

std::vector<std::string_view> split_sentences(std::string_view text) {
  std::vector<std::string_view> sentences;
  // Whitespace-separated tokens as [begin, end) offsets.
  std::vector<std::pair<size_t, size_t>> tokens;
  size_t pos = 0;
  size_t start = std::string_view::npos;
  while (pos < text.size()) {
    size_t at = pos;
    bool space = is_python_space(next_code_point(text, &pos));
    if (space && start != std::string_view::npos) {
      tokens.emplace_back(start, at);
      start = std::string_view::npos;
    } else if (!space && start == std::string_view::npos) {
      start = at;
    }
  }
  if (start != std::string_view::npos) tokens.emplace_back(start, text.size());
  if (tokens.empty()) return sentences;
  size_t sentence_start = tokens[0].first;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    std::string_view token = text.substr(tokens[i].first, tokens[i].second - tokens[i].first);
    std::string_view next = text.substr(tokens[i + 1].first, tokens[i + 1].second - tokens[i + 1].first);
    if (ends_sentence(token, next)) {
      sentences.push_back(text.substr(sentence_start, tokens[i].second - sentence_start));
      sentence_start = tokens[i + 1].first;
    }
  }
  sentences.push_back(text.substr(sentence_start, tokens.back().second - sentence_start));
  return sentences;
}

struct EnglishWordTokenizer::Rule {
  pcre2_code* code = nullptr;
  std::string replacement;
  ~Rule() { pcre2_code_free(code); }
};

EnglishWordTokenizer::~EnglishWordTokenizer() = default;

Result<std::shared_ptr<const EnglishWordTokenizer>> EnglishWordTokenizer::create() {
  // NLTK's improved Treebank rules, in their order, with PCRE2 replacement syntax.
  // Rules [0, kPad) run before the text is padded with spaces, the rest after.
  static const std::array<std::pair<const char*, const char*>, 31> kRules = {{
      // starting quotes
      {"([«“‘„]|[`]+)", " $1 "},
      {"^\"", "``"},
      {"(``)", " $1 "},
      {"([ \\(\\[{<])(\"|\\'{2})", "$1 `` "},
      {"(?i)(\\')(?!re|ve|ll|m|t|s|d|n)(\\w)\\b", "$1 $2"},
      // punctuation
      {"([^\\.])(\\.)([\\]\\)}>\"\\'»”’ ]*)\\s*$", "$1 $2 $3 "},
      {"([:,])([^\\d])", " $1 $2"},
      {"([:,])$", " $1 "},
      {"\\.{2,}", " $0 "},
      {"[;@#$%&]", " $0 "},
      {"([^\\.])(\\.)([\\]\\)}>\"\\']*)\\s*$", "$1 $2$3 "},
      {"[?!]", " $0 "},
      {"([^'])' ", "$1 ' "},
      {"[*]", " $0 "},
      // parentheses and brackets, double dashes
      {"[\\]\\[\\(\\)\\{\\}\\<\\>]", " $0 "},
      {"--", " -- "},
      // ending quotes (after padding)
      {"([»”’])", " $1 "},
      {"''", " '' "},
      {"\"", " '' "},
      {"([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 "},
      {"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 "},
      // contractions
      {"(?i)\\b(can)(?#X)(not)\\b", " $1 $2 "},
      {"(?i)\\b(d)(?#X)('ye)\\b", " $1 $2 "},
      {"(?i)\\b(gim)(?#X)(me)\\b", " $1 $2 "},
      {"(?i)\\b(gon)(?#X)(na)\\b", " $1 $2 "},
      {"(?i)\\b(got)(?#X)(ta)\\b", " $1 $2 "},
      {"(?i)\\b(lem)(?#X)(me)\\b", " $1 $2 "},
      {"(?i)\\b(more)(?#X)('n)\\b", " $1 $2 "},
      {"(?i)\\b(wan)(?#X)(na)(?=\\s)", " $1 $2 "},
      {"(?i) ('t)(?#X)(is)\\b", " $1 $2 "},
      {"(?i) ('t)(?#X)(was)\\b", " $1 $2 "},
  }};
  std::shared_ptr<EnglishWordTokenizer> tokenizer(new EnglishWordTokenizer());
  for (const auto& [pattern, replacement] : kRules) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    auto rule = std::make_unique<Rule>();
    rule->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                               &error, &offset, nullptr);
    if (rule->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return internal_error(std::string("word tokenizer rule ") + pattern + ": " +
                            reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(rule->code, PCRE2_JIT_COMPLETE);
    rule->replacement = replacement;
    tokenizer->rules_.push_back(std::move(rule));
  }
  return std::shared_ptr<const EnglishWordTokenizer>(std::move(tokenizer));
}

std::string EnglishWordTokenizer::apply(size_t first, size_t last, std::string text) const {
  std::string out;
  for (size_t i = first; i < last; ++i) {
    const Rule& rule = *rules_[i];
    PCRE2_SIZE size = text.size() * 2 + 64;
    while (true) {
      out.resize(size);
      PCRE2_SIZE out_size = size;
      int rc = pcre2_substitute(rule.code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                                PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | PCRE2_NO_UTF_CHECK,
                                nullptr, nullptr, reinterpret_cast<PCRE2_SPTR>(rule.replacement.data()),
                                rule.replacement.size(), reinterpret_cast<PCRE2_UCHAR*>(out.data()), &out_size);
      if (rc == PCRE2_ERROR_NOMEMORY) {
        size = out_size + 1;
        continue;
      }
      if (rc > 0) {
        out.resize(out_size);
        text.swap(out);
      }
      break;  // rc == 0: no match; a negative rc cannot happen with these fixed rules
    }
  }
  return text;
}

std::vector<std::string> EnglishWordTokenizer::sentence_words(std::string_view sentence) const {
  constexpr size_t kPad = 16;
  std::string text = apply(0, kPad, std::string(sentence));
  text = apply(kPad, rules_.size(), " " + text + " ");
  std::vector<std::string> words;
  for (std::string_view w : split_on_space(text)) words.emplace_back(w);
  return words;
}

std::vector<std::string> EnglishWordTokenizer::words(std::string_view text) const {
  std::vector<std::string> words;
  for (std::string_view sentence : split_sentences(text)) {
    for (auto& w : sentence_words(sentence)) words.push_back(std::move(w));
  }
  return words;
}

}  // namespace keel::data
