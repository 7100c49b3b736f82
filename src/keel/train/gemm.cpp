#include "keel/train/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>

namespace keel::train {
namespace {

// OpenBLAS starts as many threads as there are cores and would use them all for every
// call, also for the calls the pool's workers make side by side: held to one thread.
void hold_blas_to_one_thread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  hold_blas_to_one_thread();
  sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_split(engine::ComputePool& pool, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  hold_blas_to_one_thread();
  // One call per band of kBand rows or columns, whatever the thread count: OpenBLAS's
  // kernels may sum an element's terms in another order for another shape (its Haswell
  // kernels do, on a band's edge), so the shapes of the calls must not depend on how
  // many threads share them. Every call packs the whole of the operand its band does not
  // split, about 1/kBand of the call's work: split the dimension whose other operand is
  // the larger (m rows share b, k x n; n columns share a, m x k).
  constexpr int64_t kBand = 64;
  if (m >= n) {
    for_each_tile(pool, m, kBand, [&](int64_t r0, int64_t r1) {
      // Row r of op(a) starts at a + r * lda, or at a + r when a is stored transposed.
      const float* a0 = trans_a ? a + r0 : a + r0 * lda;
      sgemm(trans_a, trans_b, r1 - r0, n, k, alpha, a0, lda, b, ldb, beta, c + r0 * ldc, ldc);
    });
    return;
  }
  for_each_tile(pool, n, kBand, [&](int64_t c0, int64_t c1) {
    // Column j of op(b) starts at b + j, or at b + j * ldb when b is stored transposed.
    const float* b0 = trans_b ? b + c0 * ldb : b + c0;
    sgemm(trans_a, trans_b, m, c1 - c0, k, alpha, a, lda, b0, ldb, beta, c + c0, ldc);
  });
}

}  // namespace keel::train
