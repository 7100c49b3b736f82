#include "keel/data/html_text.h"

#include <algorithm>
#include <cstring>

#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

struct Entity {
  const char* name;
  char32_t code_point;
};

// HTML 4's named character references (the Latin-1, symbol and special sets of its
// DTD), plus XML's &apos;. Sorted by name (byte order) for binary search.
constexpr Entity kEntities[] = {
    {"AElig", 0xC6},     {"Aacute", 0xC1},   {"Acirc", 0xC2},    {"Agrave", 0xC0},   {"Alpha", 0x391},
    {"Aring", 0xC5},     {"Atilde", 0xC3},   {"Auml", 0xC4},     {"Beta", 0x392},    {"Ccedil", 0xC7},
    {"Chi", 0x3A7},      {"Dagger", 0x2021}, {"Delta", 0x394},   {"ETH", 0xD0},      {"Eacute", 0xC9},
    {"Ecirc", 0xCA},     {"Egrave", 0xC8},   {"Epsilon", 0x395}, {"Eta", 0x397},     {"Euml", 0xCB},
    {"Gamma", 0x393},    {"Iacute", 0xCD},   {"Icirc", 0xCE},    {"Igrave", 0xCC},   {"Iota", 0x399},
    {"Iuml", 0xCF},      {"Kappa", 0x39A},   {"Lambda", 0x39B},  {"Mu", 0x39C},      {"Ntilde", 0xD1},
    {"Nu", 0x39D},       {"OElig", 0x152},   {"Oacute", 0xD3},   {"Ocirc", 0xD4},    {"Ograve", 0xD2},
    {"Omega", 0x3A9},    {"Omicron", 0x39F}, {"Oslash", 0xD8},   {"Otilde", 0xD5},   {"Ouml", 0xD6},
    {"Phi", 0x3A6},      {"Pi", 0x3A0},      {"Prime", 0x2033},  {"Psi", 0x3A8},     {"Rho", 0x3A1},
    {"Scaron", 0x160},   {"Sigma", 0x3A3},   {"THORN", 0xDE},    {"Tau", 0x3A4},     {"Theta", 0x398},
    {"Uacute", 0xDA},    {"Ucirc", 0xDB},    {"Ugrave", 0xD9},   {"Upsilon", 0x3A5}, {"Uuml", 0xDC},
    {"Xi", 0x39E},       {"Yacute", 0xDD},   {"Yuml", 0x178},    {"Zeta", 0x396},    {"aacute", 0xE1},
    {"acirc", 0xE2},     {"acute", 0xB4},    {"aelig", 0xE6},    {"agrave", 0xE0},   {"alefsym", 0x2135},
    {"alpha", 0x3B1},    {"amp", 0x26},      {"and", 0x2227},    {"ang", 0x2220},    {"apos", 0x27},
    {"aring", 0xE5},     {"asymp", 0x2248},  {"atilde", 0xE3},   {"auml", 0xE4},     {"bdquo", 0x201E},
    {"beta", 0x3B2},     {"brvbar", 0xA6},   {"bull", 0x2022},   {"cap", 0x2229},    {"ccedil", 0xE7},
    {"cedil", 0xB8},     {"cent", 0xA2},     {"chi", 0x3C7},     {"circ", 0x2C6},    {"clubs", 0x2663},
    {"cong", 0x2245},    {"copy", 0xA9},     {"crarr", 0x21B5},  {"cup", 0x222A},    {"curren", 0xA4},
    {"dArr", 0x21D3},    {"dagger", 0x2020}, {"darr", 0x2193},   {"deg", 0xB0},      {"delta", 0x3B4},
    {"diams", 0x2666},   {"divide", 0xF7},   {"eacute", 0xE9},   {"ecirc", 0xEA},    {"egrave", 0xE8},
    {"empty", 0x2205},   {"emsp", 0x2003},   {"ensp", 0x2002},   {"epsilon", 0x3B5}, {"equiv", 0x2261},
    {"eta", 0x3B7},      {"eth", 0xF0},      {"euml", 0xEB},     {"euro", 0x20AC},   {"exist", 0x2203},
    {"fnof", 0x192},     {"forall", 0x2200}, {"frac12", 0xBD},   {"frac14", 0xBC},   {"frac34", 0xBE},
    {"frasl", 0x2044},   {"gamma", 0x3B3},   {"ge", 0x2265},     {"gt", 0x3E},       {"hArr", 0x21D4},
    {"harr", 0x2194},    {"hearts", 0x2665}, {"hellip", 0x2026}, {"iacute", 0xED},   {"icirc", 0xEE},
    {"iexcl", 0xA1},     {"igrave", 0xEC},   {"image", 0x2111},  {"infin", 0x221E},  {"int", 0x222B},
    {"iota", 0x3B9},     {"iquest", 0xBF},   {"isin", 0x2208},   {"iuml", 0xEF},     {"kappa", 0x3BA},
    {"lArr", 0x21D0},    {"lambda", 0x3BB},  {"lang", 0x2329},   {"laquo", 0xAB},    {"larr", 0x2190},
    {"lceil", 0x2308},   {"ldquo", 0x201C},  {"le", 0x2264},     {"lfloor", 0x230A}, {"lowast", 0x2217},
    {"loz", 0x25CA},     {"lrm", 0x200E},    {"lsaquo", 0x2039}, {"lsquo", 0x2018},  {"lt", 0x3C},
    {"macr", 0xAF},      {"mdash", 0x2014},  {"micro", 0xB5},    {"middot", 0xB7},   {"minus", 0x2212},
    {"mu", 0x3BC},       {"nabla", 0x2207},  {"nbsp", 0xA0},     {"ndash", 0x2013},  {"ne", 0x2260},
    {"ni", 0x220B},      {"not", 0xAC},      {"notin", 0x2209},  {"nsub", 0x2284},   {"ntilde", 0xF1},
    {"nu", 0x3BD},       {"oacute", 0xF3},   {"ocirc", 0xF4},    {"oelig", 0x153},   {"ograve", 0xF2},
    {"oline", 0x203E},   {"omega", 0x3C9},   {"omicron", 0x3BF}, {"oplus", 0x2295},  {"or", 0x2228},
    {"ordf", 0xAA},      {"ordm", 0xBA},     {"oslash", 0xF8},   {"otilde", 0xF5},   {"otimes", 0x2297},
    {"ouml", 0xF6},      {"para", 0xB6},     {"part", 0x2202},   {"permil", 0x2030}, {"perp", 0x22A5},
    {"phi", 0x3C6},      {"pi", 0x3C0},      {"piv", 0x3D6},     {"plusmn", 0xB1},   {"pound", 0xA3},
    {"prime", 0x2032},   {"prod", 0x220F},   {"prop", 0x221D},   {"psi", 0x3C8},     {"quot", 0x22},
    {"rArr", 0x21D2},    {"radic", 0x221A},  {"rang", 0x232A},   {"raquo", 0xBB},    {"rarr", 0x2192},
    {"rceil", 0x2309},   {"rdquo", 0x201D},  {"real", 0x211C},   {"reg", 0xAE},      {"rfloor", 0x230B},
    {"rho", 0x3C1},      {"rlm", 0x200F},    {"rsaquo", 0x203A}, {"rsquo", 0x2019},  {"sbquo", 0x201A},
    {"scaron", 0x161},   {"sdot", 0x22C5},   {"sect", 0xA7},     {"shy", 0xAD},      {"sigma", 0x3C3},
    {"sigmaf", 0x3C2},   {"sim", 0x223C},    {"spades", 0x2660}, {"sub", 0x2282},    {"sube", 0x2286},
    {"sum", 0x2211},     {"sup", 0x2283},    {"sup1", 0xB9},     {"sup2", 0xB2},     {"sup3", 0xB3},
    {"supe", 0x2287},    {"szlig", 0xDF},    {"tau", 0x3C4},     {"there4", 0x2234}, {"theta", 0x3B8},
    {"thetasym", 0x3D1}, {"thinsp", 0x2009}, {"thorn", 0xFE},    {"tilde", 0x2DC},   {"times", 0xD7},
    {"trade", 0x2122},   {"uArr", 0x21D1},   {"uacute", 0xFA},   {"uarr", 0x2191},   {"ucirc", 0xFB},
    {"ugrave", 0xF9},    {"uml", 0xA8},      {"upsih", 0x3D2},   {"upsilon", 0x3C5}, {"uuml", 0xFC},
    {"weierp", 0x2118},  {"xi", 0x3BE},      {"yacute", 0xFD},   {"yen", 0xA5},      {"yuml", 0xFF},
    {"zeta", 0x3B6},     {"zwj", 0x200D},    {"zwnj", 0x200C},
};

