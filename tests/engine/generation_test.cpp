// The generation loop (generation.h) end to end: on the tiny random model fixture with a
// byte-level tokenizer (every multi-byte character spans tokens) and on the default
// SmolLM2 model when it is present. Greedy generate() equals generate_greedy; stop
// strings and stop tokens end with "stop", max_tokens and the context with "length";
// seeded sampling repeats; logprobs equal a log-softmax of a separate forward pass;
// errors come before any work.
#include "keel/engine/generation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "byte_tokenizer.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/tokenizer_pretokenizer.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

std::string fixture_dir() {
  const std::string root = keel::testing::source_dir();
  return root + "/tests/fixtures/engine/forward";
}

std::vector<int32_t> tiny_prompt() {
  std::ifstream in(fixture_dir() + "/index.json");
  EXPECT_TRUE(in.good()) << "missing fixture index.json";
  return nlohmann::json::parse(in).at("tiny_prompt").get<std::vector<int32_t>>();
}

// What generate() streamed, piece by piece.
struct Recorded {
  std::string text;
  std::vector<TokenId> tokens;  // the token of each piece (-1: the final flush)
  int flushes = 0;
  std::function<Status(const GeneratedPiece&)> callback() {
    return [this](const GeneratedPiece& p) {
      EXPECT_TRUE(utf8_valid(p.text)) << "a piece ends inside a character";
      EXPECT_EQ(flushes, 0) << "a piece after the final flush";
      text.append(p.text);
      if (p.token < 0) ++flushes;
      if (p.token >= 0) tokens.push_back(p.token);
      return Status::Ok();
    };
  }
};

class TinyGeneration : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = GgufFile::open(fixture_dir() + "/tiny_untied.gguf");
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    file_ = std::move(*file);
    auto model = Model::load(*file_);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(*model);
    tokenizer_ = testing::make_byte_tokenizer();
    ASSERT_NE(tokenizer_, nullptr);
    prompt_ = tiny_prompt();
  }
  std::unique_ptr<InferenceSession> session(int64_t context = 64) {
    auto s = InferenceSession::create(*model_, {.threads = 1, .context_length = context});
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(*s) : nullptr;
  }
  // No stop tokens: the random model's bytes are all "normal" text.
  GenerationOptions options(int64_t max_tokens) const {
    GenerationOptions o;
    o.max_tokens = max_tokens;
    o.stop_tokens = std::vector<TokenId>{};
    return o;
  }
  std::vector<int32_t> greedy(int64_t n) {
    auto s = session();
    auto r = generate_greedy(*s, prompt_, n);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->tokens : std::vector<int32_t>{};
  }
  // The text StreamingDecoder makes of ids; without flush, an unfinished last
  // character stays out (as it does while generation runs).
  std::string decoded(std::span<const TokenId> ids, bool flush = true) const {
    StreamingDecoder decoder(*tokenizer_);
    std::string out;
    for (TokenId id : ids) out += decoder.feed(id).value();
    return flush ? out + decoder.finish() : out;
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<int32_t> prompt_;
};

TEST_F(TinyGeneration, GreedyEqualsGenerateGreedyAndStreamsTheSameText) {
  const auto expected = greedy(20);
  ASSERT_EQ(expected.size(), 20u);
  auto s = session();
  Recorded seen;
  auto g = generate(*s, *tokenizer_, prompt_, options(20), seen.callback());
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->tokens, expected);
  EXPECT_EQ(g->finish_reason, "length");
  EXPECT_EQ(g->prompt_tokens, 12);
  EXPECT_EQ(g->generated_tokens, 20);
  EXPECT_EQ(g->text, decoded(expected));
  EXPECT_EQ(seen.text, g->text);
  EXPECT_EQ(seen.tokens, g->tokens);
  EXPECT_TRUE(g->logprobs.empty());
  EXPECT_GT(g->prompt_tokens_per_second, 0);
  EXPECT_GT(g->generated_tokens_per_second, 0);
  EXPECT_EQ(s->position(), 12 + 19);
}

