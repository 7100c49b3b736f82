// The SentencePiece-style tokenizer (tokenizer.h, tokenizer_spm.h) against llama.cpp's
// ids, pieces and detokenized text on hard strings (tests/fixtures/engine/tokenizer/
// spm_tiny*.json and gemma3.json, written by tests/reference/make_spm_tokenizer_fixtures.py),
// on a tiny trained vocabulary committed as GGUF and on Gemma 3 270M when it is fetched;
// plus streaming decode piece by piece, speed on a megabyte, and malformed vocabularies.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "gguf_test_image.h"
#include "keel/engine/tokenizer.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

using keel::testing::GgufImage;

std::string source_root() {
  return keel::testing::source_dir();
}

std::string fixture_path(const std::string& name) {
  return source_root() + "/tests/fixtures/engine/tokenizer/" + name;
}

nlohmann::json load_fixture(const std::string& name) {
  std::ifstream in(fixture_path(name));
  EXPECT_TRUE(in.good()) << "missing fixture " << fixture_path(name)
                         << " (tests/reference/make_spm_tokenizer_fixtures.py writes it)";
  if (!in.good()) return {};
  return nlohmann::json::parse(in);
}

// Where scripts/fetch-models leaves Gemma 3 (KEEL_GEMMA3_MODEL_FILE in scripts/gemma3-model.conf).
std::string gemma_path() {
  std::string cache;
  if (const char* c = std::getenv("KEEL_CACHE_DIR"); c != nullptr && *c != '\0') {
    cache = c;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    cache = std::string(x) + "/keel";
  } else {
    const char* home = std::getenv("HOME");
    cache = std::string(home != nullptr ? home : "") + "/.cache/keel";
  }
  return cache + "/models/gemma-3-270m-q4_k_m.gguf";
}

