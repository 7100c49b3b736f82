#include "keel/data/text_normalize.h"

namespace keel::data {
namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_punct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
char lower(unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

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
  storage->clear();
  storage->reserve(text.size());
  words->clear();
  // First pass: write the simplified text with single spaces between words; offsets of
  // words are recorded as (start, length) and turned into views once storage is final.
  std::vector<std::pair<size_t, size_t>> spans;
  size_t start = std::string::npos;
  bool in_number = false;
  for (unsigned char c : text) {
    if (is_space(c) || is_punct(c)) {
      if (start != std::string::npos) {
        spans.emplace_back(start, storage->size() - start);
        start = std::string::npos;
      }
      in_number = false;
      continue;
    }
    if (start == std::string::npos) start = storage->size();
    if (is_digit(c)) {
      if (!in_number) storage->push_back('0');
      in_number = true;
      continue;
    }
    in_number = false;
    storage->push_back(lower(c));
  }
  if (start != std::string::npos) spans.emplace_back(start, storage->size() - start);
  words->reserve(spans.size());
  for (const auto& [s, n] : spans) words->emplace_back(storage->data() + s, n);
}

std::string simplified_chars(std::string_view text) { return normalize_for_exact(text); }

}  // namespace keel::data
