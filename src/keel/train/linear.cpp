#include "keel/train/linear.h"

#include <algorithm>

#include "keel/engine/matmul.h"
#include "keel/engine/quant.h"

namespace keel::train {
namespace {

// Rows of W dequantized at once: 256 x 1536 floats is 1.5 MiB, enough to keep the F32
// kernel busy over a 512-token batch and small beside the activations.
constexpr int64_t kBlockRows = 256;

}  // namespace

void linear_forward(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* x, int64_t n, float* y,
                    std::vector<uint8_t>& scratch) {
  engine::matmul(pool, w, x, n, y, scratch);
}

void linear_backward_input(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* dy, int64_t n,
                           float* dx, LinearScratch& s) {
  const int64_t cols = w.cols;
  for (int64_t r0 = 0; r0 < w.rows; r0 += kBlockRows) {
    const int64_t rb = std::min(kBlockRows, w.rows - r0);
    s.block.resize(static_cast<size_t>(rb * cols));
    s.transposed.resize(static_cast<size_t>(cols * rb));
    s.dy_block.resize(static_cast<size_t>(n * rb));
    s.product.resize(static_cast<size_t>(n * cols));
    pool.run(rb, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        engine::dequantize_row(w.type, w.row(r0 + r), s.block.data() + r * cols, cols);
    });
    pool.run(cols, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        for (int64_t r = 0; r < rb; ++r) s.transposed[c * rb + r] = s.block[r * cols + c];
      }
    });
    for (int64_t t = 0; t < n; ++t)
      std::copy(dy + t * w.rows + r0, dy + t * w.rows + r0 + rb, s.dy_block.data() + t * rb);
    // W^T's block as an F32 matrix of `cols` rows of rb elements: product[t][c] =
    // sum_r dy[t][r0 + r] * W[r0 + r][c].
    engine::WeightMatrix wt;
    wt.name = w.name + "^T";
    wt.type = engine::GgmlType::kF32;
    wt.rows = cols;
    wt.cols = rb;
    wt.row_bytes = rb * static_cast<int64_t>(sizeof(float));
    wt.data = reinterpret_cast<const uint8_t*>(s.transposed.data());
    engine::matmul(pool, wt, s.dy_block.data(), n, s.product.data(), s.quantized);
    pool.run(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin * cols; i < end * cols; ++i) dx[i] += s.product[static_cast<size_t>(i)];
    });
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