struct Opened {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

Opened open_tokenizer(const std::string& path) {
  Opened out;
  auto file = GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << path << ": " << file.status().to_string();
  if (!file.ok()) return out;
  auto tok = Tokenizer::from_gguf(**file);
  EXPECT_TRUE(tok.ok()) << path << ": " << tok.status().to_string();
  if (!tok.ok()) return out;
  out.file = std::move(file).value();
  out.tokenizer = std::move(tok).value();
  return out;
}

bool file_exists(const std::string& path) {
  return std::ifstream(path).good();
}

#define KEEL_NEED_GEMMA(var)                                                                               \
  if (!file_exists(gemma_path())) {                                                                        \
    GTEST_SKIP() << "Gemma 3 270M not fetched (" << gemma_path() << "): scripts/fetch-models fetches it, " \
                 << "make test runs that";                                                                 \
  }                                                                                                        \
  auto var = open_tokenizer(gemma_path());                                                                 \
  ASSERT_TRUE(var.tokenizer != nullptr)

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// A fixture value: a string, or {"hex": "..."} for bytes that are not UTF-8.
std::string bytes_of(const nlohmann::json& j) {
  return j.is_string() ? j.get<std::string>() : from_hex(j.at("hex").get<std::string>());
}

std::string printable(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += std::to_string(id) + " ";
  return s;
}

std::string hex_of(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

// Streams ids through a StreamingDecoder one at a time, as generation does.
std::string stream(const Tokenizer& tok, const std::vector<TokenId>& ids, bool render_special, bool* saw_split) {
  StreamingDecoder decoder(tok, render_special, /*starts_text=*/true);
  std::string joined;
  for (TokenId id : ids) {
    auto piece = decoder.feed(id);
    EXPECT_TRUE(piece.ok()) << piece.status().to_string();
    if (!piece.ok()) return joined;
    EXPECT_TRUE(utf8_valid(*piece)) << "fed " << id << ", got " << printable(*piece);
    if (saw_split != nullptr && !utf8_valid(*tok.token_bytes(id, render_special))) *saw_split = true;
    joined += *piece;
  }
  return joined + decoder.finish();
}

struct Tally {
  size_t cases = 0, matched = 0;
};

// Everything llama.cpp said for one fixture file: ids under the four flag
// combinations, each id's piece, detokenized text four ways, and streaming.
Tally expect_matches_fixture(const Tokenizer& tok, const nlohmann::json& fixture) {
  Tally tally;
  EXPECT_TRUE(fixture.contains("cases"));
  if (!fixture.contains("cases")) return tally;
  EXPECT_GE(fixture["cases"].size(), 100u);
  for (const auto& c : fixture["cases"]) {
    const std::string text = bytes_of(c["text"]);
    SCOPED_TRACE("text: \"" + printable(text.substr(0, 80)) + "\"");
    const int failures_before = ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    struct Flags {
      const char* name;
      bool add_special, parse_special;
    };
    for (const Flags f : {Flags{"plain", false, false}, Flags{"bos", true, false}, Flags{"special", false, true},
                          Flags{"bos_special", true, true}}) {
      auto ids = tok.encode(text, f.add_special, f.parse_special);
      EXPECT_TRUE(ids.ok()) << ids.status().to_string();
      if (!ids.ok()) continue;
      const auto expected = c["ids"][f.name].get<std::vector<TokenId>>();
      EXPECT_EQ(*ids, expected) << f.name << "\n ours:      " << show(*ids) << "\n llama.cpp: " << show(expected);
    }
    const auto full = c["ids"]["bos_special"].get<std::vector<TokenId>>();
    for (size_t i = 0; i < full.size(); ++i) {
      EXPECT_EQ(hex_of(*tok.token_bytes(full[i], true)), c["pieces"][i].get<std::string>()) << "id " << full[i];
      EXPECT_EQ(hex_of(*tok.token_bytes(full[i], false)), c["pieces_plain"][i].get<std::string>()) << "id " << full[i];
    }
    EXPECT_EQ(*tok.decode(c["ids"]["plain"].get<std::vector<TokenId>>(), false), bytes_of(c["decoded"]));
    EXPECT_EQ(*tok.decode(c["ids"]["special"].get<std::vector<TokenId>>(), true), bytes_of(c["decoded_special"]));
    const auto& d = c["detokenized"];
    EXPECT_EQ(*tok.detokenize(full, false, false), bytes_of(d["keep"]));
    EXPECT_EQ(*tok.detokenize(full, false, true), bytes_of(d["keep_render"]));
    EXPECT_EQ(*tok.detokenize(full, true, false), bytes_of(d["remove"]));
    EXPECT_EQ(*tok.detokenize(full, true, true), bytes_of(d["remove_render"]));
    // Streaming gives detokenize()'s text; bytes that never form a character
    // become U+FFFD, so those cases only need to come out valid.
    for (bool render : {false, true}) {
      const std::string expected = bytes_of(d[render ? "keep_render" : "keep"]);
      const std::string streamed = stream(tok, full, render, nullptr);
      if (utf8_valid(expected)) {
        EXPECT_EQ(streamed, expected) << "streamed, render_special=" << render;
      } else {
        EXPECT_NE(streamed.find("\xEF\xBF\xBD"), std::string::npos) << printable(streamed);
      }
    }
    ++tally.cases;
    if (::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count() == failures_before) {
      ++tally.matched;
    }
  }
  return tally;
}

TEST(SpmTokenizer, MatchesLlamaCppOnTheTinyVocabulary) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  const Tally t = expect_matches_fixture(*tiny.tokenizer, load_fixture("spm_tiny.json"));
  std::cout << "[ spm_tiny ] " << t.matched << " of " << t.cases << " strings match llama.cpp in every check\n";
}

TEST(SpmTokenizer, MatchesLlamaCppWithoutSpacePrefixAndWithEos) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny_no_prefix.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  EXPECT_FALSE(tiny.tokenizer->adds_space_prefix());
  EXPECT_FALSE(tiny.tokenizer->adds_bos());
  EXPECT_TRUE(tiny.tokenizer->adds_eos());
  const Tally t = expect_matches_fixture(*tiny.tokenizer, load_fixture("spm_tiny_no_prefix.json"));
  std::cout << "[ spm_tiny_no_prefix ] " << t.matched << " of " << t.cases
            << " strings match llama.cpp in every check\n";
}

TEST(SpmTokenizer, MatchesLlamaCppOnGemma3) {
  KEEL_NEED_GEMMA(gemma);
  const Tally t = expect_matches_fixture(*gemma.tokenizer, load_fixture("gemma3.json"));
  std::cout << "[ gemma3 ] " << t.matched << " of " << t.cases << " strings match llama.cpp in every check\n";
}

