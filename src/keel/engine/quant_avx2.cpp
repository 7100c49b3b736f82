#include "keel/engine/quant_avx2.h"

#include <cstring>

#include "keel/engine/float16.h"
#include "keel/engine/quant_scalar.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KEEL_HAVE_AVX2_KERNELS 1
#else
#define KEEL_HAVE_AVX2_KERNELS 0
#endif

namespace keel::engine::avx2 {

#if KEEL_HAVE_AVX2_KERNELS

// Every function that touches a 256-bit intrinsic carries this, helpers included (GCC
// inlines a helper only into callers with the same target).
#define KEEL_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace {

// ----- helpers --------------------------------------------------------------------

KEEL_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

KEEL_AVX2 inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

KEEL_AVX2 inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

KEEL_AVX2 inline __m256 abs_ps(__m256 v) {
  return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

// roundf for each lane (nearest, ties away from zero), exactly: the fraction v - trunc(v)
// is exact, so comparing it with 0.5 decides the tie as roundf does.
KEEL_AVX2 inline __m256 round_half_away(__m256 v) {
  const __m256 truncated = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 fraction = abs_ps(_mm256_sub_ps(v, truncated));
  const __m256 away = _mm256_cmp_ps(fraction, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 signed_one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
  return _mm256_add_ps(truncated, _mm256_and_ps(away, signed_one));
}

// Packs four vectors of 8 int32 (elements 0..31, in order) into 32 int8, saturating.
KEEL_AVX2 inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // per 128-bit lane: a0-3 b0-3 | a4-7 b4-7
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);  // dwords: 0-3 8-11 16-19 24-27 4-7 12-15 20-23 28-31
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 8 int8 (the low 8 bytes of v) as floats.
KEEL_AVX2 inline __m256 i8x8_to_ps(__m128i v) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

// dst[0..15] = q * d for 16 int8 q.
KEEL_AVX2 inline void store_scaled16(__m128i q, __m256 d, float* dst) {
  _mm256_storeu_ps(dst, _mm256_mul_ps(i8x8_to_ps(q), d));
  _mm256_storeu_ps(dst + 8, _mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(q, 8)), d));
}

// dst[0..15] = q * d + m (a multiply, then an add: no fusing, as the reference).
KEEL_AVX2 inline void store_scaled_plus16(__m128i q, __m256 d, __m256 m, float* dst) {
  _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(q), d), m));
  _mm256_storeu_ps(dst + 8, _mm256_add_ps(_mm256_mul_ps(i8x8_to_ps(_mm_srli_si128(q, 8)), d), m));
}

// dst[0..15] = d * q - m.
KEEL_AVX2 inline void store_scaled_minus16(__m128i q, __m256 d, __m256 m, float* dst) {
  _mm256_storeu_ps(dst, _mm256_sub_ps(_mm256_mul_ps(d, i8x8_to_ps(q)), m));
  _mm256_storeu_ps(dst + 8, _mm256_sub_ps(_mm256_mul_ps(d, i8x8_to_ps(_mm_srli_si128(q, 8))), m));
}

