#include "keel/engine/float16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}
float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

TEST(Float16, KnownValuesRoundTrip) {
  struct Case {
    float value;
    Fp16Bits half;
  };
  const Case cases[] = {
      {0.0f, 0x0000},      {-0.0f, 0x8000},    {1.0f, 0x3c00},       {-2.0f, 0xc000},           {65504.0f, 0x7bff},
      {0x1p-14f, 0x0400},  {0x1p-24f, 0x0001}, {0x3ffp-24f, 0x03ff}, {0.333251953125f, 0x3555}, {INFINITY, 0x7c00},
      {-INFINITY, 0xfc00},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(fp32_to_fp16(c.value), c.half) << c.value;
    EXPECT_EQ(bits(fp16_to_fp32(c.half)), bits(c.value)) << c.value;
  }
}

TEST(Float16, RoundsToNearestEvenWithSubnormalsAndOverflow) {
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);  // below the halfway point
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);  // halfway to 65536: to even = infinity
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);      // tie, down to even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, up to even
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);             // half the smallest subnormal: to even
  EXPECT_EQ(fp32_to_fp16(3 * 0x1p-26f), 0x0001);         // just above that half
  EXPECT_EQ(fp32_to_fp16(3 * 0x1p-25f), 0x0002);         // 1.5 subnormals: tie to even
  EXPECT_EQ(fp32_to_fp16(0x1p-14f - 0x1p-26f), 0x0400);  // rounds up into the normals
  EXPECT_EQ(fp32_to_fp16(from_bits(1)), 0x0000);         // float subnormal
}

TEST(Float16, NanStaysNanAndQuiet) {
  EXPECT_EQ(fp32_to_fp16(from_bits(0x7f800001)), 0x7e00);  // signalling: quieted
  EXPECT_EQ(fp32_to_fp16(from_bits(0xffc12345)), 0xfe09);  // payload's top bits kept
  EXPECT_EQ(bits(fp16_to_fp32(0x7c01)), 0x7fc02000u);
  EXPECT_EQ(bits(fp16_to_fp32(0xfe00)), 0xffc00000u);
}

TEST(Float16, EveryHalfWidensExactlyAndNarrowsBack) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<Fp16Bits>(h));
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    if (nan) {
      ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << h;
    // The widening is exact: the value is what the bits say.
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    if (exponent != 0x1f) {
      const double expected = (exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25)) *
                              ((h & 0x8000) ? -1 : 1);
      ASSERT_EQ(static_cast<double>(f), expected) << h;
    }
  }
}

// The F16C path (when the CPU has it) against the scalar reference: every half, and a
// spread of float bit patterns with every rounding situation.
TEST(Float16, F16cRowConversionsMatchTheScalarReference) {
  const QuantKernelTable* simd = avx2_quant_kernels();
  if (simd == nullptr) GTEST_SKIP() << "no AVX2/F16C on this CPU";
  const TypeKernels& k = (*simd)[GgmlType::kF16];
  ASSERT_TRUE(k.simd_dequantize && k.simd_quantize);

  std::vector<Fp16Bits> halves(0x10000);
  for (uint32_t h = 0; h < 0x10000; ++h) halves[h] = static_cast<Fp16Bits>(h);
  std::vector<float> wide(halves.size()), wide_ref(halves.size());
  k.dequantize_row(halves.data(), wide.data(), static_cast<int64_t>(halves.size()));
  scalar_quant_kernels()[GgmlType::kF16].dequantize_row(halves.data(), wide_ref.data(),
                                                        static_cast<int64_t>(halves.size()));
  for (size_t i = 0; i < halves.size(); ++i) ASSERT_EQ(bits(wide[i]), bits(wide_ref[i])) << "half " << i;

  // Floats: 2^20 random bit patterns plus every float whose low 13 bits sit at or next to
  // the rounding boundary, over all exponents.
  std::vector<float> floats;
  std::mt19937 rng(7);
  for (int i = 0; i < (1 << 20); ++i) floats.push_back(from_bits(rng()));
  for (uint32_t high = 0; high < (1u << 19); high += 7) {
    for (uint32_t low : {0x0000u, 0x0fffu, 0x1000u, 0x1001u, 0x1fffu}) floats.push_back(from_bits((high << 13) | low));
  }
  floats.resize(floats.size() / 8 * 8 + 5);  // and a tail that is not a multiple of 8
  std::vector<Fp16Bits> narrow(floats.size()), narrow_ref(floats.size());
  k.quantize_row(floats.data(), narrow.data(), static_cast<int64_t>(floats.size()));
  scalar_quant_kernels()[GgmlType::kF16].quantize_row(floats.data(), narrow_ref.data(),
                                                      static_cast<int64_t>(floats.size()));
  for (size_t i = 0; i < floats.size(); ++i) {
    ASSERT_EQ(narrow[i], narrow_ref[i]) << "float bits 0x" << std::hex << bits(floats[i]);
  }
}

TEST(Bfloat16, RoundsToNearestEvenAndQuietsNan) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bits(bf16_to_fp32(0x3f80)), bits(1.0f));
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808000)), 0x3f80);  // tie, down to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f818000)), 0x3f82);  // tie, up to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7fffff)), 0x7f80);  // the largest float rounds to infinity
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001)), 0x7fc0);  // signalling NaN: quieted
  EXPECT_EQ(fp32_to_bf16(from_bits(0xffc00000)), 0xffc0);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_fp32(static_cast<Bf16Bits>(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), b);
    }
  }
}

TEST(Float16, RowFunctionsUseTheActiveTable) {
  const std::vector<float> x = {1.0f, -2.5f, 65520.0f, 0x1p-25f, 3.0f, 0.1f, -0.0f, 7.0f, 1e-3f};
  std::vector<Fp16Bits> h(x.size());
  std::vector<float> back(x.size());
  fp32_to_fp16_row(x.data(), h.data(), static_cast<int64_t>(x.size()));
  fp16_to_fp32_row(h.data(), back.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], fp32_to_fp16(x[i]));
    EXPECT_EQ(bits(back[i]), bits(fp16_to_fp32(h[i])));
  }
  std::vector<Bf16Bits> b(x.size());
  fp32_to_bf16_row(x.data(), b.data(), static_cast<int64_t>(x.size()));
  bf16_to_fp32_row(b.data(), back.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(b[i], fp32_to_bf16(x[i]));
    EXPECT_EQ(bits(back[i]), bits(bf16_to_fp32(b[i])));
  }
}

}  // namespace
}  // namespace keel::engine
