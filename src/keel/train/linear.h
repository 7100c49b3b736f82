// Products with a weight matrix of the base model, which may be quantized and is used
// in place from the GGUF mapping: forward y = x . W^T with the engine's kernels
// (engine/matmul.h, activations quantized to the weight's vec_dot_type as inference
// does), backward dx += dy . W with W dequantized a block of rows at a time, so no F32
// copy of the model ever exists. Weights are frozen: there is no dW. The gradient is
// that of the dequantized matrix (the straight-through view of the quantized forward).
#pragma once

#include <cstdint>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"

namespace keel::train {

// Buffers linear_backward_input reuses between calls (one per caller thread).
struct LinearScratch {
  std::vector<float> block;  // [block rows][cols], dequantized rows of W
};

// y[t][r] = W.row(r) . x[t]; x is [n][w.cols], y is [n][w.rows] (overwritten).
void linear_forward(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* x, int64_t n, float* y,
                    std::vector<uint8_t>& scratch);

// dx[t][c] += sum_r dy[t][r] * W[r][c]; dy is [n][w.rows], dx is [n][w.cols]. Rows of W
// are dequantized 256 at a time (the engine's dequantize_row) and multiplied in
// register tiles of 4 tokens x 64 columns split across the pool; results do not
// depend on the thread count.
void linear_backward_input(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* dy, int64_t n,
                           float* dx, LinearScratch& scratch);

// The same sum in plain loops, one dequantized row at a time, accumulated in double:
// the reference the fast path is tested against.
void linear_backward_input_reference(const engine::WeightMatrix& w, const float* dy, int64_t n, float* dx);

}  // namespace keel::train
