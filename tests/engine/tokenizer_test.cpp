// The tokenizer (tokenizer.h) against llama.cpp's ids on hard strings
// (tests/fixtures/engine/tokenizer/smollm2.json, written by
// tests/reference/make_tokenizer_fixtures.py), plus round trips, streaming decode,
// special tokens and errors, on the default model and on tiny in-memory GGUF files.
#include "keel/engine/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "gguf_test_image.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

std::string fixture_path(const std::string& name = "smollm2.json") {
  const std::string root = keel::testing::source_dir();
  return root + "/tests/fixtures/engine/tokenizer/" + name;
}

nlohmann::json load_fixture(const std::string& name = "smollm2.json") {
  std::ifstream in(fixture_path(name));
  EXPECT_TRUE(in.good()) << "missing fixture " << fixture_path()
                         << " (tests/reference/make_tokenizer_fixtures.py writes it)";
  if (!in.good()) return {};
  return nlohmann::json::parse(in);
}

// The default model's tokenizer, or nullptr (and the caller skips) when it is absent.
struct DefaultTokenizer {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
};
DefaultTokenizer open_default() {
  DefaultTokenizer out;
  auto path = keel::testing::default_model_path();
  if (!path) return out;
  auto file = GgufFile::open(*path);
  EXPECT_TRUE(file.ok()) << file.status().to_string();
  if (!file.ok()) return out;
  auto tok = Tokenizer::from_gguf(**file);
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  if (!tok.ok()) return out;
  out.file = std::move(file).value();
  out.tokenizer = std::move(tok).value();
  return out;
}
#define KEEL_NEED_DEFAULT_MODEL(var)                                                                 \
  auto var = open_default();                                                                         \
  if (!var.tokenizer) {                                                                              \
    if (::testing::Test::HasFailure()) return;                                                       \
    GTEST_SKIP() << "default model not fetched (scripts/fetch-default-model fetches it; CI has it)"; \
  }

std::vector<TokenId> ids_of(const nlohmann::json& j) {
  return j.get<std::vector<TokenId>>();
}

std::string show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += std::to_string(id) + " ";
  return s;
}

// Every id list llama.cpp gave for one fixture file, and its decoded text.
void expect_matches_fixture(const Tokenizer& tok, const nlohmann::json& fixture) {
  ASSERT_TRUE(fixture.contains("cases"));
  ASSERT_GE(fixture["cases"].size(), 50u);
  for (const auto& c : fixture["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: \"" + text.substr(0, 80) + "\"");
    struct Flags {
      const char* name;
      bool add_special, parse_special;
    };
    for (const Flags f : {Flags{"plain", false, false}, Flags{"bos", true, false}, Flags{"special", false, true},
                          Flags{"bos_special", true, true}}) {
      auto ids = tok.encode(text, f.add_special, f.parse_special);
      ASSERT_TRUE(ids.ok()) << ids.status().to_string();
      const auto expected = ids_of(c["ids"][f.name]);
      EXPECT_EQ(*ids, expected) << f.name << "\n ours:      " << show(*ids) << "\n llama.cpp: " << show(expected);
    }
    auto decoded = tok.decode(ids_of(c["ids"]["plain"]), false);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, c["decoded"].get<std::string>());
    auto decoded_special = tok.decode(ids_of(c["ids"]["special"]), true);
    ASSERT_TRUE(decoded_special.ok());
    EXPECT_EQ(*decoded_special, c["decoded_special"].get<std::string>());
  }
}

TEST(Tokenizer, MatchesLlamaCppOnEveryFixtureString) {
  KEEL_NEED_DEFAULT_MODEL(model);
  expect_matches_fixture(*model.tokenizer, load_fixture());
}

