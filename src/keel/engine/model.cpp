#include "keel/engine/model.h"

#include <string_view>
#include <unordered_map>

#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

// The tensor table by name, and the checks every weight goes through.
class TensorLookup {
 public:
  explicit TensorLookup(const GgufFile& file) : file_(file) {
    for (const auto& t : file.tensors()) by_name_.emplace(t.name, &t);
  }

  bool has(const std::string& name) const { return by_name_.count(name) != 0; }

  Result<WeightMatrix> matrix(const std::string& name, int64_t rows, int64_t cols) const {
    KEEL_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name));
    if (t->dims.size() != 2 || static_cast<int64_t>(t->dims[0]) != cols ||
        static_cast<int64_t>(t->dims[1]) != rows) {
      return invalid_argument("tensor " + name + " has shape " + shape_string(t->dims) + ", expected [" +
                              std::to_string(cols) + ", " + std::to_string(rows) + "]");
    }
    const auto traits = tensor_type_traits(t->type);
    if (!traits) return invalid_argument("tensor " + name + " has ggml type " + std::to_string(t->type) +
                                         ", which the engine has no kernels for");
    const GgmlType type = traits->type;
    Status shape = check_row_shape(type, cols);
    if (!shape.ok()) return shape.with_context("tensor " + name);
    const auto& vec_dot_kernels = quant_kernels()[type];
    const auto& activation_kernels = quant_kernels()[traits->vec_dot_type];
    if (vec_dot_kernels.vec_dot == nullptr || activation_kernels.quantize_row == nullptr) {
      return invalid_argument("tensor " + name + " has type " + std::string(traits->name) +
                              ", which has no matrix-vector kernel yet");
    }
    KEEL_ASSIGN_OR_RETURN(const uint8_t* data, bytes(*t));
    WeightMatrix m;
    m.name = name;
    m.type = type;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = row_size_bytes(type, cols);
    m.data = data;
    return m;
  }

  Result<const float*> vector(const std::string& name, int64_t length) const {
    KEEL_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name));
    if (t->dims.size() != 1 || static_cast<int64_t>(t->dims[0]) != length) {
      return invalid_argument("tensor " + name + " has shape " + shape_string(t->dims) + ", expected [" +
                              std::to_string(length) + "]");
    }
    if (t->type != static_cast<uint32_t>(GgmlType::kF32)) {
      return invalid_argument("tensor " + name + " must be F32, has ggml type " + std::to_string(t->type));
    }
    KEEL_ASSIGN_OR_RETURN(const uint8_t* data, bytes(*t));
    return reinterpret_cast<const float*>(data);
  }

  Result<const GgufTensorInfo*> find(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return not_found("model has no tensor " + name);
    return it->second;
  }

 private:
  Result<const uint8_t*> bytes(const GgufTensorInfo& t) const {
    const uint8_t* data = file_.tensor_data(t);
    const uint64_t available = file_.file_size() - std::min(file_.file_size(), file_.data_offset());
    if (data == nullptr || t.offset > available || t.size_bytes > available - t.offset) {
      return corrupt("tensor " + t.name + " lies outside the file (truncated?)");
    }
    if (reinterpret_cast<uintptr_t>(data) % 4 != 0) {
      return corrupt("tensor " + t.name + " is not 4-byte aligned");
    }
    return data;
  }

  static std::string shape_string(const std::vector<uint64_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }

  const GgufFile& file_;
  std::unordered_map<std::string, const GgufTensorInfo*> by_name_;
};

Result<int64_t> required_int(const GgufFile& file, const std::string& key) {
  auto v = file.get_int(key);
  if (!v) return invalid_argument("model metadata lacks integer " + key);
  if (*v <= 0) return invalid_argument("model metadata " + key + " must be positive, is " + std::to_string(*v));
  return *v;
}

float optional_float(const GgufFile& file, const std::string& key, float fallback) {
  const GgufValue* v = file.find(key);
  if (v == nullptr) return fallback;
  auto d = v->as_double();
  return d ? static_cast<float>(*d) : fallback;
}