const Entity* find_entity(std::string_view name) {
  auto it = std::lower_bound(std::begin(kEntities), std::end(kEntities), name,
                             [](const Entity& e, std::string_view n) { return std::string_view(e.name) < n; });
  if (it == std::end(kEntities) || std::string_view(it->name) != name) return nullptr;
  return it;
}

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Decodes the reference at text[pos] == '&' into *out; returns the bytes it used, or 0
// when it is not a reference (the '&' is then plain text).
size_t decode_reference(std::string_view text, size_t pos, std::string* out) {
  size_t i = pos + 1;
  if (i < text.size() && text[i] == '#') {
    ++i;
    bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
    if (hex) ++i;
    size_t digits_start = i;
    uint64_t value = 0;
    while (i < text.size() && i - digits_start < 8) {
      char c = text[i];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) break;
      value = value * (hex ? 16 : 10) + static_cast<uint64_t>(d);
      ++i;
    }
    if (i == digits_start) return 0;
    if (i < text.size() && text[i] == ';') ++i;
    bool valid = value != 0 && value <= 0x10FFFF && !(value >= 0xD800 && value <= 0xDFFF);
    append_utf8(valid ? static_cast<char32_t>(value) : 0xFFFD, out);
    return i - pos;
  }
  size_t name_start = i;
  while (i < text.size() && i - name_start < 32 && is_ascii_alnum(text[i])) ++i;
  if (i == name_start || i >= text.size() || text[i] != ';') return 0;
  const Entity* e = find_entity(text.substr(name_start, i - name_start));
  if (e == nullptr) return 0;
  append_utf8(e->code_point, out);
  return i + 1 - pos;
}