// The same vocabulary under the other pre-tokenizers: llama.cpp tokenized a copy of
// the model's metadata with tokenizer.ggml.pre changed; here the name is overridden.
TEST(Tokenizer, MatchesLlamaCppUnderEveryPreTokenizer) {
  KEEL_NEED_DEFAULT_MODEL(model);
  for (const char* pre : {"gpt-2", "llama-bpe", "qwen2", "default"}) {
    SCOPED_TRACE(std::string("tokenizer.ggml.pre = ") + pre);
    const auto fixture = load_fixture(std::string("smollm2_pre_") + pre + ".json");
    ASSERT_EQ(fixture.value("pre", ""), pre);
    auto tok = Tokenizer::from_gguf(*model.file, pre);
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    EXPECT_EQ((*tok)->pre_tokenizer_name(), pre);
    expect_matches_fixture(**tok, fixture);
  }
}

TEST(Tokenizer, DecodeOfEncodeIsTheText) {
  KEEL_NEED_DEFAULT_MODEL(model);
  const auto fixture = load_fixture();
  ASSERT_TRUE(fixture.contains("cases"));
  for (const auto& c : fixture["cases"]) {
    const std::string text = c["text"];
    for (bool parse_special : {false, true}) {
      auto ids = model.tokenizer->encode(text, false, parse_special);
      ASSERT_TRUE(ids.ok());
      auto back = model.tokenizer->decode(*ids, /*render_special=*/true);
      ASSERT_TRUE(back.ok());
      EXPECT_EQ(*back, text) << "parse_special=" << parse_special;
    }
  }
}

TEST(Tokenizer, ReadsTheDefaultModelsSpecialIds) {
  KEEL_NEED_DEFAULT_MODEL(model);
  const Tokenizer& tok = *model.tokenizer;
  EXPECT_EQ(tok.vocab_size(), 49152u);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.unknown_id(), 0);
  EXPECT_EQ(tok.padding_id(), 2);
  EXPECT_FALSE(tok.adds_bos());
  EXPECT_EQ(tok.pre_tokenizer_name(), "smollm");
}

TEST(Tokenizer, RecognisesControlTokensOnlyWhenAsked) {
  KEEL_NEED_DEFAULT_MODEL(model);
  const Tokenizer& tok = *model.tokenizer;
  auto parsed = tok.encode("<|im_start|>user", false, true);
  ASSERT_TRUE(parsed.ok());
  ASSERT_FALSE(parsed->empty());
  EXPECT_EQ((*parsed)[0], 1);
  auto literal = tok.encode("<|im_start|>user", false, false);
  ASSERT_TRUE(literal.ok());
  EXPECT_GT(literal->size(), 2u);
  EXPECT_EQ(std::count(literal->begin(), literal->end(), 1), 0);
  // Control tokens print nothing unless asked to.
  EXPECT_EQ(*tok.decode(std::vector<TokenId>{1}, false), "");
  EXPECT_EQ(*tok.decode(std::vector<TokenId>{1}, true), "<|im_start|>");
}

TEST(Tokenizer, StreamingDecodeHoldsSplitCharacters) {
  KEEL_NEED_DEFAULT_MODEL(model);
  const Tokenizer& tok = *model.tokenizer;
  const std::string text = "Emoji 😀🎉 家族 👨‍👩‍👧 ok é";
  auto ids = tok.encode(text, false, false);
  ASSERT_TRUE(ids.ok());
  StreamingDecoder stream(tok);
  std::string joined;
  bool saw_split = false;
  for (TokenId id : *ids) {
    auto bytes = tok.token_bytes(id);
    ASSERT_TRUE(bytes.ok());
    saw_split |= !utf8_valid(*bytes);
    auto piece = stream.feed(id);
    ASSERT_TRUE(piece.ok());
    EXPECT_TRUE(utf8_valid(*piece)) << "fed " << id;
    joined += *piece;
  }
  EXPECT_TRUE(saw_split) << "no token of the text ends inside a character: the test proves nothing";
  EXPECT_EQ(stream.finish(), "");
  EXPECT_EQ(joined, text);
}

TEST(Tokenizer, RejectsInvalidInputAndIds) {
  KEEL_NEED_DEFAULT_MODEL(model);
  const Tokenizer& tok = *model.tokenizer;
  for (std::string bad :
       {std::string("abc\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"), std::string("\xc0\xaf")}) {
    auto ids = tok.encode(bad, false, false);
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find("UTF-8"), std::string::npos);
  }
  for (TokenId id : {-1, 49152, 1 << 30}) {
    auto text = tok.decode(std::vector<TokenId>{5, id});
    ASSERT_FALSE(text.ok());
    EXPECT_NE(text.status().message().find("outside the vocabulary"), std::string::npos);
    StreamingDecoder stream(tok);
    EXPECT_FALSE(stream.feed(id).ok());
  }
}

