// The row kernels (quant.h) against gguf-py's fixtures, the SIMD variants against the
// scalar references, dot products against exact sums, and the dispatch.
#include "keel/engine/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "keel/engine/float16.h"
#include "keel/engine/quant_avx2.h"
#include "keel/engine/quant_avx512.h"
#include "keel/engine/quant_scalar.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

using G = GgmlType;

constexpr G kAllTypes[] = {G::kF32,  G::kF16,  G::kBF16, G::kQ4_0, G::kQ4_1, G::kQ5_0, G::kQ5_1,
                           G::kQ8_0, G::kQ8_1, G::kQ4_K, G::kQ5_K, G::kQ6_K, G::kQ8_K};
constexpr G kWeightTypes[] = {G::kF32,  G::kF16,  G::kBF16, G::kQ4_0, G::kQ4_1, G::kQ5_0,
                              G::kQ5_1, G::kQ8_0, G::kQ4_K, G::kQ5_K, G::kQ6_K};

std::string type_name(G type) {
  return std::string(tensor_type_traits(type).name);
}

// The SIMD tables the CPU runs (AVX2, AVX-512).
std::vector<const QuantKernelTable*> simd_tables() {
  std::vector<const QuantKernelTable*> tables;
  if (const QuantKernelTable* simd = avx2_quant_kernels()) tables.push_back(simd);
  if (const QuantKernelTable* simd = avx512_quant_kernels()) tables.push_back(simd);
  return tables;
}

// The tables to check: the scalar one always, the SIMD ones where the CPU runs them.
std::vector<const QuantKernelTable*> all_tables() {
  std::vector<const QuantKernelTable*> tables = {&scalar_quant_kernels()};
  for (const QuantKernelTable* simd : simd_tables()) tables.push_back(simd);
  return tables;
}

std::string isa_name(const QuantKernelTable& table) {
  return std::string(kernel_isa_name(table.isa()));
}

bool same_bits(const float* a, const float* b, int64_t n, int64_t* first_difference) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) {
      *first_difference = i;
      return false;
    }
  }
  return true;
}

// ----- gguf-py fixtures -------------------------------------------------------------

std::string fixture_dir() {
  const std::string root = keel::testing::source_dir();
  return root + "/tests/fixtures/engine/quant";
}

template <typename T>
std::vector<T> read_binary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << path << " (tests/reference/make_quant_fixtures.py writes it)";
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

struct FixtureCase {
  std::string name;
  G type;
  int64_t n = 0;
  int64_t rows = 0;
  int64_t row_bytes = 0;
  std::string origin;
  std::vector<uint8_t> quantized;
  std::vector<float> dequantized;
  std::vector<float> source;  // empty when the case was not made from floats
};

std::vector<FixtureCase> load_fixtures() {
  std::ifstream in(fixture_dir() + "/index.json");
  EXPECT_TRUE(in.good()) << "missing " << fixture_dir() << "/index.json";
  if (!in.good()) return {};
  const nlohmann::json index = nlohmann::json::parse(in);
  std::vector<FixtureCase> cases;
  for (const auto& c : index.at("cases")) {
    FixtureCase f;
    f.name = c.at("name").get<std::string>();
    const auto traits = tensor_type_traits(c.at("type_id").get<uint32_t>());
    EXPECT_TRUE(traits.has_value()) << f.name;
    if (!traits) continue;
    f.type = traits->type;
    f.n = c.at("row_elements").get<int64_t>();
    f.rows = c.at("rows").get<int64_t>();
    f.row_bytes = c.at("row_bytes").get<int64_t>();
    f.origin = c.at("origin").get<std::string>();
    const auto& files = c.at("files");
    f.quantized = read_binary<uint8_t>(fixture_dir() + "/" + files.at("quantized").get<std::string>());
    f.dequantized = read_binary<float>(fixture_dir() + "/" + files.at("dequantized").get<std::string>());
    if (files.contains("source"))
      f.source = read_binary<float>(fixture_dir() + "/" + files.at("source").get<std::string>());
    EXPECT_EQ(f.row_bytes, row_size_bytes(f.type, f.n)) << f.name;
    EXPECT_EQ(static_cast<int64_t>(f.quantized.size()), f.rows * f.row_bytes) << f.name;
    EXPECT_EQ(static_cast<int64_t>(f.dequantized.size()), f.rows * f.n) << f.name;
    cases.push_back(std::move(f));
  }
  return cases;
}

TEST(QuantFixtures, CoverEveryWeightTypeAndTheModelRows) {
  const auto cases = load_fixtures();
  for (G type : kWeightTypes) {
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [&](const FixtureCase& c) { return c.type == type; }))
        << "no fixture for " << type_name(type);
  }
  for (G type : {G::kQ4_1, G::kQ8_0}) {
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(),
                            [&](const FixtureCase& c) { return c.type == type && c.origin == "model"; }))
        << "no model rows of " << type_name(type);
  }
}

