// Products of a weight matrix (any engine tensor type, used in place from the mapping)
// with a batch of float activation rows: out[t][r] = W.row(r) . x[t]. Activations are
// quantized once per row to the weight type's vec_dot_type (Q8_1 for Q4_1 weights, as
// llama.cpp's CPU backend does) into the caller's scratch buffer; weight rows are split
// across the pool in tiles, and each tile runs the kernel table's register-tiled GemmFn
// (or vec_dot per element where the type has none). Each output element is computed by
// exactly one thread with the arithmetic of vec_dot, so results depend neither on the
// thread count nor on the batch size. The forward pass (forward.cpp) and training call
// these functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"

namespace keel::engine {

// x is [n_tokens][w.cols], out is [n_tokens][w.rows] (row-major). scratch is reused
// between calls to avoid allocation. REQUIRES: w has a vec_dot kernel (Model::load checks).
void matmul(ComputePool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* out,
            std::vector<uint8_t>& scratch);

// matmul of several matrices with the same input (attention q, k, v; feed-forward gate,
// up): out[i] = matmul(*weights[i], x), with x quantized once and one fork-join for all,
// the same bits as separate matmul calls. REQUIRES: every matrix has w.cols columns and
// the same vec_dot_type; weights.size() == out.size().
void matmul_shared_input(ComputePool& pool, std::span<const WeightMatrix* const> weights, const float* x,
                         int64_t n_tokens, std::span<float* const> out, std::vector<uint8_t>& scratch);

}  // namespace keel::engine
