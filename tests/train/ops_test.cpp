// Each training op's backward (ops.h) against central finite differences of its own
// forward on tiny random inputs, plus the forwards against direct formulas.
#include "keel/train/ops.h"

#include <gtest/gtest.h>

#include <cmath>

#include "keel/engine/quant.h"
#include "train/gradient_check.h"

namespace keel::train {
namespace {

using testing::expect_gradient;
using testing::random_vector;
using testing::weighted_sum;

engine::WeightMatrix f32_matrix(const std::vector<float>& values, int64_t rows, int64_t cols) {
  engine::WeightMatrix w;
  w.name = "test";
  w.type = engine::GgmlType::kF32;
  w.rows = rows;
  w.cols = cols;
  w.row_bytes = cols * 4;
  w.data = reinterpret_cast<const uint8_t*>(values.data());
  return w;
}

TEST(EmbeddingOp, ForwardDequantizesRowsAndBackwardScattersIntoThem) {
  const int64_t vocab = 5, cols = 32;
  const auto table = random_vector(static_cast<size_t>(vocab * cols), 1);
  std::vector<uint8_t> q8(static_cast<size_t>(vocab * engine::row_size_bytes(engine::GgmlType::kQ8_0, cols)));
  const int64_t rb = engine::row_size_bytes(engine::GgmlType::kQ8_0, cols);
  for (int64_t r = 0; r < vocab; ++r)
    engine::quantize_row(engine::GgmlType::kQ8_0, table.data() + r * cols, q8.data() + r * rb, cols);
  engine::WeightMatrix w{"embd", engine::GgmlType::kQ8_0, vocab, cols, rb, q8.data()};
  const std::vector<int32_t> tokens = {3, 0, 3};
  std::vector<float> out(3 * cols);
  embedding_forward(w, tokens, out.data());
  for (int64_t i = 0; i < cols; ++i) {
    EXPECT_NEAR(out[i], table[3 * cols + i], 0.01f);
    EXPECT_EQ(out[i], out[2 * cols + i]);
    EXPECT_NEAR(out[cols + i], table[i], 0.01f);
  }
  // loss = sum w . embed(tokens): d/dtable by differences on an F32 table.
  auto f32 = table;
  const auto weights = random_vector(out.size(), 2);
  std::vector<float> dtable(f32.size(), 0.0f);
  embedding_backward(tokens, weights.data(), cols, dtable.data());
  expect_gradient("dtable", f32, dtable, [&] {
    std::vector<float> y(out.size());
    embedding_forward(f32_matrix(f32, vocab, cols), tokens, y.data());
    return weighted_sum(y, weights);
  });
  for (int64_t i = 0; i < cols; ++i) EXPECT_EQ(dtable[cols + i], 0.0f);  // token 1 unused
}

TEST(RmsNormOp, GradientsOfInputAndWeightMatchFiniteDifferences) {
  const int64_t rows = 3, n = 16;
  auto x = random_vector(static_cast<size_t>(rows * n), 3);
  auto weight = random_vector(static_cast<size_t>(n), 4);
  const auto g = random_vector(x.size(), 5);
  std::vector<float> out(x.size()), rstd(rows);
  rms_norm_forward(x.data(), weight.data(), rows, n, 1e-5f, out.data(), rstd.data());
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  EXPECT_NEAR(out[2], x[2] * weight[2] / std::sqrt(sum / n + 1e-5), 1e-5);
  std::vector<float> dx(x.size(), 0.0f), dw(weight.size(), 0.0f);
  rms_norm_backward(g.data(), x.data(), weight.data(), rstd.data(), rows, n, dx.data(), dw.data());
  const auto loss = [&] {
    std::vector<float> y(x.size()), r(rows);
    rms_norm_forward(x.data(), weight.data(), rows, n, 1e-5f, y.data(), r.data());
    return weighted_sum(y, g);
  };
  expect_gradient("dx", x, dx, loss, 1e-3f);
  expect_gradient("dweight", weight, dw, loss, 1e-3f);
  // Backward adds: a second call doubles the gradient.
  auto dx2 = dx;
  rms_norm_backward(g.data(), x.data(), weight.data(), rstd.data(), rows, n, dx2.data());
  EXPECT_FLOAT_EQ(dx2[7], 2 * dx[7]);
}

class RopeOp : public ::testing::TestWithParam<engine::RopeStyle> {};

TEST_P(RopeOp, RotatesPairsAndItsBackwardMatchesFiniteDifferences) {
  const engine::RopeStyle style = GetParam();
  const int64_t rows = 4, heads = 2, hd = 8, n_rot = 6;  // partial rotation: dims 6, 7 pass through
  const std::vector<int64_t> positions = {0, 1, 5, 2};
  const std::vector<float> factors = {1.0f, 2.0f, 4.0f};
  const RopeAngles angles(10000.0f, 0.5f, n_rot, factors.data(), positions);
  // theta(row 2, pair 1) = 5 * 0.5 * 10000^(-2/6) / 2.
  EXPECT_NEAR(angles.cos(2, 1), std::cos(5 * 0.5 * std::pow(10000.0, -2.0 / 6) / 2), 1e-6);
  auto x = random_vector(static_cast<size_t>(rows * heads * hd), 6);
  auto y = x;
  rope_forward(y.data(), rows, heads, hd, angles, style);
  // Row 2, head 1, pair 1: (2, 3) for normal, (1, 4) for NeoX.
  const int64_t a = style == engine::RopeStyle::kNormal ? 2 : 1, b = style == engine::RopeStyle::kNormal ? 3 : 4;
  const float* v = x.data() + (2 * heads + 1) * hd;
  const float* r = y.data() + (2 * heads + 1) * hd;
  EXPECT_NEAR(r[a], v[a] * angles.cos(2, 1) - v[b] * angles.sin(2, 1), 1e-6);
  EXPECT_NEAR(r[b], v[a] * angles.sin(2, 1) + v[b] * angles.cos(2, 1), 1e-6);
  EXPECT_EQ(r[7], v[7]);
  for (int64_t i = 0; i < heads * hd; ++i) EXPECT_NEAR(y[i], x[i], 1e-7);  // position 0: identity

  const auto g = random_vector(x.size(), 7);
  auto dx = g;
  rope_backward(dx.data(), rows, heads, hd, angles, style);
  expect_gradient(
      "dx", x, dx,
      [&] {
        auto z = x;
        rope_forward(z.data(), rows, heads, hd, angles, style);
        return weighted_sum(z, g);
      },
      1e-2f, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Styles, RopeOp, ::testing::Values(engine::RopeStyle::kNormal, engine::RopeStyle::kNeox));

TEST(AttentionOp, GroupedQueryCausalGradientsMatchFiniteDifferences) {
  engine::ComputePool pool(2);
  const AttentionShape shape{4, 2, 4};
  const std::vector<Segment> segments = {{0, 3}, {3, 4}};  // two sequences
  const int64_t rows = 7, q_dim = 16, kv_dim = 8;
  auto q = random_vector(static_cast<size_t>(rows * q_dim), 8);
  auto k = random_vector(static_cast<size_t>(rows * kv_dim), 9);
  auto v = random_vector(static_cast<size_t>(rows * kv_dim), 10);
  const auto g = random_vector(q.size(), 11);
  std::vector<float> out(q.size()), lse(static_cast<size_t>(rows * shape.heads));
  attention_forward(pool, q.data(), k.data(), v.data(), segments, shape, out.data(), lse.data());
  // The first row of each sequence sees only itself: out = v of its kv head.
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(out[3 * q_dim + h * 4 + i], v[3 * kv_dim + (h / 2) * 4 + i], 1e-6);
  }
  // Row 1, head 3 (kv head 1), by hand.
  {
    double s[2], m = -1e30, z = 0;
    for (int j = 0; j < 2; ++j) {
      s[j] = 0;
      for (int i = 0; i < 4; ++i) s[j] += q[1 * q_dim + 12 + i] * k[j * kv_dim + 4 + i];
      s[j] /= 2.0;
      m = std::max(m, s[j]);
    }
    for (double& e : s) z += std::exp(e - m);
    for (int i = 0; i < 4; ++i) {
      const double o = (std::exp(s[0] - m) * v[4 + i] + std::exp(s[1] - m) * v[kv_dim + 4 + i]) / z;
      EXPECT_NEAR(out[q_dim + 12 + i], o, 1e-5);
    }
    EXPECT_NEAR(lse[1 * 4 + 3], m + std::log(z), 1e-5);
  }
  std::vector<float> dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  attention_backward(pool, g.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), segments, shape, dq.data(),
                     dk.data(), dv.data());
  const auto loss = [&] {
    std::vector<float> o(q.size()), l(lse.size());
    attention_forward(pool, q.data(), k.data(), v.data(), segments, shape, o.data(), l.data());
    return weighted_sum(o, g);
  };
  expect_gradient("dq", q, dq, loss, 1e-2f, 5e-3);
  expect_gradient("dk", k, dk, loss, 1e-2f, 5e-3);
  expect_gradient("dv", v, dv, loss, 1e-2f, 5e-3);
  // The last key of a sequence is seen only by the last query: nothing flows from
  // earlier rows, so dk there comes from one query row alone; the sequences are
  // independent, so perturbing sequence 2 leaves sequence 1's outputs as they were.
  auto k2 = k;
  k2[5 * kv_dim] += 1.0f;
  std::vector<float> o2(q.size()), l2(lse.size());
  attention_forward(pool, q.data(), k2.data(), v.data(), segments, shape, o2.data(), l2.data());
  for (int64_t i = 0; i < 5 * q_dim; ++i) EXPECT_EQ(o2[i], out[i]) << i;
}

TEST(AttentionOp, LongSequencesSplitIntoQueryBlocksMatchFiniteDifferencesOnAnyThreadCount) {
  // 70 and 41 rows: blocks of 64 query rows, a partial last block included.
  const AttentionShape shape{2, 1, 8};
  const std::vector<Segment> segments = {{0, 70}, {70, 41}};
  const int64_t rows = 111, q_dim = 16, kv_dim = 8;
  auto q = random_vector(static_cast<size_t>(rows * q_dim), 40);
  auto k = random_vector(static_cast<size_t>(rows * kv_dim), 41);
  auto v = random_vector(static_cast<size_t>(rows * kv_dim), 42);
  const auto g = random_vector(q.size(), 43);
  std::vector<float> out(q.size()), lse(static_cast<size_t>(rows * shape.heads));
  engine::ComputePool one(1), three(3);
  attention_forward(one, q.data(), k.data(), v.data(), segments, shape, out.data(), lse.data());
  const auto backward = [&](engine::ComputePool& pool) {
    std::vector<float> dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    attention_backward(pool, g.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), segments, shape, dq.data(),
                       dk.data(), dv.data());
    return std::vector<std::vector<float>>{dq, dk, dv};
  };
  const auto grads = backward(one);
  EXPECT_EQ(backward(three), grads);
  const auto loss = [&] {
    std::vector<float> o(q.size()), l(lse.size());
    attention_forward(one, q.data(), k.data(), v.data(), segments, shape, o.data(), l.data());
    return weighted_sum(o, g);
  };
  expect_gradient("dq", q, grads[0], loss, 1e-2f, 5e-3, 11);
  expect_gradient("dk", k, grads[1], loss, 1e-2f, 5e-3, 7);
  expect_gradient("dv", v, grads[2], loss, 1e-2f, 5e-3, 7);
}

