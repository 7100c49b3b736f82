// ComputePool: every index of [0, n) runs exactly once, in the documented ranges, the
// caller's thread takes the first range, and the pool survives many back-to-back jobs
// (the forward pass runs hundreds per token) and idle pauses long enough to sleep.
#include "keel/engine/compute_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace keel::engine {
namespace {

TEST(ComputePool, RunsEveryIndexOnceInTheDocumentedRanges) {
  for (int threads : {1, 2, 3, 5}) {
    ComputePool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 4, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex mu;
      std::set<std::pair<int64_t, int64_t>> ranges;
      pool.run(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        ranges.insert({begin, end});
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << n;
      const int64_t chunks = std::min<int64_t>(threads, n);
      std::set<std::pair<int64_t, int64_t>> expected;
      for (int64_t c = 0; c < chunks; ++c) expected.insert({n * c / chunks, n * (c + 1) / chunks});
      EXPECT_EQ(ranges, expected) << threads << " threads, n=" << n;
    }
  }
}

TEST(ComputePool, CallerRunsTheFirstRange) {
  ComputePool pool(2);
  const auto caller = std::this_thread::get_id();
  std::thread::id first, second;
  pool.run(2, [&](int64_t begin, int64_t) { (begin == 0 ? first : second) = std::this_thread::get_id(); });
  EXPECT_EQ(first, caller);
  EXPECT_NE(second, caller);
}

TEST(ComputePool, ManyBackToBackJobsAndSleepingWorkers) {
  ComputePool pool(3);
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 20000; ++job) {
    pool.run(job % 5, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i + 1);
    });
    // Now and then an idle gap longer than the workers' spin, so they sleep and must be woken.
    if (job % 5000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // job % 5 = n gives n (n + 1) / 2; n = 0..4 each 4000 times.
  EXPECT_EQ(sum.load(), 4000 * (0 + 1 + 3 + 6 + 10));
}

TEST(ComputePool, ResultsWrittenByWorkersAreVisibleAfterRun) {
  ComputePool pool(2);
  std::vector<int64_t> out(1000);
  for (int round = 0; round < 200; ++round) {
    pool.run(static_cast<int64_t>(out.size()), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[static_cast<size_t>(i)] = i * round;  // plain, non-atomic writes
    });
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], static_cast<int64_t>(i) * round);
  }
}

TEST(ComputePool, ClampsThreadsToAtLeastOne) {
  ComputePool pool(0);
  EXPECT_EQ(pool.threads(), 1);
  int calls = 0;
  pool.run(10, [&](int64_t begin, int64_t end) {
    ++calls;
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 10);
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace keel::engine
