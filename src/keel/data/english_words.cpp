#include "keel/data/english_words.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cctype>

#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

// Unicode Sentence_Terminal marks: a token that is one of them ends a sentence.
constexpr char32_t kTerminalMarks[] = {
    0x21,    0x2E,    0x3F,    0x589,   0x61F,   0x6D4,   0x700,   0x701,   0x702,   0x7F9,   0x964,   0x965,   0x104A,
    0x104B,  0x1362,  0x1367,  0x1368,  0x166E,  0x1735,  0x1736,  0x1803,  0x1809,  0x1944,  0x1945,  0x1AA8,  0x1AA9,
    0x1AAA,  0x1AAB,  0x1B5A,  0x1B5B,  0x1B5E,  0x1B5F,  0x1C3B,  0x1C3C,  0x1C7E,  0x1C7F,  0x203C,  0x203D,  0x2047,
    0x2048,  0x2049,  0x2E2E,  0x2E3C,  0x3002,  0xA4FF,  0xA60E,  0xA60F,  0xA6F3,  0xA6F7,  0xA876,  0xA877,  0xA8CE,
    0xA8CF,  0xA92F,  0xA9C8,  0xA9C9,  0xAA5D,  0xAA5E,  0xAA5F,  0xAAF0,  0xAAF1,  0xABEB,  0xFE52,  0xFE56,  0xFE57,
    0xFF01,  0xFF0E,  0xFF1F,  0xFF61,  0x10A56, 0x10A57, 0x11047, 0x11048, 0x110BE, 0x110BF, 0x110C0, 0x110C1, 0x11141,
    0x11142, 0x11143, 0x111C5, 0x111C6, 0x111CD, 0x111DE, 0x111DF, 0x11238, 0x11239, 0x1123B, 0x1123C, 0x112A9, 0x1144B,
    0x1144C, 0x115C2, 0x115C3, 0x115C9, 0x115CA, 0x115CB, 0x115CC, 0x115CD, 0x115CE, 0x115CF, 0x115D0, 0x115D1, 0x115D2,
    0x115D3, 0x115D4, 0x115D5, 0x115D6, 0x115D7, 0x11641, 0x11642, 0x1173C, 0x1173D, 0x1173E, 0x11A42, 0x11A43, 0x11A9B,
    0x11A9C, 0x11C41, 0x11C42, 0x16A6E, 0x16A6F, 0x16AF5, 0x16B37, 0x16B38, 0x16B44, 0x1BC9F, 0x1DA88,
};

bool is_terminal_mark(std::string_view token) {
  size_t pos = 0;
  char32_t cp = next_code_point(token, &pos);
  if (pos != token.size()) return false;
  return std::binary_search(std::begin(kTerminalMarks), std::end(kTerminalMarks), cp);
}

// Every character is Unicode punctuation (P*).
bool is_punctuation_token(std::string_view token) {
  if (token.empty()) return false;
  size_t pos = 0;
  while (pos < token.size()) {
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(next_code_point(token, &pos)))) {
      case UTF8PROC_CATEGORY_PC:
      case UTF8PROC_CATEGORY_PD:
      case UTF8PROC_CATEGORY_PS:
      case UTF8PROC_CATEGORY_PE:
      case UTF8PROC_CATEGORY_PI:
      case UTF8PROC_CATEGORY_PF:
      case UTF8PROC_CATEGORY_PO:
        break;
      default:
        return false;
    }
  }
  return true;
}

// The character classes of the rules (spaCy's char_classes, as Unicode classes).
const std::string kPunct[] = {"…",   "……",  ",",   ":",   ";",  "\\!", "\\?", "¿", "؟",   "¡", "\\(", "\\)",
                              "\\[", "\\]", "\\{", "\\}", "<",  ">",   "_",   "#", "\\*", "&", "。",  "？",
                              "！",  "，",  "、",  "；",  "：", "～",  "·",   "।", "،",   "۔", "؛",   "٪"};
const std::string kQuotes[] = {"'",  "\"", "”",  "“",  "`",  "‘",  "´",  "’",  "‚",  ",",  "„",
                               "»",  "«",  "「", "」", "『", "』", "（", "）", "〔", "〕", "【",
                               "】", "《", "》", "〈", "〉", "〈", "〉", "⟦",  "⟧"};