KEEL_AVX2 inline __m128i load128(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
KEEL_AVX2 inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The 32 nibbles of a 16-byte Q4 block as bytes: low nibbles (elements 0..15) in the low
// 128-bit lane, high nibbles (elements 16..31) in the high lane.
KEEL_AVX2 inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i bytes = load128(qs);
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(bytes), _mm_srli_epi16(bytes, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte j = 0x10 when bit j of the 32 bits at qh is set, else 0.
KEEL_AVX2 inline __m256i high_bits32(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof bits);
  // Each 128-bit lane holds the four bytes; byte j picks source byte j / 8.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Sums of adjacent int16 pairs: 8 int32.
KEEL_AVX2 inline __m256i sum_i16_pairs(__m256i x) {
  return _mm256_madd_epi16(x, _mm256_set1_epi16(1));
}

// u (unsigned bytes, < 128) times s (signed bytes), summed in groups of 4 adjacent bytes.
KEEL_AVX2 inline __m256 mul_sum_u8_i8(__m256i u, __m256i s) {
  return _mm256_cvtepi32_ps(sum_i16_pairs(_mm256_maddubs_epi16(u, s)));
}

// x times y (both signed bytes; y in [-127, 127]) summed in groups of 4 adjacent bytes.
KEEL_AVX2 inline __m256 mul_sum_i8_i8(__m256i x, __m256i y) {
  return mul_sum_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

KEEL_AVX2 inline __m256i shift_right16(__m256i v, int count) {
  return _mm256_srl_epi16(v, _mm_cvtsi32_si128(count));
}

// (h >> shift) & 1 of each byte, moved to bit 4: the fifth bit of a Q5_K quant.
KEEL_AVX2 inline __m128i q5_high(__m128i h, __m128i shift) {
  return _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(h, shift), _mm_set1_epi8(1)), 4);
}

// (h >> shift) & 3 of each byte, moved to bits 4..5: the top two bits of a Q6_K quant.
KEEL_AVX2 inline __m128i q6_high(__m128i h, int shift) {
  return _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(h, _mm_cvtsi32_si128(shift)), _mm_set1_epi8(3)), 4);
}
KEEL_AVX2 inline __m256i q6_high(__m256i h, int shift) {
  return _mm256_slli_epi16(_mm256_and_si256(shift_right16(h, shift), _mm256_set1_epi8(3)), 4);
}

KEEL_AVX2 inline __m256 load_f16(const Fp16Bits* p) {
  return _mm256_cvtph_ps(load128(p));
}
KEEL_AVX2 inline __m256 load_bf16(const Bf16Bits* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}

// One fp16 <-> fp32 conversion with F16C: the same bits as float16.h's scalar functions
// (checked over every half and a spread of floats by float16_test.cpp), a few times faster.
KEEL_AVX2 inline float half_to_float(Fp16Bits h) {
  return _cvtsh_ss(h);
}
KEEL_AVX2 inline Fp16Bits float_to_half(float f) {
  return static_cast<Fp16Bits>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

// ----- dequantize -----------------------------------------------------------------

KEEL_AVX2 void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const Fp16Bits*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(load128(x + i)));
  for (; i < n; ++i) dst[i] = half_to_float(x[i]);
}

KEEL_AVX2 void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const Bf16Bits*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i widened = _mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(x + i)), 16);
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(widened));
  }
  for (; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

KEEL_AVX2 void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d));
    const __m128i qs = load128(x[b].qs);
    store_scaled16(_mm_sub_epi8(_mm_and_si128(qs, low4), eight), d, dst);
    store_scaled16(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), eight), d, dst + 16);
  }
}

KEEL_AVX2 void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(src);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d));
    const __m256 m = _mm256_set1_ps(half_to_float(x[b].m));
    const __m128i qs = load128(x[b].qs);
    store_scaled_plus16(_mm_and_si128(qs, low4), d, m, dst);
    store_scaled_plus16(_mm_and_si128(_mm_srli_epi16(qs, 4), low4), d, m, dst + 16);
  }
}

KEEL_AVX2 void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d));
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles32(x[b].qs), high_bits32(x[b].qh)), _mm256_set1_epi8(16));
    store_scaled16(_mm256_castsi256_si128(q), d, dst);
    store_scaled16(_mm256_extracti128_si256(q, 1), d, dst + 16);
  }
}

KEEL_AVX2 void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d));
    const __m256 m = _mm256_set1_ps(half_to_float(x[b].m));
    const __m256i q = _mm256_or_si256(nibbles32(x[b].qs), high_bits32(x[b].qh));
    store_scaled_plus16(_mm256_castsi256_si128(q), d, m, dst);
    store_scaled_plus16(_mm256_extracti128_si256(q, 1), d, m, dst + 16);
  }
}

KEEL_AVX2 void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, dst += kQuantBlock) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d));
    store_scaled16(load128(x[b].qs), d, dst);
    store_scaled16(load128(x[b].qs + 16), d, dst + 16);
  }
}

