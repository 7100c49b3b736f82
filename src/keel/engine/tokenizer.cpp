#include "keel/engine/tokenizer.h"

#include <algorithm>
#include <queue>

namespace keel::engine {

namespace {

constexpr size_t kMaxCachedWords = 1u << 17;

const GgufArray* find_array(const GgufFile& file, const std::string& key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return nullptr;
  const auto* array = std::get_if<std::shared_ptr<GgufArray>>(&value->data);
  return array != nullptr ? array->get() : nullptr;
}

std::optional<bool> find_bool(const GgufFile& file, const std::string& key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&value->data)) return *b;
  if (auto i = value->as_int()) return *i != 0;
  return std::nullopt;
}

// A text fragment still to be tokenized, or a special token already recognised.
struct Fragment {
  std::string_view text;
  TokenId token = -1;  // >= 0: this fragment is that token
};

// Appends the valid UTF-8 of bytes to out, each byte that cannot be part of a
// character becoming U+FFFD.
void append_sanitized(std::string_view bytes, std::string& out) {
  size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    const int len = utf8_sequence_length(lead);
    if (len > 0 && i + len <= bytes.size() && utf8_valid(bytes.substr(i, len))) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
}

// Length of the unfinished character at the end of bytes that may still complete
// (0 when the bytes end on a character boundary or in bytes that can never complete).
size_t unfinished_tail(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for the lead
    const int len = utf8_sequence_length(c);
    if (len <= static_cast<int>(back)) return 0;
    if (back >= 2) {  // the second byte must fit the lead's range
      const auto second = static_cast<unsigned char>(bytes[n - back + 1]);
      if ((c == 0xE0 && second < 0xA0) || (c == 0xED && second >= 0xA0) || (c == 0xF0 && second < 0x90) ||
          (c == 0xF4 && second >= 0x90)) {
        return 0;
      }
    }
    return back;
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file, const std::string& pre_tokenizer) {
  const auto model = file.get_string("tokenizer.ggml.model");
  if (!model) return invalid_argument("GGUF file has no tokenizer (tokenizer.ggml.model is missing)");
  if (*model != "gpt2") {
    std::string what = *model == "llama"  ? "SentencePiece ('llama')"
                       : *model == "bert" ? "WordPiece ('bert')"
                                          : "'" + *model + "'";
    return invalid_argument("unsupported tokenizer model " + what +
                            ": only byte-level BPE (tokenizer.ggml.model = 'gpt2') is implemented");
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer());

  const GgufArray* tokens = find_array(file, "tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->values.empty()) {
    return invalid_argument("GGUF tokenizer has no tokenizer.ggml.tokens array");
  }
  if (tokens->values.size() > static_cast<size_t>(INT32_MAX)) return invalid_argument("vocabulary too large");
  tok->tokens_.reserve(tokens->values.size());
  tok->token_ids_.reserve(tokens->values.size());
  for (const auto& value : tokens->values) {
    auto text = value.as_string();
    if (!text) return invalid_argument("tokenizer.ggml.tokens holds a value that is not a string");
    tok->token_ids_.emplace(*text, static_cast<TokenId>(tok->tokens_.size()));
    tok->tokens_.push_back(std::move(*text));
  }

  tok->types_.assign(tok->tokens_.size(), TokenType::kNormal);
  if (const GgufArray* types = find_array(file, "tokenizer.ggml.token_type")) {
    if (types->values.size() != tok->tokens_.size()) {
      return invalid_argument("tokenizer.ggml.token_type has " + std::to_string(types->values.size()) +
                              " entries for " + std::to_string(tok->tokens_.size()) + " tokens");
    }
    for (size_t i = 0; i < types->values.size(); ++i) {
      auto t = types->values[i].as_int();
      tok->types_[i] = t && *t >= 0 && *t <= 6 ? static_cast<TokenType>(*t) : TokenType::kUndefined;
    }
  }

  const GgufArray* merges = find_array(file, "tokenizer.ggml.merges");
  if (merges == nullptr) return invalid_argument("BPE tokenizer has no tokenizer.ggml.merges array");
  tok->merges_.reserve(merges->values.size());
  for (size_t rank = 0; rank < merges->values.size(); ++rank) {
    auto merge = merges->values[rank].as_string();
    if (!merge) return invalid_argument("tokenizer.ggml.merges holds a value that is not a string");
    // "left right"; the left part is never empty, so the separator is searched from 1.
    const size_t space = merge->find(' ', 1);
    if (space == std::string::npos) {
      return invalid_argument("tokenizer.ggml.merges[" + std::to_string(rank) + "] has no space: '" + *merge + "'");
    }
    auto left = tok->find_token(std::string_view(*merge).substr(0, space));
    auto right = tok->find_token(std::string_view(*merge).substr(space + 1));
    if (!left || !right) continue;  // can never apply: its parts are not tokens
    auto result = tok->find_token(merge->substr(0, space) + merge->substr(space + 1));
    tok->merges_.emplace(pair_key(*left, *right), Merge{static_cast<int32_t>(rank), result.value_or(-1)});
  }

  auto token_id = [&](const char* key) -> Result<TokenId> {
    auto id = file.get_int(key);
    if (!id) return TokenId{-1};
    if (*id < 0 || static_cast<uint64_t>(*id) >= tok->tokens_.size()) {
      return invalid_argument(std::string(key) + " = " + std::to_string(*id) + " is outside the vocabulary of " +
                              std::to_string(tok->tokens_.size()) + " tokens");
    }
    return static_cast<TokenId>(*id);
  };
  KEEL_ASSIGN_OR_RETURN(tok->bos_, token_id("tokenizer.ggml.bos_token_id"));
  KEEL_ASSIGN_OR_RETURN(tok->eos_, token_id("tokenizer.ggml.eos_token_id"));
  KEEL_ASSIGN_OR_RETURN(tok->unk_, token_id("tokenizer.ggml.unknown_token_id"));
  KEEL_ASSIGN_OR_RETURN(tok->pad_, token_id("tokenizer.ggml.padding_token_id"));

  const auto pre_name =
      pre_tokenizer.empty() ? file.get_string("tokenizer.ggml.pre").value_or("default") : pre_tokenizer;
  KEEL_ASSIGN_OR_RETURN(tok->pre_, PreTokenizer::create(pre_name));

  // llama.cpp's defaults when the file does not say: llama3 vocabularies add BOS.
  tok->add_bos_ = find_bool(file, "tokenizer.ggml.add_bos_token").value_or(tok->pre_->ignore_merges());
  tok->add_eos_ = find_bool(file, "tokenizer.ggml.add_eos_token").value_or(false);
  if (tok->add_bos_ && tok->bos_ < 0) return invalid_argument("tokenizer adds BOS but has no bos_token_id");
  if (tok->add_eos_ && tok->eos_ < 0) return invalid_argument("tokenizer adds EOS but has no eos_token_id");

  for (TokenId id = 0; id < static_cast<TokenId>(tok->tokens_.size()); ++id) {
    const TokenType type = tok->types_[id];
    if ((type == TokenType::kControl || type == TokenType::kUserDefined || type == TokenType::kUnknown) &&
        !tok->tokens_[id].empty()) {
      tok->special_tokens_.push_back(id);
    }
  }
  std::stable_sort(tok->special_tokens_.begin(), tok->special_tokens_.end(), [&](TokenId a, TokenId b) {
    return tok->tokens_[a].size() > tok->tokens_[b].size();
  });
  return tok;
}

