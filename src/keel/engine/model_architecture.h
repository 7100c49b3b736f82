// What the generic decoder (model.h, forward.h) needs to know about one model family:
// the GGUF tensor names, where its hyperparameters live, and its options (RoPE style,
// whether the output matrix may be tied to the token embedding). Adding a family that
// fits the pre-norm RMSNorm / attention / SwiGLU decoder is one small description file
// (llama_architecture.cpp is the first); a caller must look a family up by the exact
// `general.architecture` string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::engine {

// How RoPE pairs a head's dimensions: kNormal rotates (0,1), (2,3), ... (llama.cpp's
// LLAMA_ROPE_TYPE_NORM, used for LLM_ARCH_LLAMA, whose converter permutes attn_q / attn_k
// rows to suit); kNeox rotates (i, i + n_rot/2).
enum class RopeStyle { kNormal, kNeox };

struct ArchitectureDescription {
  std::string name;  // general.architecture, also the prefix of its metadata keys
  RopeStyle rope_style = RopeStyle::kNormal;
  // A model without `output` uses `token_embedding` as its output matrix.
  bool output_may_be_tied = true;

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

  std::string layer_tensor(int64_t layer, const std::string& suffix) const {
    return layer_prefix + std::to_string(layer) + "." + suffix;
  }
  // "{name}.{key}", e.g. "llama.block_count".
  std::string metadata_key(std::string_view key) const { return name + "." + std::string(key); }
};

// Each family's description (one per *_architecture.cpp file).
const ArchitectureDescription& llama_architecture();

// The description for general.architecture == name, or nullptr when unsupported.
const ArchitectureDescription* find_architecture(std::string_view name);
// The names find_architecture accepts, for error messages.
std::vector<std::string> supported_architectures();

}  // namespace keel::engine
