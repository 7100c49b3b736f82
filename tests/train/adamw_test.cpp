// AdamW and gradient clipping (adamw.h) against torch.optim.AdamW's update written out
// in double, and a short LoRA fine-tune of a tiny random model that must learn.
#include "keel/train/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

#include "keel/train/lora_model.h"
#include "keel/train/lr_schedule.h"
#include "train/gradient_check.h"
#include "train/tiny_model.h"

namespace keel::train {
namespace {

TEST(AdamW, FollowsTorchUpdateWithDecoupledWeightDecay) {
  std::vector<float> p = {0.5f, -1.0f, 2.0f}, g(3);
  const std::vector<ParameterRef> params = {{"p", p, g}};
  const AdamWOptions options{.beta1 = 0.8f, .beta2 = 0.95f, .epsilon = 1e-6f, .weight_decay = 0.1f, .max_grad_norm = 0};
  AdamW adam(options);
  std::vector<double> ref = {0.5, -1.0, 2.0}, m(3, 0), v(3, 0);
  for (int step = 1; step <= 5; ++step) {
    for (int i = 0; i < 3; ++i) g[i] = static_cast<float>(std::sin(step * 1.3 + i) * (i + 1));
    const float lr = 0.01f * step;
    ASSERT_TRUE(adam.step(params, lr).ok());
    for (int i = 0; i < 3; ++i) {
      ref[i] *= 1 - lr * 0.1;
      m[i] = 0.8 * m[i] + 0.2 * g[i];
      v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(0.8, step)), vhat = v[i] / (1 - std::pow(0.95, step));
      ref[i] -= lr * mhat / (std::sqrt(vhat) + 1e-6);
      EXPECT_NEAR(p[i], ref[i], 1e-5) << "step " << step << " element " << i;
    }
  }
  EXPECT_EQ(adam.steps(), 5);
}

TEST(AdamW, ClipsTheGlobalNormAcrossParameters) {
  std::vector<float> a = {1, 1}, ga = {3, 0}, b = {1}, gb = {4};
  const std::vector<ParameterRef> params = {{"a", a, ga}, {"b", b, gb}};
  EXPECT_DOUBLE_EQ(global_grad_norm(params), 5.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 1.0), 5.0);
  EXPECT_NEAR(ga[0], 3.0 / 5, 1e-6);
  EXPECT_NEAR(gb[0], 4.0 / 5, 1e-6);
  EXPECT_NEAR(global_grad_norm(params), 1.0, 1e-6);
  // Under the limit nothing changes.
  EXPECT_NEAR(clip_grad_norm(params, 2.0), 1.0, 1e-6);
  EXPECT_NEAR(gb[0], 4.0 / 5, 1e-6);
  // The step reports the norm before clipping; Adam's first step moves each element by
  // lr whatever the gradient's scale, so clipping shows in the moments.
  ga = {30, 0};
  gb = {40};
  AdamW adam({.max_grad_norm = 1.0f});
  auto norm = adam.step(params, 0.1f);
  ASSERT_TRUE(norm.ok());
  EXPECT_NEAR(*norm, 50.0, 1e-4);
  EXPECT_NEAR(adam.first_moment(1)[0], 0.1 * 0.8, 1e-5);
}

