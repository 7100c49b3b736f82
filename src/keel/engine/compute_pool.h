// The engine's fork-join pool: run(n, fn) splits [0, n) into one contiguous range per
// thread, calls fn(begin, end) on each (the caller's thread takes the first range) and
// returns when every range is done. The forward pass calls it several times per layer,
// so a hand-off costs well under a microsecond when the workers are awake: they spin
// on a generation counter for a short while after each job, then sleep on a futex.
// Range boundaries depend only on n and threads(), so results are reproducible for a
// given thread count. One caller at a time: run() is not reentrant and not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace keel::engine {

class ComputePool {
 public:
  // threads >= 1; threads - 1 workers are started, the caller is the last one.
  explicit ComputePool(int threads);
  ~ComputePool();
  ComputePool(const ComputePool&) = delete;
  ComputePool& operator=(const ComputePool&) = delete;

  int threads() const { return threads_; }

  // Calls fn(begin, end) over [0, n) split into min(threads, n) contiguous ranges:
  // range i is [n * i / chunks, n * (i + 1) / chunks). fn must not throw.
  void run(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct Workers;
  int threads_;
  std::unique_ptr<Workers> workers_;
};

}  // namespace keel::engine
