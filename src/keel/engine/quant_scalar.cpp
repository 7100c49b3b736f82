#include "keel/engine/quant_scalar.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "keel/engine/float16.h"

namespace keel::engine::scalar {
namespace {

constexpr int kHalf = kQuantBlock / 2;

// The 5th bit of element j (0..31) of a Q5 block, shifted to bit 4.
inline int q5_high_bit(uint32_t qh, int j) {
  return static_cast<int>((qh >> j) & 1u) << 4;
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Nearest integer, ties to even (ggml's nearest_int): adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits. REQUIRES: |x| <= 2^22.
inline int nearest_int(float x) {
  const float shifted = x + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// The value and index of the first element of largest magnitude (0 for an all-zero row).
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

}  // namespace

void unpack_k4_scales(const uint8_t packed[kKScaleBytes], uint8_t scales[8], uint8_t mins[8]) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = packed[j] & 63;
    mins[j] = packed[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    scales[j] = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    mins[j] = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// ----- dequantize -----------------------------------------------------------------

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const Fp16Bits*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const Bf16Bits*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>((x[b].qs[j] & 0x0F) - 8) * d;
      dst[j + kHalf] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>(x[b].qs[j] & 0x0F) * d + m;
      dst[j + kHalf] = static_cast<float>(x[b].qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const float d = fp16_to_fp32(x[b].d);
    const uint32_t qh = load_u32(x[b].qh);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>(((x[b].qs[j] & 0x0F) | q5_high_bit(qh, j)) - 16) * d;
      dst[j + kHalf] = static_cast<float>(((x[b].qs[j] >> 4) | q5_high_bit(qh, j + kHalf)) - 16) * d;
    }
  }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    const uint32_t qh = load_u32(x[b].qh);
    for (int j = 0; j < kHalf; ++j) {
      dst[j] = static_cast<float>((x[b].qs[j] & 0x0F) | q5_high_bit(qh, j)) * d + m;
      dst[j + kHalf] = static_cast<float>((x[b].qs[j] >> 4) | q5_high_bit(qh, j + kHalf)) * d + m;
    }
  }
}

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQuantBlock; ++j) dst[j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQuantBlock; ++j) dst[j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x[b].scales, sc, mn);
    const uint8_t* q = x[b].qs;
    for (int g = 0; g < 4; ++g, q += 32) {  // 64 elements per 32 bytes: low nibbles, then high
      const float d1 = d * sc[2 * g], m1 = dmin * mn[2 * g];
      const float d2 = d * sc[2 * g + 1], m2 = dmin * mn[2 * g + 1];
      for (int l = 0; l < 32; ++l) *dst++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x[b].scales, sc, mn);
    const uint8_t* ql = x[b].qs;
    const uint8_t* qh = x[b].qh;
    for (int g = 0; g < 4; ++g, ql += 32) {
      const float d1 = d * sc[2 * g], m1 = dmin * mn[2 * g];
      const float d2 = d * sc[2 * g + 1], m2 = dmin * mn[2 * g + 1];
      const int low_bit = 2 * g, high_bit = 2 * g + 1;
      for (int l = 0; l < 32; ++l) {
        *dst++ = d1 * static_cast<float>((ql[l] & 0xF) | (((qh[l] >> low_bit) & 1) << 4)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *dst++ = d2 * static_cast<float>((ql[l] >> 4) | (((qh[l] >> high_bit) & 1) << 4)) - m2;
      }
    }
  }
}

