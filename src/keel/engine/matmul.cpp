#include "keel/engine/matmul.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

// Rows per unit of work handed to a thread: a multiple of the kernels' row tile, small
// enough that two threads share a 192-row matrix evenly.
constexpr int64_t kRowsPerTask = 16;
// Below this many tokens the caller quantizes the activations alone (a fork-join costs
// more than quantizing a few rows).
constexpr int64_t kParallelQuantizeTokens = 16;

// Quantizes the n_tokens rows of x (cols each) into scratch; returns the row size.
int64_t quantize_activations(ComputePool& pool, GgmlType activation_type, const float* x, int64_t cols,
                             int64_t n_tokens, std::vector<uint8_t>& scratch) {
  const int64_t activation_bytes = row_size_bytes(activation_type, cols);
  scratch.resize(static_cast<size_t>(n_tokens * activation_bytes));
  const QuantizeRowFn quantize = quant_kernels()[activation_type].quantize_row;
  if (quantize == nullptr) std::abort();  // Model::load checked the weight type
  uint8_t* dst = scratch.data();
  auto rows = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) quantize(x + t * cols, dst + t * activation_bytes, cols);
  };
  if (n_tokens >= kParallelQuantizeTokens) {
    pool.run(n_tokens, rows);
  } else {
    rows(0, n_tokens);
  }
  return activation_bytes;
}

// Rows [begin, end) of w against every token.
void product_rows(const WeightMatrix& w, const uint8_t* activations, int64_t activation_bytes, int64_t n_tokens,
                  float* out, int64_t begin, int64_t end) {
  const TypeKernels& k = quant_kernels()[w.type];
  if (k.gemm != nullptr) {
    k.gemm(w.cols, w.row(begin), w.row_bytes, end - begin, activations, activation_bytes, n_tokens, out + begin,
           w.rows);
    return;
  }
  const VecDotFn dot = k.vec_dot;
  for (int64_t r = begin; r < end; ++r) {
    const uint8_t* row = w.row(r);
    for (int64_t t = 0; t < n_tokens; ++t) out[t * w.rows + r] = dot(w.cols, row, activations + t * activation_bytes);
  }
}

int64_t tasks_for(const WeightMatrix& w) {
  return (w.rows + kRowsPerTask - 1) / kRowsPerTask;
}

}  // namespace

void matmul(ComputePool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* out,
            std::vector<uint8_t>& scratch) {
  const GgmlType activation_type = tensor_type_traits(w.type).vec_dot_type;
  const int64_t activation_bytes = quantize_activations(pool, activation_type, x, w.cols, n_tokens, scratch);
  const uint8_t* activations = scratch.data();
  pool.run(tasks_for(w), [&](int64_t begin, int64_t end) {
    product_rows(w, activations, activation_bytes, n_tokens, out, begin * kRowsPerTask,
                 std::min(w.rows, end * kRowsPerTask));
  });
}

void matmul_shared_input(ComputePool& pool, std::span<const WeightMatrix* const> weights, const float* x,
                         int64_t n_tokens, std::span<float* const> out, std::vector<uint8_t>& scratch) {
  if (weights.empty()) return;
  const WeightMatrix& first = *weights[0];
  const GgmlType activation_type = tensor_type_traits(first.type).vec_dot_type;
  const int64_t activation_bytes = quantize_activations(pool, activation_type, x, first.cols, n_tokens, scratch);
  const uint8_t* activations = scratch.data();
  int64_t total = 0;
  for (const WeightMatrix* w : weights) total += tasks_for(*w);
  pool.run(total, [&](int64_t begin, int64_t end) {
    // Task i of the concatenation: find its matrix, then run the contiguous tasks of
    // each matrix the range touches as one call.
    int64_t offset = 0;
    for (size_t m = 0; m < weights.size() && begin < end; ++m) {
      const WeightMatrix& w = *weights[m];
      const int64_t tasks = tasks_for(w);
      if (begin < offset + tasks) {
        const int64_t local_end = std::min(end, offset + tasks) - offset;
        product_rows(w, activations, activation_bytes, n_tokens, out[m], (begin - offset) * kRowsPerTask,
                     std::min(w.rows, local_end * kRowsPerTask));
        begin = offset + local_end;
      }
      offset += tasks;
    }
  });
}

}  // namespace keel::engine