TEST_F(TinyGeneration, MaxTokensIsClippedToTheRoomInTheContext) {
  auto s = session(16);  // 12 prompt tokens leave room for 5 (the last is never run)
  auto g = generate(*s, *tokenizer_, prompt_, options(100));
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->tokens.size(), 5u);
  EXPECT_EQ(g->finish_reason, "length");
  EXPECT_EQ(s->position(), 16);
  const auto full = greedy(5);
  EXPECT_EQ(g->tokens, full);
  auto exact = session(12);
  auto one = generate(*exact, *tokenizer_, prompt_, options(100));
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_EQ(one->tokens.size(), 1u);
  auto none = generate(*exact, *tokenizer_, prompt_, options(0));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->tokens.empty());
  EXPECT_EQ(none->finish_reason, "length");
}

TEST_F(TinyGeneration, APromptLongerThanTheContextFailsBeforeAnyWork) {
  auto s = session(11);
  const std::vector<int32_t> two = {1, 2};
  ASSERT_TRUE(s->forward(two).ok());
  int calls = 0;
  auto g = generate(*s, *tokenizer_, prompt_, options(4), [&](const GeneratedPiece&) {
    ++calls;
    return Status::Ok();
  });
  EXPECT_EQ(g.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(g.status().message().find("12 tokens, more than the context of 11"), std::string::npos)
      << g.status().message();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(s->position(), 2) << "the session was touched";
}

TEST_F(TinyGeneration, BadOptionsFailBeforeAnyWork) {
  auto s = session();
  const std::vector<int32_t> two = {1, 2};
  ASSERT_TRUE(s->forward(two).ok());
  std::vector<GenerationOptions> bad(6, options(4));
  bad[0].max_tokens = -1;
  bad[1].top_logprobs = 21;
  bad[2].sampling.top_p = 0.0f;
  bad[3].stop = {"ok", ""};
  bad[4].sampling.logit_bias = {{256, 1.0f}};
  bad[5].sampling.temperature = -1.0f;
  for (size_t i = 0; i < bad.size(); ++i) {
    auto g = generate(*s, *tokenizer_, prompt_, bad[i]);
    EXPECT_EQ(g.status().code(), ErrorCode::kInvalidArgument) << i;
  }
  EXPECT_EQ(generate(*s, *tokenizer_, {}, options(4)).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s->position(), 2);
}

TEST_F(TinyGeneration, AStopStringCutsTheTextAndEndsWithStop) {
  const auto full = greedy(30);
  const std::string text = decoded(full);
  // A stop string of two whole characters from the middle of the text.
  size_t i = 0;
  std::vector<size_t> starts;
  while (i < text.size()) {
    starts.push_back(i);
    utf8_next(text, i);
  }
  ASSERT_GT(starts.size(), 12u);
  const size_t from = starts[starts.size() / 2];
  const std::string stop = text.substr(from, starts[starts.size() / 2 + 2] - from);
  const size_t cut = text.find(stop);
  // The token that completes the stop string's first occurrence ends generation.
  size_t needed = 1;
  while (decoded(std::span<const TokenId>(full).first(needed), false).find(stop) == std::string::npos) ++needed;

  auto s = session();
  auto o = options(30);
  o.stop = {"never-here", stop};
  Recorded seen;
  auto g = generate(*s, *tokenizer_, prompt_, o, seen.callback());
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->finish_reason, "stop");
  EXPECT_EQ(g->stop_string, stop);
  EXPECT_EQ(g->text, text.substr(0, cut));
  EXPECT_EQ(seen.text, g->text);
  EXPECT_EQ(g->tokens, std::vector<TokenId>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(needed)));
  EXPECT_EQ(seen.flushes, 0) << "nothing is flushed after a stop string";
}

TEST_F(TinyGeneration, AStopTokenEndsWithStopAndIsNotReturned) {
  const auto full = greedy(20);
  const TokenId stop = full[6];
  const auto first = static_cast<size_t>(std::find(full.begin(), full.end(), stop) - full.begin());
  auto s = session();
  auto o = options(20);
  o.stop_tokens = std::vector<TokenId>{stop};
  auto g = generate(*s, *tokenizer_, prompt_, o);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->finish_reason, "stop");
  EXPECT_EQ(g->tokens, std::vector<TokenId>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(first)));
  EXPECT_EQ(g->text, decoded(g->tokens));

  // By default the tokenizer's EOS stops generation.
  auto with_eos = testing::make_byte_tokenizer({}, stop);
  ASSERT_NE(with_eos, nullptr);
  auto d = generate(*s, *with_eos, prompt_, GenerationOptions{.max_tokens = 20});
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->tokens, g->tokens);
  EXPECT_EQ(d->finish_reason, "stop");
}