const std::string kCurrency[] = {"\\$", "£", "€", "¥", "฿", "US\\$", "C\\$", "A\\$", "﷼", "[\\x{20A0}-\\x{20BF}]"};
const std::string kUnits[] = {"km", "km²", "km³", "m",  "m²",  "m³",   "dm",  "dm²", "dm³", "cm", "cm²",  "cm³",
                              "mm", "mm²", "mm³", "ha", "µm",  "nm",   "yd",  "in",  "ft",  "kg", "g",    "mg",
                              "µg", "t",   "lb",  "oz", "m/s", "km/h", "kmh", "mph", "hPa", "Pa", "mbar", "mb",
                              "MB", "kb",  "KB",  "gb", "GB",  "tb",   "TB",  "T",   "G",   "M",  "K",    "%"};
const char kHyphens[] = "-|–|—|--|---|——|~";
const char kAlpha[] = "\\p{L}";
const char kAlphaLower[] = "\\p{Ll}\\p{Lo}";
const char kAlphaUpper[] = "\\p{Lu}\\p{Lo}";
const char kIcons[] = "[\\p{So}]";

template <size_t N>
std::string joined(const std::string (&items)[N], const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < N; ++i) out += (i > 0 ? sep : "") + items[i];
  return out;
}

// Characters of a list as they go inside a character class ("\\!" stays escaped).
template <size_t N>
std::string class_chars(const std::string (&items)[N]) {
  std::string out;
  for (const auto& i : items) {
    if (i == "……") continue;
    out += i;
  }
  return out;
}

std::string prefix_pattern() {
  std::vector<std::string> pieces = {"§", "%", "=", "—", "–", "\\+(?![0-9])"};
  for (const auto& p : kPunct) pieces.push_back(p);
  pieces.push_back("\\.\\.+");
  pieces.push_back("…");
  for (const auto& q : kQuotes) pieces.push_back(q == "\"" ? "\"" : q);
  for (const auto& c : kCurrency) pieces.push_back(c);
  pieces.push_back(kIcons);
  std::string out;
  for (const auto& p : pieces) out += (out.empty() ? "^(?:" : "|^(?:") + p + ")";
  return out;
}

std::string suffix_pattern() {
  std::vector<std::string> pieces;
  for (const auto& p : kPunct) pieces.push_back(p);
  pieces.push_back("\\.\\.+");
  pieces.push_back("…");
  for (const auto& q : kQuotes) pieces.push_back(q);
  pieces.push_back(kIcons);
  for (const char* s : {"'s", "'S", "’s", "’S", "—", "–"}) pieces.push_back(s);
  pieces.push_back("(?<=[0-9])\\+");
  pieces.push_back("(?<=°[FfCcKk])\\.");
  pieces.push_back("(?<=[0-9])(?:" + joined(kCurrency, "|") + ")");
  pieces.push_back("(?<=[0-9])(?:" + joined(kUnits, "|") + ")");
  // A period after a digit, a lowercase letter, %²-+, punctuation or a quote: as in
  // spaCy, the class also holds the '|', '(', '?', ':' and ')' of its own spelling.
  pieces.push_back(std::string("(?<=[0-9") + kAlphaLower + "%²\\-\\+" + class_chars(kPunct) +
                   "|(?:" + class_chars(kQuotes) + ")])\\.");
  pieces.push_back(std::string("(?<=[") + kAlphaUpper + "][" + kAlphaUpper + "])\\.");
  std::string out;
  for (const auto& p : pieces) out += (out.empty() ? "(?:" : "|(?:") + p + ")$";
  return out;
}

std::string infix_pattern() {
  std::string q = class_chars(kQuotes);
  std::vector<std::string> pieces = {
      "\\.\\.+",
      "…",
      kIcons,
      "(?<=[0-9])[+\\-\\*^](?=[0-9-])",
      std::string("(?<=[") + kAlphaLower + q + "])\\.(?=[" + kAlphaUpper + q + "])",
      std::string("(?<=[") + kAlpha + "]),(?=[" + kAlpha + "])",
      std::string("(?<=[") + kAlpha + "0-9])(?:" + kHyphens + ")(?=[" + kAlpha + "])",
      std::string("(?<=[") + kAlpha + "0-9])[:<>=/](?=[" + kAlpha + "])",
  };
  std::string out;
  for (const auto& p : pieces) out += (out.empty() ? "(?:" : "|(?:") + p + ")";
  return out;
}

