#include "keel/engine/matmul.h"

#include "keel/engine/quant.h"

namespace keel::engine {

void matmul(ComputePool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* out,
            std::vector<uint8_t>& scratch) {
  const GgmlType activation_type = tensor_type_traits(w.type).vec_dot_type;
  const int64_t activation_bytes = row_size_bytes(activation_type, w.cols);
  scratch.resize(static_cast<size_t>(n_tokens * activation_bytes));
  for (int64_t t = 0; t < n_tokens; ++t) {
    quantize_row(activation_type, x + t * w.cols, scratch.data() + t * activation_bytes, w.cols);
  }
  const VecDotFn dot = quant_kernels()[w.type].vec_dot;
  const uint8_t* activations = scratch.data();
  pool.run(w.rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const uint8_t* row = w.row(r);
      for (int64_t t = 0; t < n_tokens; ++t) out[t * w.rows + r] = dot(w.cols, row, activations + t * activation_bytes);
    }
  });
}

}  // namespace keel::engine
