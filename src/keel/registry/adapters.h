// LoRA adapters as model versions: an adapter file (GGUF, general.type "adapter", as
// `keel train sft` writes it) registers like a model, with metadata kind "lora_adapter"
// and the version tag base_model naming the base it was trained on (NAME@VERSION of a
// registered model, or a GGUF file's path). Serving and evaluation run such a version as
// its base with the adapter folded in.
#pragma once

#include <optional>
#include <string>

#include "keel/registry/model_registry.h"

namespace keel::registry {

inline constexpr const char* kLoraAdapterKind = "lora_adapter";

bool is_lora_adapter(const ModelVersion& version);

// The base an adapter version was trained on (its base_model tag), or nullopt.
std::optional<std::string> adapter_base(const ModelVersion& version);

}  // namespace keel::registry
