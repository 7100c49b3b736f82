#include "keel/engine/tensor_types.h"

#include <gtest/gtest.h>

#include "keel/engine/ggml_types.h"
#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

constexpr GgmlType kAllTypes[] = {
    GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_0, GgmlType::kQ4_1,
    GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ8_1, GgmlType::kQ4_K,
    GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_K,
};

TEST(TensorTypes, BlockLayoutsAgreeWithTheGgmlTypeTable) {
  for (GgmlType type : kAllTypes) {
    const TensorTypeTraits t = tensor_type_traits(type);
    const auto info = ggml_type_info(static_cast<uint32_t>(type));
    ASSERT_TRUE(info.has_value()) << t.name;
    EXPECT_EQ(t.name, info->name);
    EXPECT_EQ(t.block_size, info->block_size) << t.name;
    EXPECT_EQ(t.type_size, info->type_size) << t.name;
  }
  EXPECT_FALSE(tensor_type_traits(10u).has_value());  // Q2_K: no kernels (yet)
  EXPECT_EQ(row_size_bytes(GgmlType::kQ4_1, 576), 18 * 20);
  EXPECT_EQ(row_size_bytes(GgmlType::kQ6_K, 512), 2 * 210);
  EXPECT_EQ(row_size_bytes(GgmlType::kF16, 7), 14);
}

// ggml-cpu's type_traits_cpu pairs weights with these activation types; the pairing
// fixes the numerics of every matrix product, so it is spelled out here.
TEST(TensorTypes, VecDotTypesAreGgmls) {
  using G = GgmlType;
  const std::pair<G, G> pairs[] = {
      {G::kF32, G::kF32},   {G::kF16, G::kF16},   {G::kBF16, G::kBF16}, {G::kQ4_0, G::kQ8_0},
      {G::kQ4_1, G::kQ8_1}, {G::kQ5_0, G::kQ8_0}, {G::kQ5_1, G::kQ8_1}, {G::kQ8_0, G::kQ8_0},
      {G::kQ4_K, G::kQ8_K}, {G::kQ5_K, G::kQ8_K}, {G::kQ6_K, G::kQ8_K},
  };
  for (const auto& [weight, activation] : pairs) {
    EXPECT_EQ(tensor_type_traits(weight).vec_dot_type, activation) << tensor_type_traits(weight).name;
  }
}

TEST(TensorTypes, RowShapesAreCheckedAsValues) {
  EXPECT_TRUE(check_row_shape(GgmlType::kQ4_K, 512).ok());
  const Status bad = check_row_shape(GgmlType::kQ4_K, 300);
  EXPECT_EQ(bad.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("Q4_K row of 300 elements"), std::string::npos) << bad.message();
  EXPECT_FALSE(check_row_shape(GgmlType::kQ8_0, 0).ok());
  EXPECT_FALSE(check_row_shape(static_cast<GgmlType>(11), 256).ok());  // Q3_K
  EXPECT_TRUE(check_row_shape(GgmlType::kF16, 5).ok());
}

}  // namespace
}  // namespace keel::engine