KEEL_AVX2 void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(src);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = half_to_float(x[b].d);
    const float dmin = half_to_float(x[b].dmin);
    uint8_t sc[8], mn[8];
    scalar::unpack_k4_scales(x[b].scales, sc, mn);
    for (int g = 0; g < 4; ++g, dst += 64) {
      const __m256 d1 = _mm256_set1_ps(d * sc[2 * g]), m1 = _mm256_set1_ps(dmin * mn[2 * g]);
      const __m256 d2 = _mm256_set1_ps(d * sc[2 * g + 1]), m2 = _mm256_set1_ps(dmin * mn[2 * g + 1]);
      const __m128i q0 = load128(x[b].qs + 32 * g), q1 = load128(x[b].qs + 32 * g + 16);
      store_scaled_minus16(_mm_and_si128(q0, low4), d1, m1, dst);
      store_scaled_minus16(_mm_and_si128(q1, low4), d1, m1, dst + 16);
      store_scaled_minus16(_mm_and_si128(_mm_srli_epi16(q0, 4), low4), d2, m2, dst + 32);
      store_scaled_minus16(_mm_and_si128(_mm_srli_epi16(q1, 4), low4), d2, m2, dst + 48);
    }
  }
}

KEEL_AVX2 void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(src);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = half_to_float(x[b].d);
    const float dmin = half_to_float(x[b].dmin);
    uint8_t sc[8], mn[8];
    scalar::unpack_k4_scales(x[b].scales, sc, mn);
    const __m128i h0 = load128(x[b].qh), h1 = load128(x[b].qh + 16);
    for (int g = 0; g < 4; ++g, dst += 64) {
      const __m256 d1 = _mm256_set1_ps(d * sc[2 * g]), m1 = _mm256_set1_ps(dmin * mn[2 * g]);
      const __m256 d2 = _mm256_set1_ps(d * sc[2 * g + 1]), m2 = _mm256_set1_ps(dmin * mn[2 * g + 1]);
      const __m128i lo_shift = _mm_cvtsi32_si128(2 * g), hi_shift = _mm_cvtsi32_si128(2 * g + 1);
      const __m128i q0 = load128(x[b].qs + 32 * g), q1 = load128(x[b].qs + 32 * g + 16);
      store_scaled_minus16(_mm_or_si128(_mm_and_si128(q0, low4), q5_high(h0, lo_shift)), d1, m1, dst);
      store_scaled_minus16(_mm_or_si128(_mm_and_si128(q1, low4), q5_high(h1, lo_shift)), d1, m1, dst + 16);
      store_scaled_minus16(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(q0, 4), low4), q5_high(h0, hi_shift)), d2, m2,
                           dst + 32);
      store_scaled_minus16(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(q1, 4), low4), q5_high(h1, hi_shift)), d2, m2,
                           dst + 48);
    }
  }
}

KEEL_AVX2 void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(src);
  const __m128i low4 = _mm_set1_epi8(0x0F), offset = _mm_set1_epi8(32);
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    const float d = half_to_float(x[b].d);
    for (int half = 0; half < 2; ++half, dst += 128) {
      const uint8_t* ql = x[b].ql + 64 * half;
      const uint8_t* qh = x[b].qh + 32 * half;
      const int8_t* sc = x[b].scales + 8 * half;
      for (int c = 0; c < 2; ++c) {  // elements 16c .. 16c+15 of each 32-element quarter
        const __m128i a = load128(ql + 16 * c), bq = load128(ql + 32 + 16 * c), h = load128(qh + 16 * c);
        const __m128i q[4] = {
            _mm_or_si128(_mm_and_si128(a, low4), q6_high(h, 0)),
            _mm_or_si128(_mm_and_si128(bq, low4), q6_high(h, 2)),
            _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), low4), q6_high(h, 4)),
            _mm_or_si128(_mm_and_si128(_mm_srli_epi16(bq, 4), low4), q6_high(h, 6)),
        };
        for (int k = 0; k < 4; ++k) {
          const __m256 scale = _mm256_set1_ps(d * static_cast<float>(sc[c + 2 * k]));
          store_scaled16(_mm_sub_epi8(q[k], offset), scale, dst + 32 * k + 16 * c);
        }
      }
    }
  }
}

// ----- quantize -------------------------------------------------------------------

