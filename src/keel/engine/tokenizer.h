// The engine's tokenizer: byte-level BPE (tokenizer.ggml.model = "gpt2") built from a
// GGUF file's metadata, with the pre-tokenizer tokenizer.ggml.pre names, matching
// llama.cpp's ids (tests/fixtures/engine/tokenizer/ holds llama.cpp's own output).
// encode() takes valid UTF-8 only; decode() and StreamingDecoder reject ids outside
// the vocabulary. One Tokenizer may be shared by threads (its word cache is locked).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/engine/tokenizer_pretokenizer.h"
#include "keel/util/status.h"

namespace keel::engine {

using TokenId = int32_t;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from the file. Errors name what is missing or unsupported
  // (SentencePiece "llama" and other models are not implemented yet). A non-empty
  // pre_tokenizer replaces tokenizer.ggml.pre (tests; files that lack or misname it).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file, const std::string& pre_tokenizer = "");

  // Text to ids. add_special: prepend BOS / append EOS where the model asks for it
  // (tokenizer.ggml.add_bos_token / add_eos_token). parse_special: control tokens
  // written in the text ("<|im_start|>") become their ids; user-defined tokens are
  // always recognised, as in llama.cpp. Invalid UTF-8 is kInvalidArgument.
  Result<std::vector<TokenId>> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Ids to text. render_special: control tokens print their text (else nothing).
  // The result may end in the middle of a UTF-8 character if the ids do.
  Result<std::string> decode(std::span<const TokenId> ids, bool render_special = false) const;
  // The bytes one id stands for (see decode).
  Result<std::string> token_bytes(TokenId id, bool render_special = false) const;

  size_t vocab_size() const { return tokens_.size(); }
  const std::string& token_text(TokenId id) const { return tokens_[static_cast<size_t>(id)]; }
  TokenType token_type(TokenId id) const { return types_[static_cast<size_t>(id)]; }
  std::optional<TokenId> find_token(std::string_view text) const;
  // -1 where the model has none.
  TokenId bos_id() const { return bos_; }
  TokenId eos_id() const { return eos_; }
  TokenId unknown_id() const { return unk_; }
  TokenId padding_id() const { return pad_; }
  bool adds_bos() const { return add_bos_; }
  bool adds_eos() const { return add_eos_; }
  const std::string& pre_tokenizer_name() const { return pre_->name(); }

 private:
  Tokenizer() = default;
  // BPE on one pre-tokenized word (already byte-to-unicode encoded); appends ids.
  void bpe_word(const std::string& word, std::vector<TokenId>& out) const;
  void encode_text(std::string_view text, std::vector<TokenId>& out) const;

  struct Merge {
    int32_t rank;
    TokenId result;  // -1 when the merged text is not a token (a malformed vocabulary)
  };
  static uint64_t pair_key(TokenId left, TokenId right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, TokenId> token_ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<TokenId> special_tokens_;  // control/user-defined/unknown, longest text first
  std::unique_ptr<PreTokenizer> pre_;
  TokenId bos_ = -1, eos_ = -1, unk_ = -1, pad_ = -1;
  bool add_bos_ = false, add_eos_ = false;

  // Word -> ids, so repeated words skip BPE. Cleared when it grows past a bound.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>> cache_;  // guarded by cache_mutex_
};

// Turns ids into text one at a time, for streaming generation: feed() returns only
// complete UTF-8 characters and holds the bytes of a character split across tokens
// until it completes. Bytes that can never form a character come out as U+FFFD.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = false)
      : tokenizer_(tokenizer), render_special_(render_special) {}
  Result<std::string> feed(TokenId id);
  // What is still held (an unfinished character) as U+FFFD; resets the decoder.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool render_special_;
  std::string pending_;  // at most 3 bytes: the start of an unfinished character
};

}  // namespace keel::engine
