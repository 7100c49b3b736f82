// What the generic decoder (model.h, forward.h) needs to know about one model family:
// the GGUF tensor names, where its hyperparameters live, and its options (RoPE style,
// biases, extra norms, activation, sliding-window layers, embedding scale). Adding a
// family that fits the pre-norm RMSNorm / attention / gated-FFN decoder is one small
// description file (llama_, qwen2_, gemma3_architecture.cpp); a caller must look a
// family up by the exact `general.architecture` string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::engine {

// How RoPE pairs a head's dimensions: kNormal rotates (0,1), (2,3), ... (llama.cpp's
// LLAMA_ROPE_TYPE_NORM, used for LLM_ARCH_LLAMA, whose converter permutes attn_q / attn_k
// rows to suit); kNeox rotates (i, i + n_rot/2).
enum class RopeStyle { kNormal, kNeox };

// The gate's activation in the gated feed-forward block down(act(gate(x)) * up(x)):
// SiLU (SwiGLU: llama, qwen2) or GELU with the tanh approximation (GeGLU: gemma).
enum class FfnActivation { kSilu, kGeluTanh };

struct ArchitectureDescription {
  std::string name;  // general.architecture, also the prefix of its metadata keys
  RopeStyle rope_style = RopeStyle::kNormal;
  // A model without `output` uses `token_embedding` as its output matrix.
  bool output_may_be_tied = true;
  FfnActivation ffn_activation = FfnActivation::kSilu;
  // Token embeddings are multiplied by sqrt(embedding_length) (gemma).
  bool scale_embedding = false;
  // Biases of q, k and v: required (qwen2), or used when the file has them (llama).
  bool requires_qkv_bias = false;
  // Per-head RMSNorm of q and k before RoPE, and RMSNorm of the attention and FFN
  // outputs before the residual add (gemma3).
  bool has_qk_norm = false;
  bool has_post_norms = false;
  // Sliding-window attention: with a period p > 0, layer l attends to the last
  // {arch}.attention.sliding_window positions unless l % p == p - 1 (gemma3: 6), and
  // those layers use RoPE base swa_rope_freq_base (0: the model's) without scaling.
  int64_t sliding_window_period = 0;
  float swa_rope_freq_base = 0;

  // Whole-model tensors.
  std::string token_embedding = "token_embd.weight";
  std::string output_norm = "output_norm.weight";
  std::string output = "output.weight";
  // Per-layer tensors: "{prefix}{layer}.{suffix}".
  std::string layer_prefix = "blk.";
  std::string attention_norm = "attn_norm.weight";
  std::string attention_q = "attn_q.weight";
  std::string attention_k = "attn_k.weight";
  std::string attention_v = "attn_v.weight";
  std::string attention_output = "attn_output.weight";
  std::string ffn_norm = "ffn_norm.weight";
  std::string ffn_gate = "ffn_gate.weight";
  std::string ffn_up = "ffn_up.weight";
  std::string ffn_down = "ffn_down.weight";
  // Optional or family-specific per-layer tensors (see the flags above).
  std::string attention_q_bias = "attn_q.bias";
  std::string attention_k_bias = "attn_k.bias";
  std::string attention_v_bias = "attn_v.bias";
  std::string attention_q_norm = "attn_q_norm.weight";
  std::string attention_k_norm = "attn_k_norm.weight";
  std::string post_attention_norm = "post_attention_norm.weight";
  std::string post_ffn_norm = "post_ffw_norm.weight";
  // Llama 3.1-style per-dimension RoPE frequency divisors ([rope_dimension / 2]), used
  // when the file has the tensor.
  std::string rope_frequency_factors = "rope_freqs.weight";

  std::string layer_tensor(int64_t layer, const std::string& suffix) const {
    return layer_prefix + std::to_string(layer) + "." + suffix;
  }
  // "{name}.{key}", e.g. "llama.block_count".
  std::string metadata_key(std::string_view key) const { return name + "." + std::string(key); }
};

// Each family's description (one per *_architecture.cpp file).
const ArchitectureDescription& llama_architecture();
const ArchitectureDescription& qwen2_architecture();
const ArchitectureDescription& gemma3_architecture();

// The description for general.architecture == name, or nullptr when unsupported.
const ArchitectureDescription* find_architecture(std::string_view name);
// The names find_architecture accepts, for error messages.
std::vector<std::string> supported_architectures();

}  // namespace keel::engine