TEST(SpmTokenizer, ReadsTheTinyVocabularysSettings) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  const Tokenizer& tok = *tiny.tokenizer;
  EXPECT_EQ(tok.model(), TokenizerModel::kSentencePiece);
  EXPECT_EQ(tok.vocab_size(), 900u);
  EXPECT_EQ(tok.unknown_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_TRUE(tok.adds_bos());
  EXPECT_FALSE(tok.adds_eos());
  EXPECT_TRUE(tok.adds_space_prefix());
  EXPECT_EQ(tok.pre_tokenizer_name(), "default");
  EXPECT_EQ(tok.token_type(*tok.find_token("<sep>")), TokenType::kUserDefined);
  EXPECT_EQ(tok.token_type(*tok.find_token("<ctl>")), TokenType::kControl);
  EXPECT_EQ(tok.token_type(*tok.find_token("<0x41>")), TokenType::kByte);
  // Scores fall as SentencePiece's BPE merges were learnt.
  const TokenId early = *tok.find_token("\xE2\x96\x81s");
  const TokenId late = 899;
  EXPECT_GT(tok.token_score(early), tok.token_score(late));
}

TEST(SpmTokenizer, ReadsGemma3sSettings) {
  KEEL_NEED_GEMMA(gemma);
  const Tokenizer& tok = *gemma.tokenizer;
  EXPECT_EQ(tok.model(), TokenizerModel::kSentencePiece);
  EXPECT_EQ(tok.vocab_size(), 262144u);
  EXPECT_EQ(tok.padding_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.unknown_id(), 3);
  EXPECT_TRUE(tok.adds_bos());
  EXPECT_FALSE(tok.adds_space_prefix());
  EXPECT_EQ(tok.find_token("<start_of_turn>").value_or(-1), 105);
  EXPECT_EQ(tok.find_token("<end_of_turn>").value_or(-1), 106);
  EXPECT_EQ(tok.token_type(105), TokenType::kControl);
  // A chat turn: the control tokens only when special tokens are parsed; "\n" is a
  // user-defined token, always recognised.
  auto turn = tok.encode("<start_of_turn>user\nHi<end_of_turn>\n", true, true);
  ASSERT_TRUE(turn.ok());
  ASSERT_GE(turn->size(), 6u);
  EXPECT_EQ((*turn)[0], 2);
  EXPECT_EQ((*turn)[1], 105);
  EXPECT_EQ(turn->back(), 107);
  auto literal = tok.encode("<start_of_turn>", false, false);
  ASSERT_TRUE(literal.ok());
  EXPECT_EQ(std::count(literal->begin(), literal->end(), 105), 0);
}

TEST(SpmTokenizer, StreamingDecodeHoldsByteFallbackCharacters) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  const Tokenizer& tok = *tiny.tokenizer;
  const std::string text = "Emoji 😀🎉 and 家族 👨‍👩‍👧 ok é";
  auto ids = tok.encode(text, false, false);
  ASSERT_TRUE(ids.ok());
  bool saw_split = false;
  EXPECT_EQ(stream(tok, *ids, false, &saw_split), text);
  EXPECT_TRUE(saw_split) << "no byte token split a character: the test proves nothing";
  EXPECT_EQ(*tok.decode(*ids), text);
  // As a continuation (starts_text = false) the first piece keeps its space.
  StreamingDecoder continuation(tok);
  auto first = continuation.feed(*tok.find_token("\xE2\x96\x81s"));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, " s");
}

std::string marks_as_spaces(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

TEST(SpmTokenizer, TakesAnyBytesWithoutFailing) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  const Tokenizer& tok = *tiny.tokenizer;
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 256);
    auto ids = tok.encode(bytes, false, false);
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    for (TokenId id : *ids) ASSERT_LT(static_cast<size_t>(id), tok.vocab_size());
    // Byte fallback keeps every byte, and decode drops the space prefix again. (A
    // space's U+2581 that an invalid lead byte swallows comes back as those bytes,
    // in llama.cpp too, hence the comparison with marks read as spaces.)
    auto back = tok.decode(*ids);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(marks_as_spaces(*back), marks_as_spaces(bytes)) << printable(bytes);
    auto with_specials = tok.encode("<sep>" + bytes + "<ctl>", true, true);
    ASSERT_TRUE(with_specials.ok()) << with_specials.status().to_string();
    for (TokenId id : *with_specials) ASSERT_LT(static_cast<size_t>(id), tok.vocab_size());
  }
}