TEST(Tokenizer, EncodesTheEnglishParagraphsFast) {
  KEEL_NEED_DEFAULT_MODEL(model);
  const auto fixture = load_fixture();
  ASSERT_TRUE(fixture.contains("english_paragraphs"));
  const std::string paragraphs = fixture["english_paragraphs"];
  std::string text;
  while (text.size() < (1u << 20)) text += paragraphs + "\n\n";
  // A fresh tokenizer: the first pass fills the word cache, the second hits it.
  auto fresh = Tokenizer::from_gguf(*model.file);
  ASSERT_TRUE(fresh.ok());
  double mb_per_s[2] = {0, 0};
  size_t count = 0;
  for (double& rate : mb_per_s) {
    const auto start = std::chrono::steady_clock::now();
    auto ids = (*fresh)->encode(text, false, false);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(ids.ok());
    count = ids->size();
    rate = static_cast<double>(text.size()) / 1e6 / seconds;
  }
  std::cout << "[ tokenizer ] " << text.size() << " bytes -> " << count << " tokens: " << mb_per_s[0]
            << " MB/s (first pass), " << mb_per_s[1] << " MB/s (word cache warm)\n";
  EXPECT_GT(count, text.size() / 8);
}

// ----- tiny in-memory vocabularies -----------------------------------------------

using keel::testing::GgufImage;

// The 256 byte characters, then "ab", "abc", "Ġab", "<ctl>", "<usr>"; merges in rank order.
struct TinyVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<std::string> merges = {"a b", "ab c", "Ġ ab"};
  TinyVocab() {
    for (const auto& ch : byte_to_unicode()) tokens.push_back(ch);
    for (const char* extra : {"ab", "abc", "Ġab", "<ctl>", "<usr>"}) tokens.push_back(extra);
    types.assign(tokens.size(), 1);
    types[259] = 3;  // <ctl>: control
    types[260] = 4;  // <usr>: user-defined
  }
  TokenId id(const std::string& text) const {
    return static_cast<TokenId>(std::find(tokens.begin(), tokens.end(), text) - tokens.begin());
  }
};

std::string tiny_image(const std::string& model, const std::string& pre, bool add_bos = false) {
  TinyVocab v;
  GgufImage g;
  g.kv_string("tokenizer.ggml.model", model)
      .kv_string("tokenizer.ggml.pre", pre)
      .kv_strings("tokenizer.ggml.tokens", v.tokens)
      .kv_ints("tokenizer.ggml.token_type", v.types)
      .kv_strings("tokenizer.ggml.merges", v.merges)
      .kv_int("tokenizer.ggml.bos_token_id", 259)
      .kv_int("tokenizer.ggml.eos_token_id", 259)
      .kv_bool("tokenizer.ggml.add_bos_token", add_bos);
  return g.finish(8);
}

Result<std::unique_ptr<Tokenizer>> tiny_tokenizer(const std::string& image) {
  auto file = GgufFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  if (!file.ok()) return file.status();
  return Tokenizer::from_gguf(**file);  // the tokenizer copies what it needs
}

TEST(Tokenizer, AppliesMergesByRankOnATinyVocabulary) {
  const std::string image = tiny_image("gpt2", "gpt-2", /*add_bos=*/true);
  auto tok = tiny_tokenizer(image);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  TinyVocab v;
  const auto& bytes = byte_to_unicode();
  // "abc" merges fully; " abd" becomes "Ġab" + "d" (Ġ ab ranks after a b).
  auto ids = (*tok)->encode("abc abd", true, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<TokenId>{259, v.id("abc"), v.id("Ġab"), v.id(bytes['d'])}));
  EXPECT_EQ(*(*tok)->decode(*ids), "abc abd");
  // Control tokens only with parse_special; user-defined ones always.
  auto plain = (*tok)->encode("<ctl><usr>", false, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->size(), 6u);  // "<ctl>" as 5 byte tokens, then <usr>
  EXPECT_EQ(plain->back(), 260);
  auto special = (*tok)->encode("<ctl><usr>", false, true);
  ASSERT_TRUE(special.ok());
  EXPECT_EQ(*special, (std::vector<TokenId>{259, 260}));
}

