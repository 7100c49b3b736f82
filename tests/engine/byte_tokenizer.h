// A byte-level BPE tokenizer with no merges: token b (0..255) is byte b, in GPT-2's
// byte-to-unicode spelling, plus optional extra tokens after them. It matches the
// 256-token vocabulary of the tiny random models in tests/fixtures/engine/forward/,
// so generation can run end to end on them, and every multi-byte character spans
// several tokens. For the stop-string and generation tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/engine/gguf_writer.h"
#include "keel/engine/tokenizer.h"
#include "keel/engine/tokenizer_pretokenizer.h"

namespace keel::engine::testing {

// extra: (text, token type) appended as ids 256, 257, ...; eos: tokenizer.ggml.eos_token_id (-1: none).
inline std::unique_ptr<Tokenizer> make_byte_tokenizer(const std::vector<std::pair<std::string, TokenType>>& extra = {},
                                                      int32_t eos = -1) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (const auto& ch : byte_to_unicode()) {
    tokens.push_back(ch);
    types.push_back(static_cast<int32_t>(TokenType::kNormal));
  }
  for (const auto& [text, type] : extra) {
    tokens.push_back(text);
    types.push_back(static_cast<int32_t>(type));
  }
  GgufWriter w;
  EXPECT_TRUE(w.add_string("tokenizer.ggml.model", "gpt2").ok());
  EXPECT_TRUE(w.add_string("tokenizer.ggml.pre", "gpt-2").ok());
  EXPECT_TRUE(w.add_string_array("tokenizer.ggml.tokens", tokens).ok());
  EXPECT_TRUE(w.add_int32_array("tokenizer.ggml.token_type", types).ok());
  EXPECT_TRUE(w.add_string_array("tokenizer.ggml.merges", {}).ok());
  if (eos >= 0) {
    EXPECT_TRUE(w.add_int32("tokenizer.ggml.eos_token_id", eos).ok());
  }
  EXPECT_TRUE(w.add_bool("tokenizer.ggml.add_bos_token", false).ok());
  const std::string image = w.encode_header();
  auto file = GgufFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  EXPECT_TRUE(file.ok()) << file.status().to_string();
  if (!file.ok()) return nullptr;
  auto tokenizer = Tokenizer::from_gguf(**file);  // copies what it needs from the image
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

// The ids of text's bytes under make_byte_tokenizer.
inline std::vector<TokenId> byte_ids(const std::string& text) {
  std::vector<TokenId> ids;
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

}  // namespace keel::engine::testing