TEST(SpmTokenizer, RejectsIdsOutsideTheVocabulary) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  const Tokenizer& tok = *tiny.tokenizer;
  for (TokenId id : {-1, 900, std::numeric_limits<TokenId>::max(), std::numeric_limits<TokenId>::min()}) {
    auto text = tok.decode(std::vector<TokenId>{5, id});
    ASSERT_FALSE(text.ok());
    EXPECT_NE(text.status().message().find("outside the vocabulary"), std::string::npos);
    EXPECT_FALSE(tok.detokenize(std::vector<TokenId>{id}, true, true).ok());
    EXPECT_FALSE(tok.token_bytes(id).ok());
    StreamingDecoder stream(tok, false, true);
    EXPECT_FALSE(stream.feed(id).ok());
  }
}

// A megabyte of made-up words, each one new (the word cache never hits).
std::string random_words() {
  std::mt19937 rng(11);
  std::string text;
  while (text.size() < (1u << 20)) {
    const size_t length = 1 + rng() % 9;
    for (size_t i = 0; i < length; ++i) text += static_cast<char>('a' + rng() % 26);
    text += rng() % 12 == 0 ? ".\n" : " ";
  }
  return text;
}

// A megabyte of English (its paragraphs repeated, so the word cache warms up) and
// one of made-up words: "well under a second" is the target, printed, not gated.
void time_megabyte(const Tokenizer& tok, const std::string& paragraphs, const char* name) {
  const std::string words = random_words();
  const auto start = std::chrono::steady_clock::now();
  auto word_ids = tok.encode(words, false, false);
  const double word_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(word_ids.ok());
  EXPECT_EQ(*tok.decode(*word_ids), words);
  std::cout << "[ " << name << " ] " << words.size() << " bytes of made-up words -> " << word_ids->size()
            << " tokens in " << word_seconds << " s\n";
  std::string text;
  while (text.size() < (1u << 20)) text += paragraphs + "\n\n";
  for (bool parse_special : {false, true}) {
    const auto start = std::chrono::steady_clock::now();
    auto ids = tok.encode(text, false, parse_special);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(ids.ok());
    EXPECT_GT(ids->size(), text.size() / 10);
    std::cout << "[ " << name << " ] " << text.size() << " bytes -> " << ids->size() << " tokens in " << seconds
              << " s (" << static_cast<double>(text.size()) / 1e6 / seconds << " MB/s), parse_special=" << parse_special
              << "\n";
    const auto back_start = std::chrono::steady_clock::now();
    auto back = tok.decode(*ids);
    const double back_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - back_start).count();
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, text);
    if (!parse_special) std::cout << "[ " << name << " ] decoded back in " << back_seconds << " s\n";
  }
}

TEST(SpmTokenizer, EncodesAMegabyteFast) {
  auto tiny = open_tokenizer(fixture_path("spm_tiny.gguf"));
  ASSERT_TRUE(tiny.tokenizer != nullptr);
  const auto fixture = load_fixture("spm_tiny.json");
  ASSERT_TRUE(fixture.contains("english_paragraphs"));
  time_megabyte(*tiny.tokenizer, fixture["english_paragraphs"], "spm_tiny");
}

TEST(SpmTokenizer, EncodesAMegabyteFastOnGemma3) {
  KEEL_NEED_GEMMA(gemma);
  const auto fixture = load_fixture("gemma3.json");
  ASSERT_TRUE(fixture.contains("english_paragraphs"));
  time_megabyte(*gemma.tokenizer, fixture["english_paragraphs"], "gemma3");
}

// ----- malformed vocabularies --------------------------------------------------