// A web address or an e-mail address: kept whole, never split at its infixes.
const char kUrlPattern[] =
    "^(?:[\\w\\+\\-\\.]{2,}://)?(?:\\S+(?::\\S*)?@)?"
    "(?:(?:[A-Za-z0-9\\x{a1}-\\x{ffff}][A-Za-z0-9\\x{a1}-\\x{ffff}_-]{0,62})?[A-Za-z0-9\\x{a1}-\\x{ffff}]\\.)+"
    "(?:[\\p{Ll}\\p{Lo}]{2,63}\\.?)(?::\\d{2,5})?(?:[/?#]\\S*)?$";

using Specials =
    std::unordered_map<std::string, std::vector<size_t>, EnglishWordTokenizer::StringHash, std::equal_to<>>;

// English special cases, as the lengths of their pieces.
void add_special(Specials* specials, const std::vector<std::string>& pieces) {
  std::string whole;
  std::vector<size_t> lengths;
  for (const auto& p : pieces) {
    whole += p;
    lengths.push_back(p.size());
  }
  specials->emplace(whole, lengths);
}

std::string title_case(const std::string& s) {
  std::string out = s;
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

Specials english_specials() {
  Specials s;
  // Contractions: base word + clitic(s), each with ' and ’, lower and title case.
  struct Base {
    const char* word;
    std::vector<std::string> clitics;
  };
  const std::vector<std::string> kWh = {"'d", "'ll", "'re", "'s", "'ve", "'d've", "'ll've"};
  const std::vector<Base> bases = {
      {"i", {"'m", "'d", "'ll", "'ve", "'d've", "'ll've", "'ma"}},
      {"you", {"'re", "'d", "'ll", "'ve", "'d've", "'ll've"}},
      {"we", {"'re", "'d", "'ll", "'ve", "'d've", "'ll've"}},
      {"they", {"'re", "'d", "'ll", "'ve", "'d've", "'ll've"}},
      {"he", {"'s", "'d", "'ll", "'d've", "'ll've"}},
      {"she", {"'s", "'d", "'ll", "'d've", "'ll've"}},
      {"it", {"'s", "'d", "'ll", "'d've", "'ll've"}},
      {"that", {"'s", "'d", "'ll", "'d've", "'ll've"}},
      {"this", {"'s", "'d", "'ll", "'d've", "'ll've"}},
      {"these", {"'re", "'d", "'ll", "'ve", "'d've", "'ll've"}},
      {"those", {"'re", "'d", "'ll", "'ve", "'d've", "'ll've"}},
      {"there", kWh},
      {"how", kWh},
      {"what", kWh},
      {"when", kWh},
      {"where", kWh},
      {"who", kWh},
      {"why", kWh},
      {"let", {"'s"}},
      {"could", {"'ve"}},
      {"might", {"'ve"}},
      {"must", {"'ve"}},
      {"should", {"'ve"}},
      {"would", {"'ve"}},
      {"not", {"'ve"}},
  };
  // Negations: "n't" (and "n't've" where English has it) after the verb's stem.
  const std::vector<std::pair<const char*, bool>> negations = {
      {"ai", false},    {"are", false},  {"ca", true},    {"could", true}, {"dare", false}, {"did", true},
      {"does", true},   {"do", true},    {"had", true},   {"has", false},  {"have", false}, {"is", false},
      {"may", true},    {"might", true}, {"must", true},  {"need", true},  {"ought", true}, {"sha", true},
      {"should", true}, {"was", false},  {"were", false}, {"wo", true},    {"would", true}};
  // Spelled without apostrophes too ("dont" -> do nt), unless that spelling is a word.
  const std::vector<std::string> kBareWords = {"cmon", "hell",  "howdy", "ill",  "its",  "lets",
                                               "shed", "shell", "well",  "were", "whore"};
  auto add_variants = [&s, &kBareWords](const std::string& word, const std::vector<std::string>& clitics) {
    for (const std::string& base : {word, title_case(word)}) {
      for (const char* apostrophe : {"'", "’", ""}) {
        std::vector<std::string> pieces;
        for (std::string c : std::vector<std::string>{base}) pieces.push_back(c);
        for (std::string c : clitics) {
          for (size_t p = c.find('\''); p != std::string::npos; p = c.find('\'', p + std::string(apostrophe).size())) {
            c.replace(p, 1, apostrophe);
          }
          pieces.push_back(c);
        }
        if (*apostrophe == '\0') {
          std::string bare;
          for (const auto& p : pieces) bare += p;
          std::string lower = bare;
          lower[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(lower[0])));
          if (std::find(kBareWords.begin(), kBareWords.end(), lower) != kBareWords.end()) continue;
        }
        add_special(&s, pieces);
      }
    }
  };
  for (const auto& b : bases) {
    for (const auto& c : b.clitics) {
      std::vector<std::string> clitics;
      // "'d've" is two pieces, 'd and 've; "'ma" is 'm and a.
      size_t second = c.find('\'', 1);
      if (c == "'ma") {
        clitics = {"'m", "a"};
      } else if (second != std::string::npos) {
        clitics = {c.substr(0, second), c.substr(second)};
      } else {
        clitics = {c};
      }
      add_variants(b.word, clitics);
    }
  }
  for (const auto& [stem, with_ve] : negations) {
    add_variants(stem, {"n't"});
    if (with_ve) add_variants(stem, {"n't", "'ve"});
  }
  for (const char* y : {"y'", "Y'", "y’", "Y’", "y", "Y"}) add_special(&s, {y, "all"});
  for (const auto& pieces :
       std::vector<std::vector<std::string>>{{"can", "not"}, {"gon", "na"}, {"got", "ta"}, {"c'm", "on"}}) {
    add_special(&s, pieces);
    std::vector<std::string> title = pieces;
    title[0] = title_case(title[0]);
    add_special(&s, title);
  }
  // Times: 1am .. 12pm, 1a.m. .. 12p.m.
  for (int h = 1; h <= 12; ++h) {
    for (const char* suffix : {"am", "pm", "a.m.", "p.m."}) add_special(&s, {std::to_string(h), suffix});
  }
  // Kept whole: abbreviations with their period, lowercase initials, a few emoticons
  // and symbols the affix rules would split.
  for (const char* whole :
       {"Adm.",  "Ak.",     "Ala.",    "Apr.",  "Ariz.",  "Ark.",  "Aug.",  "Bros.", "Calif.", "Co.",   "Colo.",
        "Conn.", "Corp.",   "D.C.",    "Dec.",  "Del.",   "Dr.",   "E.G.",  "E.g.",  "Feb.",   "Fla.",  "Ga.",
        "Gen.",  "Gov.",    "I.E.",    "I.e.",  "Ia.",    "Id.",   "Ill.",  "Inc.",  "Ind.",   "Jan.",  "Jr.",
        "Jul.",  "Jun.",    "Kan.",    "Kans.", "Ky.",    "La.",   "Ltd.",  "Mar.",  "Mass.",  "Md.",   "Messrs.",
        "Mich.", "Minn.",   "Miss.",   "Mo.",   "Mont.",  "Mr.",   "Mrs.",  "Ms.",   "Mt.",    "N.C.",  "N.D.",
        "N.H.",  "N.J.",    "N.M.",    "N.Y.",  "Neb.",   "Nebr.", "Nev.",  "Nov.",  "Oct.",   "Okla.", "Ore.",
        "Pa.",   "Ph.D.",   "Prof.",   "Rep.",  "Rev.",   "S.C.",  "Sen.",  "Sep.",  "Sept.",  "St.",   "Tenn.",
        "Va.",   "Wash.",   "Wis.",    "a.m.",  "co.",    "e.g.",  "i.e.",  "p.m.",  "v.s.",   "vs.",   "ma'am",
        "Ma'am", "o'clock", "O'clock", "'em",   "'cause", "'bout", "'nuff", "'s",    "'d",     "'ll",   "'re",
        "'m",    "''",      "and/or",  "w/o",   "C++",    ":)",    ":(",    ":-)",   ":-(",    ";)",    ";-)",
        ":D",    ":P",      ":p",      "<3",    "=)",     "^_^",   "xD",    "XD"}) {
    add_special(&s, {whole});
  }
  for (char c = 'a'; c <= 'z'; ++c) add_special(&s, {std::string(1, c) + "."});
  // Temperatures: "°C." is a degree sign, a unit and a period.
  for (const char* unit : {"C", "F", "K", "c", "f", "k"}) add_special(&s, {"°", unit, "."});
  for (const char* c : {"ä.", "ö.", "ü."}) add_special(&s, {c});
  return s;
}

}  // namespace

