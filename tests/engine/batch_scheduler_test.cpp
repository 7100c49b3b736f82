// BatchScheduler on the default model (SmolLM2-135M-Instruct Q4_1): requests decoded
// together, with prompts in chunks and shared prefixes reused, give the same tokens as
// generate() on each prompt alone; the queue, the KV budget, cancellation and shutdown
// end requests with the documented errors; embeddings are pooled and normalised.
#include "keel/engine/batch_scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "keel/engine/gguf.h"
#include "support/test_support.h"

// GCC 12 at -O2 with the sanitizers reports copies of a GenerationOptions whose
// stop_tokens holds an empty vector as maybe-uninitialized (a false positive inside
// std::optional<std::vector>); these tests need that empty list.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace keel::engine {
namespace {

constexpr int64_t kContext = 512;

// What a request's callbacks saw.
struct Outcome {
  std::string streamed;
  int pieces = 0;
  std::promise<Result<Generation>> done;
};

class BatchSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = keel::testing::default_model_path();
    if (!path) GTEST_SKIP() << "default model not fetched (scripts/fetch-default-model)";
    file_ = std::move(GgufFile::open(*path).value());
    model_ = std::move(Model::load(*file_).value());
    tokenizer_ = std::move(Tokenizer::from_gguf(*file_).value());
  }

  std::vector<TokenId> encode(const std::string& text) const { return tokenizer_->encode(text, true, true).value(); }
  std::vector<TokenId> chat(const std::string& system, const std::string& user) const {
    return encode("<|im_start|>system\n" + system + "<|im_end|>\n<|im_start|>user\n" + user +
                  "<|im_end|>\n<|im_start|>assistant\n");
  }

  std::unique_ptr<BatchScheduler> make_scheduler(SchedulerOptions options = {}) {
    auto s = BatchScheduler::create(*model_, *tokenizer_, {.threads = 2, .context_length = kContext}, options);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return std::move(*s);
  }

  // generate() on a fresh session of the same context: the reference.
  Generation alone(const std::vector<TokenId>& prompt, const GenerationOptions& options) {
    auto session = InferenceSession::create(*model_, {.threads = 1, .context_length = kContext});
    auto g = generate(**session, *tokenizer_, prompt, options);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return std::move(*g);
  }

  static GenerationRequest request(const std::vector<TokenId>& prompt, const GenerationOptions& options,
                                   Outcome& outcome) {
    GenerationRequest r;
    r.prompt = prompt;
    r.options = options;
    r.on_piece = [&outcome](const GeneratedPiece& p) {
      outcome.streamed += p.text;
      ++outcome.pieces;
    };
    r.on_done = [&outcome](Result<Generation> g) { outcome.done.set_value(std::move(g)); };
    return r;
  }

  static Result<Generation> wait(Outcome& outcome) {
    auto future = outcome.done.get_future();
    if (future.wait_for(std::chrono::seconds(120)) != std::future_status::ready) {
      return internal_error("the request did not finish in time");
    }
    return future.get();
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(BatchSchedulerTest, ConcurrentGreedyRequestsGiveTheTokensOfEachPromptAlone) {
  const std::vector<std::vector<TokenId>> prompts = {
      encode("The capital of France is"),
      chat("You are a helpful assistant.", "Write a haiku about the sea."),
      encode("def fibonacci(n):"),
      chat("You are terse.", "List three prime numbers."),
      encode("Once upon a time, in a land far away, there lived a"),
  };
  GenerationOptions o;
  o.max_tokens = 20;
  // Small batches: prompts go through in several chunks beside the decoding sequences.
  auto scheduler = make_scheduler({.max_sequences = 3, .max_batch_tokens = 7});
  std::vector<Outcome> outcomes(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(scheduler->submit(request(prompts[i], o, outcomes[i])).ok());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto g = wait(outcomes[i]);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    const Generation expected = alone(prompts[i], o);
    EXPECT_EQ(g->tokens, expected.tokens) << "prompt " << i;
    EXPECT_EQ(g->text, expected.text);
    EXPECT_EQ(g->finish_reason, expected.finish_reason);
    EXPECT_EQ(outcomes[i].streamed, g->text);
    EXPECT_EQ(g->prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    EXPECT_GT(g->prompt_seconds, 0.0);
  }
  const SchedulerStats stats = scheduler->stats();
  EXPECT_EQ(stats.running, 0);
  EXPECT_GT(stats.steps, 20);
  EXPECT_LE(stats.last_batch_tokens, 7);
}

// A scored prompt (an echo with logprobs): every token after the first gets the
// log-probability one session's every-token logits give it, over prompt chunks, beside
// other requests, with max_tokens 0 or a generation after it, and never from a reused prefix.
TEST_F(BatchSchedulerTest, PromptLogprobsAreTheSessionsEveryTokenScores) {
  const auto prompt = chat("You are a helpful assistant.", "Name a colour.");
  auto session = InferenceSession::create(*model_, {.threads = 1, .context_length = kContext});
  ASSERT_TRUE(session.ok());
  auto all = (*session)->forward(prompt, LogitsFor::kEveryToken);
  ASSERT_TRUE(all.ok());
  const size_t vocab = all->size() / prompt.size();
  auto scheduler = make_scheduler({.max_sequences = 3, .max_batch_tokens = 5});
  // The same system prompt first, so a cached prefix exists that a scored prompt must not use.
  Outcome warm;
  GenerationOptions o;
  o.max_tokens = 3;
  ASSERT_TRUE(scheduler->submit(request(chat("You are a helpful assistant.", "Hi."), o, warm)).ok());
  ASSERT_TRUE(wait(warm).ok());
  for (int64_t max_tokens : {int64_t{0}, int64_t{4}}) {
    GenerationOptions go;
    go.max_tokens = max_tokens;
    Outcome scored, other;
    GenerationRequest r = request(prompt, go, scored);
    r.prompt_logprobs = 2;
    ASSERT_TRUE(scheduler->submit(std::move(r)).ok());
    ASSERT_TRUE(scheduler->submit(request(encode("The capital of France is"), o, other)).ok());
    auto g = wait(scored);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    ASSERT_TRUE(wait(other).ok());
    ASSERT_EQ(g->prompt_logprobs.size(), prompt.size() - 1);
    for (size_t t = 1; t < prompt.size(); ++t) {
      auto expected =
          compute_logprobs(std::span<const float>(all->data() + (t - 1) * vocab, vocab), prompt[t], 2).value();
      const TokenLogprobs& got = g->prompt_logprobs[t - 1];
      EXPECT_EQ(got.chosen.token, prompt[t]);
      EXPECT_NEAR(got.chosen.logprob, expected.chosen.logprob, 1e-3) << "position " << t;
      ASSERT_EQ(got.top.size(), 2u);
      EXPECT_EQ(got.top[0].token, expected.top[0].token) << "position " << t;
    }
    EXPECT_EQ(g->generated_tokens, max_tokens == 0 ? 0 : static_cast<int64_t>(g->tokens.size()));
    if (max_tokens > 0) {
      EXPECT_EQ(g->tokens, alone(prompt, go).tokens);
    }
  }
  Outcome bad;
  GenerationRequest r = request(prompt, o, bad);
  r.prompt_logprobs = kMaxTopLogprobs + 1;
  EXPECT_FALSE(scheduler->submit(std::move(r)).ok());
}

TEST_F(BatchSchedulerTest, ASharedSystemPromptIsReusedWithoutChangingTheAnswer) {
  const std::string system = "You are a careful assistant who answers questions about geography in one sentence.";
  const auto first = chat(system, "What is the capital of Italy?");
  const auto second = chat(system, "What is the capital of Spain?");
  GenerationOptions o;
  o.max_tokens = 12;
  auto scheduler = make_scheduler();
  Outcome a;
  ASSERT_TRUE(scheduler->submit(request(first, o, a)).ok());
  ASSERT_TRUE(wait(a).ok());
  const int64_t computed_before = scheduler->stats().prompt_tokens_computed;
  Outcome b;
  ASSERT_TRUE(scheduler->submit(request(second, o, b)).ok());
  auto g = wait(b);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->tokens, alone(second, o).tokens);
  const SchedulerStats stats = scheduler->stats();
  const int64_t shared = std::mismatch(first.begin(), first.end(), second.begin()).first - first.begin();
  EXPECT_GE(stats.prompt_tokens_reused, shared);
  EXPECT_EQ(stats.prompt_tokens_computed - computed_before, static_cast<int64_t>(second.size()) - shared);
  EXPECT_EQ(stats.cached_prefixes, 2);

  // The same prompt again reuses all but its last token.
  Outcome c;
  ASSERT_TRUE(scheduler->submit(request(second, o, c)).ok());
  auto again = wait(c);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tokens, g->tokens);
  EXPECT_EQ(scheduler->stats().prompt_tokens_computed - stats.prompt_tokens_computed, 1);
}

