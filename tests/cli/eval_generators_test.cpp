// The local Generator against the engine used directly: batched generation gives what
// engine::generate() gives for each prompt alone (greedy), and log-likelihoods with a
// context shared by several continuations (run once, then truncated back) equal a fresh
// pass over context + continuation.
#include <gtest/gtest.h>

#include "keel/cli/eval_generators.h"
#include "keel/engine/forward.h"
#include "keel/engine/generation.h"
#include "keel/engine/perplexity.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

LoadedModel load(const std::string& path) {
  LoadedModel m;
  m.file = std::move(engine::GgufFile::open(path).value());
  m.tokenizer = std::move(engine::Tokenizer::from_gguf(*m.file).value());
  m.model = std::move(engine::Model::load(*m.file).value());
  return m;
}

class LocalGeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = keel::testing::default_model_path();
    if (!path) GTEST_SKIP() << "default model not fetched (make test fetches it)";
    path_ = *path;
  }
  std::string path_;
};

TEST_F(LocalGeneratorTest, BatchedGenerationEqualsGenerateAlone) {
  LocalGeneratorOptions o;
  o.batch_size = 3;
  auto g = make_local_generator(load(path_), o);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  const std::vector<std::string> prompts = {"The capital of France is", "One, two, three,", "Once upon a time"};
  eval::GenerationParams params;
  params.max_tokens = 8;
  auto out = (*g)->generate(prompts, params);
  ASSERT_TRUE(out.ok()) << out.status().to_string();

  LoadedModel m = load(path_);
  auto session = std::move(engine::InferenceSession::create(*m.model, {}).value());
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto ids = *m.tokenizer->encode(prompts[i], true, false);
    engine::GenerationOptions go;
    go.max_tokens = 8;
    auto alone = engine::generate(*session, *m.tokenizer, ids, go);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*out)[i], alone->text) << prompts[i];
  }
}

TEST_F(LocalGeneratorTest, SharedContextLoglikelihoodsEqualAFreshPass) {
  auto g = make_local_generator(load(path_), {});
  ASSERT_TRUE(g.ok());
  const std::vector<eval::LoglikelihoodRequest> requests = {
      {"Question: What is the capital of France?\nAnswer:", " Paris"},
      {"Question: What is the capital of France?\nAnswer:", " Buenos Aires"},
      {"The sky is", " blue"}};
  auto got = (*g)->loglikelihood(requests);
  ASSERT_TRUE(got.ok()) << got.status().to_string();

  LoadedModel m = load(path_);
  auto session = std::move(engine::InferenceSession::create(*m.model, {}).value());
  const int64_t vocab = m.model->config().vocab_size;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto context = *m.tokenizer->encode(requests[i].context, true, false);
    auto whole = *m.tokenizer->encode(requests[i].context + requests[i].continuation, true, false);
    std::vector<int32_t> input = context;
    input.insert(input.end(), whole.begin() + static_cast<std::ptrdiff_t>(context.size()), whole.end());
    session->reset();
    auto logits = *session->forward(input, engine::LogitsFor::kEveryToken);
    double logprob = 0;
    for (size_t t = context.size(); t < input.size(); ++t) {
      logprob -= engine::negative_log_likelihood(
          std::span<const float>(logits.data() + (t - 1) * static_cast<size_t>(vocab), static_cast<size_t>(vocab)),
          input[t]);
    }
    EXPECT_EQ((*got)[i].tokens, static_cast<int64_t>(input.size() - context.size()));
    EXPECT_NEAR((*got)[i].logprob, logprob, 1e-3) << requests[i].continuation;
    EXPECT_LT((*got)[i].logprob, 0);
  }
  EXPECT_GT((*got)[0].logprob, (*got)[1].logprob) << "Paris should be likelier than Buenos Aires";
}

}  // namespace
}  // namespace keel::cli
