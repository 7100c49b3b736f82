#include "keel/engine/quant_avx512.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "keel/engine/quant_avx2.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KEEL_HAVE_AVX512_KERNELS 1
#else
#define KEEL_HAVE_AVX512_KERNELS 0
#endif

namespace keel::engine::avx512 {

#if KEEL_HAVE_AVX512_KERNELS

// GCC 12's AVX-512 headers start many intrinsics (casts, inserts, conversions) from a
// self-initialised "undefined" register (`__m512 __Y = __Y;`), which -Wuninitialized and
// -Wmaybe-uninitialized report once the intrinsic is inlined into a target("avx512f")
// function. The register is never read; silence the two warnings for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define KEEL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))

namespace {

// ----- the arithmetic ----------------------------------------------------------------
//
// The AVX2 dot product of a 32-element block (quant_avx2.cpp) computes 8 exact int32
// lane sums (lane k: elements 4k .. 4k + 3), converts them to float and adds them, times
// d = d_x * d_y, into an 8-lane float accumulator with one FMA per block; Q4_1 also adds
// m_x * s_y to a float running sum, block by block. At the end: the accumulator's
// horizontal sum (lanes k + (k + 4), then pairs), plus the running sum.
//
// Here one 512-bit register carries two such accumulators, for two (row, token)
// elements A and B, each lane doing exactly the float operations of its AVX2 lane:
//   lanes 0..3 = A's lanes 0..3, 4..7 = B's lanes 0..3,
//   lanes 8..11 = A's lanes 4..7, 12..15 = B's lanes 4..7.
// Weight quants enter as 16-byte quarters [A low | B low | A high | B high] (low: block
// elements 0..15), activations likewise, and one VNNI dpbusd gives all 16 lane sums.
// The results therefore have the bits of the AVX2 table's vec_dot, so the choice of
// table changes speed, never results. The pair is two rows of one token (matrix-vector
// products) or two tokens of one row (prompt batches).

// Lanes of a [f(A), g(A), f(B), g(B)] vector spread to the layout above: f(A) on A's
// lanes, f(B) on B's.
KEEL_AVX512 inline __m512 spread_pair(__m128 v) {
  const __m512i index = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2);
  return _mm512_permutexvar_ps(index, _mm512_castps128_ps512(v));
}

// The AVX2 kernels' horizontal sum of each of the two accumulators: {A, B}.
KEEL_AVX512 inline std::pair<float, float> pair_sums(__m512 acc) {
  // s = lo128 + hi128 of each 8-lane accumulator: A's in lanes 0..3, B's in lanes 4..7.
  const __m512 folded = _mm512_add_ps(acc, _mm512_shuffle_f32x4(acc, acc, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m128 sa = _mm512_castps512_ps128(folded);
  const __m128 sb = _mm512_extractf32x4_ps(folded, 1);
  auto finish = [](__m128 s) KEEL_AVX512 {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  };
  return {finish(sa), finish(sb)};
}

// [f0, f1] (the fp16 values at offsets 0 and 2) of the blocks at a and b, as floats
// [f0(a), f1(a), f0(b), f1(b)].
KEEL_AVX512 inline __m128 halves_of(const void* a, const void* b) {
  uint32_t x, y;
  std::memcpy(&x, a, 4);
  std::memcpy(&y, b, 4);
  return _mm_cvtph_ps(_mm_setr_epi32(static_cast<int>(x), static_cast<int>(y), 0, 0));
}

// 16 bytes from each of a and b as quarters [a | b | a >> 4 | b >> 4], masked to nibbles.
KEEL_AVX512 inline __m512i nibble_quarters(const uint8_t* a, const uint8_t* b) {
  const __m256i ab =
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                              _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1);
  return _mm512_and_si512(both, _mm512_set1_epi8(0x0F));
}

// 32 bytes from each of a and b as quarters [a low | b low | a high | b high].
KEEL_AVX512 inline __m512i byte_quarters(const void* a, const void* b) {
  const __m512i ab = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(a))),
                                        _mm256_loadu_si256(static_cast<const __m256i*>(b)), 1);
  return _mm512_shuffle_i64x2(ab, ab, _MM_SHUFFLE(3, 1, 2, 0));
}

// ----- formats -------------------------------------------------------------------------
//
// A format loads, for one block of elements A and B: the weight quants as unsigned bytes
// in quarters (weights), the activation quants in quarters (activations), the dpbusd
// start value that turns sum(u * y) into the signed sum of the AVX2 kernel (start), and
// [d, m] / [d, s] of each (the fp16 pairs at the start of the blocks).

