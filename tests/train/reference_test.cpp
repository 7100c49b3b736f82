// The trainer against two references of the same tiny llama with LoRA on all seven
// modules: tests/reference/make_lora_fixtures.py (numpy float64, gradients by float64
// finite differences, torch's AdamW arithmetic written out) and
// tests/reference/make_lora_torch_fixtures.py (PyTorch float64 autograd through
// transformers' Llama and PEFT's LoRA, torch.optim.AdamW, clip_grad_norm_ and the
// warmup + cosine schedule). The same tiny model (tiny_model.h's weights are a pure
// function of name and index, computed identically there), the same adapters, the same
// micro-batch. Loss to 1e-4, every LoRA gradient to 1e-3 relative, and ten AdamW steps.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <ostream>
#include <nlohmann/json.hpp>

#include "keel/train/adamw.h"
#include "keel/train/lora_model.h"
#include "keel/train/lr_schedule.h"
#include "support/test_support.h"
#include "train/tiny_model.h"

namespace keel::train {
namespace {

struct Reference {
  const char* name;       // of the test instance
  const char* fixture;    // under tests/fixtures/train/
  const char* generator;  // under tests/reference/
};

void PrintTo(const Reference& reference, std::ostream* os) { *os << reference.fixture; }

nlohmann::json read_fixture(const Reference& reference) {
  const std::string path = keel::testing::source_dir() + "/tests/fixtures/train/" + reference.fixture;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing " << path << " (tests/reference/" << reference.generator << " writes it)";
  return in.good() ? nlohmann::json::parse(in) : nlohmann::json::object();
}

// max |a - b| <= tolerance * max |b|, and the same for the whole vector's norm.
::testing::AssertionResult close_relative(std::span<const float> a, const std::vector<double>& b, double tolerance) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  double scale = 0, worst = 0, diff_sq = 0, ref_sq = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    scale = std::max(scale, std::fabs(b[i]));
    const double d = std::fabs(a[i] - b[i]);
    if (d > worst) worst = d, worst_i = i;
    diff_sq += d * d;
    ref_sq += b[i] * b[i];
  }
  if (worst > tolerance * scale || std::sqrt(diff_sq) > tolerance * std::sqrt(ref_sq)) {
    return ::testing::AssertionFailure() << "element " << worst_i << ": " << a[worst_i] << " vs " << b[worst_i]
                                         << " (max |reference| " << scale << ", norm of difference "
                                         << std::sqrt(diff_sq) << " of " << std::sqrt(ref_sq) << ")";
  }
  return ::testing::AssertionSuccess();
}

class LoraReference : public ::testing::TestWithParam<Reference> {};

TEST_P(LoraReference, LossGradientsAndTenAdamWStepsMatch) {
  const nlohmann::json fixture = read_fixture(GetParam());
  ASSERT_TRUE(fixture.contains("initial"));
  const auto& m = fixture["model"];
  const auto tiny = testing::make_tiny_model({.vocab = m["vocab"],
                                              .embedding = m["embedding"],
                                              .feed_forward = m["feed_forward"],
                                              .layers = m["layers"],
                                              .heads = m["heads"],
                                              .kv_heads = m["kv_heads"],
                                              .weight_scale = m["weight_scale"].get<float>(),
                                              .tied_output = m["tied_output"]});
  const auto& l = fixture["lora"];
  std::string modules;
  for (const auto& name : l["modules"]) {
    if (!modules.empty()) modules += ',';
    modules += name.get<std::string>();
  }
  auto parsed = parse_lora_modules(modules);
  ASSERT_TRUE(parsed.ok());
  auto lora = LoraWeights::create(
      *tiny.model, {.rank = l["rank"], .alpha = l["alpha"].get<float>(), .dropout = 0, .modules = *parsed});
  ASSERT_TRUE(lora.ok());
  // The reference's adapters: A and B from pseudo_uniform of their names.
  const float a_scale = l["a_scale"], b_scale = l["b_scale"];
  for (ParameterRef& p : lora->parameters()) {
    const bool is_a = p.name.ends_with(".lora_a");
    for (size_t i = 0; i < p.value.size(); ++i) {
      p.value[i] = (is_a ? a_scale : b_scale) * testing::pseudo_uniform(p.name, i);
    }
  }
  std::vector<std::vector<int32_t>> tokens, targets;
  for (const auto& s : fixture["sequences"]) {
    tokens.push_back(s["tokens"].get<std::vector<int32_t>>());
    const auto mask = s["loss_mask"].get<std::vector<uint8_t>>();
    targets.push_back(next_token_targets(tokens.back(), mask));
  }
  std::vector<TrainingSequence> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({tokens[i], targets[i]});
  auto model = LoraModel::create(*tiny.model, *lora, {.threads = 2});
  ASSERT_TRUE(model.ok());

  lora->zero_grad();
  auto first = (*model)->forward_backward(batch);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_NEAR(first->loss, fixture["initial"]["loss"].get<double>(), 1e-4);
  const auto& ref_grads = fixture["initial"]["gradients"];
  for (const ParameterRef& p : lora->parameters()) {
    ASSERT_TRUE(ref_grads.contains(p.name)) << p.name;
    EXPECT_TRUE(close_relative(p.grad, ref_grads[p.name].get<std::vector<double>>(), 1e-3)) << p.name;
  }

  const auto& adam = fixture["adamw"];
  AdamW optimizer({.beta1 = adam["beta1"],
                   .beta2 = adam["beta2"],
                   .epsilon = adam["eps"],
                   .weight_decay = adam["weight_decay"],
                   .max_grad_norm = adam["max_grad_norm"]});
  const LrSchedule schedule{.peak = adam["lr"],
                            .warmup_steps = adam["warmup_steps"],
                            .total_steps = adam["total_steps"],
                            .decay = LrDecay::kCosine};
  const auto& steps = fixture["steps"];
  for (int64_t step = 0; step < schedule.total_steps; ++step) {
    lora->zero_grad();
    auto r = (*model)->forward_backward(batch, static_cast<uint64_t>(step));
    ASSERT_TRUE(r.ok());
    const auto& expected = steps[static_cast<size_t>(step)];
    EXPECT_NEAR(r->loss, expected["loss"].get<double>(), 1e-4) << "step " << step;
    EXPECT_NEAR(schedule.at(step), expected["lr"].get<double>(), 1e-9) << "step " << step;
    auto params = lora->parameters();
    auto norm = optimizer.step(params, schedule.at(step));
    ASSERT_TRUE(norm.ok());
    EXPECT_NEAR(*norm, expected["grad_norm"].get<double>(), 1e-3 * expected["grad_norm"].get<double>());
  }
  auto final_loss = (*model)->loss(batch);
  ASSERT_TRUE(final_loss.ok());
  EXPECT_NEAR(final_loss->loss, fixture["final"]["loss"].get<double>(), 1e-4);
  EXPECT_LT(final_loss->loss, first->loss - 0.5);  // ten steps learn something
  const auto& ref_params = fixture["final"]["parameters"];
  for (const ParameterRef& p : lora->parameters()) {
    EXPECT_TRUE(close_relative(p.value, ref_params[p.name].get<std::vector<double>>(), 1e-3)) << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraReference,
                         ::testing::Values(Reference{"NumpyFloat64", "lora_reference.json", "make_lora_fixtures.py"},
                                           Reference{"TorchFloat64", "lora_torch_reference.json",
                                                     "make_lora_torch_fixtures.py"}),
                         [](const ::testing::TestParamInfo<Reference>& info) { return info.param.name; });

}  // namespace
}  // namespace keel::train
