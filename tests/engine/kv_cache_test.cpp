// The attention's batched reads of the KV cache (kv_dot_rows, kv_accumulate_rows) give
// the row-by-row results to the bit, for every head size and row count, so that a
// prompt, a chunk of it and one decoded token all see the same numbers.
#include "keel/engine/kv_cache.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <random>
#include <vector>

#include "keel/engine/float16.h"

namespace keel::engine {
namespace {

struct Rows {
  std::vector<uint8_t> bytes;
  int64_t stride = 0;
};

// count rows of n values in a cache of `type`, with padding between rows as a cache row
// of several heads has.
Rows random_rows(KvCacheType type, int64_t count, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t element = type == KvCacheType::kF16 ? 2 : 4;
  Rows r;
  r.stride = (n + 24) * element;
  r.bytes.assign(static_cast<size_t>(count * r.stride), 0);
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t j = 0; j < count; ++j) {
    for (float& x : row) x = dist(rng);
    uint8_t* at = r.bytes.data() + j * r.stride;
    if (type == KvCacheType::kF16) {
      fp32_to_fp16_row(row.data(), reinterpret_cast<Fp16Bits*>(at), n);
    } else {
      std::memcpy(at, row.data(), static_cast<size_t>(n) * sizeof(float));
    }
  }
  return r;
}

TEST(KvCacheRows, BatchedDotsAndSumsEqualTheRowByRowOnes) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (KvCacheType type : {KvCacheType::kF16, KvCacheType::kF32}) {
    for (int64_t n : {8, 32, 48, 64, 72, 128, 256}) {
      for (int64_t count : {1, 3, 4, 5, 17, 64}) {
        const Rows keys = random_rows(type, count, n, rng);
        std::vector<float> q(static_cast<size_t>(n)), weights(static_cast<size_t>(count));
        for (float& x : q) x = dist(rng);
        for (float& w : weights) w = std::abs(dist(rng)) / static_cast<float>(count);
        std::vector<float> scores(static_cast<size_t>(count));
        kv_dot_rows(type, q.data(), keys.bytes.data(), keys.stride, count, n, scores.data());
        for (int64_t j = 0; j < count; ++j) {
          const float one = kv_dot(type, q.data(), keys.bytes.data() + j * keys.stride, n);
          EXPECT_EQ(std::bit_cast<uint32_t>(scores[j]), std::bit_cast<uint32_t>(one))
              << "n " << n << " count " << count << " row " << j;
        }
        std::vector<float> out(static_cast<size_t>(n), 0.25f), expected = out;
        kv_accumulate_rows(type, weights.data(), keys.bytes.data(), keys.stride, count, out.data(), n);
        for (int64_t j = 0; j < count; ++j) {
          kv_accumulate(type, weights[j], keys.bytes.data() + j * keys.stride, expected.data(), n);
        }
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_EQ(std::bit_cast<uint32_t>(out[i]), std::bit_cast<uint32_t>(expected[i]))
              << "n " << n << " count " << count << " element " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace keel::engine