// The 256 quants of a Q6_K block, offset removed (-32 .. 31). Each 128-element half
// uses 64 bytes of ql and 32 of qh: element 32k + l of a half takes the low (k = 0, 1)
// or high (k = 2, 3) nibble of ql[l + 32 (k % 2)] and bits 2k, 2k+1 of qh[l].
static void unpack_q6(const BlockQ6_K& block, int8_t q[kSuperBlock]) {
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = block.ql + 64 * half;
    const uint8_t* qh = block.qh + 32 * half;
    int8_t* out = q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      out[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
      out[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      out[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      out[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / kSuperBlock; ++b, dst += kSuperBlock) {
    const float d = fp16_to_fp32(x[b].d);
    int8_t q[kSuperBlock];
    unpack_q6(x[b], q);
    for (int e = 0; e < kSuperBlock; ++e) {
      // (d * scale) * q, as ggml's `d * sc[is] * q`.
      dst[e] = (d * static_cast<float>(x[b].scales[e / 16])) * static_cast<float>(q[e]);
    }
  }
}

void dequantize_row_q8_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t b = 0; b < n / kSuperBlock; ++b, dst += kSuperBlock) {
    for (int j = 0; j < kSuperBlock; ++j) dst[j] = x[b].d * static_cast<float>(x[b].qs[j]);
  }
}

// ----- quantize -------------------------------------------------------------------

void quantize_row_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, n * sizeof(float));
}

void quantize_row_f16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<Fp16Bits*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

void quantize_row_bf16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<Bf16Bits*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    const float d = signed_absmax(src, kQuantBlock) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) {
      // Truncation after +8.5 rounds to nearest; the value is in [0, 16.5].
      const int q0 = std::min(15, static_cast<int>(src[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(src[j + kHalf] * id + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    float min = src[0], max = src[0];
    for (int j = 1; j < kQuantBlock; ++j) {
      min = std::min(min, src[j]);
      max = std::max(max, src[j]);
    }
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = std::min(15, static_cast<int>((src[j] - min) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((src[j + kHalf] - min) * id + 0.5f));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    const float d = signed_absmax(src, kQuantBlock) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int q0 = std::min(31, static_cast<int>(src[j] * id + 16.5f));
      const int q1 = std::min(31, static_cast<int>(src[j + kHalf] * id + 16.5f));
      y[b].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + kHalf);
    }
    std::memcpy(y[b].qh, &qh, sizeof qh);
  }
}

void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    float min = src[0], max = src[0];
    for (int j = 1; j < kQuantBlock; ++j) {
      min = std::min(min, src[j]);
      max = std::max(max, src[j]);
    }
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      // ggml does not clamp here; (max - min) * id + 0.5 < 32 for every finite block.
      const int q0 = std::min(31, static_cast<int>((src[j] - min) * id + 0.5f));
      const int q1 = std::min(31, static_cast<int>((src[j + kHalf] - min) * id + 0.5f));
      y[b].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + kHalf);
    }
    std::memcpy(y[b].qh, &qh, sizeof qh);
  }
}

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQuantBlock; ++j) y[b].qs[j] = static_cast<int8_t>(std::round(src[j] * id));
  }
}

void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::round(src[j] * id));
      sum += y[b].qs[j];
    }
    y[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += kSuperBlock) {
    const float max = signed_absmax(src, kSuperBlock);
    if (max == 0.0f) {  // ggml leaves bsums unset here; we clear them
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kSuperBlock; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * src[j])));
    }
    for (int j = 0; j < kSuperBlock / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[b].qs[16 * j + l];
      y[b].bsums[j] = static_cast<int16_t>(sum);
    }
    y[b].d = 1 / iscale;
  }
}

// ----- dot products ---------------------------------------------------------------

// ggml accumulates the float formats in double (ggml_float) over float products.
float vec_dot_f32(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const float*>(weights);
  const auto* y = static_cast<const float*>(activations);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(sum);
}

float vec_dot_f16(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const Fp16Bits*>(weights);
  const auto* y = static_cast<const Fp16Bits*>(activations);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
  return static_cast<float>(sum);
}

float vec_dot_bf16(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const Bf16Bits*>(weights);
  const auto* y = static_cast<const Bf16Bits*>(activations);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
  return static_cast<float>(sum);
}

float vec_dot_q4_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ4_0*>(weights);
  const auto* y = static_cast<const BlockQ8_0*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    int sumi = 0;
    for (int j = 0; j < kHalf; ++j) {
      sumi += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
      sumi += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + kHalf];
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d);
  }
  return sum;
}

