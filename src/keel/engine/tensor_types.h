// The tensor element types the engine computes with, and the quantized block formats
// as plain structs that mirror GGUF's bytes exactly (ggml's ggml-common.h layout). The
// kernels in quant.h read and write rows of these blocks through the structs, so a row
// must start at a multiple of the block's alignment: 2 bytes (4 for Q8_K), which GGUF's
// tensor alignment and any heap buffer satisfy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace keel::engine {

// ggml type ids, as GGUF files store them (see ggml_types.h for the full table). Only
// the types the engine has kernels for are named here.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,  // activation side of Q4_1 / Q5_1 dot products
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,  // activation side of K-quant dot products
  kBF16 = 30,
};

inline constexpr int kQuantBlock = 32;   // elements per block of Q4_0 .. Q8_1
inline constexpr int kSuperBlock = 256;  // elements per super-block of the K-quants
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

// fp16 and bf16 values travel as their raw bits (see float16.h for conversions).
using Fp16Bits = uint16_t;
using Bf16Bits = uint16_t;

// x = d * (q - 8), q the 4-bit value; element j in the low nibble of qs[j], element
// j + 16 in the high nibble.
struct BlockQ4_0 {
  Fp16Bits d;
  uint8_t qs[kQuantBlock / 2];
};

// x = d * q + m, q the 4-bit value (nibble order as Q4_0).
struct BlockQ4_1 {
  Fp16Bits d;
  Fp16Bits m;
  uint8_t qs[kQuantBlock / 2];
};

// x = d * (q - 16), q = nibble | (bit j of qh) << 4 (qh little-endian, bit j for element j).
struct BlockQ5_0 {
  Fp16Bits d;
  uint8_t qh[4];
  uint8_t qs[kQuantBlock / 2];
};

// x = d * q + m, q five bits as in Q5_0.
struct BlockQ5_1 {
  Fp16Bits d;
  Fp16Bits m;
  uint8_t qh[4];
  uint8_t qs[kQuantBlock / 2];
};

// x = d * q.
struct BlockQ8_0 {
  Fp16Bits d;
  int8_t qs[kQuantBlock];
};

// x = d * q; s = fp16(d * sum(q)), which lets a Q4_1 / Q5_1 dot product add its min term
// without touching the quants.
struct BlockQ8_1 {
  Fp16Bits d;
  Fp16Bits s;
  int8_t qs[kQuantBlock];
};

// Eight sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], with 6-bit sc/m packed in
// `scales` (j < 4: low 6 bits of bytes j and j+4; j >= 4: nibbles of byte j+4 plus the
// top 2 bits of bytes j-4 and j). qs: 64 elements per 32 bytes, low nibbles first.
struct BlockQ4_K {
  Fp16Bits d;
  Fp16Bits dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kSuperBlock / 2];
};

// As Q4_K with a fifth bit: bit (2i) / (2i+1) of qh[l] is the high bit of element l of
// the low / high nibble half of 64-element group i.
struct BlockQ5_K {
  Fp16Bits d;
  Fp16Bits dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kSuperBlock / 8];
  uint8_t qs[kSuperBlock / 2];
};

// Sixteen sub-blocks of 16: x = d * scales[j] * (q - 32), q = 4 low bits from ql and 2
// high bits from qh (two 128-element halves; see quant_scalar.cpp for the bit walk).
struct BlockQ6_K {
  uint8_t ql[kSuperBlock / 2];
  uint8_t qh[kSuperBlock / 4];
  int8_t scales[kSuperBlock / 16];
  Fp16Bits d;
};

// x = d * q (d is a full float); bsums[j] = sum of qs[16j .. 16j+15].
struct BlockQ8_K {
  float d;
  int8_t qs[kSuperBlock];
  int16_t bsums[kSuperBlock / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(offsetof(BlockQ5_0, qs) == 6 && offsetof(BlockQ5_1, qs) == 8);
static_assert(offsetof(BlockQ4_K, qs) == 16 && offsetof(BlockQ5_K, qs) == 48);
static_assert(offsetof(BlockQ6_K, d) == 208 && offsetof(BlockQ8_K, bsums) == 260);

struct TensorTypeTraits {
  GgmlType type;
  std::string_view name;  // as ggml spells it: "Q4_K"
  int64_t block_size;     // elements per block
  int64_t type_size;      // bytes per block
  // The type a dot product with a weight row of this type expects its activations in
  // (ggml's vec_dot_type, which fixes the numerics); the type itself for activation
  // side types.
  GgmlType vec_dot_type;
};

// Traits of a type the engine has kernels for; nullopt for any other id.
std::optional<TensorTypeTraits> tensor_type_traits(uint32_t id);
TensorTypeTraits tensor_type_traits(GgmlType type);

// Bytes of a row of n elements. REQUIRES: n is a multiple of the type's block size.
int64_t row_size_bytes(GgmlType type, int64_t n);

}  // namespace keel::engine
