// matmul and matmul_shared_input against the active table's vec_dot, element by element
// and bit for bit, at 1 to 3 threads and for a batch against its tokens one at a time:
// the forward pass relies on both to give the same logits whatever the thread count.
#include "keel/engine/matmul.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

struct OwnedMatrix {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};

OwnedMatrix random_matrix(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  OwnedMatrix m;
  m.w.type = type;
  m.w.rows = rows;
  m.w.cols = cols;
  m.w.row_bytes = row_size_bytes(type, cols);
  m.bytes.resize(static_cast<size_t>(rows * m.w.row_bytes));
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(rng);
    scalar_quant_kernels()[type].quantize_row(row.data(), m.bytes.data() + r * m.w.row_bytes, cols);
  }
  m.w.data = m.bytes.data();
  return m;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// out[t][r] by vec_dot, one token quantized at a time.
std::vector<float> reference(const WeightMatrix& w, const std::vector<float>& x, int64_t tokens) {
  const GgmlType act = tensor_type_traits(w.type).vec_dot_type;
  std::vector<uint8_t> q(row_size_bytes(act, w.cols));
  std::vector<float> out(static_cast<size_t>(tokens * w.rows));
  for (int64_t t = 0; t < tokens; ++t) {
    quantize_row(act, x.data() + t * w.cols, q.data(), w.cols);
    for (int64_t r = 0; r < w.rows; ++r) out[t * w.rows + r] = vec_dot(w.type, w.cols, w.row(r), q.data());
  }
  return out;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << what << " element " << i << ": " << got[i] << " vs " << want[i];
  }
}

// Q5_0 and F32 have no GemmFn: the vec_dot loop.
TEST(Matmul, EqualsVecDotPerElementAtAnyThreadCountAndBatch) {
  std::mt19937 rng(5);
  for (GgmlType type : {GgmlType::kQ4_1, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kF32}) {
    const int64_t cols = 96;  // three blocks: an odd count for the paired kernels
    for (int64_t rows : {1, 5, 37, 192}) {
      const OwnedMatrix m = random_matrix(type, rows, cols, rng);
      for (int64_t tokens : {1, 3, 17}) {
        const auto x = random_floats(static_cast<size_t>(tokens * cols), rng);
        const auto want = reference(m.w, x, tokens);
        for (int threads : {1, 2, 3}) {
          ComputePool pool(threads);
          std::vector<uint8_t> scratch;
          std::vector<float> out(want.size());
          matmul(pool, m.w, x.data(), tokens, out.data(), scratch);
          expect_same_bits(out, want,
                           std::string(tensor_type_traits(type).name) + " rows=" + std::to_string(rows) +
                               " tokens=" + std::to_string(tokens) + " threads=" + std::to_string(threads));
        }
      }
    }
  }
}

TEST(Matmul, SharedInputEqualsSeparateProducts) {
  std::mt19937 rng(7);
  const int64_t cols = 128;
  const OwnedMatrix a = random_matrix(GgmlType::kQ4_1, 40, cols, rng);
  const OwnedMatrix b = random_matrix(GgmlType::kQ4_1, 8, cols, rng);
  const OwnedMatrix c = random_matrix(GgmlType::kQ4_1, 21, cols, rng);
  for (int64_t tokens : {1, 4, 20}) {
    const auto x = random_floats(static_cast<size_t>(tokens * cols), rng);
    for (int threads : {1, 2, 3}) {
      ComputePool pool(threads);
      std::vector<uint8_t> scratch;
      std::vector<float> oa(static_cast<size_t>(tokens * 40)), ob(static_cast<size_t>(tokens * 8)),
          oc(static_cast<size_t>(tokens * 21));
      const WeightMatrix* weights[] = {&a.w, &b.w, &c.w};
      float* outs[] = {oa.data(), ob.data(), oc.data()};
      matmul_shared_input(pool, weights, x.data(), tokens, outs, scratch);
      const std::string what = "tokens=" + std::to_string(tokens) + " threads=" + std::to_string(threads);
      expect_same_bits(oa, reference(a.w, x, tokens), "a " + what);
      expect_same_bits(ob, reference(b.w, x, tokens), "b " + what);
      expect_same_bits(oc, reference(c.w, x, tokens), "c " + what);
    }
  }
}

}  // namespace
}  // namespace keel::engine
