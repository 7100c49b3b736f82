// Products with a weight matrix of the base model, which may be quantized and is used
// in place from the GGUF mapping. Forward y = x . W^T with the arithmetic of the
// engine's kernels (engine/matmul.h) up to float rounding: the activations are rounded
// to the weight's vec_dot_type as inference does (Q8_1 for Q4_1 weights), then that
// rounded x and W, both dequantized to F32 (W a block of rows at a time), go through
// OpenBLAS. Backward dx += dy . W on the same dequantized blocks, so no F32 copy of the
// model ever exists. Weights are frozen: there is no dW. The gradient is that of the
// dequantized matrix (the straight-through view of the quantized forward).
#pragma once

#include <cstdint>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"

namespace keel::train {

// Buffers linear_forward and linear_backward_input reuse between calls (one per caller).
struct LinearScratch {
  std::vector<float> block;      // [block rows][cols], dequantized rows of W
  std::vector<uint8_t> rounded;  // x in the weight's vec_dot_type
  std::vector<float> x;          // that, dequantized
  std::vector<float> delta;      // Q8_1 block sums less the sums of x (see linear_forward)
  std::vector<float> minima;     // [block rows][blocks], Q4_1 / Q5_1 block minima of W
};

// y[t][r] = W.row(r) . x[t]; x is [n][w.cols], y is [n][w.rows] (overwritten). Matches
// engine::matmul, the reference, up to float rounding (the order of the additions);
// results do not depend on the thread count.
void linear_forward(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* x, int64_t n, float* y,
                    LinearScratch& scratch);

// dx[t][c] += sum_r dy[t][r] * W[r][c]; dy is [n][w.rows], dx is [n][w.cols]. Rows of W
// are dequantized 1024 at a time (the engine's dequantize_row) into an F32 panel that
// OpenBLAS multiplies, a band of the product per thread of the pool (gemm.h); results
// do not depend on the thread count.
void linear_backward_input(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* dy, int64_t n,
                           float* dx, LinearScratch& scratch);

// The same sum in plain loops, one dequantized row at a time, accumulated in double:
// the reference the fast path is tested against.
void linear_backward_input_reference(const engine::WeightMatrix& w, const float* dy, int64_t n, float* dx);

}  // namespace keel::train
