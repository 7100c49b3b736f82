#include <gtest/gtest.h>

#include <cstring>

#include "keel/engine/ggml_types.h"
#include "keel/engine/gguf.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

// Builds GGUF images byte by byte, so tests can write valid and hostile files.
class GgufBuilder {
 public:
  GgufBuilder& u32(uint32_t v) { return raw(&v, 4); }
  GgufBuilder& u64(uint64_t v) { return raw(&v, 8); }
  GgufBuilder& str(const std::string& s) {
    u64(s.size());
    bytes_ += s;
    return *this;
  }
  GgufBuilder& raw(const void* p, size_t n) {
    bytes_.append(static_cast<const char*>(p), n);
    return *this;
  }
  GgufBuilder& header(uint32_t version, uint64_t tensors, uint64_t kvs) {
    bytes_ += "GGUF";
    return u32(version).u64(tensors).u64(kvs);
  }
  GgufBuilder& pad(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back('\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

Result<std::unique_ptr<GgufFile>> parse(const std::string& s) {
  return GgufFile::parse(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// A v3 file with every metadata type, a nested array and two tensors (F32, Q8_0).
std::string full_file() {
  GgufBuilder b;
  b.header(3, 2, 10);
  b.str("general.architecture").u32(8).str("llama");
  b.str("general.alignment").u32(4).u32(64);
  b.str("u8").u32(0).raw("\x07", 1);
  b.str("i16").u32(3);
  int16_t i16 = -300;
  b.raw(&i16, 2);
  b.str("f32").u32(6);
  float f = 0.5f;
  b.raw(&f, 4);
  b.str("flag").u32(7).raw("\x01", 1);
  b.str("i64").u32(11).u64(static_cast<uint64_t>(-5LL));
  b.str("f64").u32(12);
  double d = 2.25;
  b.raw(&d, 8);
  b.str("tokens").u32(9).u32(8).u64(3).str("a").str("b").str("\xe6\xa8\xa1");
  b.str("nested").u32(9).u32(9).u64(1).u32(4).u64(2).u32(1).u32(2);
  b.str("tok_embd").u32(2).u64(64).u64(2).u32(0).u64(0);      // F32 64x2 = 512 bytes
  b.str("blk.0.attn").u32(1).u64(64).u32(8).u64(512);          // Q8_0 64 = 2 blocks * 34 = 68 bytes
  b.pad(64);
  std::string data(512 + 68, '\x11');
  b.raw(data.data(), data.size());
  return b.bytes();
}

TEST(Gguf, ParsesEveryMetadataTypeAndTheTensorTable) {
  std::string file = full_file();
  auto g = parse(file);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->version(), 3u);
  EXPECT_EQ((*g)->architecture(), "llama");
  EXPECT_EQ((*g)->alignment(), 64u);
  EXPECT_EQ((*g)->metadata().size(), 10u);
  EXPECT_EQ((*g)->get_int("u8"), 7);
  EXPECT_EQ((*g)->get_int("i16"), -300);
  EXPECT_EQ((*g)->find("f32")->as_double(), 0.5);
  EXPECT_EQ(std::get<bool>((*g)->find("flag")->data), true);
  EXPECT_EQ((*g)->get_int("i64"), -5);
  EXPECT_EQ((*g)->find("f64")->as_double(), 2.25);
  auto tokens = std::get<std::shared_ptr<GgufArray>>((*g)->find("tokens")->data);
  ASSERT_EQ(tokens->values.size(), 3u);
  EXPECT_EQ(tokens->values[2].as_string(), "\xe6\xa8\xa1");
  auto nested = std::get<std::shared_ptr<GgufArray>>((*g)->find("nested")->data);
  ASSERT_EQ(nested->values.size(), 1u);
  auto inner = std::get<std::shared_ptr<GgufArray>>(nested->values[0].data);
  EXPECT_EQ(inner->values[1].as_int(), 2);
  ASSERT_EQ((*g)->tensors().size(), 2u);
  const auto& t1 = (*g)->tensors()[1];
  EXPECT_EQ(t1.name, "blk.0.attn");
  EXPECT_EQ(t1.size_bytes, 68u);
  EXPECT_EQ((*g)->parameter_count(), 64u * 2 + 64);
  EXPECT_EQ((*g)->data_offset() % 64, 0u);
  EXPECT_EQ(*(*g)->tensor_data(t1), 0x11);
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  std::string file = full_file();
  for (size_t n = 0; n < file.size(); ++n) {
    auto g = parse(file.substr(0, n));
    ASSERT_FALSE(g.ok()) << "a file cut at " << n << " bytes was accepted";
    EXPECT_EQ(g.status().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(Gguf, RandomByteFlipsNeverCrash) {
  std::string file = full_file();
  uint32_t seed = 12345;
  for (int i = 0; i < 5000; ++i) {
    std::string copy = file;
    for (int k = 0; k < 3; ++k) {
      seed = seed * 1664525u + 1013904223u;
      copy[seed % copy.size()] = static_cast<char>(seed >> 24);
    }
    auto g = parse(copy);  // either parses or fails cleanly; ASan catches out-of-bounds reads
    if (g.ok()) {
      for (const auto& t : (*g)->tensors()) EXPECT_LE((*g)->data_offset() + t.offset + t.size_bytes, copy.size());
    }
  }
}

TEST(Gguf, HostileCountsAreRejectedBeforeAllocating) {
  {
    GgufBuilder b;
    b.header(3, 0, 1).str("big").u32(9).u32(8).u64(uint64_t{1} << 60);
    auto g = parse(b.bytes());
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("more than the file can hold"), std::string::npos) << g.status().message();
  }
  {
    GgufBuilder b;
    b.header(3, 0, 1).u64(uint64_t{1} << 62);  // key length
    EXPECT_FALSE(parse(b.bytes()).ok());
  }
  {
    GgufBuilder b;
    b.header(3, uint64_t{1} << 50, 0);
    EXPECT_FALSE(parse(b.bytes()).ok());
  }
  {
    GgufBuilder b;  // a tensor whose data lies past the end of the file
    b.header(3, 1, 0).str("w").u32(1).u64(1024).u32(0).u64(0).pad(32);
    auto g = parse(b.bytes());
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.status().message().find("truncated"), std::string::npos) << g.status().message();
  }
  {
    GgufBuilder b;  // dimensions whose product overflows
    b.header(3, 1, 0).str("w").u32(4).u64(uint64_t{1} << 40).u64(uint64_t{1} << 40).u64(2).u64(2).u32(0).u64(0);
    EXPECT_FALSE(parse(b.bytes()).ok());
  }
}

TEST(Gguf, WrongMagicVersionAndTypesAreNamed) {
  EXPECT_NE(parse("PK\x03\x04 not a model at all.......").status().message().find("not a GGUF file"), std::string::npos);
  GgufBuilder v1;
  v1.header(1, 0, 0);
  EXPECT_NE(parse(v1.bytes()).status().message().find("version 1"), std::string::npos);
  GgufBuilder bad_type;
  bad_type.header(3, 0, 1).str("k").u32(99);
  EXPECT_NE(parse(bad_type.bytes()).status().message().find("unknown value type"), std::string::npos);
  GgufBuilder bad_align;
  bad_align.header(3, 0, 1).str("general.alignment").u32(4).u32(48);
  EXPECT_NE(parse(bad_align.bytes()).status().message().find("power of two"), std::string::npos);
}

TEST(Gguf, ReadsVersion2Files) {
  GgufBuilder b;
  b.header(2, 0, 1).str("general.architecture").u32(8).str("qwen2");
  auto g = parse(b.bytes());
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->version(), 2u);
  EXPECT_EQ((*g)->architecture(), "qwen2");
}

TEST(Gguf, ReadsTheRealDefaultModel) {
  auto path = keel::testing::default_model_path();
  if (!path) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  auto g = GgufFile::open(*path);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ((*g)->architecture(), "llama");
  EXPECT_EQ((*g)->get_int("llama.block_count"), 30);
  EXPECT_EQ((*g)->get_int("llama.embedding_length"), 576);
  EXPECT_EQ((*g)->get_string("tokenizer.ggml.model"), "gpt2");
  // SmolLM2-135M: 134,515,008 parameters (embeddings tied to the output layer).
  EXPECT_EQ((*g)->parameter_count(), 134515008u);
  size_t q4_1 = 0;
  for (const auto& t : (*g)->tensors()) q4_1 += t.type == 3;
  EXPECT_GT(q4_1, 100u);
}

TEST(GgmlTypes, BlockLayoutsMatchGgml) {
  EXPECT_EQ(ggml_type_info(3)->type_size, 20u);   // Q4_1: 2 halves + 16 bytes
  EXPECT_EQ(ggml_type_info(12)->type_size, 144u); // Q4_K
  EXPECT_EQ(ggml_type_info(14)->type_size, 210u); // Q6_K
  EXPECT_EQ(ggml_type_info(30)->name, "BF16");
  EXPECT_FALSE(ggml_type_info(4).has_value());    // removed Q4_2
}

}  // namespace
}  // namespace keel::engine