KEEL_AVX2 void quantize_row_f16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<Fp16Bits*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = float_to_half(src[i]);
}

// Quantizes 32 floats with scale 1/d (ties away from zero); returns the quants as int32
// vectors and stores them as bytes.
KEEL_AVX2 inline void quantize_block32(const float* x, float id, int8_t* qs, __m256i q[4]) {
  const __m256 mul = _mm256_set1_ps(id);
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul)));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
}

KEEL_AVX2 inline float absmax32(const float* x) {
  __m256 m = abs_ps(_mm256_loadu_ps(x));
  for (int k = 1; k < 4; ++k) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + 8 * k)));
  return hmax(m);
}

KEEL_AVX2 void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    const float d = absmax32(src) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = float_to_half(d);
    __m256i q[4];
    quantize_block32(src, id, y[b].qs, q);
  }
}

KEEL_AVX2 void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / kQuantBlock; ++b, src += kQuantBlock) {
    const float d = absmax32(src) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = float_to_half(d);
    __m256i q[4];
    quantize_block32(src, id, y[b].qs, q);
    const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    y[b].s = float_to_half(static_cast<float>(sum) * d);
  }
}

KEEL_AVX2 void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kSuperBlock; ++b, src += kSuperBlock) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < kSuperBlock; k += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(src + k)));
    const float amax = hmax(m);
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof y[b]);
      continue;
    }
    // The reference takes the first element of largest magnitude (its sign sets the scale's).
    float max = 0.0f;
    const __m256 target = _mm256_set1_ps(amax);
    for (int k = 0; k < kSuperBlock; k += 8) {
      const int hits = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(src + k)), target, _CMP_EQ_OQ));
      if (hits != 0) {
        max = src[k + __builtin_ctz(static_cast<unsigned>(hits))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 mul = _mm256_set1_ps(iscale);
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int k = 0; k < kSuperBlock; k += 32) {
      __m256i q[4];
      // Nearest, ties to even (MXCSR's default mode), as the reference's nearest_int.
      for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(src + k + 8 * j), mul));
      const __m256i bytes = pack_i32_to_i8(q[0], q[1], q[2], q[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + k), bytes);
      // Sums of 16: pairs (maddubs), quads (madd), then two horizontal adds per lane.
      __m256i sums = sum_i16_pairs(_mm256_maddubs_epi16(ones8, bytes));
      sums = _mm256_hadd_epi32(sums, sums);
      sums = _mm256_hadd_epi32(sums, sums);
      y[b].bsums[k / 16] = static_cast<int16_t>(_mm256_extract_epi32(sums, 0));
      y[b].bsums[k / 16 + 1] = static_cast<int16_t>(_mm256_extract_epi32(sums, 4));
    }
    y[b].d = 1 / iscale;
  }
}

// ----- dot products ---------------------------------------------------------------

// The float formats: four 8-lane FMA accumulators; the tail and the total in double.
KEEL_AVX2 float vec_dot_f32(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const float*>(weights);
  const auto* y = static_cast<const float*>(activations);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc[0]);
  double sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(sum);
}

KEEL_AVX2 float vec_dot_f16(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const Fp16Bits*>(weights);
  const auto* y = static_cast<const Fp16Bits*>(activations);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load_f16(x + i + 8 * k), load_f16(y + i + 8 * k), acc[k]);
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load_f16(x + i), load_f16(y + i), acc[0]);
  double sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(half_to_float(x[i]) * half_to_float(y[i]));
  return static_cast<float>(sum);
}

KEEL_AVX2 float vec_dot_bf16(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const Bf16Bits*>(weights);
  const auto* y = static_cast<const Bf16Bits*>(activations);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load_bf16(x + i + 8 * k), load_bf16(y + i + 8 * k), acc[k]);
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(load_bf16(x + i), load_bf16(y + i), acc[0]);
  double sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
  return static_cast<float>(sum);
}

