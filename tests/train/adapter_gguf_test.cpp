// LoRA adapters written as llama.cpp's GGUF adapter layout (adapter_gguf.h) and read back.
#include "keel/train/adapter_gguf.h"

#include <gtest/gtest.h>

#include "keel/engine/gguf_writer.h"
#include "support/test_support.h"
#include "train/gradient_check.h"
#include "train/tiny_model.h"

namespace keel::train {
namespace {

TEST(LoraAdapterGguf, WritesLlamaCppLayoutAndReadsItBack) {
  const auto tiny = testing::make_tiny_model({});
  auto lora = LoraWeights::create(*tiny.model, {.rank = 3, .alpha = 6, .modules = {LoraModule::kV, LoraModule::kDown}});
  ASSERT_TRUE(lora.ok());
  uint64_t seed = 1;
  for (LoraAdapter& a : lora->adapters()) a.b = testing::random_vector(a.b.size(), seed++);
  keel::testing::TempDir dir;
  const std::string path = dir.file("adapter.gguf");
  ASSERT_TRUE(write_lora_adapter(path, *tiny.model, *lora).ok());

  auto file = engine::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ((*file)->architecture(), "llama");
  EXPECT_EQ((*file)->get_string("general.type"), "adapter");
  EXPECT_EQ((*file)->get_string("adapter.type"), "lora");
  EXPECT_EQ((*file)->find("adapter.lora.alpha")->as_double(), 6.0);
  ASSERT_EQ((*file)->tensors().size(), 8u);  // 2 layers x 2 modules x (A, B)
  const auto& a = (*file)->tensors()[0];
  EXPECT_EQ(a.name, "blk.0.attn_v.weight.lora_a");
  EXPECT_EQ(a.dims, (std::vector<uint64_t>{32, 3}));  // ne = [in, rank]
  const auto& b = (*file)->tensors()[1];
  EXPECT_EQ(b.name, "blk.0.attn_v.weight.lora_b");
  EXPECT_EQ(b.dims, (std::vector<uint64_t>{3, 16}));  // ne = [rank, out]

  auto back = read_lora_adapter(**file, *tiny.model);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->config().rank, 3);
  EXPECT_EQ(back->config().alpha, 6.0f);
  EXPECT_EQ(back->config().modules, (std::vector<LoraModule>{LoraModule::kV, LoraModule::kDown}));
  ASSERT_EQ(back->adapters().size(), lora->adapters().size());
  for (size_t i = 0; i < back->adapters().size(); ++i) {
    EXPECT_EQ(back->adapters()[i].a, lora->adapters()[i].a);
    EXPECT_EQ(back->adapters()[i].b, lora->adapters()[i].b);
  }

  // Another architecture's model refuses it.
  const auto qwen = testing::make_tiny_model({.architecture = "qwen2"});
  EXPECT_EQ(read_lora_adapter(**file, *qwen.model).status().code(), ErrorCode::kInvalidArgument);
  // A model of another shape too.
  const auto wider = testing::make_tiny_model({.feed_forward = 96});
  EXPECT_EQ(read_lora_adapter(**file, *wider.model).status().code(), ErrorCode::kInvalidArgument);
  // A model file is not an adapter.
  EXPECT_EQ(read_lora_adapter(*tiny.file, *tiny.model).status().code(), ErrorCode::kInvalidArgument);
}

TEST(LoraAdapterGguf, RefusesHalfPairsAndPartialLayers) {
  const auto tiny = testing::make_tiny_model({});
  keel::testing::TempDir dir;
  const std::vector<float> a(2 * 32, 0.1f), b(16 * 2, 0.2f);
  const auto bytes = [](const std::vector<float>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
  };
  const auto write = [&](const std::string& name, bool with_b, bool both_layers) {
    engine::GgufWriter w;
    EXPECT_TRUE(w.add_string("general.architecture", "llama").ok());
    EXPECT_TRUE(w.add_string("general.type", "adapter").ok());
    EXPECT_TRUE(w.add_string("adapter.type", "lora").ok());
    EXPECT_TRUE(w.add_float32("adapter.lora.alpha", 4).ok());
    for (int l = 0; l < (both_layers ? 2 : 1); ++l) {
      const std::string base = "blk." + std::to_string(l) + ".attn_k.weight";
      EXPECT_TRUE(w.add_tensor(base + ".lora_a", {32, 2}, 0, bytes(a)).ok());
      if (with_b) {
        EXPECT_TRUE(w.add_tensor(base + ".lora_b", {2, 16}, 0, bytes(b)).ok());
      }
    }
    EXPECT_TRUE(w.write(dir.file(name)).ok());
    auto file = engine::GgufFile::open(dir.file(name));
    EXPECT_TRUE(file.ok());
    return read_lora_adapter(**file, *tiny.model).status();
  };
  EXPECT_TRUE(write("ok.gguf", true, true).ok());
  EXPECT_EQ(write("half.gguf", false, true).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(write("partial.gguf", true, false).code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::train
