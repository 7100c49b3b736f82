#include "keel/engine/tensor_types.h"

#include <array>
#include <cstdlib>

namespace keel::engine {
namespace {

using T = GgmlType;

// vec_dot_type as ggml-cpu's type_traits_cpu table pairs them.
constexpr std::array<TensorTypeTraits, 13> kTraits = {{
    {T::kF32, "F32", 1, 4, T::kF32},
    {T::kF16, "F16", 1, 2, T::kF16},
    {T::kQ4_0, "Q4_0", kQuantBlock, sizeof(BlockQ4_0), T::kQ8_0},
    {T::kQ4_1, "Q4_1", kQuantBlock, sizeof(BlockQ4_1), T::kQ8_1},
    {T::kQ5_0, "Q5_0", kQuantBlock, sizeof(BlockQ5_0), T::kQ8_0},
    {T::kQ5_1, "Q5_1", kQuantBlock, sizeof(BlockQ5_1), T::kQ8_1},
    {T::kQ8_0, "Q8_0", kQuantBlock, sizeof(BlockQ8_0), T::kQ8_0},
    {T::kQ8_1, "Q8_1", kQuantBlock, sizeof(BlockQ8_1), T::kQ8_1},
    {T::kQ4_K, "Q4_K", kSuperBlock, sizeof(BlockQ4_K), T::kQ8_K},
    {T::kQ5_K, "Q5_K", kSuperBlock, sizeof(BlockQ5_K), T::kQ8_K},
    {T::kQ6_K, "Q6_K", kSuperBlock, sizeof(BlockQ6_K), T::kQ8_K},
    {T::kQ8_K, "Q8_K", kSuperBlock, sizeof(BlockQ8_K), T::kQ8_K},
    {T::kBF16, "BF16", 1, 2, T::kBF16},
}};

}  // namespace

std::optional<TensorTypeTraits> tensor_type_traits(uint32_t id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == id) return t;
  }
  return std::nullopt;
}

TensorTypeTraits tensor_type_traits(GgmlType type) {
  auto t = tensor_type_traits(static_cast<uint32_t>(type));
  if (!t) std::abort();  // a GgmlType value outside the enum: a bug in the caller
  return *t;
}

int64_t row_size_bytes(GgmlType type, int64_t n) {
  const TensorTypeTraits t = tensor_type_traits(type);
  return n / t.block_size * t.type_size;
}

}  // namespace keel::engine