Result<ModelConfig> read_config(const GgufFile& file, const ArchitectureDescription& arch) {
  ModelConfig c;
  c.architecture = arch.name;
  KEEL_ASSIGN_OR_RETURN(c.layer_count, required_int(file, arch.metadata_key("block_count")));
  KEEL_ASSIGN_OR_RETURN(c.embedding_length, required_int(file, arch.metadata_key("embedding_length")));
  KEEL_ASSIGN_OR_RETURN(c.feed_forward_length, required_int(file, arch.metadata_key("feed_forward_length")));
  KEEL_ASSIGN_OR_RETURN(c.head_count, required_int(file, arch.metadata_key("attention.head_count")));
  KEEL_ASSIGN_OR_RETURN(c.context_length, required_int(file, arch.metadata_key("context_length")));
  c.head_count_kv = file.get_int(arch.metadata_key("attention.head_count_kv")).value_or(c.head_count);
  if (c.head_count_kv <= 0 || c.head_count % c.head_count_kv != 0) {
    return invalid_argument("attention.head_count " + std::to_string(c.head_count) +
                            " is not a multiple of head_count_kv " + std::to_string(c.head_count_kv));
  }
  if (!file.find(arch.metadata_key("attention.key_length")) && c.embedding_length % c.head_count != 0) {
    return invalid_argument("embedding_length " + std::to_string(c.embedding_length) +
                            " is not a multiple of head_count " + std::to_string(c.head_count));
  }
  c.head_dim = file.get_int(arch.metadata_key("attention.key_length")).value_or(c.embedding_length / c.head_count);
  const int64_t value_length = file.get_int(arch.metadata_key("attention.value_length")).value_or(c.head_dim);
  if (c.head_dim <= 0 || value_length != c.head_dim) {
    return invalid_argument("attention.key_length " + std::to_string(c.head_dim) + " and value_length " +
                            std::to_string(value_length) + " must be equal and positive");
  }
  c.rope_dimension = file.get_int(arch.metadata_key("rope.dimension_count")).value_or(c.head_dim);
  if (c.rope_dimension <= 0 || c.rope_dimension > c.head_dim || c.rope_dimension % 2 != 0) {
    return invalid_argument("rope.dimension_count " + std::to_string(c.rope_dimension) +
                            " must be even and at most the head size " + std::to_string(c.head_dim));
  }
  c.rope_freq_base = optional_float(file, arch.metadata_key("rope.freq_base"), 10000.0f);
  c.rms_norm_epsilon = optional_float(file, arch.metadata_key("attention.layer_norm_rms_epsilon"), 1e-5f);
  if (!(c.rope_freq_base > 0) || !(c.rms_norm_epsilon >= 0)) {
    return invalid_argument("rope.freq_base must be positive and layer_norm_rms_epsilon not negative");
  }
  const std::string scaling_type = file.get_string(arch.metadata_key("rope.scaling.type")).value_or("");
  if (scaling_type == "linear") {
    const float factor = optional_float(file, arch.metadata_key("rope.scaling.factor"), 1.0f);
    if (!(factor > 0)) return invalid_argument("rope.scaling.factor must be positive");
    c.rope_freq_scale = 1.0f / factor;
  } else if (!scaling_type.empty() && scaling_type != "none") {
    return invalid_argument("unsupported rope.scaling.type \"" + scaling_type + "\" (supported: none, linear)");
  }
  if (arch.sliding_window_period > 0) {
    KEEL_ASSIGN_OR_RETURN(c.sliding_window, required_int(file, arch.metadata_key("attention.sliding_window")));
  }
  return c;
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const GgufFile& file) {
  const std::string arch_name = file.architecture();
  const ArchitectureDescription* arch = find_architecture(arch_name);
  if (arch == nullptr) {
    std::string supported;
    for (const auto& n : supported_architectures()) supported += (supported.empty() ? "" : ", ") + n;
    return invalid_argument("unsupported model architecture \"" + arch_name + "\" (supported: " + supported + ")");
  }
  std::unique_ptr<Model> model(new Model());
  model->architecture_ = arch;
  KEEL_ASSIGN_OR_RETURN(model->config_, read_config(file, *arch));
  ModelConfig& c = model->config_;

  const TensorLookup tensors(file);
  KEEL_ASSIGN_OR_RETURN(const GgufTensorInfo* embd, tensors.find(arch->token_embedding));
  if (embd->dims.size() != 2 || embd->dims[1] == 0) {
    return invalid_argument("tensor " + arch->token_embedding + " must be a 2-d matrix");
  }
  c.vocab_size = static_cast<int64_t>(embd->dims[1]);
  const int64_t d = c.embedding_length;
  const int64_t q_dim = c.head_count * c.head_dim;
  const int64_t kv_dim = c.head_count_kv * c.head_dim;
  KEEL_ASSIGN_OR_RETURN(model->token_embedding_, tensors.matrix(arch->token_embedding, c.vocab_size, d));
  if (quant_kernels()[model->token_embedding_.type].dequantize_row == nullptr) {
    return invalid_argument("token embedding type has no dequantizer");
  }
  KEEL_ASSIGN_OR_RETURN(model->output_norm_, tensors.vector(arch->output_norm, d));
  if (tensors.has(arch->rope_frequency_factors)) {
    KEEL_ASSIGN_OR_RETURN(model->rope_frequency_factors_,
                          tensors.vector(arch->rope_frequency_factors, c.rope_dimension / 2));
  }
  if (tensors.has(arch->output) || !arch->output_may_be_tied) {
    KEEL_ASSIGN_OR_RETURN(model->output_, tensors.matrix(arch->output, c.vocab_size, d));
  } else {
    model->output_ = model->token_embedding_;
    model->output_tied_ = true;
  }

  model->layers_.resize(static_cast<size_t>(c.layer_count));
  for (int64_t l = 0; l < c.layer_count; ++l) {
    LayerWeights& w = model->layers_[static_cast<size_t>(l)];
    auto name = [&](const std::string& suffix) { return arch->layer_tensor(l, suffix); };
    KEEL_ASSIGN_OR_RETURN(w.attention_norm, tensors.vector(name(arch->attention_norm), d));
    KEEL_ASSIGN_OR_RETURN(w.attention_q, tensors.matrix(name(arch->attention_q), q_dim, d));
    KEEL_ASSIGN_OR_RETURN(w.attention_k, tensors.matrix(name(arch->attention_k), kv_dim, d));
    KEEL_ASSIGN_OR_RETURN(w.attention_v, tensors.matrix(name(arch->attention_v), kv_dim, d));
    KEEL_ASSIGN_OR_RETURN(w.attention_output, tensors.matrix(name(arch->attention_output), d, q_dim));
    KEEL_ASSIGN_OR_RETURN(w.ffn_norm, tensors.vector(name(arch->ffn_norm), d));
    if (arch->requires_qkv_bias || tensors.has(name(arch->attention_q_bias))) {
      KEEL_ASSIGN_OR_RETURN(w.attention_q_bias, tensors.vector(name(arch->attention_q_bias), q_dim));
      KEEL_ASSIGN_OR_RETURN(w.attention_k_bias, tensors.vector(name(arch->attention_k_bias), kv_dim));
      KEEL_ASSIGN_OR_RETURN(w.attention_v_bias, tensors.vector(name(arch->attention_v_bias), kv_dim));
    }
    if (arch->has_qk_norm) {
      KEEL_ASSIGN_OR_RETURN(w.attention_q_norm, tensors.vector(name(arch->attention_q_norm), c.head_dim));
      KEEL_ASSIGN_OR_RETURN(w.attention_k_norm, tensors.vector(name(arch->attention_k_norm), c.head_dim));
    }
    if (arch->has_post_norms) {
      KEEL_ASSIGN_OR_RETURN(w.post_attention_norm, tensors.vector(name(arch->post_attention_norm), d));
      KEEL_ASSIGN_OR_RETURN(w.post_ffn_norm, tensors.vector(name(arch->post_ffn_norm), d));
    }
    const int64_t period = arch->sliding_window_period;
    w.sliding_window = period > 0 && l % period != period - 1;
    w.rope_freq_base = w.sliding_window && arch->swa_rope_freq_base > 0 ? arch->swa_rope_freq_base : c.rope_freq_base;
    w.rope_freq_scale = w.sliding_window ? 1.0f : c.rope_freq_scale;
    KEEL_ASSIGN_OR_RETURN(w.ffn_gate, tensors.matrix(name(arch->ffn_gate), c.feed_forward_length, d));
    KEEL_ASSIGN_OR_RETURN(w.ffn_up, tensors.matrix(name(arch->ffn_up), c.feed_forward_length, d));
    KEEL_ASSIGN_OR_RETURN(w.ffn_down, tensors.matrix(name(arch->ffn_down), d, c.feed_forward_length));
  }
  return model;
}

}  // namespace keel::engine
