#include "keel/engine/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <queue>

namespace keel::engine {

namespace {

constexpr size_t kMaxCachedWords = 1u << 17;

// U+2581 LOWER ONE EIGHTH BLOCK: how SentencePiece vocabularies write a space.
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// The array at key; nullptr when the key is absent; an error when it is not an array.
Result<const GgufArray*> find_array(const GgufFile& file, const std::string& key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return static_cast<const GgufArray*>(nullptr);
  const auto* array = std::get_if<std::shared_ptr<GgufArray>>(&value->data);
  if (array == nullptr || *array == nullptr) {
    return invalid_argument(key + " is of type " + gguf_value_type_name(value->type) + ", expected an array");
  }
  return static_cast<const GgufArray*>(array->get());
}

// The flag at key (a bool, or an integer as some writers store it); nullopt when
// absent; an error for any other type.
Result<std::optional<bool>> find_bool(const GgufFile& file, const std::string& key) {
  const GgufValue* value = file.find(key);
  if (value == nullptr) return std::optional<bool>();
  if (const auto* b = std::get_if<bool>(&value->data)) return std::optional<bool>(*b);
  if (auto i = value->as_int()) return std::optional<bool>(*i != 0);
  return invalid_argument(key + " is of type " + gguf_value_type_name(value->type) + ", expected a bool");
}

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

// llama.cpp's corrections to tokenizer.ggml.token_type (llama_vocab::impl::load),
// made before special tokens are gathered, so a file splits and prints as it does
// there. Tokens known by their text to end a turn or to mark fill-in-the-middle
// become control tokens: parsed only with special parsing, printed only when
// special tokens are rendered (Gemma 3 carries "</s>" as user-defined; llama.cpp
// treats it as control). For the fill-in-the-middle kinds this happens only when
// the file names no id for the kind; where a vocabulary holds several names of one
// kind llama.cpp corrects one of them, picked by hash order, and Keel all.
void apply_llama_cpp_type_corrections(const GgufFile& file, const TokenTextMap& ids, std::vector<TokenType>& types) {
  const size_t n_tokens = types.size();
  using Names = std::vector<const char*>;
  auto names_id = [&](const Names& keys) {
    for (const char* key : keys) {
      auto id = file.get_int(key);
      if (id && *id >= 0 && static_cast<uint64_t>(*id) < n_tokens) return true;
    }
    return false;
  };
  auto make_control = [&](const Names& texts) {
    for (const char* text : texts) {
      auto it = ids.find(std::string_view(text));
      if (it != ids.end() && types[static_cast<size_t>(it->second)] != TokenType::kControl) {
        types[static_cast<size_t>(it->second)] = TokenType::kControl;
      }
    }
  };
  struct Kind {
    Names keys, texts;
  };
  const Kind kinds[] = {
      {{"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"},
       {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "begin\xEF\xBD\x9C>",
        "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"}},
      {{"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"},
       {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "hole\xEF\xBD\x9C>",
        "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"}},
      {{"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"},
       {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
        "<\xEF\xBD\x9C"
        "fim\xE2\x96\x81"
        "end\xEF\xBD\x9C>",
        "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"}},
      {{"tokenizer.ggml.fim_pad_token_id"}, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}},
      {{"tokenizer.ggml.fim_rep_token_id"}, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {{"tokenizer.ggml.fim_sep_token_id"}, {"<|file_sep|>"}},
  };
  for (const Kind& kind : kinds) {
    if (!names_id(kind.keys)) make_control(kind.texts);
  }
  // End of generation (a superset of llama.cpp's end-of-turn names), always.
  make_control({"<|eot_id|>",
                "<|im_end|>",
                "<|end|>",
                "<|return|>",
                "<|call|>",
                "<|flush|>",
                "<|calls|>",
                "<end_of_turn>",
                "<|endoftext|>",
                "</s>",
                "<|eom_id|>",
                "<EOT>",
                "_<EOT>",
                "[EOT]",
                "[EOS]",
                "<|end_of_text|>",
                "<end_of_utterance>",
                "<eos>",
                "<turn|>",
                "<|tool_response>",
                "<\xEF\xBD\x9C"
                "end\xE2\x96\x81"
                "of\xE2\x96\x81"
                "sentence\xEF\xBD\x9C>",
                "[e~["});
  // Always printed (gpt-oss).
  for (const char* text : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    if (auto it = ids.find(std::string_view(text)); it != ids.end()) {
      types[static_cast<size_t>(it->second)] = TokenType::kUserDefined;
    }
  }
  // Gemma 4 and PLaMo 2 have a normal "</s>".
  if (ids.contains(std::string_view("<|tool_response>")) || ids.contains(std::string_view("<|plamo:eos|>"))) {
    if (auto it = ids.find(std::string_view("</s>")); it != ids.end()) {
      types[static_cast<size_t>(it->second)] = TokenType::kNormal;
    }
  }
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file, const std::string& pre_tokenizer) {
  const GgufValue* model_value = file.find("tokenizer.ggml.model");
  if (model_value == nullptr) return invalid_argument("GGUF file has no tokenizer (tokenizer.ggml.model is missing)");
  const auto model = model_value->as_string();
  if (!model) {
    return invalid_argument(std::string("tokenizer.ggml.model is of type ") + gguf_value_type_name(model_value->type) +
                            ", expected a string");
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  if (*model == "gpt2") {
    tok->model_ = TokenizerModel::kBytePairEncoding;
  } else if (*model == "llama") {
    tok->model_ = TokenizerModel::kSentencePiece;
  } else {
    std::string what = *model == "bert" ? "WordPiece ('bert')" : *model == "t5" ? "Unigram ('t5')" : "'" + *model + "'";
    return invalid_argument("unsupported tokenizer model " + what +
                            ": byte-level BPE ('gpt2') and SentencePiece ('llama') are implemented");
  }

  KEEL_ASSIGN_OR_RETURN(const GgufArray* tokens, find_array(file, "tokenizer.ggml.tokens"));
  if (tokens == nullptr || tokens->values.empty()) {
    return invalid_argument("GGUF tokenizer has no tokenizer.ggml.tokens array");
  }
  if (tokens->values.size() > static_cast<size_t>(INT32_MAX)) return invalid_argument("vocabulary too large");
  tok->tokens_.reserve(tokens->values.size());
  tok->token_ids_.reserve(tokens->values.size());
  for (const auto& value : tokens->values) {
    auto text = value.as_string();
    if (!text) return invalid_argument("tokenizer.ggml.tokens holds a value that is not a string");
    const auto id = static_cast<TokenId>(tok->tokens_.size());
    // llama.cpp names an empty token so, and refuses a vocabulary with a text twice.
    if (text->empty()) *text = "[EMPTY_" + std::to_string(id) + "]";
    if (auto [it, added] = tok->token_ids_.emplace(*text, id); !added) {
      return invalid_argument("tokenizer.ggml.tokens holds '" + *text + "' twice (ids " + std::to_string(it->second) +
                              " and " + std::to_string(id) + ")");
    }
    tok->max_token_bytes_ = std::max(tok->max_token_bytes_, text->size());
    tok->tokens_.push_back(std::move(*text));
  }
  const size_t n_tokens = tok->tokens_.size();

  tok->types_.assign(n_tokens, TokenType::kNormal);
  KEEL_ASSIGN_OR_RETURN(const GgufArray* types, find_array(file, "tokenizer.ggml.token_type"));
  if (types != nullptr) {
    if (types->values.size() != n_tokens) {
      return invalid_argument("tokenizer.ggml.token_type has " + std::to_string(types->values.size()) +
                              " entries for " + std::to_string(n_tokens) + " tokens");
    }
    for (size_t i = 0; i < types->values.size(); ++i) {
      auto t = types->values[i].as_int();
      if (!t) {
        return invalid_argument(std::string("tokenizer.ggml.token_type holds ") +
                                gguf_value_type_name(types->values[i].type) + " values, expected int32");
      }
      tok->types_[i] = *t >= 0 && *t <= 6 ? static_cast<TokenType>(*t) : TokenType::kUndefined;
    }
  }

  apply_llama_cpp_type_corrections(file, tok->token_ids_, tok->types_);

  const bool spm = tok->model_ == TokenizerModel::kSentencePiece;
  if (spm) {
    KEEL_RETURN_IF_ERROR(tok->load_spm(file));
  } else {
    KEEL_RETURN_IF_ERROR(tok->load_bpe(file, pre_tokenizer));
  }

  // A missing id takes llama.cpp's default for the model (SentencePiece: BOS 1,
  // EOS 2, unknown 0, where the vocabulary has them); an id outside the vocabulary
  // is an error.
  auto token_id = [&](const char* key, TokenId fallback) -> Result<TokenId> {
    auto id = file.get_int(key);
    if (!id) return fallback >= 0 && static_cast<size_t>(fallback) < n_tokens ? fallback : TokenId{-1};
    if (*id < 0 || static_cast<uint64_t>(*id) >= n_tokens) {
      return invalid_argument(std::string(key) + " = " + std::to_string(*id) + " is outside the vocabulary of " +
                              std::to_string(n_tokens) + " tokens");
    }
    return static_cast<TokenId>(*id);
  };
  KEEL_ASSIGN_OR_RETURN(tok->bos_, token_id("tokenizer.ggml.bos_token_id", spm ? 1 : -1));
  KEEL_ASSIGN_OR_RETURN(tok->eos_, token_id("tokenizer.ggml.eos_token_id", spm ? 2 : -1));
  KEEL_ASSIGN_OR_RETURN(tok->unk_, token_id("tokenizer.ggml.unknown_token_id", spm ? 0 : -1));
  KEEL_ASSIGN_OR_RETURN(tok->pad_, token_id("tokenizer.ggml.padding_token_id", -1));

  // llama.cpp's defaults when the file does not say: SentencePiece adds BOS and a
  // space prefix; llama3-style BPE vocabularies add BOS.
  KEEL_ASSIGN_OR_RETURN(auto add_bos, find_bool(file, "tokenizer.ggml.add_bos_token"));
  KEEL_ASSIGN_OR_RETURN(auto add_eos, find_bool(file, "tokenizer.ggml.add_eos_token"));
  KEEL_ASSIGN_OR_RETURN(auto add_space_prefix, find_bool(file, "tokenizer.ggml.add_space_prefix"));
  tok->add_bos_ = add_bos.value_or(spm || tok->pre_->ignore_merges());
  tok->add_eos_ = add_eos.value_or(false);
  tok->add_space_prefix_ = add_space_prefix.value_or(spm);
  if (tok->add_bos_ && tok->bos_ < 0) return invalid_argument("tokenizer adds BOS but has no bos_token_id");
  if (tok->add_eos_ && tok->eos_ < 0) return invalid_argument("tokenizer adds EOS but has no eos_token_id");

  if (spm) {
    // The token for each byte a piece falls back to: <0xXX>, else the byte as a
    // one-byte token, else the unknown token (llama.cpp has no such fallback and stops).
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", static_cast<unsigned>(b));
      const char single = static_cast<char>(b);
      auto id = tok->find_token(hex);
      if (!id) id = tok->find_token(std::string_view(&single, 1));
      tok->byte_tokens_[static_cast<size_t>(b)] = id.value_or(tok->unk_);
    }
  }

  std::vector<SpecialTokenSplitter::Special> specials;
  for (TokenId id = 0; id < static_cast<TokenId>(n_tokens); ++id) {
    const TokenType type = tok->types_[id];
    if ((type == TokenType::kControl || type == TokenType::kUserDefined || type == TokenType::kUnknown) &&
        !tok->tokens_[id].empty()) {
      specials.push_back({tok->tokens_[id], id, type == TokenType::kUserDefined});
    }
  }
  tok->specials_ = SpecialTokenSplitter(std::move(specials));
  return tok;
}

Status Tokenizer::load_bpe(const GgufFile& file, const std::string& pre_tokenizer) {
  KEEL_ASSIGN_OR_RETURN(const GgufArray* merges, find_array(file, "tokenizer.ggml.merges"));
  if (merges == nullptr) return invalid_argument("BPE tokenizer has no tokenizer.ggml.merges array");
  merges_.reserve(merges->values.size());
  for (size_t rank = 0; rank < merges->values.size(); ++rank) {
    auto merge = merges->values[rank].as_string();
    if (!merge) return invalid_argument("tokenizer.ggml.merges holds a value that is not a string");
    // "left right"; the left part is never empty, so the separator is searched from 1.
    const size_t space = merge->find(' ', 1);
    if (space == std::string::npos) {
      return invalid_argument("tokenizer.ggml.merges[" + std::to_string(rank) + "] has no space: '" + *merge + "'");
    }
    auto left = find_token(std::string_view(*merge).substr(0, space));
    auto right = find_token(std::string_view(*merge).substr(space + 1));
    if (!left || !right) continue;  // can never apply: its parts are not tokens
    auto result = find_token(merge->substr(0, space) + merge->substr(space + 1));
    merges_.emplace(pair_key(*left, *right), Merge{static_cast<int32_t>(rank), result.value_or(-1)});
  }
  const auto pre_name =
      pre_tokenizer.empty() ? file.get_string("tokenizer.ggml.pre").value_or("default") : pre_tokenizer;
  KEEL_ASSIGN_OR_RETURN(pre_, PreTokenizer::create(pre_name));
  pre_name_ = pre_->name();
  return Status::Ok();
}

Status Tokenizer::load_spm(const GgufFile& file) {
  pre_name_ = file.get_string("tokenizer.ggml.pre").value_or("default");
  KEEL_ASSIGN_OR_RETURN(const GgufArray* scores, find_array(file, "tokenizer.ggml.scores"));
  if (scores == nullptr) {
    return invalid_argument(
        "SentencePiece tokenizer has no tokenizer.ggml.scores array (its merges follow the token scores)");
  }
  if (scores->element_type != GgufValueType::kFloat32 && scores->element_type != GgufValueType::kInt32) {
    return invalid_argument(std::string("tokenizer.ggml.scores is an array of ") +
                            gguf_value_type_name(scores->element_type) + ", expected float32");
  }
  if (scores->values.size() != tokens_.size()) {
    return invalid_argument("tokenizer.ggml.scores has " + std::to_string(scores->values.size()) + " entries for " +
                            std::to_string(tokens_.size()) + " tokens");
  }
  scores_.reserve(tokens_.size());
  for (size_t i = 0; i < scores->values.size(); ++i) {
    const auto score = scores->values[i].as_double();
    if (!score || std::isnan(*score)) {
      return invalid_argument("tokenizer.ggml.scores[" + std::to_string(i) + "] is not a number");
    }
    scores_.push_back(static_cast<float>(*score));
  }

  token_index_ = TokenIndex(tokens_);
  space_joiners_ = spm_space_joiners(tokens_);
  byte_values_.assign(tokens_.size(), -1);
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (types_[id] != TokenType::kByte) continue;
    const std::string& text = tokens_[id];
    const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>' || !hex(text[3]) || !hex(text[4])) {
      return invalid_argument("token " + std::to_string(id) + " ('" + text +
                              "') is a byte token, but its text is not <0xXX>");
    }
    byte_values_[id] = static_cast<int16_t>(std::stoi(text.substr(3, 2), nullptr, 16));
  }
  return Status::Ok();
}

