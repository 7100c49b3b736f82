#include "keel/data/text_normalize.h"

namespace keel::data {
namespace {

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}
bool is_punct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
char lower(unsigned char c) {
  return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

}  // namespace

std::string normalize_for_exact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (unsigned char c : text) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    out.push_back(lower(c));
  }
  return out;
}

void simplified_words(std::string_view text, std::string* storage, std::vector<std::string_view>* words) {
  words->clear();
  // The simplified text is never longer than the input: write it through a raw pointer
  // (this loop is a third of near-dedup's signature time), then trim.
  storage->resize(text.size());
  char* out = storage->data();
  char* word_start = nullptr;
  bool in_number = false;
  for (unsigned char c : text) {
    if (is_space(c) || is_punct(c)) {
      if (word_start != nullptr) {
        words->emplace_back(word_start, static_cast<size_t>(out - word_start));
        word_start = nullptr;
      }
      in_number = false;
      continue;
    }
    if (word_start == nullptr) word_start = out;
    if (is_digit(c)) {
      if (!in_number) *out++ = '0';
      in_number = true;
      continue;
    }
    in_number = false;
    *out++ = lower(c);
  }
  if (word_start != nullptr) words->emplace_back(word_start, static_cast<size_t>(out - word_start));
  // No reallocation after this point: the views stay valid.
  storage->resize(static_cast<size_t>(out - storage->data()));
}

std::string simplified_chars(std::string_view text) {
  return normalize_for_exact(text);
}

}  // namespace keel::data