// <unk> <s> </s>, the 256 byte tokens, then a few pieces; scores favour "▁ab".
struct TinySpm {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  TinySpm() {
    for (int b = 0; b < 256; ++b) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      tokens.push_back(hex);
      types.push_back(6);
      scores.push_back(0);
    }
    const std::pair<const char*, float> pieces[] = {{"\xE2\x96\x81", -1},
                                                    {"a", -2},
                                                    {"b", -2},
                                                    {"ab", -3},
                                                    {"\xE2\x96\x81"
                                                     "ab",
                                                     -0.5f},
                                                    {"c", -2}};
    for (const auto& [text, score] : pieces) {
      tokens.push_back(text);
      types.push_back(1);
      scores.push_back(score);
    }
  }
  TokenId id(const std::string& text) const {
    return static_cast<TokenId>(std::find(tokens.begin(), tokens.end(), text) - tokens.begin());
  }
};

Result<std::unique_ptr<Tokenizer>> parse(const std::string& image) {
  auto file = GgufFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  if (!file.ok()) return file.status();
  return Tokenizer::from_gguf(**file);
}

std::string spm_image(const TinySpm& v) {
  GgufImage g;
  g.kv_string("tokenizer.ggml.model", "llama")
      .kv_strings("tokenizer.ggml.tokens", v.tokens)
      .kv_ints("tokenizer.ggml.token_type", v.types)
      .kv_floats("tokenizer.ggml.scores", v.scores);
  return g.finish(4);
}

TEST(SpmTokenizer, MergesByScoreOnAHandMadeVocabulary) {
  TinySpm v;
  auto tok = parse(spm_image(v));
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  // llama.cpp's defaults: BOS 1 added, a space prefix, unknown 0.
  EXPECT_TRUE((*tok)->adds_bos());
  EXPECT_TRUE((*tok)->adds_space_prefix());
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_id(), 2);
  EXPECT_EQ((*tok)->unknown_id(), 0);
  // "▁ab abc" -> ▁ a b ▁ a b c: "ab" (the only pair that is a token) merges first,
  // leftmost first, then "▁" + "ab" (score -0.5) at once; "abc" is not a token.
  auto ids = (*tok)->encode("ab abc", true, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<TokenId>{1,
                                        v.id("\xE2\x96\x81"
                                             "ab"),
                                        v.id("\xE2\x96\x81"
                                             "ab"),
                                        v.id("c")}));
  // BOS is the first piece (an empty one): the space prefix after it stays, as in llama.cpp.
  EXPECT_EQ(*(*tok)->decode(*ids), " ab abc");
  EXPECT_EQ(*(*tok)->detokenize(*ids, /*remove_special=*/true, false), " ab abc");
  EXPECT_EQ(*(*tok)->decode(std::span<const TokenId>(*ids).subspan(1)), "ab abc");
  // Characters that are not tokens fall back to their bytes.
  auto bytes = (*tok)->encode("é", false, false);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, (std::vector<TokenId>{v.id("\xE2\x96\x81"), v.id("<0xC3>"), v.id("<0xA9>")}));
  EXPECT_EQ(*(*tok)->decode(*bytes), "é");
}

TEST(SpmTokenizer, TreatsEndOfTurnTextsAsControlTokensAsLlamaCppDoes) {
  TinySpm v;
  v.types[2] = 4;  // "</s>" written as user-defined, as Gemma 3's file has it
  auto tok = parse(spm_image(v));
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->token_type(2), TokenType::kControl);
  auto literal = (*tok)->encode("</s>", false, false);
  ASSERT_TRUE(literal.ok());
  EXPECT_EQ(std::count(literal->begin(), literal->end(), 2), 0);
  auto parsed = (*tok)->encode("</s>", false, true);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, std::vector<TokenId>{2});
  EXPECT_EQ(*(*tok)->token_bytes(2, false), "");
  EXPECT_EQ(*(*tok)->token_bytes(2, true), "</s>");
}