TEST_F(BatchSchedulerTest, SeededSamplingIsTheSameBatchedAsAlone) {
  GenerationOptions o;
  o.max_tokens = 16;
  o.sampling.temperature = 0.9f;
  o.sampling.top_p = 0.95f;
  o.sampling.seed = 1234;
  o.logprobs = true;
  o.top_logprobs = 2;
  const auto prompt = chat("You are creative.", "Name a colour.");
  auto scheduler = make_scheduler();
  std::vector<Outcome> outcomes(3);
  for (auto& outcome : outcomes) ASSERT_TRUE(scheduler->submit(request(prompt, o, outcome)).ok());
  const Generation expected = alone(prompt, o);
  for (auto& outcome : outcomes) {
    auto g = wait(outcome);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->tokens, expected.tokens);
    ASSERT_EQ(g->logprobs.size(), expected.logprobs.size());
    for (size_t i = 0; i < g->logprobs.size(); ++i) {
      EXPECT_EQ(g->logprobs[i].chosen.token, expected.logprobs[i].chosen.token);
      EXPECT_FLOAT_EQ(g->logprobs[i].chosen.logprob, expected.logprobs[i].chosen.logprob);
      EXPECT_EQ(g->logprobs[i].top.size(), 2u);
    }
  }
}

TEST_F(BatchSchedulerTest, BadRequestsAreRefusedAtSubmitWithoutCallbacks) {
  auto scheduler = make_scheduler({.kv_cache_budget_bytes = size_t{4} << 20});
  std::atomic<int> calls{0};
  auto counting = [&](std::vector<TokenId> prompt, GenerationOptions o) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.options = o;
    r.on_done = [&](Result<Generation>) { ++calls; };
    return r;
  };
  GenerationOptions bad;
  bad.sampling.top_p = 2.0f;
  Status s = scheduler->submit(counting(encode("hello"), bad));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.to_string();
  s = scheduler->submit(counting({}, {}));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  s = scheduler->submit(counting(std::vector<TokenId>(kContext + 1, 42), {}));
  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted);
  // 4 MiB holds ~180 positions of this model's cache; 400 could never fit.
  GenerationOptions big;
  big.max_tokens = 400;
  s = scheduler->submit(counting(encode("hello"), big));
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("KV cache"), std::string::npos);
  s = scheduler->submit(EmbeddingRequest{.tokens = {-1}, .on_done = [](auto) {}});
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(BatchSchedulerTest, AFullQueueRefusesAndACancelledRequestFreesItsSlot) {
  auto scheduler = make_scheduler({.max_sequences = 1, .max_queue = 1});
  std::atomic<bool> cancel_first{false};
  GenerationOptions o;
  o.max_tokens = 400;
  o.stop_tokens = std::vector<TokenId>{};  // nothing ends it early
  Outcome first, second;
  GenerationRequest r1 = request(encode("Count from one to a thousand: one, two,"), o, first);
  r1.cancelled = [&] { return cancel_first.load(); };
  ASSERT_TRUE(scheduler->submit(std::move(r1)).ok());
  GenerationOptions short_options;
  short_options.max_tokens = 4;
  ASSERT_TRUE(scheduler->submit(request(encode("Hello"), short_options, second)).ok());
  // One running, one waiting: a third is refused (the stats may lag a step behind, so
  // allow the scheduler a moment to take the first one in).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Outcome third;
  Status s = scheduler->submit(request(encode("Hi"), short_options, third));
  EXPECT_EQ(s.code(), ErrorCode::kResourceExhausted) << s.to_string();

  const auto cancelled_at = std::chrono::steady_clock::now();
  cancel_first = true;
  auto g1 = wait(first);
  EXPECT_EQ(g1.status().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, std::chrono::seconds(2));
  auto g2 = wait(second);
  ASSERT_TRUE(g2.ok()) << g2.status().to_string();
  EXPECT_EQ(g2->tokens.size(), 4u);
}

