// Merging an adapter into its base model (merge.h): the merged matrices are W + scale B A
// row by row, the rest of the file is the base's, and the merged model computes what
// base + adapter computes.
#include "keel/train/merge.h"

#include <gtest/gtest.h>

#include "keel/engine/quant.h"
#include "keel/train/lora_model.h"
#include "support/test_support.h"
#include "train/tiny_model.h"

namespace keel::train {
namespace {

// Adapters with B set too (fresh ones have B = 0 and change nothing).
LoraWeights trained_looking_adapters(const engine::Model& model, std::vector<LoraModule> modules) {
  auto lora = LoraWeights::create(model, {.rank = 3, .alpha = 6, .seed = 4, .modules = std::move(modules)});
  EXPECT_TRUE(lora.ok());
  for (LoraAdapter& a : lora->adapters()) {
    std::string name = "b";
    name += std::to_string(a.layer * 10 + static_cast<int>(a.module));
    for (size_t i = 0; i < a.b.size(); ++i) a.b[i] = 0.05f * testing::pseudo_uniform(name, i);
  }
  return std::move(*lora);
}

double loss_of(const engine::Model& model, LoraWeights& lora, const std::vector<TrainingSequence>& batch) {
  auto trainer = LoraModel::create(model, lora, {});
  EXPECT_TRUE(trainer.ok());
  auto loss = (*trainer)->loss(batch);
  EXPECT_TRUE(loss.ok()) << loss.status().to_string();
  return loss->loss;
}

TEST(MergeLora, TheMergedModelComputesWhatBasePlusAdapterDoes) {
  for (auto base_type : {engine::GgmlType::kF32, engine::GgmlType::kQ8_0}) {
    const auto tiny = testing::make_tiny_model({.matrix_type = base_type});
    LoraWeights lora = trained_looking_adapters(*tiny.model, {LoraModule::kQ, LoraModule::kK, LoraModule::kV,
                                                              LoraModule::kO, LoraModule::kGate, LoraModule::kUp,
                                                              LoraModule::kDown});
    std::vector<int32_t> tokens, targets(12, -1);
    for (int t = 0; t < 12; ++t) tokens.push_back((t * 7 + 3) % 48);
    for (int t = 0; t < 11; ++t) targets[t] = tokens[t + 1];
    const std::vector<TrainingSequence> batch{{tokens, targets}};
    const double with_adapter = loss_of(*tiny.model, lora, batch);
    auto none = LoraWeights::create(*tiny.model, {.rank = 1, .alpha = 1, .modules = {LoraModule::kQ}});
    ASSERT_TRUE(none.ok());
    const double base_only = loss_of(*tiny.model, *none, batch);
    ASSERT_GT(std::abs(with_adapter - base_only), 1e-3) << "the adapter must change something to be tested";

    keel::testing::TempDir dir;
    const std::string path = dir.file("merged.gguf");
    ASSERT_TRUE(write_merged_model(path, *tiny.file, *tiny.model, lora, engine::GgmlType::kF32).ok());
    auto file = engine::GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    EXPECT_EQ((*file)->tensors().size(), tiny.file->tensors().size());
    EXPECT_EQ((*file)->get_int("keel.merged_lora.rank"), 3);
    EXPECT_EQ((*file)->get_string("general.architecture"), "llama");
    auto merged = engine::Model::load(**file);
    ASSERT_TRUE(merged.ok()) << merged.status().to_string();
    auto none_merged = LoraWeights::create(**merged, {.rank = 1, .alpha = 1, .modules = {LoraModule::kQ}});
    ASSERT_TRUE(none_merged.ok());
    // On a Q8_0 base, base + adapter multiplies with the engine's kernels, which round the
    // activations to 8 bits; the merged F32 model does not.
    const double tolerance = base_type == engine::GgmlType::kF32 ? 1e-5 : 5e-3;
    EXPECT_NEAR(loss_of(**merged, *none_merged, batch), with_adapter, tolerance) << "base type " << int(base_type);

    // Row 5 of blk.1's attn_v: W + scale B A, exactly as summed in F32.
    const LoraAdapter* a = lora.find(1, LoraModule::kV);
    const engine::WeightMatrix& w = tiny.model->layers()[1].attention_v;
    const engine::WeightMatrix& m = (*merged)->layers()[1].attention_v;
    std::vector<float> base_row(static_cast<size_t>(w.cols)), merged_row(static_cast<size_t>(w.cols));
    engine::dequantize_row(w.type, w.row(5), base_row.data(), w.cols);
    engine::dequantize_row(m.type, m.row(5), merged_row.data(), m.cols);
    for (int64_t c = 0; c < w.cols; ++c) {
      float ba = 0;
      for (int64_t k = 0; k < a->rank; ++k) ba += a->b[static_cast<size_t>(5 * a->rank + k)] * a->a[static_cast<size_t>(k * a->in + c)];
      EXPECT_NEAR(merged_row[static_cast<size_t>(c)], base_row[static_cast<size_t>(c)] + a->scale * ba, 1e-6);
    }
  }
}

TEST(MergeLora, TypesAndBadInput) {
  EXPECT_EQ(*parse_merge_type("q8_0"), engine::GgmlType::kQ8_0);
  EXPECT_FALSE(parse_merge_type("same")->has_value());
  EXPECT_EQ(parse_merge_type("q4_k").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(merged_matrix_type(engine::GgmlType::kQ4_1, std::nullopt), engine::GgmlType::kQ4_1);
  EXPECT_EQ(merged_matrix_type(engine::GgmlType::kQ6_K, std::nullopt), engine::GgmlType::kF16);  // no K-quant writer
  const auto tiny = testing::make_tiny_model({});
  const auto other = testing::make_tiny_model({.layers = 3});
  LoraWeights lora = trained_looking_adapters(*other.model, {LoraModule::kQ});
  keel::testing::TempDir dir;
  EXPECT_EQ(write_merged_model(dir.file("x.gguf"), *tiny.file, *tiny.model, lora, std::nullopt).code(),
            ErrorCode::kInvalidArgument);
  // Q8_0 output from an F32 base: what the quantizer makes of W + scale B A.
  LoraWeights own = trained_looking_adapters(*tiny.model, {LoraModule::kUp});
  ASSERT_TRUE(write_merged_model(dir.file("q.gguf"), *tiny.file, *tiny.model, own, engine::GgmlType::kQ8_0).ok());
  auto file = engine::GgufFile::open(dir.file("q.gguf"));
  ASSERT_TRUE(file.ok());
  auto merged = engine::Model::load(**file);
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ((*merged)->layers()[0].ffn_up.type, engine::GgmlType::kQ8_0);
  EXPECT_EQ((*merged)->layers()[0].ffn_down.type, engine::GgmlType::kF32);
}

}  // namespace
}  // namespace keel::train

namespace keel::train {
namespace {

// A small change survives F16 and Q8_0 but is mostly rounded away by a 4-bit type: the
// fidelity measure says so, and keeps to its definition (kept 1 and no rounding in F32).
TEST(MergeLora, FidelitySaysHowMuchOfTheChangeACoarseTypeKeeps) {
  const auto tiny = testing::make_tiny_model({.matrix_type = engine::GgmlType::kQ4_0});
  LoraWeights lora = trained_looking_adapters(*tiny.model, {LoraModule::kQ, LoraModule::kDown});
  for (LoraAdapter& a : lora.adapters()) {
    for (float& b : a.b) b *= 0.02f;  // a change far below the 4-bit step, as a trained LoRA's is
  }
  auto kept = [&](std::optional<engine::GgmlType> type) {
    auto f = merge_fidelity(*tiny.model, lora, type, 1);
    EXPECT_TRUE(f.ok()) << f.status().to_string();
    return *f;
  };
  const MergeFidelity f32 = kept(engine::GgmlType::kF32);
  EXPECT_NEAR(f32.kept, 1.0, 1e-4);
  EXPECT_LT(f32.error, 1e-3);
  EXPECT_NEAR(kept(engine::GgmlType::kF16).kept, 1.0, 0.05);
  EXPECT_NEAR(kept(engine::GgmlType::kQ8_0).kept, 1.0, 0.3);
  const MergeFidelity same = kept(std::nullopt);  // Q4_0 again
  EXPECT_LT(same.kept, 0.5) << "re-quantizing to 4 bits keeps most of a small change";
  EXPECT_GT(same.error, 0.5);
  EXPECT_FALSE(merge_fidelity(*tiny.model, lora, engine::GgmlType::kF16, 0).ok());
  const auto other = testing::make_tiny_model({.layers = 1});
  EXPECT_EQ(merge_fidelity(*other.model, lora, engine::GgmlType::kF16).status().code(), ErrorCode::kInvalidArgument)
      << "adapters of a two-layer model on a one-layer one";
}

}  // namespace
}  // namespace keel::train