struct EnglishWordTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

EnglishWordTokenizer::~EnglishWordTokenizer() = default;

Result<std::shared_ptr<const EnglishWordTokenizer>> EnglishWordTokenizer::create() {
  std::shared_ptr<EnglishWordTokenizer> t(new EnglishWordTokenizer());
  auto compile = [](const std::string& pattern, std::unique_ptr<Regex>* out, uint32_t options = 0) -> Status {
    int error = 0;
    PCRE2_SIZE offset = 0;
    auto r = std::make_unique<Regex>();
    r->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | options, &error, &offset, nullptr);
    if (r->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return internal_error("word tokenizer pattern at " + std::to_string(offset) + ": " +
                            reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE);
    *out = std::move(r);
    return Status::Ok();
  };
  KEEL_RETURN_IF_ERROR(compile(prefix_pattern(), &t->prefix_, PCRE2_ANCHORED));
  KEEL_RETURN_IF_ERROR(compile(suffix_pattern(), &t->suffix_));
  KEEL_RETURN_IF_ERROR(compile(infix_pattern(), &t->infix_));
  KEEL_RETURN_IF_ERROR(compile(kUrlPattern, &t->url_, PCRE2_ANCHORED));
  t->specials_ = english_specials();
  for (const auto& [k, v] : t->specials_) t->max_special_ = std::max(t->max_special_, k.size());
  return std::shared_ptr<const EnglishWordTokenizer>(std::move(t));
}

