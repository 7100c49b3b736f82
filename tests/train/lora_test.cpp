// LoRA adapters (lora.h): PEFT's initialisation, module names, seeded dropout, and the
// adapter's forward and backward against direct sums and finite differences.
#include "keel/train/lora.h"

#include <gtest/gtest.h>

#include <cmath>

#include "train/gradient_check.h"
#include "train/tiny_model.h"

namespace keel::train {
namespace {

using testing::expect_gradient;
using testing::random_vector;
using testing::weighted_sum;

TEST(LoraWeights, InitialisesAAsKaimingUniformAndBAtZeroOnEveryChosenModule) {
  const auto tiny = testing::make_tiny_model({.feed_forward = 64});
  LoraConfig config{.rank = 4, .alpha = 8, .seed = 7};
  config.modules = {LoraModule::kQ, LoraModule::kDown, LoraModule::kV};
  auto lora = LoraWeights::create(*tiny.model, config);
  ASSERT_TRUE(lora.ok()) << lora.status().to_string();
  ASSERT_EQ(lora->adapters().size(), 6u);  // 2 layers x 3 modules
  EXPECT_EQ(lora->find(1, LoraModule::kK), nullptr);
  const LoraAdapter* down = lora->find(1, LoraModule::kDown);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->in, 64);
  EXPECT_EQ(down->out, 32);
  EXPECT_EQ(down->scale, 2.0f);
  const LoraAdapter* v = lora->find(0, LoraModule::kV);
  EXPECT_EQ(v->out, 16);  // 2 kv heads of 8
  for (const LoraAdapter& a : lora->adapters()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(a.in));
    double sum_sq = 0;
    for (float x : a.a) {
      EXPECT_LE(std::fabs(x), bound);
      sum_sq += x * x;
    }
    // U(-b, b) has variance b^2 / 3.
    EXPECT_NEAR(sum_sq / static_cast<double>(a.a.size()), bound * bound / 3, 0.25 * bound * bound / 3);
    for (float x : a.b) EXPECT_EQ(x, 0.0f);
  }
  EXPECT_EQ(lora->parameter_count(), 2 * (4 * 32 + 32 * 4) + 2 * (4 * 32 + 16 * 4) + 2 * (4 * 64 + 32 * 4));
  const auto params = lora->parameters();
  ASSERT_EQ(params.size(), 12u);
  EXPECT_EQ(params[0].name, "blk.0.attn_q.lora_a");
  EXPECT_EQ(params[5].name, "blk.0.ffn_down.lora_b");

  // The same seed gives the same A whatever the module order; another seed does not.
  LoraConfig reordered = config;
  reordered.modules = {LoraModule::kV, LoraModule::kQ, LoraModule::kDown};
  auto again = LoraWeights::create(*tiny.model, reordered);
  EXPECT_EQ(again->find(1, LoraModule::kDown)->a, down->a);
  config.seed = 8;
  auto other = LoraWeights::create(*tiny.model, config);
  EXPECT_NE(other->find(1, LoraModule::kDown)->a, down->a);
}

TEST(LoraWeights, RejectsBadConfigurations) {
  const auto tiny = testing::make_tiny_model({});
  EXPECT_FALSE(LoraWeights::create(*tiny.model, {.rank = 0}).ok());
  EXPECT_FALSE(LoraWeights::create(*tiny.model, {.dropout = 1.0f}).ok());
  EXPECT_FALSE(LoraWeights::create(*tiny.model, {.alpha = 0}).ok());
  EXPECT_FALSE(LoraWeights::create(*tiny.model, {.modules = {}}).ok());
  EXPECT_FALSE(LoraWeights::create(*tiny.model, {.modules = {LoraModule::kQ, LoraModule::kQ}}).ok());
}