// Q4_1 (nibbles q, value d q + m) with Q8_1: sum d_x d_y q y, plus m_x s_y per block.
struct Q4_1Format {
  using Weight = BlockQ4_1;
  using Activation = BlockQ8_1;
  static constexpr bool kMinTerm = true;
  KEEL_AVX512 static __m512i weights(const Weight* a, const Weight* b) { return nibble_quarters(a->qs, b->qs); }
  KEEL_AVX512 static __m512i activations(const Activation* a, const Activation* b) {
    return byte_quarters(a->qs, b->qs);
  }
  KEEL_AVX512 static __m512i start(__m512i) { return _mm512_setzero_si512(); }
};

// Q4_0 (nibbles q, value d (q - 8)) with Q8_0: the start -8 sum y gives sum (q - 8) y.
struct Q4_0Format {
  using Weight = BlockQ4_0;
  using Activation = BlockQ8_0;
  static constexpr bool kMinTerm = false;
  KEEL_AVX512 static __m512i weights(const Weight* a, const Weight* b) { return nibble_quarters(a->qs, b->qs); }
  KEEL_AVX512 static __m512i activations(const Activation* a, const Activation* b) {
    return byte_quarters(a->qs, b->qs);
  }
  // REQUIRES: activation quants in [-127, 127] (quant.h), so -y is a byte.
  KEEL_AVX512 static __m512i start(__m512i y) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), _mm512_sub_epi8(_mm512_setzero_si512(), y));
  }
};

// Q8_0 weights x (signed) with Q8_0: x enters as x + 128 (unsigned, exact for every
// byte), the start -128 sum y gives sum x y. (Matrix-vector products; batches have their
// own packed layout below.)
struct Q8_0Format {
  using Weight = BlockQ8_0;
  using Activation = BlockQ8_0;
  static constexpr bool kMinTerm = false;
  KEEL_AVX512 static __m512i weights(const Weight* a, const Weight* b) {
    return _mm512_xor_si512(byte_quarters(a->qs, b->qs), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  KEEL_AVX512 static __m512i activations(const Activation* a, const Activation* b) {
    return byte_quarters(a->qs, b->qs);
  }
  KEEL_AVX512 static __m512i start(__m512i y) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)),
                               _mm512_sub_epi8(_mm512_setzero_si512(), y));
  }
};

// ----- microkernels ---------------------------------------------------------------------

// One block of a pair accumulator: acc += d * float(lane sums), min += m * s (Q4_1).
template <typename F>
KEEL_AVX512 inline void accumulate(__m512i w, __m128 w_halves, __m512i y, __m512i start, __m128 y_halves, __m512& acc,
                                   __m128& min_terms) {
  // [d_x d_y, m_x s_y] of A and B, each one rounding as in the AVX2 kernel.
  const __m128 products = _mm_mul_ps(w_halves, y_halves);
  if constexpr (F::kMinTerm) min_terms = _mm_add_ps(min_terms, products);
  const __m512 sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(start, w, y));
  acc = _mm512_fmadd_ps(spread_pair(products), sums, acc);
}

template <typename F>
KEEL_AVX512 inline void store_pair(__m512 acc, __m128 min_terms, float* out_a, float* out_b) {
  auto [a, b] = pair_sums(acc);
  if constexpr (F::kMinTerm) {
    a += _mm_cvtss_f32(_mm_shuffle_ps(min_terms, min_terms, 1));
    b += _mm_cvtss_f32(_mm_shuffle_ps(min_terms, min_terms, 3));
  }
  *out_a = a;
  if (out_b != nullptr) *out_b = b;
}

constexpr int64_t kPrefetchBytes = 8192;

