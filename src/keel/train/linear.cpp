#include "keel/train/linear.h"

#include <algorithm>
#include <cstring>

#include "keel/engine/matmul.h"
#include "keel/engine/quant.h"

namespace keel::train {
namespace {

// Rows of W dequantized at once: 256 x 1536 floats is 1.5 MiB, small beside the
// activations, and each tile of dx sums 256 rows before it is stored.
constexpr int64_t kBlockRows = 256;

}  // namespace

void linear_forward(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* x, int64_t n, float* y,
                    std::vector<uint8_t>& scratch) {
  engine::matmul(pool, w, x, n, y, scratch);
}

namespace {

// A tile of kTileTokens x kTileCols outputs: dx[t][c] += sum_r dy[t][r] w[r][c] over
// the block's rows, the accumulators held in 16 vectors of 16 floats (GCC vector
// extensions: 16 AVX-512 registers, or twice as many halves on AVX2), each row of w
// loaded once per 4 tokens. Edge tiles take the plain loop below it.
constexpr int64_t kTileTokens = 4;
constexpr int64_t kTileCols = 64;
constexpr int64_t kLanes = 16;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

Lanes load(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

void accumulate_tile(const float* dy, int64_t dy_stride, const float* w, int64_t rows, int64_t cols, float* dx,
                     int64_t t0, int64_t tokens, int64_t c0, int64_t width) {
  if (tokens == kTileTokens && width == kTileCols) {
    constexpr int64_t kVectors = kTileCols / kLanes;
    Lanes acc[kTileTokens][kVectors] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* wr = w + r * cols + c0;
      Lanes wv[kVectors];
      for (int64_t j = 0; j < kVectors; ++j) wv[j] = load(wr + j * kLanes);
      for (int64_t t = 0; t < kTileTokens; ++t) {
        const float a = dy[(t0 + t) * dy_stride + r];
        for (int64_t j = 0; j < kVectors; ++j) acc[t][j] += a * wv[j];
      }
    }
    for (int64_t t = 0; t < kTileTokens; ++t) {
      float* out = dx + (t0 + t) * cols + c0;
      for (int64_t j = 0; j < kVectors; ++j) {
        Lanes o = load(out + j * kLanes) + acc[t][j];
        std::memcpy(out + j * kLanes, &o, sizeof(o));
      }
    }
    return;
  }
  for (int64_t t = t0; t < t0 + tokens; ++t) {
    float* out = dx + t * cols + c0;
    for (int64_t r = 0; r < rows; ++r) {
      const float a = dy[t * dy_stride + r];
      const float* wr = w + r * cols + c0;
      for (int64_t c = 0; c < width; ++c) out[c] += a * wr[c];
    }
  }
}

}  // namespace

void linear_backward_input(engine::ComputePool& pool, const engine::WeightMatrix& w, const float* dy, int64_t n,
                           float* dx, LinearScratch& s) {
  const int64_t cols = w.cols;
  const int64_t token_tiles = (n + kTileTokens - 1) / kTileTokens;
  const int64_t col_tiles = (cols + kTileCols - 1) / kTileCols;
  for (int64_t r0 = 0; r0 < w.rows; r0 += kBlockRows) {
    const int64_t rb = std::min(kBlockRows, w.rows - r0);
    s.block.resize(static_cast<size_t>(rb * cols));
    pool.run(rb, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        engine::dequantize_row(w.type, w.row(r0 + r), s.block.data() + r * cols, cols);
      }
    });
    // Each unit owns one tile of dx, so no two threads add to the same element, and
    // every element sums the block's rows in the same order whatever the thread count.
    pool.run(token_tiles * col_tiles, [&](int64_t begin, int64_t end) {
      for (int64_t unit = begin; unit < end; ++unit) {
        const int64_t t0 = (unit / col_tiles) * kTileTokens, c0 = (unit % col_tiles) * kTileCols;
        accumulate_tile(dy + r0, w.rows, s.block.data(), rb, cols, dx, t0, std::min(kTileTokens, n - t0), c0,
                        std::min(kTileCols, cols - c0));
      }
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