namespace {

// The first match of code in s at or after start: [begin, end), or false. One match
// block per thread, reused (the tokenizer itself is shared between threads).
bool find(pcre2_code* code, std::string_view s, size_t start, uint32_t options, size_t* begin, size_t* end) {
  struct MatchData {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~MatchData() { pcre2_match_data_free(data); }
  };
  thread_local MatchData md;
  int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), start, options | PCRE2_NO_UTF_CHECK,
                       md.data, nullptr);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && rc != PCRE2_ERROR_PARTIAL) return false;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.data);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

}  // namespace

size_t EnglishWordTokenizer::prefix_length(std::string_view s) const {
  size_t b = 0, e = 0;
  return find(prefix_->code, s, 0, 0, &b, &e) ? e - b : 0;
}

size_t EnglishWordTokenizer::suffix_length(std::string_view s) const {
  // Every suffix ends the string and is a few characters long, except a run of periods:
  // the leftmost match starts no earlier than that, so the search starts there (the
  // lookbehinds still see what comes before).
  size_t start = s.size() > 24 ? s.size() - 24 : 0;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t dots = s.size();
  while (dots > 0 && s[dots - 1] == '.') --dots;
  if (s.size() - dots >= 2) start = std::min(start, dots);
  size_t b = 0, e = 0;
  return find(suffix_->code, s, start, 0, &b, &e) ? e - b : 0;
}

bool EnglishWordTokenizer::is_url(std::string_view s) const {
  size_t b = 0, e = 0;
  return find(url_->code, s, 0, 0, &b, &e);
}

bool EnglishWordTokenizer::special(std::string_view s, std::vector<std::string_view>* out) const {
  if (s.size() > max_special_) return false;
  auto it = specials_.find(s);
  if (it == specials_.end()) return false;
  size_t pos = 0;
  for (size_t len : it->second) {
    out->push_back(s.substr(pos, len));
    pos += len;
  }
  return true;
}

void EnglishWordTokenizer::split_infixes(std::string_view s, std::vector<std::string_view>* out) const {
  size_t start = 0;
  size_t search = 0;
  size_t b = 0, e = 0;
  while (search < s.size() && find(infix_->code, s, search, 0, &b, &e)) {
    if (b == 0) {  // an infix at the very start splits nothing
      search = e > b ? e : b + 1;
      continue;
    }
    if (b != start) out->push_back(s.substr(start, b - start));
    if (e != b) out->push_back(s.substr(b, e - b));
    start = e;
    search = e > b ? e : e + 1;
  }
  if (start < s.size()) out->push_back(s.substr(start));
}