std::optional<TokenId> Tokenizer::find_token(std::string_view text) const {
  auto it = token_ids_.find(text);
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

Result<std::vector<TokenId>> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const bool spm = model_ == TokenizerModel::kSentencePiece;
  size_t bad = 0;
  if (!spm && !utf8_valid(text, &bad)) {
    return invalid_argument("text to tokenize is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  std::vector<SpecialTokenSplitter::Fragment> fragments;
  specials_.split(text, parse_special, fragments);

  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_) out.push_back(bos_);
  if (!spm) {
    for (const auto& fragment : fragments) {
      if (fragment.token >= 0) {
        out.push_back(fragment.token);
      } else {
        encode_text(fragment.text, out);
      }
    }
  } else {
    // The text, and the text after each special token, starts with a space where
    // the vocabulary asks for one (llama.cpp's is_prev_special).
    bool after_special = true;
    std::string escaped;
    std::vector<std::string_view> words;
    SpmScratch scratch;
    for (const auto& fragment : fragments) {
      if (fragment.token >= 0) {
        out.push_back(fragment.token);
        after_special = true;
        continue;
      }
      escaped.clear();
      if (add_space_prefix_ && after_special) escaped += kSpaceMark;
      for (char c : fragment.text) {
        if (c == ' ') {
          escaped += kSpaceMark;
        } else {
          escaped += c;
        }
      }
      words.clear();
      spm_split_words(escaped, space_joiners_, words);
      for (std::string_view word : words) KEEL_RETURN_IF_ERROR(encode_spm_word(word, scratch, out));
      after_special = false;
    }
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

Status Tokenizer::encode_spm_word(std::string_view word, SpmScratch& scratch, std::vector<TokenId>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return Status::Ok();
    }
  }
  const SpmVocabulary vocab{token_index_, scores_, byte_tokens_, max_token_bytes_};
  const size_t first = out.size();
  KEEL_RETURN_IF_ERROR(spm_merge(word, vocab, scratch, out));
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kMaxCachedWords) cache_.clear();
  cache_.emplace(std::string(word), std::vector<TokenId>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
  return Status::Ok();
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
    bool operator>(const Bigram& other) const { return rank != other.rank ? rank > other.rank : left > other.left; }
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
      if (model_ == TokenizerModel::kSentencePiece) {
        if (types_[id] == TokenType::kByte) return std::string(1, static_cast<char>(byte_values_[id]));
        std::string out;
        out.reserve(text.size());
        for (size_t at = 0;;) {
          const size_t mark = text.find(kSpaceMark, at);
          out.append(text, at, mark == std::string::npos ? std::string::npos : mark - at);
          if (mark == std::string::npos) break;
          out += ' ';
          at = mark + kSpaceMark.size();
        }
        return out;
      }
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
  return detokenize(ids, /*remove_special=*/false, render_special);
}

Result<std::string> Tokenizer::detokenize(std::span<const TokenId> ids, bool remove_special,
                                          bool render_special) const {
  bool strip_space = add_space_prefix_;
  if (remove_special && add_bos_ && !ids.empty() && ids.front() == bos_) {
    strip_space = false;
    ids = ids.subspan(1);
  }
  if (remove_special && add_eos_ && !ids.empty() && ids.back() == eos_) ids = ids.first(ids.size() - 1);
  std::string out;
  for (TokenId id : ids) {
    KEEL_ASSIGN_OR_RETURN(std::string bytes, token_bytes(id, render_special));
    // Only the first piece, even when it is empty (a control token not rendered).
    if (strip_space && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
    strip_space = false;
    out += bytes;
  }
  return out;
}

Result<std::string> StreamingDecoder::feed(TokenId id) {
  KEEL_ASSIGN_OR_RETURN(std::string bytes, tokenizer_.token_bytes(id, render_special_));
  if (strip_space_ && tokenizer_.adds_space_prefix() && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
  strip_space_ = false;
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
  strip_space_ = starts_text_;
  return out;
}

}  // namespace keel::engine