TEST_F(BatchSchedulerTest, StoppingEndsRunningAndQueuedRequests) {
  GenerationOptions o;
  o.max_tokens = 400;
  o.stop_tokens = std::vector<TokenId>{};
  std::vector<Outcome> outcomes(3);
  {
    auto scheduler = make_scheduler({.max_sequences = 1});
    for (auto& outcome : outcomes) {
      ASSERT_TRUE(scheduler->submit(request(encode("Tell me a long story."), o, outcome)).ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& outcome : outcomes) EXPECT_EQ(wait(outcome).status().code(), ErrorCode::kUnavailable);
}

TEST_F(BatchSchedulerTest, EmbeddingsAreUnitLengthAndTheSameBatchedOrAlone) {
  auto scheduler = make_scheduler();
  auto embed = [&](std::vector<std::vector<TokenId>> inputs) {
    std::vector<std::promise<Result<std::vector<float>>>> promises(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_TRUE(scheduler
                      ->submit(EmbeddingRequest{.tokens = inputs[i],
                                                .on_done = [&promises, i](Result<std::vector<float>> e) {
                                                  promises[i].set_value(std::move(e));
                                                }})
                      .ok());
    }
    std::vector<std::vector<float>> out;
    for (auto& p : promises) out.push_back(p.get_future().get().value());
    return out;
  };
  const auto a = encode("The cat sat on the mat.");
  const auto b = encode("Quarterly revenue grew by four percent.");
  const auto together = embed({a, b});
  const auto a_alone = embed({a});
  ASSERT_EQ(together[0].size(), static_cast<size_t>(model_->config().embedding_length));
  EXPECT_EQ(together[0], a_alone[0]);
  double norm = 0, dot = 0;
  for (size_t i = 0; i < together[0].size(); ++i) {
    norm += double(together[0][i]) * together[0][i];
    dot += double(together[0][i]) * together[1][i];
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_LT(dot, 0.9999);
}

}  // namespace
}  // namespace keel::engine