bool one_of(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_block(std::string_view name) {
  return one_of(name,
                {"address", "article", "aside", "blockquote", "body",     "br",         "caption", "dd",     "details",
                 "dialog",  "div",     "dl",    "dt",         "fieldset", "figcaption", "figure",  "footer", "form",
                 "h1",      "h2",      "h3",    "h4",         "h5",       "h6",         "header",  "hr",     "html",
                 "legend",  "li",      "main",  "nav",        "ol",       "option",     "p",       "pre",    "section",
                 "summary", "table",   "tbody", "tfoot",      "thead",    "title",      "tr",      "ul"});
}

// Elements whose content is not text a reader sees.
bool is_dropped(std::string_view name) {
  return one_of(name, {"script", "style", "noscript", "template", "svg", "iframe", "object"});
}

// Text assembled with HTML's whitespace rules: source whitespace runs become one
// space, block boundaries line breaks (two at most in a row), nothing leading or
// trailing.
class TextBuilder {
 public:
  void space() { pending_space_ = true; }
  void block_break() { pending_newlines_ = std::min(pending_newlines_ + 1, 2); }
  void text(std::string_view s) {
    if (s.empty()) return;
    if (!out_.empty()) {
      if (pending_newlines_ > 0) {
        out_.append(static_cast<size_t>(pending_newlines_), '\n');
      } else if (pending_space_) {
        out_.push_back(' ');
      }
    }
    pending_space_ = false;
    pending_newlines_ = 0;
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  bool pending_space_ = false;
  int pending_newlines_ = 0;
};

// Finds the '>' closing a tag that starts at html[pos] == '<', skipping quoted
// attribute values; npos when there is none.
size_t tag_end(std::string_view html, size_t pos) {
  char quote = 0;
  for (size_t i = pos + 1; i < html.size(); ++i) {
    char c = html[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      return i;
    } else if (c == '<') {
      return std::string_view::npos;  // "a < b <c>": the first '<' was text
    }
  }
  return std::string_view::npos;
}

// Position after the end tag </name ...> at or after pos (case-insensitive), or the end.
size_t skip_element(std::string_view html, size_t pos, std::string_view name) {
  for (size_t i = pos; i + 2 + name.size() <= html.size(); ++i) {
    if (html[i] != '<' || html[i + 1] != '/') continue;
    bool match = true;
    for (size_t k = 0; k < name.size() && match; ++k) match = lower(html[i + 2 + k]) == name[k];
    if (!match) continue;
    size_t after = i + 2 + name.size();
    if (after < html.size() && is_ascii_alnum(html[after])) continue;
    size_t end = html.find('>', after);
    return end == std::string_view::npos ? html.size() : end + 1;
  }
  return html.size();
}

}  // namespace

std::string decode_html_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      size_t used = decode_reference(text, i, &out);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

bool looks_like_html(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '<' && i + 1 < text.size()) {
      char c = text[i + 1];
      bool starts_tag = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '/' || c == '!';
      if (starts_tag && tag_end(text, i) != std::string_view::npos) return true;
    } else if (text[i] == '&') {
      std::string ignored;
      if (decode_reference(text, i, &ignored) > 0) return true;
    }
  }
  return false;
}

