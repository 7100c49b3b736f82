// Tiny random-weight llama-family models for the trainer's tests, written with the
// engine's GgufWriter into a temporary file and loaded back with Model::load. Every
// weight is a pure function of (tensor name, element index) through splitmix64
// (pseudo_uniform below), so tests/reference/make_lora_fixtures.py computes the same
// model without reading the file.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/engine/gguf_writer.h"
#include "keel/engine/model.h"
#include "keel/engine/quant.h"
#include "support/test_support.h"

namespace keel::train::testing {

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// FNV-1a of a name: the per-tensor stream.
inline uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Uniform in [-1, 1) for element i of the named tensor.
inline float pseudo_uniform(const std::string& name, uint64_t i) {
  const uint64_t h = splitmix64(name_hash(name) ^ splitmix64(i));
  return static_cast<float>(static_cast<double>(h >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

struct TinyModelSpec {
  std::string architecture = "llama";  // "llama" (normal RoPE) or "qwen2" (NeoX, q/k/v biases)
  int64_t vocab = 48;
  int64_t embedding = 32;
  int64_t feed_forward = 64;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t context = 64;
  float weight_scale = 0.3f;  // matrices are U(-scale, scale)
  bool tied_output = true;
  engine::GgmlType matrix_type = engine::GgmlType::kF32;  // of the layer matrices
};

// A written and loaded tiny model; the file lives as long as this object.
struct TinyModel {
  std::unique_ptr<keel::testing::TempDir> dir;
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Model> model;
};

// Values of a tensor of `count` elements: matrices U(-scale, scale), norms 1 + 0.2 U.
inline std::vector<float> tiny_tensor_values(const std::string& name, int64_t count, float scale, bool norm) {
  std::vector<float> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const float u = pseudo_uniform(name, static_cast<uint64_t>(i));
    v[static_cast<size_t>(i)] = norm ? 1.0f + 0.2f * u : scale * u;
  }
  return v;
}

inline TinyModel make_tiny_model(const TinyModelSpec& s) {
  TinyModel out;
  out.dir = std::make_unique<keel::testing::TempDir>();
  const std::string path = out.dir->file("tiny.gguf");
  const std::string a = s.architecture;
  const int64_t hd = s.embedding / s.heads;
  engine::GgufWriter w;
  auto check = [](const Status& st) {
    if (!st.ok()) throw std::runtime_error(st.to_string());
  };
  check(w.add_string("general.architecture", a));
  check(w.add_uint32(a + ".block_count", static_cast<uint32_t>(s.layers)));
  check(w.add_uint32(a + ".embedding_length", static_cast<uint32_t>(s.embedding)));
  check(w.add_uint32(a + ".feed_forward_length", static_cast<uint32_t>(s.feed_forward)));
  check(w.add_uint32(a + ".attention.head_count", static_cast<uint32_t>(s.heads)));
  check(w.add_uint32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.kv_heads)));
  check(w.add_uint32(a + ".context_length", static_cast<uint32_t>(s.context)));
  check(w.add_float32(a + ".attention.layer_norm_rms_epsilon", 1e-5f));
  check(w.add_float32(a + ".rope.freq_base", 10000.0f));

  // Bytes of every tensor, kept alive until write().
  auto storage = std::make_shared<std::vector<std::vector<uint8_t>>>();
  auto add = [&](const std::string& name, std::vector<uint64_t> dims, bool norm, engine::GgmlType type) {
    int64_t count = 1;
    for (uint64_t d : dims) count *= static_cast<int64_t>(d);
    const auto values = tiny_tensor_values(name, count, s.weight_scale, norm);
    std::vector<uint8_t> bytes;
    if (type == engine::GgmlType::kF32) {
      bytes.resize(values.size() * sizeof(float));
      std::memcpy(bytes.data(), values.data(), bytes.size());
    } else {
      const auto cols = static_cast<int64_t>(dims[0]);
      const int64_t rows = count / cols;
      const int64_t row_bytes = engine::row_size_bytes(type, cols);
      bytes.resize(static_cast<size_t>(rows * row_bytes));
      for (int64_t r = 0; r < rows; ++r)
        engine::quantize_row(type, values.data() + r * cols, bytes.data() + r * row_bytes, cols);
    }
    storage->push_back(std::move(bytes));
    check(w.add_tensor(name, dims, static_cast<uint32_t>(type), storage->back()));
  };
  const auto E = static_cast<uint64_t>(s.embedding), F = static_cast<uint64_t>(s.feed_forward),
             V = static_cast<uint64_t>(s.vocab), KV = static_cast<uint64_t>(s.kv_heads * hd);
  storage->reserve(static_cast<size_t>(4 + s.layers * 16));
  add("token_embd.weight", {E, V}, false, engine::GgmlType::kF32);
  add("output_norm.weight", {E}, true, engine::GgmlType::kF32);
  if (!s.tied_output) add("output.weight", {E, V}, false, s.matrix_type);
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {E}, true, engine::GgmlType::kF32);
    add(p + "attn_q.weight", {E, E}, false, s.matrix_type);
    add(p + "attn_k.weight", {E, KV}, false, s.matrix_type);
    add(p + "attn_v.weight", {E, KV}, false, s.matrix_type);
    if (a == "qwen2") {
      add(p + "attn_q.bias", {E}, false, engine::GgmlType::kF32);
      add(p + "attn_k.bias", {KV}, false, engine::GgmlType::kF32);
      add(p + "attn_v.bias", {KV}, false, engine::GgmlType::kF32);
    }
    add(p + "attn_output.weight", {E, E}, false, s.matrix_type);
    add(p + "ffn_norm.weight", {E}, true, engine::GgmlType::kF32);
    add(p + "ffn_gate.weight", {E, F}, false, s.matrix_type);
    add(p + "ffn_up.weight", {E, F}, false, s.matrix_type);
    add(p + "ffn_down.weight", {F, E}, false, s.matrix_type);
  }
  check(w.write(path));
  auto file = engine::GgufFile::open(path);
  if (!file.ok()) throw std::runtime_error(file.status().to_string());
  out.file = std::move(*file);
  auto model = engine::Model::load(*out.file);
  if (!model.ok()) throw std::runtime_error(model.status().to_string());
  out.model = std::move(*model);
  return out;
}

}  // namespace keel::train::testing