TEST_F(TinyGeneration, SeededSamplingRepeatsAndOtherSeedsDiffer) {
  auto run = [&](uint64_t seed) {
    auto s = session();
    auto o = options(25);
    o.sampling.temperature = 1.5f;
    o.sampling.top_k = 50;
    o.sampling.seed = seed;
    auto g = generate(*s, *tokenizer_, prompt_, o);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? g->tokens : std::vector<TokenId>{};
  };
  const auto a = run(3);
  EXPECT_EQ(a.size(), 25u);
  EXPECT_EQ(run(3), a);
  EXPECT_NE(run(4), a);
  EXPECT_NE(a, greedy(25));
}

TEST_F(TinyGeneration, LogprobsAreALogSoftmaxOfTheRawLogits) {
  auto s = session();
  auto o = options(10);
  o.sampling.temperature = 0.7f;
  o.sampling.repetition_penalty = 1.5f;  // changes the choice, not the reported logprobs
  o.sampling.seed = 9;
  o.logprobs = true;
  o.top_logprobs = 5;
  auto g = generate(*s, *tokenizer_, prompt_, o, [&](const GeneratedPiece& p) {
    if (p.token >= 0) {
      EXPECT_NE(p.logprobs, nullptr);
    }
    return Status::Ok();
  });
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->logprobs.size(), g->tokens.size());

  std::vector<int32_t> all = prompt_;
  all.insert(all.end(), g->tokens.begin(), g->tokens.end());
  auto reference_session = session();
  auto rows = reference_session->forward(all, LogitsFor::kEveryToken);
  ASSERT_TRUE(rows.ok());
  for (size_t i = 0; i < g->tokens.size(); ++i) {
    const float* row = rows->data() + (prompt_.size() - 1 + i) * 256;
    double max = *std::max_element(row, row + 256), total = 0;
    for (int v = 0; v < 256; ++v) total += std::exp(row[v] - max);
    auto logprob = [&](int32_t id) { return row[id] - max - std::log(total); };
    const TokenLogprobs& lp = g->logprobs[i];
    EXPECT_EQ(lp.chosen.token, g->tokens[i]);
    EXPECT_NEAR(lp.chosen.logprob, logprob(g->tokens[i]), 1e-5) << "token " << i;
    ASSERT_EQ(lp.top.size(), 5u);
    for (const auto& alt : lp.top) EXPECT_NEAR(alt.logprob, logprob(alt.token), 1e-5);
    EXPECT_EQ(lp.top[0].token, std::max_element(row, row + 256) - row);
  }
}

TEST_F(TinyGeneration, PenaltiesSeeThePromptUnlessAskedNotTo) {
  const auto plain = greedy(4);
  auto o = options(4);
  o.sampling.repetition_penalty = 1000.0f;  // a seen token with a positive logit never wins
  o.sampling.penalty_last_n = -1;
  o.penalize_prompt = false;
  auto s = session();
  auto without = generate(*s, *tokenizer_, prompt_, o);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->tokens[0], plain[0]) << "nothing generated yet, so nothing to penalise";
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(std::count(without->tokens.begin(), without->tokens.begin() + static_cast<std::ptrdiff_t>(i),
                         without->tokens[i]),
              0);
  }
  // Make the prompt end in the greedy first token: with the prompt penalised it cannot come first.
  std::vector<int32_t> prompt = prompt_;
  prompt.push_back(plain[0]);
  o.penalize_prompt = true;
  auto with = generate(*s, *tokenizer_, prompt, o);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(std::count(prompt.begin(), prompt.end(), with->tokens[0]), 0);
}