TEST(LoraModules, ParsesShortAndPeftNames) {
  auto all = parse_lora_modules("q,k,v,o,gate,up,down");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 7u);
  EXPECT_EQ(*parse_lora_modules("all"), *all);
  auto peft = parse_lora_modules("q_proj,v_proj");
  ASSERT_TRUE(peft.ok());
  EXPECT_EQ(*peft, (std::vector<LoraModule>{LoraModule::kQ, LoraModule::kV}));
  EXPECT_EQ(parse_lora_modules("q,x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_lora_modules("q,q").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_lora_modules("").status().code(), ErrorCode::kInvalidArgument);
}

TEST(LoraDropout, DropsTheRateAskedForAndDependsOnlyOnItsKey) {
  const DropoutKey key{.seed = 1, .step = 3, .layer = 2, .module = LoraModule::kUp};
  int kept = 0;
  for (uint64_t i = 0; i < 20000; ++i) kept += lora_dropout_keeps(key, i, 0.25f) ? 1 : 0;
  EXPECT_NEAR(kept / 20000.0, 0.75, 0.015);
  int same = 0, other_step = 0;
  DropoutKey next = key;
  next.step = 4;
  for (uint64_t i = 0; i < 1000; ++i) {
    same += lora_dropout_keeps(key, i, 0.5f) == lora_dropout_keeps(key, i, 0.5f) ? 1 : 0;
    other_step += lora_dropout_keeps(key, i, 0.5f) == lora_dropout_keeps(next, i, 0.5f) ? 1 : 0;
  }
  EXPECT_EQ(same, 1000);
  EXPECT_NEAR(other_step / 1000.0, 0.5, 0.06);
}

LoraAdapter random_adapter(int64_t rank, int64_t in, int64_t out) {
  LoraAdapter a;
  a.rank = rank;
  a.in = in;
  a.out = out;
  a.scale = 1.5f;
  a.a = random_vector(static_cast<size_t>(rank * in), 31);
  a.b = random_vector(static_cast<size_t>(out * rank), 32);
  a.grad_a.assign(a.a.size(), 0.0f);
  a.grad_b.assign(a.b.size(), 0.0f);
  return a;
}

TEST(LoraAdapterOp, ForwardAddsScaledLowRankProduct) {
  engine::ComputePool pool(2);
  const LoraAdapter a = random_adapter(3, 10, 7);
  const int64_t n = 4;
  const auto x = random_vector(static_cast<size_t>(n * 10), 33);
  std::vector<float> y(static_cast<size_t>(n * 7), 0.5f);
  LoraActivation saved;
  LoraScratch scratch;
  lora_forward(pool, a, x.data(), n, 0.0f, {}, y.data(), saved, scratch);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < 7; ++o) {
      double s = 0;
      for (int64_t k = 0; k < 3; ++k) {
        double h = 0;
        for (int64_t i = 0; i < 10; ++i) h += a.a[k * 10 + i] * x[t * 10 + i];
        s += a.b[o * 3 + k] * h;
      }
      EXPECT_NEAR(y[t * 7 + o], 0.5 + 1.5 * s, 1e-5);
    }
  }
}

class LoraAdapterGradients : public ::testing::TestWithParam<float> {};

TEST_P(LoraAdapterGradients, MatchFiniteDifferences) {
  engine::ComputePool pool(2);
  const float p = GetParam();
  LoraAdapter a = random_adapter(3, 10, 7);
  const int64_t n = 4;
  auto x = random_vector(static_cast<size_t>(n * 10), 34);
  const auto g = random_vector(static_cast<size_t>(n * 7), 35);
  const DropoutKey key{.seed = 5, .step = 1, .layer = 0, .module = LoraModule::kGate};
  std::vector<float> y(static_cast<size_t>(n * 7), 0.0f), dx(x.size(), 0.0f);
  LoraActivation saved;
  LoraScratch scratch;
  lora_forward(pool, a, x.data(), n, p, key, y.data(), saved, scratch);
  lora_backward(pool, a, x.data(), n, p, key, saved, g.data(), dx.data(), scratch);
  const auto loss = [&] {
    std::vector<float> z(static_cast<size_t>(n * 7), 0.0f);
    LoraActivation s;
    lora_forward(pool, a, x.data(), n, p, key, z.data(), s, scratch);
    return weighted_sum(z, g);
  };
  const auto grad_a = a.grad_a, grad_b = a.grad_b;
  expect_gradient("dA", a.a, grad_a, loss, 1e-2f, 1e-3);
  expect_gradient("dB", a.b, grad_b, loss, 1e-2f, 1e-3);
  expect_gradient("dx", x, dx, loss, 1e-2f, 1e-3);
  if (p > 0) {
    int zeros = 0;
    for (float v : dx) zeros += v == 0.0f ? 1 : 0;
    EXPECT_GT(zeros, 0);  // dropped inputs get no gradient
  }
}

INSTANTIATE_TEST_SUITE_P(Dropout, LoraAdapterGradients, ::testing::Values(0.0f, 0.3f));

}  // namespace
}  // namespace keel::train
