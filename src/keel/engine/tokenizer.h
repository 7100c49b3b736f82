// The engine's tokenizer, built from a GGUF file's tokenizer.ggml.* metadata and
// matching llama.cpp's ids (tests/fixtures/engine/tokenizer/ holds llama.cpp's own
// output): byte-level BPE (tokenizer.ggml.model = "gpt2", with the pre-tokenizer
// tokenizer.ggml.pre names) and SentencePiece-style merging by token score ("llama":
// LLaMA, Gemma). decode() and StreamingDecoder reject ids outside the vocabulary.
// One Tokenizer may be shared by threads (its word cache is locked).
#pragma once

#include <array>
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
#include "keel/engine/tokenizer_special.h"
#include "keel/engine/tokenizer_spm.h"
#include "keel/util/status.h"

namespace keel::engine {

using TokenId = int32_t;

// How a vocabulary turns text into tokens (tokenizer.ggml.model).
enum class TokenizerModel {
  kBytePairEncoding,  // "gpt2": merges by rank on GPT-2 byte characters
  kSentencePiece,     // "llama": merges by token score on U+2581-spaced text, byte fallback
};

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from the file. Errors name what is missing, malformed
  // (an array of the wrong type or length, a token text twice, a score that is not
  // a number, a byte token that is not <0xXX>) or unsupported (WordPiece and other models). A
  // non-empty pre_tokenizer replaces tokenizer.ggml.pre for BPE vocabularies (tests;
  // files that lack or misname it). SentencePiece vocabularies need
  // tokenizer.ggml.scores; they default, as llama.cpp does, to BOS 1, EOS 2,
  // unknown 0, add_bos_token true and add_space_prefix true.
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file, const std::string& pre_tokenizer = "");

  // Text to ids. add_special: prepend BOS / append EOS where the model asks for it
  // (tokenizer.ggml.add_bos_token / add_eos_token). parse_special: control tokens
  // written in the text ("<|im_start|>") become their ids; user-defined tokens are
  // always recognised, as in llama.cpp. SentencePiece: spaces become U+2581, and with
  // add_space_prefix a space is put before the text and after each special token.
  // Invalid UTF-8: BPE vocabularies refuse it (kInvalidArgument); SentencePiece ones
  // take any bytes, as llama.cpp does (a character's length is read from its first
  // byte; pieces that are not tokens become <0xXX> byte tokens), so their ids match
  // llama.cpp's on any input. A byte with no token and no unknown token is an error.
  Result<std::vector<TokenId>> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Ids to text: detokenize(ids, /*remove_special=*/false, render_special).
  // render_special: control tokens print their text (else nothing).
  // The result may end in the middle of a UTF-8 character if the ids do.
  Result<std::string> decode(std::span<const TokenId> ids, bool render_special = false) const;
  // Ids to text by llama.cpp's llama_detokenize: the pieces of token_bytes joined;
  // with add_space_prefix the first piece loses one leading space; remove_special
  // drops a leading BOS (then the space stays) and a trailing EOS where the model
  // adds them. (llama.cpp's clean-up of spaces before punctuation, which some BPE
  // vocabularies ask for, is not done.)
  Result<std::string> detokenize(std::span<const TokenId> ids, bool remove_special, bool render_special) const;
  // The bytes one id stands for, llama.cpp's llama_token_to_piece: control and
  // unknown tokens their text if render_special (else nothing), user-defined tokens
  // their text, SentencePiece byte tokens <0xXX> their byte, U+2581 a space.
  Result<std::string> token_bytes(TokenId id, bool render_special = false) const;

  size_t vocab_size() const { return tokens_.size(); }
  const std::string& token_text(TokenId id) const { return tokens_[static_cast<size_t>(id)]; }
  // As llama.cpp reads it: end-of-turn and fill-in-the-middle tokens known by their
  // text ("<end_of_turn>", "</s>", "<fim_prefix>") are control tokens whatever the
  // file says.
  TokenType token_type(TokenId id) const { return types_[static_cast<size_t>(id)]; }
  std::optional<TokenId> find_token(std::string_view text) const;
  // -1 where the model has none.
  TokenId bos_id() const { return bos_; }
  TokenId eos_id() const { return eos_; }
  TokenId unknown_id() const { return unk_; }
  TokenId padding_id() const { return pad_; }
  bool adds_bos() const { return add_bos_; }
  bool adds_eos() const { return add_eos_; }
  // tokenizer.ggml.pre as used ("default" when the file has none).
  const std::string& pre_tokenizer_name() const { return pre_name_; }
  TokenizerModel model() const { return model_; }
  // SentencePiece: a space goes before the text (tokenizer.ggml.add_space_prefix).
  bool adds_space_prefix() const { return add_space_prefix_; }
  // tokenizer.ggml.scores (0 for BPE vocabularies, whose merges have ranks instead).
  float token_score(TokenId id) const { return scores_.empty() ? 0.0f : scores_[static_cast<size_t>(id)]; }

 private:
  Tokenizer() = default;
  Status load_bpe(const GgufFile& file, const std::string& pre_tokenizer);
  Status load_spm(const GgufFile& file);
  // SentencePiece merging of one word (see spm_split_words), through the word cache.
  Status encode_spm_word(std::string_view word, SpmScratch& scratch, std::vector<TokenId>& out) const;
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

  TokenizerModel model_ = TokenizerModel::kBytePairEncoding;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  TokenTextMap token_ids_;         // text -> id (texts are unique)
  SpecialTokenSplitter specials_;  // control/user-defined/unknown tokens
  TokenId bos_ = -1, eos_ = -1, unk_ = -1, pad_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  std::string pre_name_;

  // BPE only.
  std::unordered_map<uint64_t, Merge> merges_;
  std::unique_ptr<PreTokenizer> pre_;

  // SentencePiece only.
  std::vector<float> scores_;
  std::array<TokenId, 256> byte_tokens_{};  // <0xXX> (or the unknown token) per byte, -1 when none
  std::vector<int16_t> byte_values_;        // per id: the byte of a byte token, else -1
  size_t max_token_bytes_ = 0;
  TokenIndex token_index_;      // over tokens_, for merging
  TokenTextSet space_joiners_;  // characters some token holds before a U+2581 (spm_space_joiners)

  // Word -> ids, so repeated words skip merging. Cleared when it grows past a bound.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<TokenId>, TokenTextHash, std::equal_to<>>
      cache_;  // guarded by cache_mutex_
};

// Turns ids into text one at a time, for streaming generation: feed() returns only
// complete UTF-8 characters and holds the bytes of a character split across tokens
// until it completes. Bytes that can never form a character come out as U+FFFD.
// starts_text: the ids are a whole text from its start (not a continuation of a
// prompt), so, as in detokenize(), the first piece loses a leading space where the
// vocabulary adds a space prefix. Generation streams a continuation: leave it false.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = false, bool starts_text = false)
      : tokenizer_(tokenizer), render_special_(render_special), starts_text_(starts_text), strip_space_(starts_text) {}
  Result<std::string> feed(TokenId id);
  // What is still held (an unfinished character) as U+FFFD; resets the decoder to
  // its state when made.
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool render_special_;
  bool starts_text_;
  bool strip_space_;     // the next piece is the first: strip a leading space if the vocabulary says so
  std::string pending_;  // at most 3 bytes: the start of an unfinished character
};

}  // namespace keel::engine