// Matrix-vector: P pairs of rows (2P rows; a missing last row repeats its partner and is
// not stored) against one token.
template <typename F, int P>
KEEL_AVX512 void row_pairs(int64_t blocks, const uint8_t* weights, int64_t weight_stride, int64_t rows,
                           const uint8_t* activation, float* out) {
  using W = typename F::Weight;
  using A = typename F::Activation;
  const W* w[2 * P];
  for (int r = 0; r < 2 * P; ++r) {
    w[r] = reinterpret_cast<const W*>(weights + std::min<int64_t>(r, rows - 1) * weight_stride);
  }
  const A* y = reinterpret_cast<const A*>(activation);
  __m512 acc[P];
  __m128 min_terms[P];
  for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps(), min_terms[p] = _mm_setzero_ps();
  // The rows are read once per token, from memory rather than cache in a large model:
  // while this tile runs, prefetch as many bytes as it reads, kPrefetchBytes ahead,
  // spread over its blocks.
  const int64_t tile_bytes = 2 * P * weight_stride;
  const uint8_t* prefetch = weights + kPrefetchBytes;
  const int64_t prefetch_step = (tile_bytes + blocks - 1) / blocks;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t line = 0; line < prefetch_step; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + b * prefetch_step + line), _MM_HINT_T0);
    }
    const __m512i yq = F::activations(y + b, y + b);
    const __m512i start = F::start(yq);
    const __m128 y_halves = halves_of(y + b, y + b);
    for (int p = 0; p < P; ++p) {
      const W* wa = w[2 * p] + b;
      const W* wb = w[2 * p + 1] + b;
      accumulate<F>(F::weights(wa, wb), halves_of(wa, wb), yq, start, y_halves, acc[p], min_terms[p]);
    }
  }
  for (int p = 0; p < P; ++p) {
    store_pair<F>(acc[p], min_terms[p], out + 2 * p, 2 * p + 1 < rows ? out + 2 * p + 1 : nullptr);
  }
}

// Batches: R rows against P pairs of tokens (2P tokens; a missing last token repeats its
// partner and is not stored). Element A of a pair is the even token, B the odd one.
template <typename F, int R, int P>
KEEL_AVX512 void token_pairs(int64_t blocks, const uint8_t* weights, int64_t weight_stride, const uint8_t* activations,
                             int64_t activation_stride, int64_t tokens, float* out, int64_t out_stride) {
  using W = typename F::Weight;
  using A = typename F::Activation;
  const W* w[R];
  const A* y[2 * P];
  for (int r = 0; r < R; ++r) w[r] = reinterpret_cast<const W*>(weights + r * weight_stride);
  for (int t = 0; t < 2 * P; ++t) {
    y[t] = reinterpret_cast<const A*>(activations + std::min<int64_t>(t, tokens - 1) * activation_stride);
  }
  __m512 acc[R][P];
  __m128 min_terms[R][P];
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_ps(), min_terms[r][p] = _mm_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i wq[R];
    __m128 w_halves[R];
    for (int r = 0; r < R; ++r) {
      wq[r] = F::weights(w[r] + b, w[r] + b);
      w_halves[r] = halves_of(w[r] + b, w[r] + b);
    }
    for (int p = 0; p < P; ++p) {
      const A* ya = y[2 * p] + b;
      const A* yb = y[2 * p + 1] + b;
      const __m512i yq = F::activations(ya, yb);
      const __m512i start = F::start(yq);
      const __m128 y_halves = halves_of(ya, yb);
      for (int r = 0; r < R; ++r) accumulate<F>(wq[r], w_halves[r], yq, start, y_halves, acc[r][p], min_terms[r][p]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) {
      float* a = out + (2 * p) * out_stride + r;
      float* b = 2 * p + 1 < tokens ? out + (2 * p + 1) * out_stride + r : nullptr;
      store_pair<F>(acc[r][p], min_terms[r][p], a, b);
    }
  }
}

constexpr int kRowPairs = 2;    // matrix-vector: 4 rows per microkernel
constexpr int kBatchRows = 4;   // batches: 4 rows ...
constexpr int kTokenPairs = 2;  // ... times 4 tokens per microkernel

template <typename F>
using TokenPairsFn = void (*)(int64_t, const uint8_t*, int64_t, const uint8_t*, int64_t, int64_t, float*, int64_t);

template <typename F, int R, int... Ps>
constexpr auto token_pairs_row(std::integer_sequence<int, Ps...>) {
  return std::array<TokenPairsFn<F>, sizeof...(Ps)>{token_pairs<F, R, Ps + 1>...};
}

template <typename F, int... Rs>
constexpr auto token_pairs_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<TokenPairsFn<F>, kTokenPairs>, sizeof...(Rs)>{
      token_pairs_row<F, Rs + 1>(std::make_integer_sequence<int, kTokenPairs>())...};
}

