#include "keel/engine/tokenizer_spm.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace keel::engine {

namespace {

// The length a lead byte announces, read from its high nibble and never checked
// against the bytes that follow (llama.cpp's unicode_len_utf8): continuation bytes
// and ASCII are 1, 0xC0-0xDF 2, 0xE0-0xEF 3, 0xF0-0xFF 4.
size_t lead_length(unsigned char lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

using Symbol = SpmScratch::Symbol;
using Bigram = SpmScratch::Bigram;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// priority_queue's "less": the top is the highest score, then the leftmost pair.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

Status spm_merge(std::string_view text, const SpmVocabulary& vocab, SpmScratch& scratch, std::vector<TokenId>& out) {
  if (text.empty()) return Status::Ok();
  if (text.size() > static_cast<size_t>(INT32_MAX)) {
    return invalid_argument("a text piece of " + std::to_string(text.size()) + " bytes is too long to tokenize");
  }
  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.clear();
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(lead_length(static_cast<unsigned char>(text[i])), text.size() - i);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back(
        {static_cast<uint32_t>(i), static_cast<uint32_t>(len), index - 1, i + len == text.size() ? -1 : index + 1, -1});
    i += len;
  }

  // A binary heap on scratch.heap, top first by LowerPriority (std::priority_queue
  // would own its storage; the scratch keeps the allocation between calls).
  std::vector<Bigram>& heap = scratch.heap;
  heap.clear();
  auto add_bigram = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].size + symbols[right].size;
    if (size > vocab.max_token_bytes) return;
    const TokenId id = vocab.ids.find(text.substr(symbols[left].start, size));
    if (id < 0) return;
    heap.push_back({vocab.scores[static_cast<size_t>(id)], left, right, size, id});
    std::push_heap(heap.begin(), heap.end(), LowerPriority{});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add_bigram(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LowerPriority{});
    const Bigram bigram = heap.back();
    heap.pop_back();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale: one side was merged away, or grew, since the pair was queued.
    if (left.size == 0 || right.size == 0 || left.size + right.size != bigram.size) continue;
    left.size += right.size;
    left.id = bigram.id;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    add_bigram(left.prev, bigram.left);
    add_bigram(bigram.left, left.next);
  }

  // A merged symbol is always a token (its pair was queued only as one); a single
  // character may not be, and falls back to its bytes.
  for (int i = 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].size);
    const TokenId id = symbols[i].id >= 0 ? symbols[i].id : vocab.ids.find(piece);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {
      const TokenId byte = vocab.byte_tokens[static_cast<unsigned char>(c)];
      if (byte < 0) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", static_cast<unsigned>(static_cast<unsigned char>(c)));
        return invalid_argument(std::string("the text holds a byte the vocabulary has no token for (no ") + hex +
                                " byte token and no unknown token)");
      }
      out.push_back(byte);
    }
  }
  return Status::Ok();
}

TokenIndex::TokenIndex(std::span<const std::string> tokens) : tokens_(tokens) {
  size_t capacity = 16;
  while (capacity < 2 * tokens.size()) capacity *= 2;
  slots_.assign(capacity, Slot{0, -1});
  const size_t mask = capacity - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const size_t hash = std::hash<std::string_view>{}(tokens[id]);
    const auto tag = static_cast<uint32_t>(hash >> 32);
    size_t at = hash & mask;
    while (slots_[at].id >= 0) {
      // Texts are unique (the Tokenizer checks), so a text is never placed twice.
      at = (at + 1) & mask;
    }
    slots_[at] = Slot{tag, static_cast<TokenId>(id)};
  }
}

TokenId TokenIndex::find(std::string_view text) const {
  if (slots_.empty()) return -1;
  const size_t hash = std::hash<std::string_view>{}(text);
  const auto tag = static_cast<uint32_t>(hash >> 32);
  const size_t mask = slots_.size() - 1;
  for (size_t at = hash & mask;; at = (at + 1) & mask) {
    const Slot& slot = slots_[at];
    if (slot.id < 0) return -1;
    if (slot.tag == tag && tokens_[static_cast<size_t>(slot.id)] == text) return slot.id;
  }
}

TokenTextSet spm_space_joiners(std::span<const std::string> tokens) {
  TokenTextSet joiners;
  for (const std::string& token : tokens) {
    for (size_t mark = token.find(kSpaceMark, 1); mark != std::string::npos; mark = token.find(kSpaceMark, mark + 1)) {
      // Whatever character ends right before the mark, however the bytes are cut.
      for (size_t back = 1; back <= 4 && back <= mark; ++back) joiners.insert(token.substr(mark - back, back));
    }
  }
  return joiners;
}

void spm_split_words(std::string_view text, const TokenTextSet& joiners, std::vector<std::string_view>& words) {
  size_t word_start = 0;
  size_t previous = 0, previous_size = 0;  // the character before i
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(lead_length(static_cast<unsigned char>(text[i])), text.size() - i);
    if (i > word_start && text.substr(i, len) == kSpaceMark &&
        !joiners.contains(text.substr(previous, previous_size))) {
      words.push_back(text.substr(word_start, i - word_start));
      word_start = i;
    }
    previous = i;
    previous_size = len;
    i += len;
  }
  if (word_start < text.size()) words.push_back(text.substr(word_start));
}

}  // namespace keel::engine
