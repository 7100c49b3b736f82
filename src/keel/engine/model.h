// A decoder-only transformer's hyperparameters and weights, loaded from a GgufFile
// for an architecture described in model_architecture.h. Weights are used in place:
// every WeightMatrix points into the GgufFile's mapping, so the GgufFile must outlive
// the Model. Loading checks every tensor's presence, type and shape, and reports an
// unsupported architecture, a missing tensor or a wrong shape as a Result error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/engine/model_architecture.h"
#include "keel/engine/tensor_types.h"
#include "keel/util/status.h"

namespace keel::engine {

struct ModelConfig {
  std::string architecture;
  int64_t layer_count = 0;        // {arch}.block_count
  int64_t embedding_length = 0;   // {arch}.embedding_length
  int64_t feed_forward_length = 0;
  int64_t head_count = 0;
  int64_t head_count_kv = 0;      // defaults to head_count
  int64_t head_dim = 0;           // {arch}.attention.key_length, default embedding_length / head_count
  int64_t rope_dimension = 0;     // {arch}.rope.dimension_count, defaults to head_dim
  int64_t context_length = 0;     // the training context
  int64_t vocab_size = 0;         // rows of the token embedding
  float rope_freq_base = 10000.0f;
  // Linear RoPE scaling ({arch}.rope.scaling.type == "linear"): positions times this.
  float rope_freq_scale = 1.0f;
  float rms_norm_epsilon = 1e-5f;
  int64_t sliding_window = 0;     // {arch}.attention.sliding_window; 0: none
};

// A row-major matrix of `rows` rows of `cols` elements of `type`, borrowed from the
// mapping. ggml order: dims[0] == cols, dims[1] == rows.
struct WeightMatrix {
  std::string name;
  GgmlType type = GgmlType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
  const uint8_t* data = nullptr;
  const uint8_t* row(int64_t i) const { return data + i * row_bytes; }
};

struct LayerWeights {
  const float* attention_norm = nullptr;  // [embedding_length]
  WeightMatrix attention_q;               // [head_count * head_dim][embedding_length]
  WeightMatrix attention_k;               // [head_count_kv * head_dim][embedding_length]
  WeightMatrix attention_v;
  WeightMatrix attention_output;          // [embedding_length][head_count * head_dim]
  const float* attention_q_bias = nullptr;  // optional, [head_count * head_dim]
  const float* attention_k_bias = nullptr;  // optional, [head_count_kv * head_dim]
  const float* attention_v_bias = nullptr;
  const float* attention_q_norm = nullptr;  // optional, [head_dim] (gemma3)
  const float* attention_k_norm = nullptr;
  const float* post_attention_norm = nullptr;  // optional, [embedding_length] (gemma3)
  const float* ffn_norm = nullptr;
  const float* post_ffn_norm = nullptr;
  // Attends to the last config.sliding_window positions only, with the family's SWA
  // RoPE base (model_architecture.h).
  bool sliding_window = false;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  WeightMatrix ffn_gate;                  // [feed_forward_length][embedding_length]
  WeightMatrix ffn_up;
  WeightMatrix ffn_down;                  // [embedding_length][feed_forward_length]
};

class Model {
 public:
  // REQUIRES: `file` outlives the returned Model.
  static Result<std::unique_ptr<Model>> load(const GgufFile& file);

  const ModelConfig& config() const { return config_; }
  const ArchitectureDescription& architecture() const { return *architecture_; }
  const WeightMatrix& token_embedding() const { return token_embedding_; }
  const float* output_norm() const { return output_norm_; }
  // Llama 3.1-style RoPE frequency divisors [rope_dimension / 2], or nullptr.
  const float* rope_frequency_factors() const { return rope_frequency_factors_; }
  // The token embedding itself when the model ties its output.
  const WeightMatrix& output() const { return output_; }
  bool output_is_tied() const { return output_tied_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }

 private:
  Model() = default;

  ModelConfig config_;
  const ArchitectureDescription* architecture_ = nullptr;
  WeightMatrix token_embedding_;
  const float* output_norm_ = nullptr;
  const float* rope_frequency_factors_ = nullptr;
  WeightMatrix output_;
  bool output_tied_ = false;
  std::vector<LayerWeights> layers_;
};

}  // namespace keel::engine