// The 32-element formats: per block, the integer products summed in groups of four and
// scaled by d_x * d_y into one 8-lane accumulator.
KEEL_AVX2 float vec_dot_q4_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ4_0*>(weights);
  const auto* y = static_cast<const BlockQ8_0*>(activations);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    const __m256i qx = _mm256_sub_epi8(nibbles32(x[b].qs), eight);
    acc = _mm256_fmadd_ps(d, mul_sum_i8_i8(qx, load256(y[b].qs)), acc);
  }
  return hsum(acc);
}

KEEL_AVX2 float vec_dot_q4_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ4_1*>(weights);
  const auto* y = static_cast<const BlockQ8_1*>(activations);
  __m256 acc = _mm256_setzero_ps();
  float min_terms = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    min_terms += half_to_float(x[b].m) * half_to_float(y[b].s);
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    acc = _mm256_fmadd_ps(d, mul_sum_u8_i8(nibbles32(x[b].qs), load256(y[b].qs)), acc);
  }
  return hsum(acc) + min_terms;
}

KEEL_AVX2 float vec_dot_q5_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ5_0*>(weights);
  const auto* y = static_cast<const BlockQ8_0*>(activations);
  const __m256i sixteen = _mm256_set1_epi8(16);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    const __m256i qx = _mm256_sub_epi8(_mm256_or_si256(nibbles32(x[b].qs), high_bits32(x[b].qh)), sixteen);
    acc = _mm256_fmadd_ps(d, mul_sum_i8_i8(qx, load256(y[b].qs)), acc);
  }
  return hsum(acc);
}

KEEL_AVX2 float vec_dot_q5_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ5_1*>(weights);
  const auto* y = static_cast<const BlockQ8_1*>(activations);
  __m256 acc = _mm256_setzero_ps();
  float min_terms = 0.0f;
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    min_terms += half_to_float(x[b].m) * half_to_float(y[b].s);
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    const __m256i qx = _mm256_or_si256(nibbles32(x[b].qs), high_bits32(x[b].qh));
    acc = _mm256_fmadd_ps(d, mul_sum_u8_i8(qx, load256(y[b].qs)), acc);
  }
  return hsum(acc) + min_terms;
}

KEEL_AVX2 float vec_dot_q8_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ8_0*>(weights);
  const auto* y = static_cast<const BlockQ8_0*>(activations);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * half_to_float(y[b].d));
    acc = _mm256_fmadd_ps(d, mul_sum_i8_i8(load256(x[b].qs), load256(y[b].qs)), acc);
  }
  return hsum(acc);
}

// K-quants: per super-block, sum_e scale(e) * q(e) * y(e) in 8 int32 lanes (exact), then
// one FMA by d = d_x * d_y; the min term (Q4_K, Q5_K) from the activation's bsums.
inline int k_min_sum(const BlockQ8_K& y, const uint8_t mins[8]) {
  int sum = 0;
  for (int j = 0; j < kSuperBlock / 16; ++j) sum += y.bsums[j] * mins[j / 2];
  return sum;
}

KEEL_AVX2 float vec_dot_q4_k_q8_k(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ4_K*>(weights);
  const auto* y = static_cast<const BlockQ8_K*>(activations);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float min_terms = 0.0f;
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    uint8_t sc[8], mn[8];
    scalar::unpack_k4_scales(x[b].scales, sc, mn);
    min_terms += (half_to_float(x[b].dmin) * y[b].d) * static_cast<float>(k_min_sum(y[b], mn));
    __m256i sumi = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      const __m256i bits = load256(x[b].qs + 32 * g);
      const __m256i lo = _mm256_and_si256(bits, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[b].qs + 64 * g));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[b].qs + 64 * g + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * g])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * g + 1])));
    }
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * y[b].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc) - min_terms;
}

KEEL_AVX2 float vec_dot_q5_k_q8_k(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ5_K*>(weights);
  const auto* y = static_cast<const BlockQ8_K*>(activations);
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  float min_terms = 0.0f;
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    uint8_t sc[8], mn[8];
    scalar::unpack_k4_scales(x[b].scales, sc, mn);
    min_terms += (half_to_float(x[b].dmin) * y[b].d) * static_cast<float>(k_min_sum(y[b], mn));
    const __m256i qh = load256(x[b].qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      const __m256i bits = load256(x[b].qs + 32 * g);
      const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(shift_right16(qh, 2 * g), one), 4);
      const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(shift_right16(qh, 2 * g + 1), one), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, low4), hlo);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), low4), hhi);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[b].qs + 64 * g));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[b].qs + 64 * g + 32));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * g])));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * g + 1])));
    }
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * y[b].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc) - min_terms;
}