// Every row against one token.
template <typename F>
KEEL_AVX512 void matrix_vector(int64_t blocks, const uint8_t* w, int64_t weight_stride, int64_t rows, const uint8_t* a,
                               float* out) {
  int64_t r = 0;
  for (; r + 2 * kRowPairs <= rows; r += 2 * kRowPairs) {
    row_pairs<F, kRowPairs>(blocks, w + r * weight_stride, weight_stride, 2 * kRowPairs, a, out + r);
  }
  for (; r < rows; r += 2) row_pairs<F, 1>(blocks, w + r * weight_stride, weight_stride, rows - r, a, out + r);
}

template <typename F>
KEEL_AVX512 void gemm(int64_t n, const void* weights, int64_t weight_stride, int64_t rows, const void* activations,
                      int64_t activation_stride, int64_t tokens, float* out, int64_t out_stride) {
  const int64_t blocks = n / kQuantBlock;
  const auto* w = static_cast<const uint8_t*>(weights);
  const auto* a = static_cast<const uint8_t*>(activations);
  if (tokens == 1) {
    matrix_vector<F>(blocks, w, weight_stride, rows, a, out);
    return;
  }
  // Row tiles outside, token tiles inside: a tile's weight rows stay in L1 while the
  // activations stream from L2.
  static constexpr auto kTiles = token_pairs_table<F>(std::make_integer_sequence<int, kBatchRows>());
  for (int64_t r = 0; r < rows; r += kBatchRows) {
    const int64_t rt = std::min<int64_t>(kBatchRows, rows - r);
    for (int64_t t = 0; t < tokens; t += 2 * kTokenPairs) {
      const int64_t tt = std::min<int64_t>(2 * kTokenPairs, tokens - t);
      kTiles[rt - 1][(tt + 1) / 2 - 1](blocks, w + r * weight_stride, weight_stride, a + t * activation_stride,
                                       activation_stride, tt, out + t * out_stride + r, out_stride);
    }
  }
}

// ----- Q8_0 batches: operands packed once per call -------------------------------------
//
// Q8_0 weights against many tokens spend their time in the integer products, so the
// operands are laid out for them once per call rather than once per tile: no loads,
// shuffles or sign fix-ups are left in the inner loop but the VNNI product, the
// conversion and the two float operations of the AVX2 kernel.
//
// Here lane 2k of a register is token A's lane k and lane 2k + 1 token B's (a pair of
// tokens, one row). Activations enter as y + 128 (unsigned; exact for every byte), packed
// per pair and block as the 4-byte groups of A and B interleaved, with [d_A, d_B]; weight
// rows as their 4-byte groups doubled, with the start -128 sum x of each lane (so that
// the product gives sum x y) and d_x as a float, once per tile of rows. Each lane then
// does the float operations of its AVX2 lane, and the results have the AVX2 vec_dot's
// bits.

KEEL_AVX512 inline float half_to_float(Fp16Bits h) {
  return _cvtsh_ss(h);
}

struct alignas(64) Line {
  uint8_t bytes[64];
};

constexpr int kQ8Rows = 4;        // rows per microkernel ...
constexpr int kQ8TokenPairs = 4;  // ... times 8 tokens
// Token pairs packed at a time: the packed activations of a chunk stay in L2.
constexpr int64_t kQ8PackBytes = 256 * 1024;

// Tokens [2p, 2p + 1] of activations, for p in [0, pairs) (a missing last token repeats
// its partner), packed into quants (pairs * blocks lines) and scales (2 floats each).
KEEL_AVX512 void pack_q8_0_pairs(int64_t blocks, const uint8_t* activations, int64_t activation_stride,
                                 int64_t tokens, int64_t first_pair, int64_t pairs, Line* quants, float* scales) {
  const __m512i interleave = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t ta = 2 * (first_pair + p);
    const int64_t tb = std::min(ta + 1, tokens - 1);
    const auto* ya = reinterpret_cast<const BlockQ8_0*>(activations + ta * activation_stride);
    const auto* yb = reinterpret_cast<const BlockQ8_0*>(activations + tb * activation_stride);
    for (int64_t b = 0; b < blocks; ++b) {
      const __m512i a = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ya[b].qs)));
      const __m512i c = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(yb[b].qs)));
      _mm512_store_si512(quants + p * blocks + b, _mm512_xor_si512(_mm512_permutex2var_epi32(a, interleave, c), bias));
      scales[2 * (p * blocks + b)] = half_to_float(ya[b].d);
      scales[2 * (p * blocks + b) + 1] = half_to_float(yb[b].d);
    }
  }
}

