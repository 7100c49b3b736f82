#include "keel/engine/tokenizer_pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

namespace keel::engine {

namespace {

// The regexes of llama.cpp's llm_tokenizer_bpe (src/llama-vocab.cpp) per pre-type.
constexpr const char* kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr const char* kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct PreTokenizerSpec {
  std::vector<const char*> names;
  std::vector<const char*> regexes;
  bool ignore_merges;
};

const std::vector<PreTokenizerSpec>& specs() {
  static const std::vector<PreTokenizerSpec> kSpecs = {
      {{"default"}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, false},
      {{"gpt-2", "gpt2", "phi-2", "mpt", "olmo"}, {kGpt2}, false},
      {{"llama3", "llama-v3", "llama-bpe"}, {kLlama3}, true},
      {{"qwen2", "deepseek-r1-qwen"}, {kQwen2}, false},
      {{"smollm", "starcoder", "refact", "codeshell"}, {"\\p{N}", kGpt2}, false},
  };
  return kSpecs;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::string PreTokenizer::supported_names() {
  std::string out;
  for (const auto& spec : specs()) {
    for (const char* name : spec.names) {
      if (!out.empty()) out += ", ";
      out += name;
    }
  }
  return out;
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(const std::string& name) {
  const std::string wanted = name.empty() ? "default" : name;
  const PreTokenizerSpec* found = nullptr;
  for (const auto& spec : specs()) {
    for (const char* n : spec.names) {
      if (wanted == n) found = &spec;
    }
  }
  if (found == nullptr) {
    return invalid_argument("unsupported pre-tokenizer tokenizer.ggml.pre='" + wanted +
                            "' (supported: " + supported_names() + ")");
  }
  std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
  pre->name_ = wanted;
  pre->ignore_merges_ = found->ignore_merges;
  for (const char* pattern : found->regexes) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto regex = std::make_unique<Regex>();
    regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                &error, &error_offset, nullptr);
    if (regex->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return internal_error(std::string("pre-tokenizer regex does not compile at ") + std::to_string(error_offset) +
                            ": " + reinterpret_cast<const char*>(message));
    }
    // JIT is an optimisation only: where it is unavailable the interpreter runs.
    (void)pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE);
    pre->regexes_.push_back(std::move(regex));
  }
  return pre;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& words) const {
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (const auto& regex : regexes_) {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(regex->code, nullptr);
    next.clear();
    for (std::string_view piece : pieces) {
      // Each piece is its own subject: lookaheads do not see past its end, as in llama.cpp.
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t start = 0;
      size_t gap = 0;
      while (start < piece.size()) {
        int rc = pcre2_match(regex->code, subject, piece.size(), start, PCRE2_NO_UTF_CHECK, match, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
        size_t begin = ovector[0], end = ovector[1];
        if (end == begin) {  // an empty match: step over one character and go on
          start = begin + std::max(1, utf8_sequence_length(static_cast<unsigned char>(piece[begin])));
          continue;
        }
        if (begin > gap) next.push_back(piece.substr(gap, begin - gap));
        next.push_back(piece.substr(begin, end - begin));
        gap = start = end;
      }
      if (gap < piece.size()) next.push_back(piece.substr(gap));
    }
    pcre2_match_data_free(match);
    pieces.swap(next);
  }
  words.insert(words.end(), pieces.begin(), pieces.end());
}

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> kMap = [] {
    std::array<std::string, 256> map;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      utf8_append(printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++), map[b]);
    }
    return map;
  }();
  return kMap;
}

int unicode_to_byte(uint32_t cp) {
  static const std::array<int16_t, 512> kReverse = [] {
    std::array<int16_t, 512> reverse;
    reverse.fill(-1);
    const auto& forward = byte_to_unicode();
    for (int b = 0; b < 256; ++b) {
      size_t i = 0;
      reverse[utf8_next(forward[b], i)] = static_cast<int16_t>(b);
    }
    return reverse;
  }();
  return cp < kReverse.size() ? kReverse[cp] : -1;
}

int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

bool utf8_valid(std::string_view text, size_t* bad_offset) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const int len = utf8_sequence_length(lead);
    bool ok = len > 0 && i + len <= text.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok && len >= 3) {
      const auto second = static_cast<unsigned char>(text[i + 1]);
      if (lead == 0xE0) ok = second >= 0xA0;        // overlong
      else if (lead == 0xED) ok = second < 0xA0;    // surrogates
      else if (lead == 0xF0) ok = second >= 0x90;   // overlong
      else if (lead == 0xF4) ok = second < 0x90;    // past U+10FFFF
    }
    if (!ok) {
      if (bad_offset != nullptr) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

uint32_t utf8_next(std::string_view text, size_t& i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  const int len = std::max(1, utf8_sequence_length(lead));
  uint32_t cp = len == 1 ? lead : lead & (0x7F >> len);
  for (int k = 1; k < len && i + k < text.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  i += len;
  return cp;
}

void utf8_append(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace keel::engine
