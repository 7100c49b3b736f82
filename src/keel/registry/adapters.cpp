#include "keel/registry/adapters.h"

namespace keel::registry {

bool is_lora_adapter(const ModelVersion& version) {
  const auto kind = version.metadata.find("kind");
  return kind != version.metadata.end() && kind->is_string() && kind->get<std::string>() == kLoraAdapterKind;
}

std::optional<std::string> adapter_base(const ModelVersion& version) {
  for (const KeyValueTag& tag : version.tags) {
    if (tag.key == "base_model" && !tag.value.empty()) return tag.value;
  }
  return std::nullopt;
}

}  // namespace keel::registry