std::optional<TokenId> Tokenizer::find_token(std::string_view text) const {
  auto it = token_ids_.find(std::string(text));
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

Result<std::vector<TokenId>> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  size_t bad = 0;
  if (!utf8_valid(text, &bad)) {
    return invalid_argument("text to tokenize is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  // Special tokens first, longest first, each splitting the text fragments left (as
  // llama.cpp's tokenizer_st_partition does).
  std::vector<Fragment> fragments{{text, -1}};
  std::vector<Fragment> next;
  for (TokenId id : special_tokens_) {
    const TokenType type = types_[id];
    if (!parse_special && (type == TokenType::kControl || type == TokenType::kUnknown)) continue;
    const std::string& special = tokens_[id];
    next.clear();
    for (const Fragment& fragment : fragments) {
      if (fragment.token >= 0 || fragment.text.find(special) == std::string_view::npos) {
        next.push_back(fragment);
        continue;
      }
      std::string_view rest = fragment.text;
      for (size_t at = rest.find(special); at != std::string_view::npos; at = rest.find(special)) {
        if (at > 0) next.push_back({rest.substr(0, at), -1});
        next.push_back({{}, id});
        rest.remove_prefix(at + special.size());
      }
      if (!rest.empty()) next.push_back({rest, -1});
    }
    fragments.swap(next);
  }

  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_) out.push_back(bos_);
  for (const Fragment& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
    } else {
      encode_text(fragment.text, out);
    }
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

void Tokenizer::encode_text(std::string_view text, std::vector<TokenId>& out) const {
  std::vector<std::string_view> words;
  pre_->split(text, words);
  const auto& byte_map = byte_to_unicode();
  std::string encoded;
  for (std::string_view word : words) {
    encoded.clear();
    for (char c : word) encoded += byte_map[static_cast<unsigned char>(c)];
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(encoded);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    std::vector<TokenId> ids;
    bpe_word(encoded, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCachedWords) cache_.clear();
    cache_.emplace(encoded, std::move(ids));
  }
}

void Tokenizer::bpe_word(const std::string& word, std::vector<TokenId>& out) const {
  if (pre_->ignore_merges()) {
    if (auto whole = token_ids_.find(word); whole != token_ids_.end()) {
      out.push_back(whole->second);
      return;
    }
  }
  struct Symbol {
    uint32_t start, size;
    TokenId id;  // -1 when the text is not a token
    int prev, next;
  };
  std::vector<Symbol> symbols;
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min<size_t>(word.size() - i, std::max(1, utf8_sequence_length(word[i])));
    const int index = static_cast<int>(symbols.size());
    auto id = find_token(std::string_view(word).substr(i, len));
    symbols.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), id.value_or(-1), index - 1,
                       i + len == word.size() ? -1 : index + 1});
    i += len;
  }

  struct Bigram {
    int32_t rank;
    int left, right;
    TokenId left_id, right_id;
    // The lowest rank first; among equal ranks the leftmost, as llama.cpp orders them.
    bool operator>(const Bigram& other) const {
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };
  std::priority_queue<Bigram, std::vector<Bigram>, std::greater<Bigram>> queue;
  auto add_bigram = [&](int left, int right) {
    if (left < 0 || right < 0 || symbols[left].id < 0 || symbols[right].id < 0) return;
    auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, symbols[left].id, symbols[right].id});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add_bigram(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale: one side was merged into something else since this pair was queued.
    if (left.size == 0 || right.size == 0 || left.id != bigram.left_id || right.id != bigram.right_id) continue;
    left.size += right.size;
    left.id = merges_.at(pair_key(bigram.left_id, bigram.right_id)).result;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    add_bigram(left.prev, bigram.left);
    add_bigram(bigram.left, left.next);
  }

  for (const Symbol& symbol : symbols) {
    if (symbol.size == 0) continue;
    if (symbol.id >= 0) {
      out.push_back(symbol.id);
      continue;
    }
    // Not a token: fall back to the tokens of its single bytes, where they exist
    // (llama.cpp does the same and drops bytes that have none).
    for (uint32_t k = 0; k < symbol.size; ++k) {
      if (auto byte = find_token(std::string_view(word).substr(symbol.start + k, 1))) out.push_back(*byte);
    }
  }
}

