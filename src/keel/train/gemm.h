// Single-precision matrix products of the trainer (linear.cpp's forward and input
// gradients, LoRA, attention) through OpenBLAS's cblas_sgemm, always on the calling
// thread with OpenBLAS held to one thread of its own: Keel's ComputePool does the
// threading. Small products go to the pool's workers side by side (for_each_tile);
// gemm_split cuts a large one into bands of rows or columns that the workers share. OpenBLAS's own
// threads split one product alone about 1.1x faster (512 x 576 x 1536, 2 threads), but
// between products they spin on sched_yield while the pool works: measured on 2 cores,
// a training step then took 1.1-1.4x as long, with 13x the system time.
// The products, and the bands of a split, have the same shapes whatever the thread
// count, so no thread count changes a result (an element's order of summation may
// depend on the shape of its product: OpenBLAS's Haswell kernels' does).
#pragma once

#include <algorithm>
#include <cstdint>

#include "keel/engine/compute_pool.h"

namespace keel::train {

// Row-major: c[m][n] = alpha * op(a) . op(b) + beta * c, op(a) [m][k], op(b) [k][n];
// trans_a: a is stored [k][m] (lda >= m), else [m][k] (lda >= k); likewise b.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The same product split across the pool in bands of 64 rows or columns, one call
// each, whichever leaves less for every call to pack.
void gemm_split(engine::ComputePool& pool, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Calls fn(begin, end) for every tile [i * tile, min(n, (i + 1) * tile)) of [0, n), the
// tiles split across the pool: the tiles, and so the results of products made per
// tile, are the same whatever the thread count.
template <typename Fn>
void for_each_tile(engine::ComputePool& pool, int64_t n, int64_t tile, const Fn& fn) {
  pool.run((n + tile - 1) / tile, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) fn(i * tile, std::min(n, (i + 1) * tile));
  });
}

}  // namespace keel::train
