#include "keel/engine/model_architecture.h"

namespace keel::engine {
namespace {

// Every supported family; a new one adds its description function here.
const ArchitectureDescription* const* registry(size_t* count) {
  static const ArchitectureDescription* const kAll[] = {&llama_architecture(), &qwen2_architecture(),
                                                        &gemma3_architecture()};
  *count = sizeof(kAll) / sizeof(kAll[0]);
  return kAll;
}

}  // namespace

const ArchitectureDescription* find_architecture(std::string_view name) {
  size_t count = 0;
  const auto* all = registry(&count);
  for (size_t i = 0; i < count; ++i) {
    if (all[i]->name == name) return all[i];
  }
  return nullptr;
}

std::vector<std::string> supported_architectures() {
  size_t count = 0;
  const auto* all = registry(&count);
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) names.push_back(all[i]->name);
  return names;
}

}  // namespace keel::engine