TEST(SwigluOp, GradientsMatchFiniteDifferences) {
  auto gate = random_vector(40, 12, 3.0f);
  auto up = random_vector(40, 13, 2.0f);
  const auto g = random_vector(40, 14);
  std::vector<float> out(40);
  swiglu_forward(gate.data(), up.data(), 40, out.data());
  EXPECT_NEAR(out[5], gate[5] / (1 + std::exp(-gate[5])) * up[5], 1e-6);
  std::vector<float> dgate(40, 0.0f), dup(40, 0.0f);
  swiglu_backward(g.data(), gate.data(), up.data(), 40, dgate.data(), dup.data());
  const auto loss = [&] {
    std::vector<float> o(40);
    swiglu_forward(gate.data(), up.data(), 40, o.data());
    return weighted_sum(o, g);
  };
  expect_gradient("dgate", gate, dgate, loss, 1e-3f);
  expect_gradient("dup", up, dup, loss, 1e-3f);
}

TEST(OutputCrossEntropy, MaskedMeanLossAndItsGradientMatchFiniteDifferences) {
  engine::ComputePool pool(2);
  const int64_t vocab = 37, d = 16, rows = 5;
  const auto weights = random_vector(static_cast<size_t>(vocab * d), 15);
  const engine::WeightMatrix w = f32_matrix(weights, vocab, d);
  auto hidden = random_vector(static_cast<size_t>(rows * d), 16);
  const std::vector<int32_t> targets = {4, -1, 36, 0, -1};
  OutputLossScratch scratch;
  std::vector<float> dh(hidden.size(), 0.0f);
  const double total = output_cross_entropy(pool, w, hidden.data(), targets, 1.0f / 3, dh.data(), scratch, 2);
  // By hand: -log softmax(W h_t)[target] summed over the three targeted rows.
  double expected = 0;
  for (int64_t t = 0; t < rows; ++t) {
    if (targets[t] < 0) continue;
    std::vector<double> z(vocab);
    double m = -1e30, s = 0;
    for (int64_t j = 0; j < vocab; ++j) {
      z[j] = 0;
      for (int64_t i = 0; i < d; ++i) z[j] += static_cast<double>(weights[j * d + i]) * hidden[t * d + i];
      m = std::max(m, z[j]);
    }
    for (double e : z) s += std::exp(e - m);
    expected += m + std::log(s) - z[targets[t]];
  }
  EXPECT_NEAR(total, expected, 1e-4);
  // Chunking changes nothing but memory.
  OutputLossScratch other;
  EXPECT_NEAR(output_cross_entropy(pool, w, hidden.data(), targets, 1.0f, nullptr, other, 64), expected, 1e-4);
  expect_gradient(
      "dhidden", hidden, dh,
      [&] {
        OutputLossScratch s;
        return output_cross_entropy(pool, w, hidden.data(), targets, 1.0f, nullptr, s) / 3;
      },
      1e-2f, 5e-3);
  for (int64_t i = 0; i < d; ++i) {
    EXPECT_EQ(dh[d + i], 0.0f);  // masked rows get no gradient
    EXPECT_EQ(dh[4 * d + i], 0.0f);
  }
}

}  // namespace
}  // namespace keel::train