TEST_F(TinyGeneration, AnErrorFromTheCallbackEndsGeneration) {
  auto s = session();
  int calls = 0;
  auto g = generate(*s, *tokenizer_, prompt_, options(20), [&](const GeneratedPiece&) {
    return ++calls == 3 ? unavailable("client went away") : Status::Ok();
  });
  EXPECT_EQ(g.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(g.status().message(), "client went away");
  EXPECT_EQ(calls, 3);
}

TEST(DefaultStopTokens, AreEosAndControlTokensThatEndATurn) {
  auto tokenizer = testing::make_byte_tokenizer({{"<|im_end|>", TokenType::kControl},
                                                 {"<|endoftext|>", TokenType::kControl},
                                                 {"<end_of_turn>", TokenType::kNormal},
                                                 {"<|im_start|>", TokenType::kControl}},
                                                /*eos=*/65);
  ASSERT_NE(tokenizer, nullptr);
  // <end_of_turn> counts although its GGUF type is normal: the tokenizer treats it as a
  // control token by its text, as llama.cpp does (Gemma's files type it normal).
  EXPECT_EQ(default_stop_tokens(*tokenizer), (std::vector<TokenId>{65, 256, 257, 258}));
  auto plain = testing::make_byte_tokenizer();
  EXPECT_TRUE(default_stop_tokens(*plain).empty());
}

// ----- SmolLM2-135M-Instruct Q4_1 --------------------------------------------------------

class SmolLm2Generation : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = keel::testing::default_model_path();
    if (!path) GTEST_SKIP() << "default model not fetched (scripts/fetch-default-model)";
    auto file = GgufFile::open(*path);
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    file_ = std::move(*file);
    auto model = Model::load(*file_);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(*model);
    auto tokenizer = Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
    tokenizer_ = std::move(*tokenizer);
    auto session = InferenceSession::create(*model_, {.threads = 2, .context_length = 256});
    ASSERT_TRUE(session.ok());
    session_ = std::move(*session);
  }
  std::vector<int32_t> encode(const std::string& text) const { return tokenizer_->encode(text, true, true).value(); }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<InferenceSession> session_;
};

TEST_F(SmolLm2Generation, GreedyThroughGenerateEqualsGenerateGreedy) {
  const auto prompt = encode("The capital of France is");
  auto expected = generate_greedy(*session_, prompt, 16, tokenizer_->eos_id());
  ASSERT_TRUE(expected.ok());
  GenerationOptions o;
  o.max_tokens = 16;
  o.stop_tokens = std::vector<TokenId>{tokenizer_->eos_id()};
  auto g = generate(*session_, *tokenizer_, prompt, o);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->tokens, expected->tokens);
  EXPECT_EQ(g->text, tokenizer_->decode(g->tokens).value());
  EXPECT_EQ(g->text.rfind(" Paris", 0), 0u) << g->text;
  std::cout << "SmolLM2 greedy: \"" << g->text << "\"; prompt " << g->prompt_tokens_per_second << " tok/s, decode "
            << g->generated_tokens_per_second << " tok/s\n";
}

TEST_F(SmolLm2Generation, AStopStringCutsTheTextAndMaxTokensGivesLength) {
  const auto prompt = encode("The capital of France is");
  GenerationOptions o;
  o.max_tokens = 24;
  auto full = generate(*session_, *tokenizer_, prompt, o);
  ASSERT_TRUE(full.ok());
  ASSERT_GT(full->text.size(), 12u);
  const std::string stop = full->text.substr(8, 3);
  o.stop = {stop};
  auto cut = generate(*session_, *tokenizer_, prompt, o);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->finish_reason, "stop");
  EXPECT_EQ(cut->text, full->text.substr(0, full->text.find(stop)));
  EXPECT_LT(cut->tokens.size(), full->tokens.size());

  o.stop.clear();
  o.max_tokens = 3;
  auto short_run = generate(*session_, *tokenizer_, prompt, o);
  ASSERT_TRUE(short_run.ok());
  EXPECT_EQ(short_run->tokens.size(), 3u);
  EXPECT_EQ(short_run->finish_reason, "length");
}

TEST_F(SmolLm2Generation, AChatTurnEndsAtTheEndOfTurnToken) {
  const auto stops = default_stop_tokens(*tokenizer_);
  const auto im_end = tokenizer_->find_token("<|im_end|>");
  ASSERT_TRUE(im_end.has_value());
  EXPECT_NE(std::find(stops.begin(), stops.end(), *im_end), stops.end());
  EXPECT_NE(std::find(stops.begin(), stops.end(), tokenizer_->eos_id()), stops.end());
  const auto prompt =
      encode("<|im_start|>user\nWhat is 2+2? Answer with one number.<|im_end|>\n<|im_start|>assistant\n");
  GenerationOptions o;
  o.max_tokens = 64;
  auto g = generate(*session_, *tokenizer_, prompt, o);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  std::cout << "SmolLM2 chat: \"" << g->text << "\" (" << g->finish_reason << ")\n";
  EXPECT_EQ(g->finish_reason, "stop");
  EXPECT_EQ(g->text.find("<|im_end|>"), std::string::npos);
}

}  // namespace
}  // namespace keel::engine
