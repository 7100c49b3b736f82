#include "keel/engine/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "keel/engine/cpu_features.h"
#include "keel/engine/float16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KEEL_HAVE_X86_KV_KERNELS 1
#else
#define KEEL_HAVE_X86_KV_KERNELS 0
#endif

namespace keel::engine {
namespace {

// Storage grows by at least this many positions at a time.
constexpr int64_t kGrowthStep = 256;

float dot_f32(const float* q, const float* k, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += q[i] * k[i];
  return s;
}

float dot_f16_scalar(const float* q, const Fp16Bits* k, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += q[i] * fp16_to_fp32(k[i]);
  return s;
}

void accumulate_f32(float p, const float* v, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += p * v[i];
}

void accumulate_f16_scalar(float p, const Fp16Bits* v, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += p * fp16_to_fp32(v[i]);
}

#if KEEL_HAVE_X86_KV_KERNELS
#define KEEL_KV_SIMD __attribute__((target("avx2,fma,f16c")))

KEEL_KV_SIMD float dot_f16_avx2(const float* q, const Fp16Bits* k, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
    const __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i + 8)));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k0, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), k1, a1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), k0, a0);
  }
  const __m256 a = _mm256_add_ps(a0, a1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float total = _mm_cvtss_f32(s);
  for (; i < n; ++i) total += q[i] * fp16_to_fp32(k[i]);
  return total;
}

KEEL_KV_SIMD void accumulate_f16_avx2(float p, const Fp16Bits* v, float* out, int64_t n) {
  const __m256 pv = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, v0, _mm256_loadu_ps(out + i)));
  }
  for (; i < n; ++i) out[i] += p * fp16_to_fp32(v[i]);
}

KEEL_KV_SIMD inline __m256 half(const Fp16Bits* k, int64_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
}

// Four rows' dot_f16_avx2 side by side (n a multiple of 16): each row gets exactly its
// operations, interleaved so that the four chains of FMAs overlap.
KEEL_KV_SIMD void dot4_f16_avx2(const float* q, const uint8_t* rows, int64_t stride, int64_t n, float* scores) {
  const auto* k0 = reinterpret_cast<const Fp16Bits*>(rows);
  const auto* k1 = reinterpret_cast<const Fp16Bits*>(rows + stride);
  const auto* k2 = reinterpret_cast<const Fp16Bits*>(rows + 2 * stride);
  const auto* k3 = reinterpret_cast<const Fp16Bits*>(rows + 3 * stride);
  __m256 a0[4], a1[4];
  for (int r = 0; r < 4; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m256 q0 = _mm256_loadu_ps(q + i), q1 = _mm256_loadu_ps(q + i + 8);
    a0[0] = _mm256_fmadd_ps(q0, half(k0, i), a0[0]);
    a1[0] = _mm256_fmadd_ps(q1, half(k0, i + 8), a1[0]);
    a0[1] = _mm256_fmadd_ps(q0, half(k1, i), a0[1]);
    a1[1] = _mm256_fmadd_ps(q1, half(k1, i + 8), a1[1]);
    a0[2] = _mm256_fmadd_ps(q0, half(k2, i), a0[2]);
    a1[2] = _mm256_fmadd_ps(q1, half(k2, i + 8), a1[2]);
    a0[3] = _mm256_fmadd_ps(q0, half(k3, i), a0[3]);
    a1[3] = _mm256_fmadd_ps(q1, half(k3, i + 8), a1[3]);
  }
  for (int r = 0; r < 4; ++r) {
    const __m256 a = _mm256_add_ps(a0[r], a1[r]);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    scores[r] = _mm_cvtss_f32(s);
  }
}

// accumulate_f16_avx2 over count rows with out's kChunks x 8 floats held in registers:
// each element gets the same FMAs in the same order.
template <int kChunks>
KEEL_KV_SIMD void accumulate_rows_f16_avx2(const float* weights, const uint8_t* rows, int64_t stride, int64_t count,
                                           float* out) {
  __m256 acc[kChunks];
  for (int c = 0; c < kChunks; ++c) acc[c] = _mm256_loadu_ps(out + 8 * c);
  for (int64_t j = 0; j < count; ++j) {
    const __m256 pv = _mm256_set1_ps(weights[j]);
    const auto* v = reinterpret_cast<const Fp16Bits*>(rows + j * stride);
    for (int c = 0; c < kChunks; ++c) {
      const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 8 * c)));
      acc[c] = _mm256_fmadd_ps(pv, v0, acc[c]);
    }
  }
  for (int c = 0; c < kChunks; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}

KEEL_KV_SIMD float dot_f32_avx2(const float* q, const float* k, int64_t n) {
  __m256 a0 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float total = _mm_cvtss_f32(s);
  for (; i < n; ++i) total += q[i] * k[i];
  return total;
}
#endif