TEST(AdamW, RejectsChangedParametersNonFiniteGradientsAndBadOptions) {
  std::vector<float> a = {1, 2}, ga = {0.1f, 0.2f}, b = {1}, gb = {1};
  AdamW adam({});
  ASSERT_TRUE(adam.step(std::vector<ParameterRef>{{"a", a, ga}}, 0.1f).ok());
  EXPECT_EQ(adam.step(std::vector<ParameterRef>{{"a", a, ga}, {"b", b, gb}}, 0.1f).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(adam.step(std::vector<ParameterRef>{{"b", b, gb}}, 0.1f).status().code(), ErrorCode::kInvalidArgument);
  ga[0] = NAN;
  const auto before = a;
  EXPECT_EQ(adam.step(std::vector<ParameterRef>{{"a", a, ga}}, 0.1f).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(a, before);
  EXPECT_FALSE(check_adamw_options({.beta1 = 1.0f}).ok());
  EXPECT_FALSE(check_adamw_options({.epsilon = 0}).ok());
  EXPECT_FALSE(check_adamw_options({.weight_decay = -1}).ok());
  EXPECT_FALSE(check_adamw_options({.max_grad_norm = -1}).ok());
}

TEST(LoraFineTune, TwentyStepsOnOneSequenceLearnIt) {
  const auto tiny = testing::make_tiny_model({});
  LoraConfig config{.rank = 4, .alpha = 8, .seed = 1};
  config.modules = {LoraModule::kQ,    LoraModule::kK,  LoraModule::kV,   LoraModule::kO,
                    LoraModule::kGate, LoraModule::kUp, LoraModule::kDown};
  auto lora = LoraWeights::create(*tiny.model, config);
  ASSERT_TRUE(lora.ok());
  auto model = LoraModel::create(*tiny.model, *lora, {});
  ASSERT_TRUE(model.ok());
  std::vector<int32_t> tokens;
  for (int i = 0; i < 16; ++i) tokens.push_back((i * 7 + 3) % 48);
  const auto targets = next_token_targets(tokens);
  const TrainingSequence seq{tokens, targets};
  AdamW adam({.weight_decay = 0.01f, .max_grad_norm = 1.0f});
  const LrSchedule schedule{.peak = 2e-2f, .warmup_steps = 3, .total_steps = 20, .decay = LrDecay::kCosine};
  const double first = (*model)->loss(std::span(&seq, 1))->loss;
  for (int64_t step = 0; step < 20; ++step) {
    lora->zero_grad();
    ASSERT_TRUE((*model)->forward_backward(std::span(&seq, 1), static_cast<uint64_t>(step)).ok());
    auto params = lora->parameters();
    ASSERT_TRUE(adam.step(params, schedule.at(step)).ok());
  }
  const double last = (*model)->loss(std::span(&seq, 1))->loss;
  EXPECT_LT(last, 0.5 * first) << "from " << first << " to " << last;
}

TEST(LrSchedule, WarmsUpThenDecaysAsTransformersSchedulesDo) {
  const LrSchedule cosine{.peak = 1.0f, .warmup_steps = 10, .total_steps = 110, .decay = LrDecay::kCosine};
  ASSERT_TRUE(cosine.check().ok());
  EXPECT_EQ(cosine.at(0), 0.0f);
  EXPECT_FLOAT_EQ(cosine.at(5), 0.5f);
  EXPECT_FLOAT_EQ(cosine.at(10), 1.0f);
  EXPECT_NEAR(cosine.at(60), 0.5f, 1e-6);  // half way: cos(pi/2)
  EXPECT_NEAR(cosine.at(35), 0.5 * (1 + std::cos(3.14159265358979 * 0.25)), 1e-6);
  EXPECT_NEAR(cosine.at(110), 0.0f, 1e-6);
  EXPECT_NEAR(cosine.at(200), 0.0f, 1e-6);  // stays at the end value
  const LrSchedule linear{.peak = 2.0f, .warmup_steps = 0, .total_steps = 4, .decay = LrDecay::kLinear};
  EXPECT_FLOAT_EQ(linear.at(0), 2.0f);
  EXPECT_FLOAT_EQ(linear.at(1), 1.5f);
  EXPECT_FLOAT_EQ(linear.at(4), 0.0f);
  EXPECT_FLOAT_EQ(linear.at(6), 0.0f);
  const LrSchedule constant{.peak = 3.0f, .warmup_steps = 2, .total_steps = 4, .decay = LrDecay::kConstant};
  EXPECT_FLOAT_EQ(constant.at(1), 1.5f);
  EXPECT_FLOAT_EQ(constant.at(3), 3.0f);
  EXPECT_FALSE((LrSchedule{.warmup_steps = 5, .total_steps = 4}).check().ok());
  EXPECT_FALSE((LrSchedule{.total_steps = 0}).check().ok());
  EXPECT_FALSE((LrSchedule{.peak = -1}).check().ok());
  EXPECT_EQ(*parse_lr_decay("cosine"), LrDecay::kCosine);
  EXPECT_EQ(parse_lr_decay("step").status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::train
