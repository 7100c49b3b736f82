// Products with frozen, possibly quantized weights (linear.h): the backward's blocked
// fast path against its plain-loop reference for every weight type the default model
// uses, the forward against the engine's quantized product and against F32 arithmetic
// on the dequantized matrix, and dx by finite differences on an F32 matrix.
#include "keel/train/linear.h"

#include <gtest/gtest.h>

#include <cmath>

#include "keel/engine/matmul.h"
#include "keel/engine/quant.h"
#include "train/gradient_check.h"

namespace keel::train {
namespace {

using testing::random_vector;

struct Matrix {
  std::vector<uint8_t> bytes;
  engine::WeightMatrix w;
  std::vector<float> dequantized;
};

Matrix make_matrix(engine::GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  Matrix m;
  const auto values = random_vector(static_cast<size_t>(rows * cols), seed);
  const int64_t rb = engine::row_size_bytes(type, cols);
  m.bytes.resize(static_cast<size_t>(rows * rb));
  for (int64_t r = 0; r < rows; ++r)
    engine::quantize_row(type, values.data() + r * cols, m.bytes.data() + r * rb, cols);
  m.w = {"w", type, rows, cols, rb, m.bytes.data()};
  m.dequantized.resize(values.size());
  for (int64_t r = 0; r < rows; ++r) engine::dequantize_row(type, m.w.row(r), m.dequantized.data() + r * cols, cols);
  return m;
}

class LinearOp : public ::testing::TestWithParam<engine::GgmlType> {};

TEST_P(LinearOp, BlockedBackwardMatchesReferenceAndForwardMatchesDequantizedProduct) {
  engine::ComputePool pool(2);
  // 1100 rows: one full block of 1024 and a partial one.
  const int64_t rows = 1100, cols = 64, n = 5;
  const Matrix m = make_matrix(GetParam(), rows, cols, 21);
  const auto dy = random_vector(static_cast<size_t>(n * rows), 22);
  std::vector<float> fast(static_cast<size_t>(n * cols), 1.0f), reference(fast.size(), 1.0f);
  LinearScratch scratch;
  linear_backward_input(pool, m.w, dy.data(), n, fast.data(), scratch);
  linear_backward_input_reference(m.w, dy.data(), n, reference.data());
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_NEAR(fast[i], reference[i], 1e-4 * (1 + std::fabs(reference[i]))) << i;
  }
  // The reference is dy . W (+ the 1 already there) on the dequantized matrix.
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < cols; c += 13) {
      double s = 1;
      for (int64_t r = 0; r < rows; ++r) s += static_cast<double>(dy[t * rows + r]) * m.dequantized[r * cols + c];
      EXPECT_NEAR(reference[t * cols + c], s, 1e-4);
    }
  }
  // Forward: the engine's product up to float rounding (and Q8_1's F16 block sums),
  // within activation quantization of the exact one.
  const auto x = random_vector(static_cast<size_t>(n * cols), 23);
  std::vector<float> y(static_cast<size_t>(n * rows)), engine_y(y.size());
  linear_forward(pool, m.w, x.data(), n, y.data(), scratch);
  std::vector<uint8_t> q;
  engine::matmul(pool, m.w, x.data(), n, engine_y.data(), q);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], engine_y[i], 1e-3 * (1 + std::fabs(engine_y[i]))) << i;
  const double tolerance = GetParam() == engine::GgmlType::kF32 ? 1e-4 : 0.05;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; r += 7) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += static_cast<double>(x[t * cols + c]) * m.dequantized[r * cols + c];
      EXPECT_NEAR(y[t * rows + r], s, tolerance);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, LinearOp,
                         ::testing::Values(engine::GgmlType::kF32, engine::GgmlType::kF16, engine::GgmlType::kQ8_0,
                                           engine::GgmlType::kQ4_1, engine::GgmlType::kQ4_0));

TEST(LinearOp, ResultsDoNotDependOnTheThreadCount) {
  // 150 tokens: bands of 16 rows split 1, 2 or 3 ways, a partial band included.
  const int64_t rows = 1100, cols = 96, n = 150;
  const Matrix m = make_matrix(engine::GgmlType::kQ4_1, rows, cols, 27);
  const auto x = random_vector(static_cast<size_t>(n * cols), 28);
  const auto dy = random_vector(static_cast<size_t>(n * rows), 29);
  const auto run = [&](int threads) {
    engine::ComputePool pool(threads);
    LinearScratch scratch;
    std::vector<float> y(static_cast<size_t>(n * rows)), dx(static_cast<size_t>(n * cols), 0.0f);
    linear_forward(pool, m.w, x.data(), n, y.data(), scratch);
    linear_backward_input(pool, m.w, dy.data(), n, dx.data(), scratch);
    return std::make_pair(y, dx);
  };
  const auto one = run(1);
  EXPECT_EQ(run(2), one);
  EXPECT_EQ(run(3), one);
}

TEST(LinearOp, InputGradientMatchesFiniteDifferencesOnF32Weights) {
  engine::ComputePool pool(1);
  const int64_t rows = 6, cols = 8, n = 3;
  const Matrix m = make_matrix(engine::GgmlType::kF32, rows, cols, 24);
  auto x = random_vector(static_cast<size_t>(n * cols), 25);
  const auto g = random_vector(static_cast<size_t>(n * rows), 26);
  std::vector<float> dx(x.size(), 0.0f);
  LinearScratch scratch;
  linear_backward_input(pool, m.w, g.data(), n, dx.data(), scratch);
  testing::expect_gradient(
      "dx", x, dx,
      [&] {
        std::vector<float> y(static_cast<size_t>(n * rows));
        linear_forward(pool, m.w, x.data(), n, y.data(), scratch);
        return testing::weighted_sum(y, g);
      },
      1e-2f, 1e-3);
}

}  // namespace
}  // namespace keel::train
