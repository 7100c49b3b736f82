#include "keel/data/gopher_repetition_filter.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "keel/data/hash.h"
#include "keel/data/record_text.h"
#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

// Splits on runs of at least `min_run` newlines (re.split(r"\n{2,}") / re.split("\n+")).
std::vector<std::string_view> split_on_newline_runs(std::string_view text, size_t min_run) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '\n') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && text[j] == '\n') ++j;
    if (j - i >= min_run) {
      parts.push_back(text.substr(start, i - start));
      start = j;
    }
    i = j;
  }
  parts.push_back(text.substr(start));
  return parts;
}

Status check_ngram_lists(const std::vector<double>& sizes, const std::vector<double>& fracs, const char* what) {
  if (sizes.size() != fracs.size()) {
    return invalid_argument(std::string(what) + "_sizes and " + what + "_fracs must have the same length");
  }
  for (double n : sizes) {
    if (n < 1 || n > 100 || n != std::floor(n)) {
      return invalid_argument(std::string(what) + "_sizes must be whole numbers from 1 to 100");
    }
  }
  for (double f : fracs) {
    if (f < 0) return invalid_argument(std::string(what) + "_fracs must not be negative");
  }
  return Status::Ok();
}

}  // namespace

void GopherRepetitionOptions::describe(ParamSet* p) {
  p->add("field", &field, "The text field");
  p->add("dup_line_frac", &dup_line_frac, "Most duplicate lines, share of lines (0: off)");
  p->add("dup_para_frac", &dup_para_frac, "Most duplicate paragraphs, share of paragraphs (0: off)");
  p->add("dup_line_char_frac", &dup_line_char_frac, "Most characters in duplicate lines (0: off)");
  p->add("dup_para_char_frac", &dup_para_char_frac, "Most characters in duplicate paragraphs (0: off)");
  p->add("top_ngram_sizes", &top_ngram_sizes, "n of the top n-gram rules");
  p->add("top_ngram_fracs", &top_ngram_fracs, "Most characters covered by the top n-gram, per size (0: off)");
  p->add("dup_ngram_sizes", &dup_ngram_sizes, "n of the duplicate n-gram rules");
  p->add("dup_ngram_fracs", &dup_ngram_fracs, "Most characters in duplicate n-grams, per size (0: off)");
}

Status GopherRepetitionOptions::validate() const {
  for (double f : {dup_line_frac, dup_para_frac, dup_line_char_frac, dup_para_char_frac}) {
    if (f < 0) return invalid_argument("gopher_repetition fractions must not be negative");
  }
  KEEL_RETURN_IF_ERROR(check_ngram_lists(top_ngram_sizes, top_ngram_fracs, "top_ngram"));
  return check_ngram_lists(dup_ngram_sizes, dup_ngram_fracs, "dup_ngram");
}

std::pair<size_t, size_t> duplicate_elements(const std::vector<std::string_view>& elements) {
  std::unordered_set<std::string_view> seen;
  size_t count = 0;
  size_t chars = 0;
  for (auto e : elements) {
    if (!seen.insert(e).second) {
      ++count;
      chars += code_point_count(e);
    }
  }
  return {count, chars};
}

size_t top_ngram_chars(const std::vector<std::string>& words, size_t n) {
  if (n == 0 || words.size() < n) return 0;
  // Words joined with spaces are equal exactly when the word sequences are (words hold
  // no whitespace), so n-grams are compared as sequences of word ids.
  std::unordered_map<std::string_view, uint32_t> ids;
  std::vector<uint32_t> id(words.size());
  std::vector<size_t> chars(words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    id[i] = ids.emplace(words[i], static_cast<uint32_t>(ids.size())).first->second;
    chars[i] = code_point_count(words[i]);
  }
  struct Tally {
    size_t first;
    size_t count;
  };
  auto same = [&](size_t a, size_t b) { return std::equal(id.begin() + a, id.begin() + a + n, id.begin() + b); };
  std::unordered_multimap<uint64_t, Tally> tallies;
  Tally best{0, 0};
  for (size_t i = 0; i + n <= words.size(); ++i) {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t k = 0; k < n; ++k) h = combine64(h, id[i + k]);
    Tally* t = nullptr;
    auto range = tallies.equal_range(h);
    for (auto it = range.first; it != range.second && t == nullptr; ++it) {
      if (same(it->second.first, i)) t = &it->second;
    }
    if (t == nullptr) t = &tallies.emplace(h, Tally{i, 0})->second;
    ++t->count;
    // Most occurrences wins; among equals, the n-gram seen first (Counter.most_common).
    if (t->count > best.count || (t->count == best.count && t->first < best.first)) best = *t;
  }
  size_t gram_chars = n - 1;
  for (size_t k = 0; k < n; ++k) gram_chars += chars[best.first + k];
  return gram_chars * best.count;
}