void EnglishWordTokenizer::tokenize_chunk(std::string_view chunk, std::vector<std::string_view>* out) const {
  size_t first = out->size();
  split_chunk(chunk, out);
  // Pieces the rules split apart that together spell a special case are joined back
  // into it ("Mr.Smith": Mr . Smith -> Mr. Smith), longest first.
  std::vector<std::string_view> pieces(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
  if (pieces.size() < 2) return;
  out->resize(first);
  for (size_t i = 0; i < pieces.size();) {
    bool joined = false;
    for (size_t j = std::min(pieces.size(), i + 4); j >= i + 2 && !joined; --j) {
      std::string_view span(pieces[i].data(),
                            static_cast<size_t>(pieces[j - 1].data() + pieces[j - 1].size() - pieces[i].data()));
      if (special(span, out)) {
        i = j;
        joined = true;
      }
    }
    if (!joined) out->push_back(pieces[i++]);
  }
}

void EnglishWordTokenizer::split_chunk(std::string_view chunk, std::vector<std::string_view>* out) const {
  if (special(chunk, out)) return;
  std::vector<std::string_view> prefixes, suffixes;
  std::string_view s = chunk;
  size_t last_size = std::string_view::npos;
  while (!s.empty() && s.size() != last_size) {
    if (is_special(s)) break;
    last_size = s.size();
    size_t pre = prefix_length(s);
    if (pre > 0) {
      std::string_view minus_pre = s.substr(pre);
      if (!minus_pre.empty() && is_special(minus_pre)) {
        prefixes.push_back(s.substr(0, pre));
        s = minus_pre;
        break;
      }
    }
    size_t suf = suffix_length(s.substr(pre));
    if (suf > 0) {
      std::string_view minus_suf = s.substr(0, s.size() - suf);
      if (!minus_suf.empty() && is_special(minus_suf)) {
        suffixes.push_back(s.substr(s.size() - suf));
        s = minus_suf;
        break;
      }
    }
    if (pre > 0 && suf > 0 && pre + suf <= s.size()) {
      prefixes.push_back(s.substr(0, pre));
      suffixes.push_back(s.substr(s.size() - suf));
      s = s.substr(pre, s.size() - pre - suf);
    } else if (pre > 0) {
      prefixes.push_back(s.substr(0, pre));
      s = s.substr(pre);
    } else if (suf > 0) {
      suffixes.push_back(s.substr(s.size() - suf));
      s = s.substr(0, s.size() - suf);
    }
    if (!s.empty() && is_special(s)) break;
  }
  for (auto p : prefixes) out->push_back(p);
  if (!s.empty()) {
    if (special(s, out)) {
    } else if (is_url(s)) {
      out->push_back(s);
    } else {
      split_infixes(s, out);
    }
  }
  for (auto it = suffixes.rbegin(); it != suffixes.rend(); ++it) out->push_back(*it);
}

std::vector<std::string_view> EnglishWordTokenizer::tokens(std::string_view text) const {
  std::vector<std::string_view> out;
  size_t pos = 0;
  bool after_word = false;
  while (pos < text.size()) {
    size_t start = pos;
    size_t next = pos;
    bool space = is_python_space(next_code_point(text, &next));
    pos = next;
    while (pos < text.size()) {
      size_t peek = pos;
      if (is_python_space(next_code_point(text, &peek)) != space) break;
      pos = peek;
    }
    std::string_view run = text.substr(start, pos - start);
    if (space) {
      if (after_word && run[0] == ' ') run.remove_prefix(1);  // the word's trailing space
      if (!run.empty()) out.push_back(run);
      after_word = false;
    } else {
      tokenize_chunk(run, &out);
      after_word = true;
    }
  }
  return out;
}

std::vector<std::string> EnglishWordTokenizer::words(std::string_view text) const {
  std::vector<std::string> words;
  for (auto t : tokens(text)) {
    std::string_view w = strip_space(t);
    if (!w.empty()) words.emplace_back(w);
  }
  return words;
}

size_t EnglishWordTokenizer::sentence_count(std::string_view text) const {
  std::vector<std::string_view> toks = tokens(text);
  if (toks.empty()) return 0;
  size_t count = 1;
  bool seen_terminal = false;
  for (auto t : toks) {
    bool terminal = is_terminal_mark(t);
    if (seen_terminal && !terminal && !is_punctuation_token(t)) {
      ++count;
      seen_terminal = false;
    } else if (terminal) {
      seen_terminal = true;
    }
  }
  return count;
}

}  // namespace keel::data