// Dequantization is exact arithmetic plus at most two float roundings per element in a
// fixed order, the same in gguf-py's numpy code: every float must match bit for bit.
TEST(QuantFixtures, DequantizeMatchesGgufPyBitForBit) {
  const auto cases = load_fixtures();
  ASSERT_FALSE(cases.empty());
  for (const QuantKernelTable* table : all_tables()) {
    for (const auto& c : cases) {
      std::vector<float> out(c.n);
      for (int64_t r = 0; r < c.rows; ++r) {
        (*table)[c.type].dequantize_row(c.quantized.data() + r * c.row_bytes, out.data(), c.n);
        int64_t at = -1;
        ASSERT_TRUE(same_bits(out.data(), c.dequantized.data() + r * c.n, c.n, &at))
            << kernel_isa_name(table->isa()) << " " << c.name << " row " << r << " element " << at << ": " << out[at]
            << " vs gguf-py " << c.dequantized[r * c.n + at];
      }
    }
  }
}

// gguf-py's F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 quantizers are ggml's reference
// round-to-nearest algorithms, so our bytes must be theirs.
TEST(QuantFixtures, QuantizeReproducesGgufPyBytes) {
  const auto cases = load_fixtures();
  int checked = 0;
  for (const QuantKernelTable* table : all_tables()) {
    for (const auto& c : cases) {
      if (c.source.empty()) continue;
      const TypeKernels& k = (*table)[c.type];
      ASSERT_NE(k.quantize_row, nullptr) << c.name;
      std::vector<uint8_t> out(c.row_bytes);
      for (int64_t r = 0; r < c.rows; ++r) {
        k.quantize_row(c.source.data() + r * c.n, out.data(), c.n);
        const uint8_t* expected = c.quantized.data() + r * c.row_bytes;
        const auto mismatch = std::mismatch(out.begin(), out.end(), expected);
        ASSERT_TRUE(mismatch.first == out.end()) << kernel_isa_name(table->isa()) << " " << c.name << " row " << r
                                                 << " byte " << (mismatch.first - out.begin()) << ": "
                                                 << int(*mismatch.first) << " vs gguf-py " << int(*mismatch.second);
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 8 * 7);
}

// gguf-py has no Q8_1 / Q8_K code; their dequantization is d * q by definition.
TEST(QuantActivationTypes, DequantizeIsScaleTimesQuant) {
  std::mt19937 rng(3);
  BlockQ8_1 b1{};
  b1.d = fp32_to_fp16(0.037f);
  for (auto& q : b1.qs) q = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  BlockQ8_K bk{};
  bk.d = -0.0123f;
  for (auto& q : bk.qs) q = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  for (const QuantKernelTable* table : all_tables()) {
    float out1[32], outk[256];
    (*table)[G::kQ8_1].dequantize_row(&b1, out1, 32);
    (*table)[G::kQ8_K].dequantize_row(&bk, outk, 256);
    for (int j = 0; j < 32; ++j) ASSERT_EQ(out1[j], static_cast<float>(b1.qs[j]) * fp16_to_fp32(b1.d));
    for (int j = 0; j < 256; ++j) ASSERT_EQ(outk[j], bk.d * static_cast<float>(bk.qs[j]));
  }
}

TEST(QuantActivationTypes, Q8KCarriesBlockSumsAndClearsZeroBlocks) {
  std::vector<float> x(512);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (int i = 0; i < 256; ++i) x[i] = normal(rng);
  // The second super-block is all zeros: every field must be zero (ggml leaves bsums unset).
  std::vector<BlockQ8_K> y(2);
  std::memset(y.data(), 0x5a, y.size() * sizeof(BlockQ8_K));
  scalar::quantize_row_q8_k(x.data(), y.data(), 512);
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += y[0].qs[16 * j + l];
    EXPECT_EQ(y[0].bsums[j], sum);
  }
  const BlockQ8_K zero{};
  EXPECT_EQ(std::memcmp(&y[1], &zero, sizeof zero), 0);
  // The element of largest magnitude maps to -127 (ggml's scale is -127 / max).
  const auto largest =
      std::max_element(x.begin(), x.begin() + 256, [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  EXPECT_EQ(y[0].qs[largest - x.begin()], -127);
}

// ----- random rows ------------------------------------------------------------------

class RandomRows {
 public:
  explicit RandomRows(uint32_t seed) : rng_(seed) {}

  // Float rows of several shapes: gaussian, outliers, zero blocks, exact rounding ties.
  std::vector<float> floats(int64_t n, int shape) {
    std::vector<float> x(n);
    std::normal_distribution<float> normal;
    for (auto& v : x) v = normal(rng_);
    switch (shape % 5) {
      case 1:  // outliers
        for (int64_t i = 0; i < n; i += 97) x[i] *= 40.0f;
        break;
      case 2:  // zero blocks and scattered zeros
        for (int64_t i = 0; i < std::min<int64_t>(n, 32); ++i) x[i] = 0.0f;
        for (int64_t i = 0; i < n; i += 5) x[i] = 0.0f;
        break;
      case 3:  // x / d = k + 0.5 exactly for blocks of 32 with d = 0.25
        for (int64_t i = 0; i < n; ++i) {
          x[i] = (i % 32 == 0) ? 31.75f * (i % 64 == 0 ? 1.0f : -1.0f)
                               : (static_cast<float>(static_cast<int>(rng_() % 253) - 126) + 0.5f) * 0.25f;
        }
        break;
      case 4:  // wide dynamic range
        for (auto& v : x) v *= std::ldexp(1.0f, static_cast<int>(rng_() % 24) - 12);
        break;
      default:
        break;
    }
    return x;
  }

  // A well-formed weight row: random quants (every bit pattern), fp16 scales of a sane
  // size; for the float types, values from floats().
  std::vector<uint8_t> weights(G type, int64_t n) {
    std::vector<uint8_t> row(row_size_bytes(type, n));
    if (type == G::kF32 || type == G::kF16 || type == G::kBF16) {
      const auto x = floats(n, static_cast<int>(rng_() % 5));
      scalar_quant_kernels()[type].quantize_row(x.data(), row.data(), n);
      return row;
    }
    for (auto& b : row) b = static_cast<uint8_t>(rng_());
    const int64_t blocks = n / tensor_type_traits(type).block_size;
    for (int64_t b = 0; b < blocks; ++b) {
      void* p = row.data() + b * tensor_type_traits(type).type_size;
      switch (type) {
        case G::kQ4_0:
          static_cast<BlockQ4_0*>(p)->d = scale();
          break;
        case G::kQ4_1:
          static_cast<BlockQ4_1*>(p)->d = scale(), static_cast<BlockQ4_1*>(p)->m = scale();
          break;
        case G::kQ5_0:
          static_cast<BlockQ5_0*>(p)->d = scale();
          break;
        case G::kQ5_1:
          static_cast<BlockQ5_1*>(p)->d = scale(), static_cast<BlockQ5_1*>(p)->m = scale();
          break;
        case G::kQ8_0:
          static_cast<BlockQ8_0*>(p)->d = scale();
          break;
        case G::kQ4_K:
          static_cast<BlockQ4_K*>(p)->d = scale(), static_cast<BlockQ4_K*>(p)->dmin = scale();
          break;
        case G::kQ5_K:
          static_cast<BlockQ5_K*>(p)->d = scale(), static_cast<BlockQ5_K*>(p)->dmin = scale();
          break;
        case G::kQ6_K:
          static_cast<BlockQ6_K*>(p)->d = scale();
          break;
        case G::kQ8_1: {  // as an activation: quants in [-127, 127], s consistent
          auto* q = static_cast<BlockQ8_1*>(p);
          q->d = scale();
          int sum = 0;
          for (auto& v : q->qs) sum += (v = std::max<int8_t>(v, -127));
          q->s = fp32_to_fp16(static_cast<float>(sum) * fp16_to_fp32(q->d));
          break;
        }
        case G::kQ8_K: {
          auto* q = static_cast<BlockQ8_K*>(p);
          q->d = fp16_to_fp32(scale()) * 0.01f;
          for (auto& v : q->qs) v = std::max<int8_t>(v, -127);
          for (int j = 0; j < 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += q->qs[16 * j + l];
            q->bsums[j] = static_cast<int16_t>(sum);
          }
          break;
        }
        default:
          break;
      }
    }
    return row;
  }

 private:
  // A signed fp16 scale in [1e-3, 1e-1]; now and then 0 (a skipped block in a real model).
  Fp16Bits scale() {
    if (rng_() % 61 == 0) return 0;
    std::uniform_real_distribution<float> u(-3.0f, -1.0f);
    const float magnitude = std::pow(10.0f, u(rng_));
    return fp32_to_fp16(rng_() % 2 ? magnitude : -magnitude);
  }

  std::mt19937 rng_;
};

// ----- SIMD against scalar ----------------------------------------------------------

const QuantKernelTable* simd_or_skip() {
  return avx2_quant_kernels();
}

// The variants the engine's reference models need (SmolLM2: Q4_1, Q8_0, F32; Gemma 3
// Q4_K_M: Q4_K, Q6_K, Q5_K, Q8_0) must stay SIMD.
TEST(QuantSimd, TheReferenceModelsTypesHaveAvx2Variants) {
  const QuantKernelTable* simd = simd_or_skip();
  if (simd == nullptr) GTEST_SKIP() << "CPU without AVX2/FMA/F16C";
  for (G type : {G::kF16, G::kQ8_0, G::kQ4_0, G::kQ4_1, G::kQ4_K, G::kQ5_K, G::kQ6_K}) {
    EXPECT_TRUE((*simd)[type].simd_dequantize) << type_name(type);
    EXPECT_TRUE((*simd)[type].simd_vec_dot) << type_name(type);
  }
  for (G type : {G::kQ8_0, G::kQ8_1, G::kQ8_K, G::kF16}) EXPECT_TRUE((*simd)[type].simd_quantize) << type_name(type);
  for (G type : kAllTypes) {
    const TypeKernels& s = scalar_quant_kernels()[type];
    EXPECT_FALSE(s.simd_dequantize || s.simd_quantize || s.simd_vec_dot) << type_name(type);
  }
}

TEST(QuantSimd, DequantizeIsBitExactWithTheScalarReference) {
  const QuantKernelTable* simd = simd_or_skip();
  if (simd == nullptr) GTEST_SKIP() << "CPU without AVX2/FMA/F16C";
  RandomRows random(11);
  for (G type : kAllTypes) {
    const int64_t block = tensor_type_traits(type).block_size;
    // One block, a few, a long row; the float types also get lengths off the SIMD width.
    const std::vector<int64_t> sizes =
        block == 1 ? std::vector<int64_t>{7, 256, 4096, 4101} : std::vector<int64_t>{block, 2 * block, 4096};
    for (int64_t n : sizes) {
      for (int trial = 0; trial < 20; ++trial) {
        const auto row = random.weights(type, n);
        std::vector<float> ref(n), out(n);
        scalar_quant_kernels()[type].dequantize_row(row.data(), ref.data(), n);
        (*simd)[type].dequantize_row(row.data(), out.data(), n);
        int64_t at = -1;
        ASSERT_TRUE(same_bits(out.data(), ref.data(), n, &at))
            << type_name(type) << " n=" << n << " element " << at << ": " << out[at] << " vs " << ref[at];
      }
    }
  }
}

TEST(QuantSimd, QuantizeIsBitExactWithTheScalarReference) {
  const QuantKernelTable* simd = simd_or_skip();
  if (simd == nullptr) GTEST_SKIP() << "CPU without AVX2/FMA/F16C";
  RandomRows random(13);
  for (G type : kAllTypes) {
    const TypeKernels& k = (*simd)[type];
    if (!k.simd_quantize) continue;
    const int64_t block = tensor_type_traits(type).block_size;
    for (int64_t n : {int64_t{256}, int64_t{4096}, block == 1 ? int64_t{1029} : int64_t{512}}) {
      for (int shape = 0; shape < 25; ++shape) {
        const auto x = random.floats(n, shape);
        std::vector<uint8_t> ref(row_size_bytes(type, n)), out(ref.size());
        scalar_quant_kernels()[type].quantize_row(x.data(), ref.data(), n);
        k.quantize_row(x.data(), out.data(), n);
        const auto mismatch = std::mismatch(out.begin(), out.end(), ref.begin());
        ASSERT_TRUE(mismatch.first == out.end())
            << type_name(type) << " n=" << n << " shape " << shape << " byte " << (mismatch.first - out.begin());
      }
    }
  }
}

// The magnitude the rounding errors of a dot product scale with: sum |w_i| |a_i| plus,
// for the types with a min term, sum |offset_i| |a_i| (the kernels add the scaled-quant
// part and the min part separately, so each part's size matters, not their difference).
double dot_magnitude(G type, const uint8_t* weights, const std::vector<float>& w, const std::vector<float>& a) {
  double m = 0.0;
  for (size_t i = 0; i < w.size(); ++i) m += std::fabs(static_cast<double>(w[i]) * a[i]);
  const int64_t n = static_cast<int64_t>(w.size());
  auto add_offsets = [&](int64_t block, auto offset_of) {
    for (int64_t i = 0; i < n; ++i) m += std::fabs(offset_of(i / block, i % block) * a[i]);
  };
  switch (type) {
    case G::kQ4_1:
      add_offsets(32,
                  [&](int64_t b, int64_t) { return fp16_to_fp32(reinterpret_cast<const BlockQ4_1*>(weights)[b].m); });
      break;
    case G::kQ5_1:
      add_offsets(32,
                  [&](int64_t b, int64_t) { return fp16_to_fp32(reinterpret_cast<const BlockQ5_1*>(weights)[b].m); });
      break;
    case G::kQ4_K:
    case G::kQ5_K:
      add_offsets(256, [&](int64_t b, int64_t e) {
        const uint8_t* block = weights + b * tensor_type_traits(type).type_size;
        Fp16Bits dmin;
        std::memcpy(&dmin, block + 2, 2);
        uint8_t sc[8], mn[8];
        scalar::unpack_k4_scales(block + 4, sc, mn);
        return fp16_to_fp32(dmin) * mn[e / 32];
      });
      break;
    default:
      break;
  }
  return m;
}

// Both a scalar and a SIMD dot product are within (k + 3) u M of the exact value of the
// same formula, u = 2^-24, M = dot_magnitude, k the longest chain of float additions
// into one accumulator: at most n / 32 block terms (scalar: one running sum; AVX2: eight
// lanes, plus the horizontal sum) or, for the float types, n / 32 FMAs per lane (the
// scalar sum is in double). Hence |simd - scalar| <= 2 (n / 32 + 8) u M; for n = 4096
// that is 1.6e-5 M. The exact product of quants and scales is an integer times fp16
// values, exact in the kernels; only these additions round.
double dot_tolerance(int64_t n, double magnitude) {
  return 2.0 * (static_cast<double>(n) / 32 + 8) * 0x1p-24 * magnitude;
}

TEST(QuantSimd, VecDotAgreesWithTheScalarReferenceToRounding) {
  if (simd_tables().empty()) GTEST_SKIP() << "CPU without AVX2/FMA/F16C";
  for (const QuantKernelTable* simd : simd_tables()) {
    RandomRows random(17);
    for (G type : kWeightTypes) {
      const G act_type = tensor_type_traits(type).vec_dot_type;
      const int64_t block = tensor_type_traits(type).block_size;
      double worst = 0.0;  // |simd - scalar| / M
      for (int64_t n :
           {std::max<int64_t>(block, 32), int64_t{256}, int64_t{4096}, block == 1 ? int64_t{4099} : int64_t{1024}}) {
        for (int trial = 0; trial < 40; ++trial) {
          const auto w = random.weights(type, n);
          const auto x = random.floats(n, trial);
          std::vector<uint8_t> a(row_size_bytes(act_type, n));
          scalar_quant_kernels()[act_type].quantize_row(x.data(), a.data(), n);
          const float ref = scalar_quant_kernels()[type].vec_dot(n, w.data(), a.data());
          const float got = (*simd)[type].vec_dot(n, w.data(), a.data());
          std::vector<float> wf(n), af(n);
          scalar_quant_kernels()[type].dequantize_row(w.data(), wf.data(), n);
          scalar_quant_kernels()[act_type].dequantize_row(a.data(), af.data(), n);
          const double magnitude = dot_magnitude(type, w.data(), wf, af);
          ASSERT_LE(std::fabs(static_cast<double>(got) - ref), dot_tolerance(n, magnitude))
              << type_name(type) << " n=" << n << " trial " << trial << ": " << isa_name(*simd) << " " << got
              << " scalar " << ref << " magnitude " << magnitude;
          if (magnitude > 0) worst = std::max(worst, std::fabs(static_cast<double>(got) - ref) / magnitude);
        }
      }
      std::printf("  %-5s %s vs scalar: max |diff| / magnitude = %.2e\n", type_name(type).c_str(),
                  isa_name(*simd).c_str(), worst);
    }
  }
}

// A GemmFn must give each element the bits of the same table's vec_dot, for every shape
// of the register tiles (rows and tokens off the tile sizes, an odd block count) and
// for strides larger than a row, so a batch equals its tokens one at a time.
TEST(QuantGemm, EqualsVecDotBitForBitForEveryTileShape) {
  RandomRows random(23);
  int checked = 0;
  for (const QuantKernelTable* table : all_tables()) {
    for (G type : kWeightTypes) {
      const TypeKernels& k = (*table)[type];
      if (k.gemm == nullptr) continue;
      const G act_type = tensor_type_traits(type).vec_dot_type;
      for (int64_t n : {int64_t{32}, int64_t{96}, int64_t{576}}) {
        const int64_t weight_stride = row_size_bytes(type, n) + 8, act_stride = row_size_bytes(act_type, n) + 4;
        for (int64_t rows : {1, 3, 4, 5, 9}) {
          for (int64_t tokens : {1, 2, 3, 7}) {
            std::vector<uint8_t> w(static_cast<size_t>(rows * weight_stride)),
                a(static_cast<size_t>(tokens * act_stride));
            for (int64_t r = 0; r < rows; ++r) {
              const auto row = random.weights(type, n);
              std::copy(row.begin(), row.end(), w.begin() + r * weight_stride);
            }
            for (int64_t t = 0; t < tokens; ++t) {
              const auto x = random.floats(n, static_cast<int>(t));
              scalar_quant_kernels()[act_type].quantize_row(x.data(), a.data() + t * act_stride, n);
            }
            const int64_t out_stride = rows + 2;
            std::vector<float> out(static_cast<size_t>(tokens * out_stride), -1.0f);
            k.gemm(n, w.data(), weight_stride, rows, a.data(), act_stride, tokens, out.data(), out_stride);
            for (int64_t t = 0; t < tokens; ++t) {
              for (int64_t r = 0; r < rows; ++r) {
                const float want = k.vec_dot(n, w.data() + r * weight_stride, a.data() + t * act_stride);
                const float got = out[t * out_stride + r];
                ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                    << isa_name(*table) << " " << type_name(type) << " n=" << n << " rows=" << rows
                    << " tokens=" << tokens << " at row " << r << " token " << t << ": " << got << " vs " << want;
              }
              for (int64_t r = rows; r < out_stride; ++r)
                ASSERT_EQ(out[t * out_stride + r], -1.0f) << "wrote past rows";
            }
            ++checked;
          }
        }
      }
    }
  }
  if (avx512_quant_kernels() != nullptr) {
    EXPECT_GE(checked, 3 * 3 * 5 * 4);
  }
}

// The AVX-512 Q8_0 batch product packs its operands per call (token pairs, tiles of 4
// rows) and the activations in chunks when they are long: every tile shape, a batch of
// several chunks (n = 4096, 61 tokens) and the extreme quants (weights -128 and 127,
// activations +-127) give the bits of vec_dot, and agree with the scalar reference.
TEST(QuantGemm, Q8_0BatchesEqualVecDotOnEveryTileChunkAndExtremeQuant) {
  const QuantKernelTable* simd = avx512_quant_kernels();
  if (simd == nullptr) GTEST_SKIP() << "CPU without AVX-512 F/BW/VL/VNNI";
  const TypeKernels& k = (*simd)[G::kQ8_0];
  ASSERT_NE(k.gemm, nullptr);
  RandomRows random(29);
  struct Shape {
    int64_t n, rows, tokens;
  };
  std::vector<Shape> shapes;
  for (int64_t rows : {1, 2, 3, 4, 5, 8, 11}) {
    for (int64_t tokens : {2, 5, 8, 9, 16, 17, 24}) shapes.push_back({160, rows, tokens});
  }
  shapes.push_back({4096, 6, 61});
  for (int extreme = 0; extreme < 2; ++extreme) {
    for (const Shape& shape : shapes) {
      const int64_t n = shape.n, rows = shape.rows, tokens = shape.tokens;
      const int64_t weight_stride = row_size_bytes(G::kQ8_0, n) + 6, act_stride = row_size_bytes(G::kQ8_0, n) + 2;
      std::vector<uint8_t> w(static_cast<size_t>(rows * weight_stride)), a(static_cast<size_t>(tokens * act_stride));
      for (int64_t r = 0; r < rows; ++r) {
        auto row = random.weights(G::kQ8_0, n);
        if (extreme) {
          auto* blocks = reinterpret_cast<BlockQ8_0*>(row.data());
          for (int64_t i = 0; i < n; ++i) blocks[i / 32].qs[i % 32] = static_cast<int8_t>((i + r) % 3 ? -128 : 127);
        }
        std::copy(row.begin(), row.end(), w.begin() + r * weight_stride);
      }
      for (int64_t t = 0; t < tokens; ++t) {
        auto x = random.floats(n, static_cast<int>(t));
        if (extreme) {
          for (int64_t i = 0; i < n; ++i) x[i] = (i + t) % 2 ? 1.0f : -1.0f;
        }
        scalar_quant_kernels()[G::kQ8_0].quantize_row(x.data(), a.data() + t * act_stride, n);
      }
      const int64_t out_stride = rows + 3;
      std::vector<float> out(static_cast<size_t>(tokens * out_stride), -1.0f);
      k.gemm(n, w.data(), weight_stride, rows, a.data(), act_stride, tokens, out.data(), out_stride);
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const uint8_t* wr = w.data() + r * weight_stride;
          const uint8_t* at = a.data() + t * act_stride;
          const float got = out[t * out_stride + r];
          const float want = k.vec_dot(n, wr, at);
          ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
              << "n=" << n << " rows=" << rows << " tokens=" << tokens << " extreme=" << extreme << " at row " << r
              << " token " << t << ": " << got << " vs " << want;
          std::vector<float> wf(n), af(n);
          scalar_quant_kernels()[G::kQ8_0].dequantize_row(wr, wf.data(), n);
          scalar_quant_kernels()[G::kQ8_0].dequantize_row(at, af.data(), n);
          const float ref = scalar_quant_kernels()[G::kQ8_0].vec_dot(n, wr, at);
          ASSERT_LE(std::fabs(static_cast<double>(got) - ref), dot_tolerance(n, dot_magnitude(G::kQ8_0, wr, wf, af)))
              << "n=" << n << " rows=" << rows << " tokens=" << tokens << " at row " << r << " token " << t;
        }
        for (int64_t r = rows; r < out_stride; ++r) ASSERT_EQ(out[t * out_stride + r], -1.0f) << "wrote past rows";
      }
    }
  }
}

TEST(QuantSimd, Avx512TableHasTiledProductsForTheModelsTypes) {
  const QuantKernelTable* simd = avx512_quant_kernels();
  if (simd == nullptr) GTEST_SKIP() << "CPU without AVX-512 F/BW/VL/VNNI";
  EXPECT_EQ(simd->isa(), KernelIsa::kAvx512);
  for (G type : {G::kQ4_0, G::kQ4_1, G::kQ8_0}) {
    EXPECT_TRUE((*simd)[type].simd_vec_dot) << type_name(type);
    EXPECT_NE((*simd)[type].gemm, nullptr) << type_name(type);
  }
  // Everything else is the AVX2 table's, vec_dot included: the tiled products give its
  // bits (QuantGemm checks), so results do not depend on which of the two tables runs.
  const QuantKernelTable& avx2 = *avx2_quant_kernels();
  for (G type : kAllTypes) {
    EXPECT_EQ((*simd)[type].dequantize_row, avx2[type].dequantize_row) << type_name(type);
    EXPECT_EQ((*simd)[type].quantize_row, avx2[type].quantize_row) << type_name(type);
    EXPECT_EQ((*simd)[type].vec_dot, avx2[type].vec_dot) << type_name(type);
  }
}

// ----- dot products against exact sums ----------------------------------------------

// A dot product of quantized rows is the sum of the products of the dequantized values:
// computed here exactly (in double; each product of a dequantized weight and activation
// is exact or within one rounding), so every kernel must land within dot_tolerance.
// Q4_1 and Q5_1 use the activation's fp16 sum s = fp16(d * sum q) for their min term,
// which adds |m| |s| 2^-11 per block; Q6_K's and the K-quants' dequantized weights
// round once more (u |w| per element, inside M).
TEST(QuantDot, EqualsTheExactDotOfTheDequantizedRows) {
  RandomRows random(19);
  for (const QuantKernelTable* table : all_tables()) {
    for (G type : kWeightTypes) {
      const G act_type = tensor_type_traits(type).vec_dot_type;
      for (int64_t n : {int64_t{256}, int64_t{4096}}) {
        for (int trial = 0; trial < 20; ++trial) {
          const auto w = random.weights(type, n);
          const auto x = random.floats(n, trial);
          std::vector<uint8_t> a(row_size_bytes(act_type, n));
          (*table)[act_type].quantize_row(x.data(), a.data(), n);
          std::vector<float> wf(n), af(n);
          scalar_quant_kernels()[type].dequantize_row(w.data(), wf.data(), n);
          scalar_quant_kernels()[act_type].dequantize_row(a.data(), af.data(), n);
          double exact = 0.0;
          for (int64_t i = 0; i < n; ++i) exact += static_cast<double>(wf[i]) * af[i];
          double tolerance = dot_tolerance(n, dot_magnitude(type, w.data(), wf, af)) * 1.5;
          if (type == G::kQ4_1 || type == G::kQ5_1) {
            for (int64_t b = 0; b < n / 32; ++b) {
              const float m = type == G::kQ4_1 ? fp16_to_fp32(reinterpret_cast<const BlockQ4_1*>(w.data())[b].m)
                                               : fp16_to_fp32(reinterpret_cast<const BlockQ5_1*>(w.data())[b].m);
              tolerance += std::fabs(m * fp16_to_fp32(reinterpret_cast<const BlockQ8_1*>(a.data())[b].s)) * 0x1p-11;
            }
          }
          const float got = (*table)[type].vec_dot(n, w.data(), a.data());
          ASSERT_LE(std::fabs(got - exact), tolerance)
              << kernel_isa_name(table->isa()) << " " << type_name(type) << " n=" << n << " trial " << trial
              << ": kernel " << got << " exact " << exact;
        }
      }
    }
  }
}

// End to end: quantizing the activations and taking the dot product lands near the float
// dot product. Each activation moves by at most half a quantization step plus the
// fp16 rounding of its scale: |a - x| <= (0.5 + 127 * 2^-11 + 2^-20) d, d = amax / 127
// of its block.
TEST(QuantDot, QuantizedActivationsStayCloseToTheFloatDot) {
  RandomRows random(23);
  for (G type : kWeightTypes) {
    const G act_type = tensor_type_traits(type).vec_dot_type;
    const int64_t act_block = tensor_type_traits(act_type).block_size;
    const int64_t n = 4096;
    for (int trial = 0; trial < 10; ++trial) {
      const auto w = random.weights(type, n);
      const auto x = random.floats(n, trial);
      std::vector<uint8_t> a(row_size_bytes(act_type, n));
      quantize_row(act_type, x.data(), a.data(), n);
      std::vector<float> wf(n), af(n);
      dequantize_row(type, w.data(), wf.data(), n);
      dequantize_row(act_type, a.data(), af.data(), n);
      double float_dot = 0.0, bound = 0.0;
      for (int64_t i = 0; i < n; ++i) float_dot += static_cast<double>(wf[i]) * x[i];
      if (act_block > 1) {
        for (int64_t b = 0; b < n / act_block; ++b) {
          double amax = 0.0;
          for (int64_t i = b * act_block; i < (b + 1) * act_block; ++i) amax = std::max(amax, std::fabs(double{x[i]}));
          for (int64_t i = b * act_block; i < (b + 1) * act_block; ++i) {
            bound += std::fabs(wf[i]) * (0.5 + 127 * 0x1p-11 + 0x1p-20) * amax / 127;
          }
        }
      } else {  // F16 / BF16 activations: half an ulp of each value
        const double ulp = act_type == G::kF16 ? 0x1p-11 : act_type == G::kBF16 ? 0x1p-8 : 0.0;
        for (int64_t i = 0; i < n; ++i) bound += std::fabs(wf[i]) * std::fabs(x[i]) * ulp + std::fabs(wf[i]) * 0x1p-25;
      }
      bound += dot_tolerance(n, dot_magnitude(type, w.data(), wf, af)) * 2 + 1e-30;
      if (type == G::kQ4_1 || type == G::kQ5_1) {
        for (int64_t b = 0; b < n / 32; ++b) {
          const float m = type == G::kQ4_1 ? fp16_to_fp32(reinterpret_cast<const BlockQ4_1*>(w.data())[b].m)
                                           : fp16_to_fp32(reinterpret_cast<const BlockQ5_1*>(w.data())[b].m);
          bound += std::fabs(m * fp16_to_fp32(reinterpret_cast<const BlockQ8_1*>(a.data())[b].s)) * 0x1p-11;
        }
      }
      const float got = vec_dot(type, n, w.data(), a.data());
      ASSERT_LE(std::fabs(got - float_dot), bound)
          << type_name(type) << " trial " << trial << ": quantized " << got << " float " << float_dot;
    }
  }
}

// The real model's rows: Q4_1 · Q8_1 and Q8_0 · Q8_0 of the same rows.
TEST(QuantDot, ModelRowsDotWithQuantizedActivations) {
  const auto cases = load_fixtures();
  RandomRows random(29);
  int checked = 0;
  for (const auto& c : cases) {
    if (c.origin != "model" || c.type == G::kF32) continue;
    const G act_type = tensor_type_traits(c.type).vec_dot_type;
    for (int64_t r = 0; r < c.rows; ++r) {
      const auto x = random.floats(c.n, static_cast<int>(r));
      std::vector<uint8_t> a(row_size_bytes(act_type, c.n));
      quantize_row(act_type, x.data(), a.data(), c.n);
      std::vector<float> af(c.n);
      dequantize_row(act_type, a.data(), af.data(), c.n);
      double exact = 0.0;
      const float* wf = c.dequantized.data() + r * c.n;
      for (int64_t i = 0; i < c.n; ++i) exact += static_cast<double>(wf[i]) * af[i];
      const std::vector<float> w_row(wf, wf + c.n);
      const uint8_t* q = c.quantized.data() + r * c.row_bytes;
      double tolerance = dot_tolerance(c.n, dot_magnitude(c.type, q, w_row, af)) * 1.5;
      if (c.type == G::kQ4_1) {
        for (int64_t b = 0; b < c.n / 32; ++b) {
          tolerance += std::fabs(fp16_to_fp32(reinterpret_cast<const BlockQ4_1*>(q)[b].m) *
                                 fp16_to_fp32(reinterpret_cast<const BlockQ8_1*>(a.data())[b].s)) *
                       0x1p-11;
        }
      }
      for (const QuantKernelTable* table : all_tables()) {
        const float got = (*table)[c.type].vec_dot(c.n, q, a.data());
        ASSERT_LE(std::fabs(got - exact), tolerance) << kernel_isa_name(table->isa()) << " " << c.name << " row " << r;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 9);
}

// ----- dispatch ---------------------------------------------------------------------

TEST(QuantDispatch, ChoosesByCpuAndEnvironment) {
  CpuFeatures full;
  full.avx2 = full.fma = full.f16c = true;
  CpuFeatures no_fma = full;
  no_fma.fma = false;
  const KernelIsa best = avx2::compiled() ? KernelIsa::kAvx2 : KernelIsa::kScalar;
  EXPECT_EQ(choose_kernel_isa(full, nullptr), best);
  EXPECT_EQ(choose_kernel_isa(full, ""), best);
  EXPECT_EQ(choose_kernel_isa(full, "0"), best);
  EXPECT_EQ(choose_kernel_isa(full, "1"), KernelIsa::kScalar);
  EXPECT_EQ(choose_kernel_isa(full, "yes"), KernelIsa::kScalar);
  EXPECT_EQ(choose_kernel_isa(no_fma, nullptr), KernelIsa::kScalar);
  EXPECT_EQ(choose_kernel_isa(CpuFeatures{}, nullptr), KernelIsa::kScalar);
  EXPECT_EQ(avx2_quant_kernels() != nullptr, avx2::compiled() && detect_cpu_features().has_avx2_kernel_set());

  CpuFeatures wide = full;
  wide.avx512f = wide.avx512bw = wide.avx512vl = wide.avx512vnni = true;
  CpuFeatures no_vnni = wide;
  no_vnni.avx512vnni = false;
  const KernelIsa widest = avx512::compiled() ? KernelIsa::kAvx512 : best;
  EXPECT_EQ(choose_kernel_isa(wide, nullptr), widest);
  EXPECT_EQ(choose_kernel_isa(wide, nullptr, "0"), widest);
  EXPECT_EQ(choose_kernel_isa(wide, nullptr, "1"), best);
  EXPECT_EQ(choose_kernel_isa(wide, "1", nullptr), KernelIsa::kScalar);
  EXPECT_EQ(choose_kernel_isa(no_vnni, nullptr), best);
  CpuFeatures avx512_without_fma = wide;
  avx512_without_fma.fma = false;
  EXPECT_EQ(choose_kernel_isa(avx512_without_fma, nullptr), KernelIsa::kScalar);
  EXPECT_EQ(avx512_quant_kernels() != nullptr, avx512::compiled() && detect_cpu_features().has_avx512_kernel_set());
}

TEST(QuantDispatch, TypesWithoutKernelsReadAsEmpty) {
  for (uint32_t id : {4u, 10u, 11u, 16u, 31u, 99u}) {
    const TypeKernels& k = scalar_quant_kernels()[static_cast<G>(id)];
    EXPECT_TRUE(k.dequantize_row == nullptr && k.quantize_row == nullptr && k.vec_dot == nullptr) << id;
  }
  for (G type : kAllTypes) EXPECT_NE(quant_kernels()[type].dequantize_row, nullptr) << type_name(type);
  for (G type : kWeightTypes) EXPECT_NE(quant_kernels()[type].vec_dot, nullptr) << type_name(type);
}

// Run in a child process by the next test: the active table is chosen once per process.
TEST(QuantDispatch, ActiveTableFollowsTheEnvironment) {
  const KernelIsa expected =
      choose_kernel_isa(detect_cpu_features(), std::getenv("KEEL_FORCE_SCALAR"), std::getenv("KEEL_FORCE_AVX2"));
  EXPECT_EQ(quant_kernels().isa(), expected);
  std::printf("active kernel isa: %s\n", std::string(kernel_isa_name(quant_kernels().isa())).c_str());
}

TEST(QuantDispatch, KeelForceScalarSelectsTheScalarKernels) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string filter = "--gtest_filter=QuantDispatch.ActiveTableFollowsTheEnvironment";
  const auto forced = keel::testing::run_process({self, filter}, {{"KEEL_FORCE_SCALAR", "1"}});
  EXPECT_EQ(forced.exit_code, 0) << forced.out << forced.err;
  EXPECT_NE(forced.out.find("active kernel isa: scalar"), std::string::npos) << forced.out;

  const auto free = keel::testing::run_process({self, filter}, {{"KEEL_FORCE_SCALAR", "0"}});
  EXPECT_EQ(free.exit_code, 0) << free.out << free.err;
  const std::string widest(kernel_isa_name(choose_kernel_isa(detect_cpu_features(), nullptr)));
  EXPECT_NE(free.out.find("active kernel isa: " + widest + "\n"), std::string::npos) << free.out;

  const auto capped = keel::testing::run_process({self, filter}, {{"KEEL_FORCE_AVX2", "1"}});
  EXPECT_EQ(capped.exit_code, 0) << capped.out << capped.err;
  const bool simd = avx2_quant_kernels() != nullptr;
  EXPECT_NE(capped.out.find(simd ? "active kernel isa: avx2\n" : "active kernel isa: scalar\n"), std::string::npos)
      << capped.out;
}

}  // namespace
}  // namespace keel::engine