float vec_dot_q4_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ4_1*>(weights);
  const auto* y = static_cast<const BlockQ8_1*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    int sumi = 0;
    for (int j = 0; j < kHalf; ++j) {
      sumi += (x[b].qs[j] & 0x0F) * y[b].qs[j];
      sumi += (x[b].qs[j] >> 4) * y[b].qs[j + kHalf];
    }
    // sum(x*y) = d_x d_y sum(q_x q_y) + m_x (d_y sum(q_y)) with the second factor from y.s.
    sum += (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d)) * static_cast<float>(sumi) +
           fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
  }
  return sum;
}

float vec_dot_q5_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ5_0*>(weights);
  const auto* y = static_cast<const BlockQ8_0*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const uint32_t qh = load_u32(x[b].qh);
    int sumi = 0;
    for (int j = 0; j < kHalf; ++j) {
      sumi += (((x[b].qs[j] & 0x0F) | q5_high_bit(qh, j)) - 16) * y[b].qs[j];
      sumi += (((x[b].qs[j] >> 4) | q5_high_bit(qh, j + kHalf)) - 16) * y[b].qs[j + kHalf];
    }
    sum += (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d)) * static_cast<float>(sumi);
  }
  return sum;
}

float vec_dot_q5_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ5_1*>(weights);
  const auto* y = static_cast<const BlockQ8_1*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const uint32_t qh = load_u32(x[b].qh);
    int sumi = 0;
    for (int j = 0; j < kHalf; ++j) {
      sumi += ((x[b].qs[j] & 0x0F) | q5_high_bit(qh, j)) * y[b].qs[j];
      sumi += ((x[b].qs[j] >> 4) | q5_high_bit(qh, j + kHalf)) * y[b].qs[j + kHalf];
    }
    sum += (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d)) * static_cast<float>(sumi) +
           fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
  }
  return sum;
}

float vec_dot_q8_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ8_0*>(weights);
  const auto* y = static_cast<const BlockQ8_0*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQuantBlock; ++j) sumi += x[b].qs[j] * y[b].qs[j];
    sum += static_cast<float>(sumi) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
  }
  return sum;
}

// The K-quant dot products keep ggml's float structure: per super-block, integer sums
// in eight lanes (lane l: elements with index % 8 == l), each lane scaled by
// d = d_x * d_y into its own float accumulator; the min term subtracted from a running
// sum; the eight lane sums added last, in order.
namespace {

struct KLanes {
  float lanes[8] = {};
  float sum = 0.0f;

  void add_block(float d, const int32_t lane_sums[8]) {
    for (int l = 0; l < 8; ++l) lanes[l] += d * static_cast<float>(lane_sums[l]);
  }
  float finish() {
    for (int l = 0; l < 8; ++l) sum += lanes[l];
    return sum;
  }
};

// Lane sums of sum_e scale[e / group] * q[e] * y[e] over a super-block.
template <int kGroup>
void k_lane_sums(const int8_t* q, const int8_t* y, const int* scales, int32_t lane_sums[8]) {
  for (int l = 0; l < 8; ++l) lane_sums[l] = 0;
  for (int e = 0; e < kSuperBlock; ++e) lane_sums[e % 8] += scales[e / kGroup] * (q[e] * y[e]);
}

// sum_j bsums[j] * mins[j / 2]: the min term of Q4_K / Q5_K in units of d_y * dmin.
int k_min_sum(const BlockQ8_K& y, const uint8_t mins[8]) {
  int sum = 0;
  for (int j = 0; j < kSuperBlock / 16; ++j) sum += y.bsums[j] * mins[j / 2];
  return sum;
}

}  // namespace