// Rows [0, rows) of weights (row r at r * weight_stride) packed into quants (groups
// doubled), starts (-128 times each lane's sum) and scales, blocks entries per row.
KEEL_AVX512 void pack_q8_0_rows(int64_t blocks, const uint8_t* weights, int64_t weight_stride, int64_t rows,
                                Line* quants, Line* starts, float* scales) {
  const __m512i doubled = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t r = 0; r < rows; ++r) {
    const auto* x = reinterpret_cast<const BlockQ8_0*>(weights + r * weight_stride);
    for (int64_t b = 0; b < blocks; ++b) {
      const __m512i q = _mm512_permutexvar_epi32(
          doubled, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs))));
      _mm512_store_si512(quants + r * blocks + b, q);
      // 128 sum x per lane, exact in int32; its negation is exact too.
      const __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, q);
      _mm512_store_si512(starts + r * blocks + b, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
      scales[r * blocks + b] = half_to_float(x[b].d);
    }
  }
}

// The AVX2 kernel's horizontal sums (lanes k + (k + 4), then pairs, then the two left)
// of up to four interleaved accumulators (rows r0 .. r0 + 3 of one pair; missing ones
// zero), done for all of them at once: {A of rows 0..3, B of rows 0..3}.
KEEL_AVX512 inline __m512 interleaved_sums(__m512 acc0, __m512 acc1, __m512 acc2, __m512 acc3) {
  // Lanes k + (k + 4): the 256-bit halves of each accumulator added, two per register.
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(acc0, acc1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(acc0, acc1, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(acc2, acc3, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(acc2, acc3, _MM_SHUFFLE(3, 2, 3, 2)));
  // Then (s_0 + s_2, s_1 + s_3) of each: 128-bit quarter r = [A, B, A, B] of row r.
  const __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
  // Then the two left: lanes 4r (A) and 4r + 1 (B).
  const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), u);
}

// R packed rows against P packed token pairs (tokens 2p and 2p + 1 of out; of the last
// pair only token `tokens` - 1 when tokens is odd).
template <int R, int P>
KEEL_AVX512 void q8_0_tile(int64_t blocks, const Line* row_quants, const Line* row_starts, const float* row_scales,
                           const Line* pair_quants, const float* pair_scales, int64_t tokens, float* out,
                           int64_t out_stride) {
  __m512 acc[R][P];
  for (int r = 0; r < R; ++r) {
    for (int p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i y[P];
    __m512 dy[P];
    for (int p = 0; p < P; ++p) {
      y[p] = _mm512_load_si512(pair_quants + p * blocks + b);
      double both;
      std::memcpy(&both, pair_scales + 2 * (p * blocks + b), sizeof(both));
      dy[p] = _mm512_castpd_ps(_mm512_set1_pd(both));  // [d_A, d_B] in every lane pair
    }
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_load_si512(row_quants + r * blocks + b);
      const __m512i start = _mm512_load_si512(row_starts + r * blocks + b);
      const __m512 dx = _mm512_set1_ps(row_scales[r * blocks + b]);
      for (int p = 0; p < P; ++p) {
        const __m512 sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(start, y[p], x));
        acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy[p]), sums, acc[r][p]);
      }
    }
  }
  static_assert(R <= 4);
  const auto rows_mask = static_cast<__mmask8>((1u << R) - 1);
  for (int p = 0; p < P; ++p) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 sums = interleaved_sums(acc[0][p], R > 1 ? acc[R > 1 ? 1 : 0][p] : zero,
                                         R > 2 ? acc[R > 2 ? 2 : 0][p] : zero, R > 3 ? acc[R > 3 ? 3 : 0][p] : zero);
    _mm_mask_storeu_ps(out + 2 * p * out_stride, rows_mask, _mm512_castps512_ps128(sums));
    if (2 * p + 1 < tokens) {
      _mm_mask_storeu_ps(out + (2 * p + 1) * out_stride, rows_mask, _mm512_extractf32x4_ps(sums, 1));
    }
  }
}

using Q8TileFn = void (*)(int64_t, const Line*, const Line*, const float*, const Line*, const float*, int64_t, float*,
                          int64_t);

template <int R, int... Ps>
constexpr auto q8_0_tile_row(std::integer_sequence<int, Ps...>) {
  return std::array<Q8TileFn, sizeof...(Ps)>{q8_0_tile<R, Ps + 1>...};
}

template <int... Rs>
constexpr auto q8_0_tile_table(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<Q8TileFn, kQ8TokenPairs>, sizeof...(Rs)>{
      q8_0_tile_row<Rs + 1>(std::make_integer_sequence<int, kQ8TokenPairs>())...};
}

