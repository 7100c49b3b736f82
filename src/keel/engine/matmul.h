// Products of a weight matrix (any engine tensor type, used in place from the mapping)
// with a batch of float activation rows: out[t][r] = W.row(r) . x[t]. Activations are
// quantized once per row to the weight type's vec_dot_type (Q8_1 for Q4_1 weights, as
// llama.cpp's CPU backend does) into the caller's scratch buffer; each output element
// is computed by exactly one thread in a fixed order, so results do not depend on the
// thread count. The forward pass (forward.cpp) and training call this one function.
#pragma once

#include <cstdint>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"

namespace keel::engine {

// x is [n_tokens][w.cols], out is [n_tokens][w.rows] (row-major). scratch is reused
// between calls to avoid allocation. REQUIRES: w has a vec_dot kernel (Model::load checks).
void matmul(ComputePool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* out,
            std::vector<uint8_t>& scratch);

}  // namespace keel::engine