size_t duplicate_ngram_chars(const std::vector<std::string>& words, size_t n) {
  if (n == 0 || words.size() < n) return 0;
  // Words joined without spaces: "ab"+"c" equals "a"+"bc", so n-grams are compared by
  // their bytes (a hash of the byte stream, checked byte by byte on a hash match).
  std::vector<size_t> chars(words.size());
  for (size_t i = 0; i < words.size(); ++i) chars[i] = code_point_count(words[i]);
  auto hash_of = [&](size_t i) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the bytes: blind to word boundaries
    for (size_t k = 0; k < n; ++k) {
      for (unsigned char c : words[i + k]) h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
  };
  auto same = [&](size_t a, size_t b) {
    size_t wa = a, wb = b, ca = 0, cb = 0;
    while (true) {
      while (wa < a + n && ca == words[wa].size()) ++wa, ca = 0;
      while (wb < b + n && cb == words[wb].size()) ++wb, cb = 0;
      bool end_a = wa == a + n, end_b = wb == b + n;
      if (end_a || end_b) return end_a && end_b;
      if (words[wa][ca] != words[wb][cb]) return false;
      ++ca;
      ++cb;
    }
  };
  std::unordered_multimap<uint64_t, size_t> seen;  // hash -> first start with those bytes
  size_t repeated = 0;
  size_t i = 0;
  while (i + n <= words.size()) {
    uint64_t h = hash_of(i);
    bool duplicate = false;
    auto range = seen.equal_range(h);
    for (auto it = range.first; it != range.second && !duplicate; ++it) duplicate = same(it->second, i);
    if (duplicate) {
      for (size_t k = 0; k < n; ++k) repeated += chars[i + k];
      i += n;
    } else {
      seen.emplace(h, i);
      ++i;
    }
  }
  return repeated;
}

std::string gopher_repetition_reason(std::string_view text, const std::vector<std::string>& words,
                                     const GopherRepetitionOptions& o) {
  const double chars = static_cast<double>(code_point_count(text));
  if (chars == 0) return "empty";  // every rule divides by the length (datatrove 0.10.1 says "empty" too)
  auto paragraphs = split_on_newline_runs(strip_space(text), 2);
  auto [para_dups, para_dup_chars] = duplicate_elements(paragraphs);
  if (o.dup_para_frac > 0 &&
      static_cast<double>(para_dups) / static_cast<double>(paragraphs.size()) > o.dup_para_frac) {
    return "dup_para_frac";
  }
  if (o.dup_para_char_frac > 0 && static_cast<double>(para_dup_chars) / chars > o.dup_para_char_frac) {
    return "dup_para_char_frac";
  }
  auto lines = split_on_newline_runs(text, 1);
  auto [line_dups, line_dup_chars] = duplicate_elements(lines);
  if (o.dup_line_frac > 0 && static_cast<double>(line_dups) / static_cast<double>(lines.size()) > o.dup_line_frac) {
    return "dup_line_frac";
  }
  if (o.dup_line_char_frac > 0 && static_cast<double>(line_dup_chars) / chars > o.dup_line_char_frac) {
    return "dup_line_char_frac";
  }
  for (size_t k = 0; k < o.top_ngram_sizes.size(); ++k) {
    auto n = static_cast<size_t>(o.top_ngram_sizes[k]);
    if (words.size() < n || o.top_ngram_fracs[k] <= 0) continue;
    if (static_cast<double>(top_ngram_chars(words, n)) / chars > o.top_ngram_fracs[k]) {
      return "top_" + std::to_string(n) + "_gram";
    }
  }
  for (size_t k = 0; k < o.dup_ngram_sizes.size(); ++k) {
    auto n = static_cast<size_t>(o.dup_ngram_sizes[k]);
    if (o.dup_ngram_fracs[k] <= 0) continue;
    if (static_cast<double>(duplicate_ngram_chars(words, n)) / chars > o.dup_ngram_fracs[k]) {
      return "duplicated_" + std::to_string(n) + "_n_grams";
    }
  }
  return "";
}

Result<std::unique_ptr<GopherRepetitionFilter>> GopherRepetitionFilter::create(GopherRepetitionOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  KEEL_ASSIGN_OR_RETURN(auto tokenizer, EnglishWordTokenizer::create());
  return std::unique_ptr<GopherRepetitionFilter>(new GopherRepetitionFilter(std::move(options), std::move(tokenizer)));
}

Verdict GopherRepetitionFilter::process(Record* record, bool* /*changed*/) {
  std::string joined;  // a chat's messages
  const std::string* text = record_text(*record, options_.field, &joined);
  if (text == nullptr) return Verdict::Drop("no_text_field");
  std::string reason = gopher_repetition_reason(*text, tokenizer_->words(*text), options_);
  return reason.empty() ? Verdict::Keep() : Verdict::Drop(std::move(reason));
}

}  // namespace keel::data
