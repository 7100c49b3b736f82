// qwen2 (Qwen 2 and 2.5): llama's tensor names plus biases on q, k and v, and NeoX-style
// RoPE (llama.cpp's LLAMA_ROPE_TYPE_NEOX for LLM_ARCH_QWEN2); the small sizes tie the
// output to the token embedding.
#include "keel/engine/model_architecture.h"

namespace keel::engine {

const ArchitectureDescription& qwen2_architecture() {
  static const ArchitectureDescription kQwen2 = [] {
    ArchitectureDescription d;
    d.name = "qwen2";
    d.rope_style = RopeStyle::kNeox;
    d.requires_qkv_bias = true;
    return d;
  }();
  return kQwen2;
}

}  // namespace keel::engine