TEST(SpmTokenizer, UsesTheUnknownTokenForBytesWithoutTokens) {
  TinySpm v;
  v.tokens.erase(v.tokens.begin() + 3, v.tokens.begin() + 3 + 256);
  v.types.erase(v.types.begin() + 3, v.types.begin() + 3 + 256);
  v.scores.erase(v.scores.begin() + 3, v.scores.begin() + 3 + 256);
  auto tok = parse(spm_image(v));
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto ids = (*tok)->encode("aé", false, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<TokenId>{v.id("\xE2\x96\x81"), v.id("a"), 0, 0}));

  // With no unknown_token_id either, llama.cpp's default unknown id is 0.
  GgufImage g;
  g.kv_string("tokenizer.ggml.model", "llama")
      .kv_strings("tokenizer.ggml.tokens", {"a", "b", "ab"})
      .kv_floats("tokenizer.ggml.scores", {-1, -1, -1})
      .kv_bool("tokenizer.ggml.add_bos_token", false)
      .kv_bool("tokenizer.ggml.add_space_prefix", false);
  auto bare = parse(g.finish(5));
  ASSERT_TRUE(bare.ok()) << bare.status().to_string();
  EXPECT_EQ(*(*bare)->encode("abab", false, false), (std::vector<TokenId>{2, 2}));
  EXPECT_EQ(*(*bare)->encode("ax", false, false), (std::vector<TokenId>{0, 0}));
}

TEST(SpmTokenizer, RejectsMalformedVocabularies) {
  TinySpm v;
  struct Case {
    const char* what;
    std::string image;
    const char* message;
  };
  std::vector<Case> cases;
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama").kv_strings("tokenizer.ggml.tokens", v.tokens);
    cases.push_back({"no scores", g.finish(2), "no tokenizer.ggml.scores"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_strings("tokenizer.ggml.scores", v.tokens);
    cases.push_back({"scores of strings", g.finish(3), "tokenizer.ggml.scores is an array of string"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_string("tokenizer.ggml.scores", "high");
    cases.push_back({"scores not an array", g.finish(3), "tokenizer.ggml.scores is of type string, expected an array"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_floats("tokenizer.ggml.scores", {1, 2, 3});
    cases.push_back({"too few scores", g.finish(3), "entries for"});
  }
  {
    auto scores = v.scores;
    scores.at(262) = std::numeric_limits<float>::quiet_NaN();
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_floats("tokenizer.ggml.scores", scores);
    cases.push_back({"a NaN score", g.finish(3), "tokenizer.ggml.scores[262] is not a number"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_string("tokenizer.ggml.tokens", "abc")
        .kv_floats("tokenizer.ggml.scores", v.scores);
    cases.push_back({"tokens not an array", g.finish(3), "tokenizer.ggml.tokens is of type string, expected an array"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_strings("tokenizer.ggml.token_type", v.tokens)
        .kv_floats("tokenizer.ggml.scores", v.scores);
    cases.push_back({"types of strings", g.finish(4), "tokenizer.ggml.token_type holds string values"});
  }
  {
    auto tokens = v.tokens;
    tokens[3 + 0x41] = "<0xZZ>";
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", tokens)
        .kv_ints("tokenizer.ggml.token_type", v.types)
        .kv_floats("tokenizer.ggml.scores", v.scores);
    cases.push_back({"a byte token that is not <0xXX>", g.finish(4), "is a byte token, but its text is not <0xXX>"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_floats("tokenizer.ggml.scores", v.scores)
        .kv_string("tokenizer.ggml.add_bos_token", "yes");
    cases.push_back({"a flag that is a string", g.finish(4), "add_bos_token is of type string, expected a bool"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", v.tokens)
        .kv_floats("tokenizer.ggml.scores", v.scores)
        .kv_int("tokenizer.ggml.bos_token_id", 100000);
    cases.push_back({"BOS outside the vocabulary", g.finish(4), "outside the vocabulary"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", {"a"})
        .kv_floats("tokenizer.ggml.scores", {0});
    cases.push_back({"adds BOS but has none", g.finish(3), "adds BOS but has no bos_token_id"});
  }
  {
    GgufImage g;
    g.kv_string("tokenizer.ggml.model", "llama")
        .kv_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "a", "b", "a"})
        .kv_floats("tokenizer.ggml.scores", {0, 0, 0, 0, 0});
    cases.push_back({"a token text twice", g.finish(3), "holds 'a' twice (ids 2 and 4)"});
  }
  {
    GgufImage g;
    g.kv_int("tokenizer.ggml.model", 7);
    cases.push_back({"model not a string", g.finish(1), "tokenizer.ggml.model is of type int32, expected a string"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto tok = parse(c.image);
    ASSERT_FALSE(tok.ok());
    EXPECT_EQ(tok.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(tok.status().message().find(c.message), std::string::npos) << tok.status().to_string();
  }
}

}  // namespace
}  // namespace keel::engine
