// Conversions between float and the two 16-bit float formats of model files: IEEE
// half (fp16) and bfloat16. The scalar functions here are exact references: fp16 and
// bf16 widen exactly, and narrowing rounds to nearest-even, with subnormals, overflow
// to infinity and NaN handled bit for bit as the F16C instructions do (a NaN stays a
// NaN, quieted, keeping its top payload bits). The row functions use F16C when the
// CPU has it (through the kernel table of quant.h), and give the same bits either way.
#pragma once

#include <bit>
#include <cstdint>

#include "keel/engine/tensor_types.h"

namespace keel::engine {

inline float fp16_to_fp32(Fp16Bits h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // infinity, or NaN (quieted, as F16C does)
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0u));
  }
  if (exponent != 0) {  // normal: re-bias the exponent from 15 to 127
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  }
  // Zero or subnormal: mantissa * 2^-24, exact in float (a normal float for mantissa > 0).
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
}

inline Fp16Bits fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {  // NaN: quiet it, keep the top 9 payload bits
    return static_cast<Fp16Bits>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  if (magnitude >= 0x477ff000u) {  // >= 65520 (halfway above 65504) rounds to infinity
    return static_cast<Fp16Bits>(sign | 0x7c00u);
  }
  if (magnitude >= 0x38800000u) {  // >= 2^-14: a normal half. Round at bit 13, then re-bias.
    const uint32_t rounded = magnitude + 0xfffu + ((magnitude >> 13) & 1u);
    return static_cast<Fp16Bits>(sign | ((rounded - 0x38000000u) >> 13));
  }
  // A half subnormal (or zero): round magnitude / 2^-24 to an integer, ties to even. The
  // float is m * 2^(e - 150), so the integer is m >> (126 - e) before rounding.
  const uint32_t exponent = magnitude >> 23;
  const uint32_t m = exponent ? ((magnitude & 0x7fffffu) | 0x800000u) : magnitude;
  const uint32_t shift = exponent ? 126 - exponent : 125;  // >= 14
  if (shift > 24) return static_cast<Fp16Bits>(sign);      // below half of 2^-24
  uint32_t q = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (q & 1u))) ++q;  // may carry into the smallest normal
  return static_cast<Fp16Bits>(sign | q);
}

inline float bf16_to_fp32(Bf16Bits b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// Round to nearest-even; a NaN is quieted (as ggml and gguf-py do).
inline Bf16Bits fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<Bf16Bits>((bits >> 16) | 0x40u);
  return static_cast<Bf16Bits>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// Row conversions through the active kernel table (F16C when available).
void fp16_to_fp32_row(const Fp16Bits* src, float* dst, int64_t n);
void fp32_to_fp16_row(const float* src, Fp16Bits* dst, int64_t n);
void bf16_to_fp32_row(const Bf16Bits* src, float* dst, int64_t n);
void fp32_to_bf16_row(const float* src, Bf16Bits* dst, int64_t n);

}  // namespace keel::engine
