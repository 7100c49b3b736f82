#include "keel/train/linear.h"

#include <algorithm>

#include "keel/engine/float16.h"
#include "keel/engine/quant.h"
#include "keel/engine/tensor_types.h"
#include "keel/train/gemm.h"

namespace keel::train {
namespace {

// Rows of W dequantized at once: 1024 x 1536 floats is 6 MiB, small beside the
// activations; each layer matrix of a small model is one block, the output layer's
// vocabulary goes through in blocks.
constexpr int64_t kBlockRows = 1024;

}  // namespace

namespace {

// Rows [r0, r0 + rb) of W dequantized into s.block, split across the pool.
void dequantize_block(engine::ComputePool& pool, const engine::WeightMatrix& w, int64_t r0, int64_t rb,
                      LinearScratch& s) {
  const int64_t cols = w.cols;
  s.block.resize(static_cast<size_t>(rb * cols));
  float* block = s.block.data();
  pool.run(rb, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) engine::dequantize_row(w.type, w.row(r0 + r), block + r * cols, cols);
  });
}

}  // namespace

namespace {

// The block minimum m of Q4_1 and Q5_1 rows (x = d q + m), at the same offset in both.
float block_min(engine::GgmlType type, const uint8_t* row, int64_t block) {
  if (type == engine::GgmlType::kQ4_1) {
    return engine::fp16_to_fp32(reinterpret_cast<const engine::BlockQ4_1*>(row)[block].m);
  }
  return engine::fp16_to_fp32(reinterpret_cast<const engine::BlockQ5_1*>(row)[block].m);
}

}  // namespace

void linear_forward(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* x, int64_t n, float* y,
                    LinearScratch& s) {
  const int64_t cols = w.cols;
  // x as the engine's kernel sees it: rounded to the vec_dot_type and read back.
  const engine::GgmlType activation_type = engine::tensor_type_traits(w.type).vec_dot_type;
  // Q4_1 and Q5_1 kernels take m * sum(x) of each block from Q8_1's block sum s, which
  // is rounded to F16 on its own; delta[t][b] = s - sum of the block's rounded x puts
  // that rounding back in: y += delta . M^T, M[r][b] the row's block minima.
  const bool block_sums = activation_type == engine::GgmlType::kQ8_1;
  const int64_t blocks = cols / engine::kQuantBlock;
  const float* input = x;
  if (activation_type != engine::GgmlType::kF32) {
    const int64_t row_bytes = engine::row_size_bytes(activation_type, cols);
    s.rounded.resize(static_cast<size_t>(n * row_bytes));
    s.x.resize(static_cast<size_t>(n * cols));
    if (block_sums) s.delta.resize(static_cast<size_t>(n * blocks));
    uint8_t* rounded = s.rounded.data();
    float* back = s.x.data();
    float* delta = s.delta.data();
    pool.run(n, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        engine::quantize_row(activation_type, x + t * cols, rounded + t * row_bytes, cols);
        engine::dequantize_row(activation_type, rounded + t * row_bytes, back + t * cols, cols);
        if (!block_sums) continue;
        const auto* q = reinterpret_cast<const engine::BlockQ8_1*>(rounded + t * row_bytes);
        for (int64_t b = 0; b < blocks; ++b) {
          const float* v = back + t * cols + b * engine::kQuantBlock;
          float sum = 0;
          for (int64_t j = 0; j < engine::kQuantBlock; ++j) sum += v[j];
          delta[t * blocks + b] = engine::fp16_to_fp32(q[b].s) - sum;
        }
      }
    });
    input = back;
  }
  for (int64_t r0 = 0; r0 < w.rows; r0 += kBlockRows) {
    const int64_t rb = std::min(kBlockRows, w.rows - r0);
    dequantize_block(pool, w, r0, rb, s);
    gemm_split(pool, false, true, n, rb, cols, 1.0f, input, cols, s.block.data(), cols, 0.0f, y + r0, w.rows);
    if (!block_sums) continue;
    s.minima.resize(static_cast<size_t>(rb * blocks));
    float* minima = s.minima.data();
    pool.run(rb, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t b = 0; b < blocks; ++b) minima[r * blocks + b] = block_min(w.type, w.row(r0 + r), b);
      }
    });
    gemm_split(pool, false, true, n, rb, blocks, 1.0f, s.delta.data(), blocks, minima, blocks, 1.0f, y + r0, w.rows);
  }
}

void linear_backward_input(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* dy, int64_t n,
                           float* dx, LinearScratch& s) {
  const int64_t cols = w.cols;
  for (int64_t r0 = 0; r0 < w.rows; r0 += kBlockRows) {
    const int64_t rb = std::min(kBlockRows, w.rows - r0);
    dequantize_block(pool, w, r0, rb, s);
    gemm_split(pool, false, false, n, cols, rb, 1.0f, dy + r0, w.rows, s.block.data(), cols, 1.0f, dx, cols);
  }
}

void linear_backward_input_reference(const engine::WeightMatrix& w, const float* dy, int64_t n, float* dx) {
  std::vector<double> sum(static_cast<size_t>(n * w.cols), 0.0);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    engine::dequantize_row(w.type, w.row(r), row.data(), w.cols);
    for (int64_t t = 0; t < n; ++t) {
      const double g = dy[t * w.rows + r];
      if (g == 0) continue;
      for (int64_t c = 0; c < w.cols; ++c) sum[t * w.cols + c] += g * row[c];
    }
  }
  for (int64_t i = 0; i < n * w.cols; ++i) dx[i] += static_cast<float>(sum[i]);
}

}  // namespace keel::train