float vec_dot_q4_k_q8_k(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ4_K*>(weights);
  const auto* y = static_cast<const BlockQ8_K*>(activations);
  KLanes acc;
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    int8_t q[kSuperBlock];
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        q[64 * g + l] = static_cast<int8_t>(x[b].qs[32 * g + l] & 0xF);
        q[64 * g + 32 + l] = static_cast<int8_t>(x[b].qs[32 * g + l] >> 4);
      }
    }
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x[b].scales, sc, mn);
    int scales[8];
    for (int j = 0; j < 8; ++j) scales[j] = sc[j];
    int32_t lane_sums[8];
    k_lane_sums<32>(q, y[b].qs, scales, lane_sums);
    acc.add_block(fp16_to_fp32(x[b].d) * y[b].d, lane_sums);
    const float dmin = fp16_to_fp32(x[b].dmin) * y[b].d;
    acc.sum -= dmin * static_cast<float>(k_min_sum(y[b], mn));
  }
  return acc.finish();
}

float vec_dot_q5_k_q8_k(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ5_K*>(weights);
  const auto* y = static_cast<const BlockQ8_K*>(activations);
  KLanes acc;
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    int8_t q[kSuperBlock];
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t ql = x[b].qs[32 * g + l], qh = x[b].qh[l];
        q[64 * g + l] = static_cast<int8_t>((ql & 0xF) | (((qh >> (2 * g)) & 1) << 4));
        q[64 * g + 32 + l] = static_cast<int8_t>((ql >> 4) | (((qh >> (2 * g + 1)) & 1) << 4));
      }
    }
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x[b].scales, sc, mn);
    int scales[8];
    for (int j = 0; j < 8; ++j) scales[j] = sc[j];
    int32_t lane_sums[8];
    k_lane_sums<32>(q, y[b].qs, scales, lane_sums);
    acc.add_block(fp16_to_fp32(x[b].d) * y[b].d, lane_sums);
    const float dmin = fp16_to_fp32(x[b].dmin) * y[b].d;
    acc.sum -= dmin * static_cast<float>(k_min_sum(y[b], mn));
  }
  return acc.finish();
}

float vec_dot_q6_k_q8_k(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ6_K*>(weights);
  const auto* y = static_cast<const BlockQ8_K*>(activations);
  KLanes acc;
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    int8_t q[kSuperBlock];
    unpack_q6(x[b], q);
    int scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = x[b].scales[j];
    int32_t lane_sums[8];
    k_lane_sums<16>(q, y[b].qs, scales, lane_sums);
    acc.add_block(fp16_to_fp32(x[b].d) * y[b].d, lane_sums);
  }
  return acc.finish();
}

QuantKernelTable make_scalar_kernel_table() {
  QuantKernelTable t(KernelIsa::kScalar);
  using G = GgmlType;
  t[G::kF32] = {dequantize_row_f32, quantize_row_f32, vec_dot_f32};
  t[G::kF16] = {dequantize_row_f16, quantize_row_f16, vec_dot_f16};
  t[G::kBF16] = {dequantize_row_bf16, quantize_row_bf16, vec_dot_bf16};
  t[G::kQ4_0] = {dequantize_row_q4_0, quantize_row_q4_0, vec_dot_q4_0_q8_0};
  t[G::kQ4_1] = {dequantize_row_q4_1, quantize_row_q4_1, vec_dot_q4_1_q8_1};
  t[G::kQ5_0] = {dequantize_row_q5_0, quantize_row_q5_0, vec_dot_q5_0_q8_0};
  t[G::kQ5_1] = {dequantize_row_q5_1, quantize_row_q5_1, vec_dot_q5_1_q8_1};
  t[G::kQ8_0] = {dequantize_row_q8_0, quantize_row_q8_0, vec_dot_q8_0_q8_0};
  t[G::kQ8_1] = {dequantize_row_q8_1, quantize_row_q8_1, nullptr};
  t[G::kQ4_K] = {dequantize_row_q4_k, nullptr, vec_dot_q4_k_q8_k};
  t[G::kQ5_K] = {dequantize_row_q5_k, nullptr, vec_dot_q5_k_q8_k};
  t[G::kQ6_K] = {dequantize_row_q6_k, nullptr, vec_dot_q6_k_q8_k};
  t[G::kQ8_K] = {dequantize_row_q8_k, quantize_row_q8_k, nullptr};
  return t;
}

}  // namespace keel::engine::scalar
