// The tensor element types of the GGML / GGUF ecosystem, with their block layout:
// a block of `block_size` elements takes `type_size` bytes. Numbers mirror ggml's
// type table (ggml.c, `type_traits`), which GGUF files store by id.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace keel::engine {

struct GgmlTypeInfo {
  uint32_t id;
  std::string_view name;
  uint32_t block_size;  // elements per block
  uint32_t type_size;   // bytes per block
};

// nullopt for ids that no known ggml version defines (or that were removed).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);

}  // namespace keel::engine