// The packing buffers of this thread, grown as needed and kept for the next call.
struct Q8Scratch {
  std::vector<Line> pair_quants, row_quants, row_starts;
  std::vector<float> pair_scales, row_scales;
};

KEEL_AVX512 void gemm_q8_0_batch(int64_t blocks, const uint8_t* weights, int64_t weight_stride, int64_t rows,
                                 const uint8_t* activations, int64_t activation_stride, int64_t tokens, float* out,
                                 int64_t out_stride) {
  static constexpr auto kTiles = q8_0_tile_table(std::make_integer_sequence<int, kQ8Rows>());
  thread_local Q8Scratch s;
  const int64_t pairs = (tokens + 1) / 2;
  const int64_t pair_bytes = blocks * static_cast<int64_t>(sizeof(Line) + 2 * sizeof(float));
  const int64_t chunk = std::min(pairs, std::max<int64_t>(kQ8TokenPairs, kQ8PackBytes / pair_bytes));
  auto grow = [](auto& v, int64_t size) {
    if (static_cast<int64_t>(v.size()) < size) v.resize(static_cast<size_t>(size));
  };
  grow(s.pair_quants, chunk * blocks);
  grow(s.pair_scales, 2 * chunk * blocks);
  grow(s.row_quants, kQ8Rows * blocks);
  grow(s.row_starts, kQ8Rows * blocks);
  grow(s.row_scales, kQ8Rows * blocks);
  for (int64_t p0 = 0; p0 < pairs; p0 += chunk) {
    const int64_t np = std::min(chunk, pairs - p0);
    const int64_t chunk_tokens = std::min<int64_t>(2 * np, tokens - 2 * p0);
    pack_q8_0_pairs(blocks, activations, activation_stride, tokens, p0, np, s.pair_quants.data(),
                    s.pair_scales.data());
    // Row tiles outside, token tiles inside: a tile's packed rows stay in L1 while the
    // packed activations stream from L2.
    for (int64_t r = 0; r < rows; r += kQ8Rows) {
      const int64_t rt = std::min<int64_t>(kQ8Rows, rows - r);
      pack_q8_0_rows(blocks, weights + r * weight_stride, weight_stride, rt, s.row_quants.data(),
                     s.row_starts.data(), s.row_scales.data());
      for (int64_t p = 0; p < np; p += kQ8TokenPairs) {
        const int64_t pt = std::min<int64_t>(kQ8TokenPairs, np - p);
        kTiles[rt - 1][pt - 1](blocks, s.row_quants.data(), s.row_starts.data(), s.row_scales.data(),
                               s.pair_quants.data() + p * blocks, s.pair_scales.data() + 2 * p * blocks,
                               chunk_tokens - 2 * p, out + (2 * (p0 + p)) * out_stride + r, out_stride);
      }
    }
  }
}

KEEL_AVX512 void gemm_q8_0(int64_t n, const void* weights, int64_t weight_stride, int64_t rows, const void* activations,
                           int64_t activation_stride, int64_t tokens, float* out, int64_t out_stride) {
  const int64_t blocks = n / kQuantBlock;
  const auto* w = static_cast<const uint8_t*>(weights);
  const auto* a = static_cast<const uint8_t*>(activations);
  if (tokens == 1) {
    matrix_vector<Q8_0Format>(blocks, w, weight_stride, rows, a, out);
    return;
  }
  gemm_q8_0_batch(blocks, w, weight_stride, rows, a, activation_stride, tokens, out, out_stride);
}

}  // namespace

bool compiled() {
  return true;
}

QuantKernelTable make_avx512_kernel_table() {
  // vec_dot stays the AVX2 one: gemm gives its bits.
  QuantKernelTable t(KernelIsa::kAvx512, avx2::make_avx2_kernel_table());
  t[GgmlType::kQ4_0].gemm = gemm<Q4_0Format>;
  t[GgmlType::kQ4_1].gemm = gemm<Q4_1Format>;
  t[GgmlType::kQ8_0].gemm = gemm_q8_0;
  return t;
}

#else  // no x86: the AVX2 table (itself scalar there) stands in

bool compiled() {
  return false;
}

QuantKernelTable make_avx512_kernel_table() {
  return QuantKernelTable(KernelIsa::kAvx512, avx2::make_avx2_kernel_table());
}

#endif

}  // namespace keel::engine::avx512