Result<std::string> Tokenizer::token_bytes(TokenId id, bool render_special) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) {
    return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary of " +
                            std::to_string(tokens_.size()) + " tokens");
  }
  const std::string& text = tokens_[id];
  switch (types_[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return render_special ? text : std::string();
    case TokenType::kUserDefined:
      return text;
    case TokenType::kNormal:
    case TokenType::kByte: {
      std::string bytes;
      bytes.reserve(text.size());
      for (size_t i = 0; i < text.size();) {
        const size_t begin = i;
        const int byte = unicode_to_byte(utf8_next(text, i));
        if (byte >= 0) {
          bytes += static_cast<char>(byte);
        } else {
          bytes.append(text, begin, i - begin);  // not from the byte mapping: kept as written
        }
      }
      return bytes;
    }
    case TokenType::kUnused:
    case TokenType::kUndefined:
      break;
  }
  return std::string();
}

Result<std::string> Tokenizer::decode(std::span<const TokenId> ids, bool render_special) const {
  std::string out;
  for (TokenId id : ids) {
    KEEL_ASSIGN_OR_RETURN(std::string bytes, token_bytes(id, render_special));
    out += bytes;
  }
  return out;
}

Result<std::string> StreamingDecoder::feed(TokenId id) {
  KEEL_ASSIGN_OR_RETURN(std::string bytes, tokenizer_.token_bytes(id, render_special_));
  pending_ += bytes;
  const size_t hold = unfinished_tail(pending_);
  std::string out;
  append_sanitized(std::string_view(pending_).substr(0, pending_.size() - hold), out);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StreamingDecoder::finish() {
  std::string out;
  if (!pending_.empty()) out = "\xEF\xBF\xBD";
  pending_.clear();
  return out;
}

}  // namespace keel::engine