bool use_simd() {
#if KEEL_HAVE_X86_KV_KERNELS
  static const bool simd = detect_cpu_features().has_avx2_kernel_set();
  return simd;
#else
  return false;
#endif
}

}  // namespace

std::string_view kv_cache_type_name(KvCacheType type) {
  return type == KvCacheType::kF16 ? "f16" : "f32";
}

KvCache::KvCache(KvCacheType type, int64_t layers, int64_t kv_dim, int64_t capacity)
    : type_(type),
      kv_dim_(kv_dim),
      capacity_(capacity),
      keys_(static_cast<size_t>(layers)),
      values_(static_cast<size_t>(layers)) {}

size_t KvCache::bytes() const {
  return 2 * keys_.size() * static_cast<size_t>(allocated_ * row_stride());
}

void KvCache::reserve(int64_t length) {
  if (length <= allocated_) return;
  const int64_t grown = std::min(capacity_, std::max({length, allocated_ * 2, kGrowthStep}));
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l].resize(static_cast<size_t>(grown * row_stride()));
    values_[l].resize(static_cast<size_t>(grown * row_stride()));
  }
  allocated_ = grown;
}

void KvCache::store(int64_t layer, int64_t position, const float* keys, const float* values) {
  uint8_t* k = keys_[static_cast<size_t>(layer)].data() + position * row_stride();
  uint8_t* v = values_[static_cast<size_t>(layer)].data() + position * row_stride();
  if (type_ == KvCacheType::kF32) {
    std::memcpy(k, keys, static_cast<size_t>(kv_dim_) * sizeof(float));
    std::memcpy(v, values, static_cast<size_t>(kv_dim_) * sizeof(float));
  } else {
    fp32_to_fp16_row(keys, reinterpret_cast<Fp16Bits*>(k), kv_dim_);
    fp32_to_fp16_row(values, reinterpret_cast<Fp16Bits*>(v), kv_dim_);
  }
}

void KvCache::copy_prefix(const KvCache& from, int64_t length) {
  reserve(length);
  const auto bytes = static_cast<size_t>(length * row_stride());
  for (size_t l = 0; l < keys_.size(); ++l) {
    std::memcpy(keys_[l].data(), from.keys_[l].data(), bytes);
    std::memcpy(values_[l].data(), from.values_[l].data(), bytes);
  }
}

float kv_dot(KvCacheType type, const float* q, const void* k, int64_t n) {
#if KEEL_HAVE_X86_KV_KERNELS
  if (use_simd()) {
    return type == KvCacheType::kF16 ? dot_f16_avx2(q, static_cast<const Fp16Bits*>(k), n)
                                     : dot_f32_avx2(q, static_cast<const float*>(k), n);
  }
#endif
  return type == KvCacheType::kF16 ? dot_f16_scalar(q, static_cast<const Fp16Bits*>(k), n)
                                   : dot_f32(q, static_cast<const float*>(k), n);
}

void kv_dot_rows(KvCacheType type, const float* q, const uint8_t* rows, int64_t stride, int64_t count, int64_t n,
                 float* scores) {
  int64_t j = 0;
#if KEEL_HAVE_X86_KV_KERNELS
  if (type == KvCacheType::kF16 && n % 16 == 0 && use_simd()) {
    for (; j + 4 <= count; j += 4) dot4_f16_avx2(q, rows + j * stride, stride, n, scores + j);
  }
#endif
  for (; j < count; ++j) scores[j] = kv_dot(type, q, rows + j * stride, n);
}

void kv_accumulate_rows(KvCacheType type, const float* weights, const uint8_t* rows, int64_t stride, int64_t count,
                        float* out, int64_t n) {
#if KEEL_HAVE_X86_KV_KERNELS
  if (type == KvCacheType::kF16 && use_simd()) {
    switch (n) {
      case 32:
        return accumulate_rows_f16_avx2<4>(weights, rows, stride, count, out);
      case 64:
        return accumulate_rows_f16_avx2<8>(weights, rows, stride, count, out);
      case 128:
        return accumulate_rows_f16_avx2<16>(weights, rows, stride, count, out);
      default:
        break;
    }
  }
#endif
  for (int64_t j = 0; j < count; ++j) kv_accumulate(type, weights[j], rows + j * stride, out, n);
}

void kv_accumulate(KvCacheType type, float p, const void* v, float* out, int64_t n) {
  if (type == KvCacheType::kF32) {
    accumulate_f32(p, static_cast<const float*>(v), out, n);
    return;
  }
#if KEEL_HAVE_X86_KV_KERNELS
  if (use_simd()) {
    accumulate_f16_avx2(p, static_cast<const Fp16Bits*>(v), out, n);
    return;
  }
#endif
  accumulate_f16_scalar(p, static_cast<const Fp16Bits*>(v), out, n);
}

}  // namespace keel::engine
