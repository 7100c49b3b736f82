// llama (and models converted as llama: SmolLM2, TinyLlama, Mistral 7B): GGUF's default
// tensor names, normal RoPE, optionally tied output.
#include "keel/engine/model_architecture.h"

namespace keel::engine {

const ArchitectureDescription& llama_architecture() {
  static const ArchitectureDescription kLlama = [] {
    ArchitectureDescription d;
    d.name = "llama";
    d.rope_style = RopeStyle::kNormal;
    d.output_may_be_tied = true;
    return d;
  }();
  return kLlama;
}

}  // namespace keel::engine