std::string html_to_text(std::string_view html) {
  TextBuilder builder;
  std::string run;  // decoded text not yet handed to the builder
  int pre_depth = 0;
  auto flush = [&] {
    builder.text(run);
    run.clear();
  };
  size_t i = 0;
  while (i < html.size()) {
    char c = html[i];
    if (c == '<') {
      if (html.compare(i, 4, "<!--") == 0) {
        size_t end = html.find("-->", i + 4);
        flush();
        i = end == std::string_view::npos ? html.size() : end + 3;
        continue;
      }
      size_t end = tag_end(html, i);
      char next = i + 1 < html.size() ? html[i + 1] : '\0';
      bool closing = next == '/';
      size_t name_start = i + (closing ? 2 : 1);
      bool is_tag =
          end != std::string_view::npos &&
          (next == '!' || next == '?' ||
           (name_start < html.size() && ((html[name_start] | 0x20) >= 'a' && (html[name_start] | 0x20) <= 'z')));
      if (!is_tag) {
        run.push_back(c);
        ++i;
        continue;
      }
      flush();
      std::string name;
      for (size_t k = name_start; k < end && is_ascii_alnum(html[k]); ++k) name.push_back(lower(html[k]));
      bool self_closing = end > i && html[end - 1] == '/';
      i = end + 1;
      if (next == '!' || next == '?') continue;  // doctype, processing instruction
      if (!closing && !self_closing && is_dropped(name)) {
        i = skip_element(html, i, name);
        builder.space();
        continue;
      }
      if (name == "pre") pre_depth = std::max(0, pre_depth + (closing ? -1 : 1));
      if (is_block(name)) {
        builder.block_break();
      } else if (name == "td" || name == "th") {
        builder.space();
      }
      continue;
    }
    if (c == '&') {
      size_t used = decode_reference(html, i, &run);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    if (is_ascii_space(c)) {
      if (pre_depth > 0) {
        if (c == '\n') {
          flush();
          builder.block_break();
        } else if (c != '\r') {
          run.push_back(c);
        }
      } else {
        flush();
        builder.space();
      }
      ++i;
      continue;
    }
    run.push_back(c);
    ++i;
  }
  flush();
  return builder.take();
}

}  // namespace keel::data
