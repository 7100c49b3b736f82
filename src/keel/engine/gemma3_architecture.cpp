// gemma3 (Gemma 3 text models): NeoX-style RoPE, embeddings scaled by sqrt(dim), GeGLU
// (tanh GELU) feed-forward, per-head RMSNorm of q and k, RMSNorm of the attention and
// FFN outputs before each residual add, and five sliding-window layers (RoPE base
// 10000) for every global one (the model's RoPE base). GGUF's converter has already
// added Gemma's "+1" to every norm weight, so the norms are plain RMSNorm here. The
// output is tied to the token embedding. Attention scales by 1/sqrt(head_dim), as
// llama.cpp does for every size but 27B (query_pre_attn_scalar equals the head dim).
#include "keel/engine/model_architecture.h"

namespace keel::engine {

const ArchitectureDescription& gemma3_architecture() {
  static const ArchitectureDescription kGemma3 = [] {
    ArchitectureDescription d;
    d.name = "gemma3";
    d.rope_style = RopeStyle::kNeox;
    d.ffn_activation = FfnActivation::kGeluTanh;
    d.scale_embedding = true;
    d.has_qk_norm = true;
    d.has_post_norms = true;
    d.sliding_window_period = 6;
    d.swa_rope_freq_base = 10000.0f;
    return d;
  }();
  return kGemma3;
}

}  // namespace keel::engine