KEEL_AVX2 float vec_dot_q6_k_q8_k(int64_t n, const void* weights, const void* activations) {
  const auto* x = static_cast<const BlockQ6_K*>(weights);
  const auto* y = static_cast<const BlockQ8_K*>(activations);
  const __m256i low4 = _mm256_set1_epi8(0x0F), offset = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kSuperBlock; ++b) {
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i a = load256(x[b].ql + 64 * half);
      const __m256i bq = load256(x[b].ql + 64 * half + 32);
      const __m256i h = load256(x[b].qh + 32 * half);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(a, low4), q6_high(h, 0)),
          _mm256_or_si256(_mm256_and_si256(bq, low4), q6_high(h, 2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), q6_high(h, 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bq, 4), low4), q6_high(h, 6)),
      };
      for (int k = 0; k < 4; ++k) {
        // Quarter k holds sub-blocks 8*half + 2k (int16 lanes 0..7) and the next (8..15).
        const int s = 8 * half + 2 * k;
        const __m256i scales = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(x[b].scales[s])),
                                                       _mm_set1_epi16(x[b].scales[s + 1]), 1);
        const __m256i qs = _mm256_sub_epi8(q[k], offset);
        const __m256i ys = load256(y[b].qs + 128 * half + 32 * k);
        const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(qs, qs), _mm256_sign_epi8(ys, qs));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, scales));
      }
    }
    const __m256 d = _mm256_set1_ps(half_to_float(x[b].d) * y[b].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

}  // namespace

bool compiled() {
  return true;
}

QuantKernelTable make_avx2_kernel_table() {
  QuantKernelTable t(KernelIsa::kAvx2, scalar::make_scalar_kernel_table());
  using G = GgmlType;
  auto put = [&t](G type, DequantizeRowFn dequantize, QuantizeRowFn quantize, VecDotFn dot) {
    TypeKernels& k = t[type];
    if (dequantize) k.dequantize_row = dequantize, k.simd_dequantize = true;
    if (quantize) k.quantize_row = quantize, k.simd_quantize = true;
    if (dot) k.vec_dot = dot, k.simd_vec_dot = true;
  };
  put(G::kF32, nullptr, nullptr, vec_dot_f32);
  put(G::kF16, dequantize_row_f16, quantize_row_f16, vec_dot_f16);
  put(G::kBF16, dequantize_row_bf16, nullptr, vec_dot_bf16);
  put(G::kQ4_0, dequantize_row_q4_0, nullptr, vec_dot_q4_0_q8_0);
  put(G::kQ4_1, dequantize_row_q4_1, nullptr, vec_dot_q4_1_q8_1);
  put(G::kQ5_0, dequantize_row_q5_0, nullptr, vec_dot_q5_0_q8_0);
  put(G::kQ5_1, dequantize_row_q5_1, nullptr, vec_dot_q5_1_q8_1);
  put(G::kQ8_0, dequantize_row_q8_0, quantize_row_q8_0, vec_dot_q8_0_q8_0);
  put(G::kQ8_1, nullptr, quantize_row_q8_1, nullptr);
  put(G::kQ4_K, dequantize_row_q4_k, nullptr, vec_dot_q4_k_q8_k);
  put(G::kQ5_K, dequantize_row_q5_k, nullptr, vec_dot_q5_k_q8_k);
  put(G::kQ6_K, dequantize_row_q6_k, nullptr, vec_dot_q6_k_q8_k);
  put(G::kQ8_K, nullptr, quantize_row_q8_k, nullptr);
  return t;
}

#else  // no x86: the scalar table stands in

bool compiled() {
  return false;
}

QuantKernelTable make_avx2_kernel_table() {
  return QuantKernelTable(KernelIsa::kAvx2, scalar::make_scalar_kernel_table());
}

#endif

}  // namespace keel::engine::avx2