TEST(Tokenizer, StreamingDecoderReplacesBytesThatNeverFormACharacter) {
  const std::string image = tiny_image("gpt2", "gpt-2");
  auto tok = tiny_tokenizer(image);
  ASSERT_TRUE(tok.ok());
  const auto& bytes = byte_to_unicode();
  TinyVocab v;
  StreamingDecoder stream(**tok);
  // "é" is C3 A9: the first byte alone is held, the second completes it.
  EXPECT_EQ(*stream.feed(v.id(bytes[0xC3])), "");
  EXPECT_EQ(*stream.feed(v.id(bytes[0xA9])), "é");
  // A lone continuation byte can never complete: it comes out replaced at once.
  EXPECT_EQ(*stream.feed(v.id(bytes[0xA9])), "\xEF\xBF\xBD");
  // An unfinished character at the end comes out of finish() replaced.
  EXPECT_EQ(*stream.feed(v.id(bytes[0xE4])), "");
  EXPECT_EQ(*stream.feed(v.id(bytes[0xBD])), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");
  // A lead byte followed by a non-continuation: the lead is replaced, the rest kept.
  EXPECT_EQ(*stream.feed(v.id(bytes[0xC3])), "");
  EXPECT_EQ(*stream.feed(v.id(bytes['x'])), "\xEF\xBF\xBDx");
}

TEST(Tokenizer, SaysWhichTokenizerIsMissingOrUnsupported) {
  GgufImage empty;
  empty.kv_string("general.architecture", "llama");
  auto none = tiny_tokenizer(empty.finish(1));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("tokenizer.ggml.model is missing"), std::string::npos);

  // A SentencePiece vocabulary must carry scores (this BPE one has merges instead).
  auto spm = tiny_tokenizer(tiny_image("llama", "default"));
  ASSERT_FALSE(spm.ok());
  EXPECT_NE(spm.status().message().find("tokenizer.ggml.scores"), std::string::npos) << spm.status().to_string();

  auto bert = tiny_tokenizer(tiny_image("bert", "default"));
  ASSERT_FALSE(bert.ok());
  EXPECT_NE(bert.status().message().find("WordPiece"), std::string::npos) << bert.status().to_string();

  auto pre = tiny_tokenizer(tiny_image("gpt2", "no-such-pre"));
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.status().message().find("no-such-pre"), std::string::npos);
  EXPECT_NE(pre.status().message().find("smollm"), std::string::npos);
}

// Pre-tokenizers on their own: the pieces each regex set cuts.
std::vector<std::string> split(const std::string& pre_name, const std::string& text) {
  auto pre = PreTokenizer::create(pre_name);
  EXPECT_TRUE(pre.ok()) << pre.status().to_string();
  std::vector<std::string_view> words;
  (*pre)->split(text, words);
  return {words.begin(), words.end()};
}

TEST(PreTokenizer, CutsDigitsAndSpacesAsEachRegexSetSays) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split("gpt-2", "Hello  world 12345"), (V{"Hello", " ", " world", " 12345"}));
  EXPECT_EQ(split("smollm", "x 12345"), (V{"x", " ", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(split("llama3", "x 12345\n\n  y"), (V{"x", " ", "123", "45", "\n\n", " ", " y"}));
  EXPECT_EQ(split("qwen2", "I'M 123"), (V{"I", "'M", " ", "1", "2", "3"}));
  EXPECT_EQ(split("llama-bpe", "don't"), (V{"don", "'t"}));
  EXPECT_EQ(split("default", "a+b=100"), (V{"a", "+", "b", "=", "100"}));
}

}  // namespace
}  // namespace keel::engine
