// Pre-tokenizers for byte-level BPE: split text into words with the regexes llama.cpp
// uses for each `tokenizer.ggml.pre` value (PCRE2, UTF + UCP), and the GPT-2
// byte-to-unicode mapping that turns a word's bytes into vocabulary characters.
// Used by Tokenizer (tokenizer.h). Regexes run one after another: each one splits the
// pieces the previous produced, and text between matches stays a piece of its own,
// exactly as llama.cpp's unicode_regex_split does. Input must be valid UTF-8.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine {

class PreTokenizer {
 public:
  // `name` is tokenizer.ggml.pre ("" means "default"). Unknown names are an error
  // that lists the supported ones.
  static Result<std::unique_ptr<PreTokenizer>> create(const std::string& name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Appends the words of `text` (views into it) to `words`. REQUIRES: valid UTF-8.
  void split(std::string_view text, std::vector<std::string_view>& words) const;

  const std::string& name() const { return name_; }
  // llama3-style vocabularies look a whole word up before merging (ignore_merges).
  bool ignore_merges() const { return ignore_merges_; }
  // The names create() accepts, for error messages.
  static std::string supported_names();

 private:
  struct Regex;
  PreTokenizer() = default;
  std::string name_;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

// GPT-2's reversible byte <-> unicode mapping (printable bytes map to themselves,
// the rest to U+0100 and up). byte_to_unicode()[b] is the UTF-8 of b's character.
const std::array<std::string, 256>& byte_to_unicode();
// The byte a mapped character stands for, or -1 when cp is not in the mapping.
int unicode_to_byte(uint32_t cp);

// UTF-8 helpers for the engine. utf8_sequence_length: the length a lead byte
// announces (1 for ASCII, 0 for a byte that cannot start a sequence).
int utf8_sequence_length(unsigned char lead);
// Checks that text is well-formed UTF-8 (no overlongs, surrogates or values past
// U+10FFFF); on failure *bad_offset is the first offending byte's offset.
bool utf8_valid(std::string_view text, size_t* bad_offset = nullptr);
// Decodes the code point starting at text[i] (REQUIRES: valid UTF-8) and advances i.
uint32_t utf8_next(std::string_view text, size_t& i);
void utf8_append(uint32_t cp, std::string& out);

}  // namespace keel::engine
