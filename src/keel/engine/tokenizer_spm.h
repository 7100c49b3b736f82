// SentencePiece-style merging for vocabularies with tokenizer.ggml.model = "llama"
// (LLaMA 1/2, Gemma): one text fragment, spaces already written as U+2581, is cut into
// UTF-8 characters, and the adjacent pair whose joined text is the token with the
// highest score is merged first (leftmost among equal scores), again and again, as
// llama.cpp's llm_tokenizer_spm does. Pieces left that are not tokens become one byte
// token per byte. Used by Tokenizer (tokenizer.h), which owns the vocabulary borrowed here.
// A fragment is first cut into words at U+2581 marks no token can reach across
// (spm_split_words): the words merge exactly as the whole would, and can be cached.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine {

using TokenId = int32_t;

// Hashes std::string and std::string_view alike, so maps keyed by token text are
// searched with views (no allocation per lookup).
struct TokenTextHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
using TokenTextMap = std::unordered_map<std::string, TokenId, TokenTextHash, std::equal_to<>>;
using TokenTextSet = std::unordered_set<std::string, TokenTextHash, std::equal_to<>>;

// Token text -> id for the merge loop, which looks texts up millions of times a
// megabyte: one flat open-addressing table of (hash tag, id) pairs, each probe
// comparing the text in place (one or two cache misses, where a node-based map
// takes three or four). Borrows the token texts; they must outlive it.
class TokenIndex {
 public:
  TokenIndex() = default;
  explicit TokenIndex(std::span<const std::string> tokens);
  // The id of the token with this text, or -1.
  TokenId find(std::string_view text) const;

 private:
  struct Slot {
    uint32_t tag;  // high bits of the hash
    TokenId id;    // -1: empty
  };
  std::span<const std::string> tokens_;
  std::vector<Slot> slots_;  // a power of two, at most half full
};

struct SpmVocabulary {
  const TokenIndex& ids;                      // token text -> id
  std::span<const float> scores;              // per id
  std::span<const TokenId, 256> byte_tokens;  // the token for each byte (<0xXX>), -1 when none
  size_t max_token_bytes;                     // no token is longer: longer pairs are not looked up
};

// Buffers spm_merge reuses from call to call (one per thread).
struct SpmScratch {
  struct Symbol {
    uint32_t start, size;  // size 0: merged into the symbol on its left
    int prev, next;        // neighbours still alive, -1 at the ends
    TokenId id;            // the token a merge made, -1 for a character not yet looked up
  };
  struct Bigram {
    float score;
    int left, right;
    uint32_t size;  // the pair's joined size when queued; a different one now means stale
    TokenId id;     // the token the pair makes
  };
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
};

// Appends the ids of `text` to out. Any bytes are accepted: a character's length
// comes from its first byte alone, as in llama.cpp, so invalid UTF-8 ends up in byte
// tokens. Fails only when a byte has no token (vocab.byte_tokens holds -1 for it).
Status spm_merge(std::string_view text, const SpmVocabulary& vocab, SpmScratch& scratch, std::vector<TokenId>& out);

// The characters (1 to 4 bytes, as spm_merge cuts them) that some token holds right
// before a U+2581 mark: a word boundary may not fall after them.
TokenTextSet spm_space_joiners(std::span<const std::string> tokens);

// Appends to words the pieces of text (views into it), cut before every U+2581 mark
// that is a character of its own and follows a character not in joiners. No token
// spans such a cut, so no merge can cross it and the pieces tokenize independently.
void spm_split_words(std::string_view text, const TokenTextSet& joiners, std::vector<std::string_view>& words);

}  // namespace keel::engine
