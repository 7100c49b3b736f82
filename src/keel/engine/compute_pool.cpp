#include "keel/engine/compute_pool.h"

#include <algorithm>
#include <future>
#include <vector>

#include "keel/util/thread_pool.h"

namespace keel::engine {

struct ComputePool::Workers {
  explicit Workers(size_t n) : pool(n) {}
  ThreadPool pool;
};

ComputePool::ComputePool(int threads) : threads_(std::max(1, threads)) {
  if (threads_ > 1) workers_ = std::make_unique<Workers>(static_cast<size_t>(threads_ - 1));
}

ComputePool::~ComputePool() = default;

void ComputePool::run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t chunks = std::min<int64_t>(threads_, n);
  if (chunks <= 1 || workers_ == nullptr) {
    if (n > 0) fn(0, n);
    return;
  }
  std::vector<std::future<void>> pending;
  pending.reserve(static_cast<size_t>(chunks - 1));
  for (int64_t i = 1; i < chunks; ++i) {
    const int64_t begin = n * i / chunks, end = n * (i + 1) / chunks;
    pending.push_back(workers_->pool.submit([&fn, begin, end] { fn(begin, end); }));
  }
  fn(0, n / chunks);
  for (auto& f : pending) f.wait();
}

}  // namespace keel::engine
