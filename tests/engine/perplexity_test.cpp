// engine::perplexity (perplexity.h) on the tiny random-weight llama of the forward
// fixtures: llama-perplexity's chunking (chunks of `context`, BOS first, the second half
// scored) against the same sum written out plainly here, its NLL formula, the
// uncertainty, and its errors (too few tokens, tiny contexts, small sessions).
#include "keel/engine/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

std::string tiny_model_path() {
  const std::string root = keel::testing::source_dir();
  return root + "/tests/fixtures/engine/forward/tiny_tied.gguf";
}

std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, 255);
  std::vector<int32_t> out(n);
  for (auto& t : out) t = id(rng);
  return out;
}

class Perplexity : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = GgufFile::open(tiny_model_path());
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    file_ = std::move(*file);
    auto model = Model::load(*file_);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(*model);
    auto session = InferenceSession::create(*model_, {.threads = 1, .context_length = 32});
    ASSERT_TRUE(session.ok());
    session_ = std::move(*session);
  }
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<InferenceSession> session_;
};

TEST(NegativeLogLikelihood, IsMinusLogSoftmax) {
  const std::vector<float> uniform = {2.0f, 2.0f, 2.0f, 2.0f};
  EXPECT_NEAR(negative_log_likelihood(uniform, 3), std::log(4.0), 1e-12);
  const std::vector<float> logits = {0.0f, std::log(3.0f), -1000.0f};
  EXPECT_NEAR(negative_log_likelihood(logits, 1), -std::log(0.75), 1e-6);
  EXPECT_NEAR(negative_log_likelihood(logits, 0), -std::log(0.25), 1e-6);
  EXPECT_GT(negative_log_likelihood(logits, 2), 900.0);
}

TEST_F(Perplexity, ScoresTheSecondHalfOfEveryChunkWithBosFirst) {
  const int64_t ctx = 16;
  const int32_t bos = 1;
  const auto tokens = random_tokens(75, 7);  // 4 whole chunks and 11 tokens left over
  std::vector<double> running;
  auto got = perplexity(*session_, tokens, {.context = ctx, .bos = bos}, [&](const PerplexityProgress& p) {
    EXPECT_EQ(p.chunk, static_cast<int64_t>(running.size()) + 1);
    EXPECT_EQ(p.chunks, 4);
    running.push_back(p.running_perplexity);
    return Status::Ok();
  });
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(session_->position(), 0) << "the session is left reset";

  // The same number, written out: chunk i is tokens [16i, 16i + 16) with the first
  // replaced by BOS; the logits at positions 8..14 score tokens 9..15.
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::vector<double> expected_running;
  for (int64_t i = 0; i < 4; ++i) {
    std::vector<int32_t> chunk(tokens.begin() + i * ctx, tokens.begin() + (i + 1) * ctx);
    chunk[0] = bos;
    session_->reset();
    auto logits = session_->forward(chunk, LogitsFor::kEveryToken);
    ASSERT_TRUE(logits.ok());
    for (int64_t j = 8; j <= 14; ++j) {
      const std::span<const float> row(logits->data() + j * 256, 256);
      double max = row[0], sum = 0;
      for (float v : row) max = std::max(max, static_cast<double>(v));
      for (float v : row) sum += std::exp(v - max);
      const double v = -(row[static_cast<size_t>(chunk[j + 1])] - max - std::log(sum));
      nll += v;
      nll2 += v * v;
      ++count;
    }
    expected_running.push_back(std::exp(nll / static_cast<double>(count)));
  }
  EXPECT_EQ(got->tokens, 75);
  EXPECT_EQ(got->context, 16);
  EXPECT_EQ(got->chunks, 4);
  EXPECT_EQ(got->scored_tokens, 28);
  EXPECT_EQ(count, 28);
  EXPECT_NEAR(got->perplexity, std::exp(nll / 28), 1e-4 * got->perplexity);
  EXPECT_NEAR(got->mean_nll, nll / 28, 1e-5);
  const double variance = nll2 / 28 - (nll / 28) * (nll / 28);
  EXPECT_NEAR(got->uncertainty, std::sqrt(variance / 27) * got->perplexity, 1e-4 * got->uncertainty);
  ASSERT_EQ(got->running_perplexity.size(), 4u);
  EXPECT_EQ(got->running_perplexity, running);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(running[i], expected_running[i], 1e-4 * running[i]);
  EXPECT_GT(got->perplexity, 1.0);
}

TEST_F(Perplexity, BosReplacesTheFirstTokenOfEachChunk) {
  auto tokens = random_tokens(64, 11);
  tokens[0] = 1;
  auto with_bos = perplexity(*session_, tokens, {.context = 16, .bos = 1});
  auto without = perplexity(*session_, tokens, {.context = 16, .bos = -1});
  ASSERT_TRUE(with_bos.ok());
  ASSERT_TRUE(without.ok());
  // The first chunk starts with 1 either way; the later ones differ.
  EXPECT_EQ(with_bos->running_perplexity[0], without->running_perplexity[0]);
  EXPECT_NE(with_bos->perplexity, without->perplexity);
}

TEST_F(Perplexity, DoesNotDependOnTheSessionsThreadCount) {
  const auto tokens = random_tokens(64, 3);
  auto two = InferenceSession::create(*model_, {.threads = 2, .context_length = 16});
  ASSERT_TRUE(two.ok());
  auto a = perplexity(*session_, tokens, {.context = 16, .bos = 1});
  auto b = perplexity(**two, tokens, {.context = 16, .bos = 1});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->perplexity, b->perplexity);
}

TEST_F(Perplexity, TooFewTokensSaysHowManyAreNeeded) {
  const auto tokens = random_tokens(31, 5);
  auto r = perplexity(*session_, tokens, {.context = 16});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("at least 32 tokens"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("only 31"), std::string::npos) << r.status().message();
  EXPECT_EQ(perplexity(*session_, {}, {.context = 16}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(perplexity(*session_, random_tokens(32, 5), {.context = 16}).ok()) << "exactly 2 * context is enough";
}

TEST_F(Perplexity, RejectsTinyContextsAndSmallSessions) {
  const auto tokens = random_tokens(200, 5);
  for (int64_t ctx : {-1, 0, 1, 3}) {
    EXPECT_EQ(perplexity(*session_, tokens, {.context = ctx}).status().code(), ErrorCode::kInvalidArgument) << ctx;
  }
  EXPECT_TRUE(perplexity(*session_, tokens, {.context = 4}).ok());
  EXPECT_EQ(perplexity(*session_, tokens, {.context = 64}).status().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(Perplexity, AnIdOutsideTheVocabularyIsAnError) {
  auto tokens = random_tokens(64, 5);
  tokens[40] = 256;
  EXPECT_EQ(perplexity(*session_, tokens, {.context = 16}).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(Perplexity, AnErrorFromTheCallbackEndsTheRun) {
  int calls = 0;
  auto r = perplexity(*session_, random_tokens(64, 5), {.context = 16}, [&](const PerplexityProgress&) {
    ++calls;
    return Status(ErrorCode::kResourceExhausted, "stop");
  });
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace keel::engine
