#include "keel/engine/compute_pool.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace keel::engine {
namespace {

// Spin iterations (each a pause: 10 to 140 cycles, by CPU) before a waiter sleeps: long
// enough to bridge the forward pass's serial steps between two run() calls, short enough
// not to burn a core shared with other processes when the engine is idle.
constexpr int kSpinIterations = 1 << 11;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// Waits until word != seen: spins, then sleeps; `sleepers` counts the threads that may be
// in futex_wait on `word`, so that the writer issues a wake-up only when one is needed.
uint32_t wait_for_change(std::atomic<uint32_t>& word, uint32_t seen, std::atomic<int>& sleepers) {
  for (int i = 0; i < kSpinIterations; ++i) {
    const uint32_t now = word.load(std::memory_order_acquire);
    if (now != seen) return now;
    cpu_relax();
  }
  for (;;) {
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    uint32_t now = word.load(std::memory_order_seq_cst);
    if (now == seen) futex_wait(word, seen);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
    now = word.load(std::memory_order_acquire);
    if (now != seen) return now;
  }
}

// Publishes a new value of word (already stored) to the waiters of wait_for_change.
void wake_if_sleeping(std::atomic<uint32_t>& word, std::atomic<int>& sleepers) {
  if (sleepers.load(std::memory_order_seq_cst) > 0) futex_wake_all(word);
}

}  // namespace

// The job is published through `generation`: run() writes fn/n/chunks, then bumps
// generation (release); a worker that sees the new generation (acquire) reads the job,
// runs its range and bumps `finished`. run() returns when finished has reached the
// number of workers, so the job's fields are not written again while a worker reads them.
struct ComputePool::Workers {
  // Written by run() before generation is bumped, read by workers after.
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t chunks = 0;
  bool stop = false;

  alignas(64) std::atomic<uint32_t> generation{0};
  std::atomic<int> generation_sleepers{0};
  alignas(64) std::atomic<uint32_t> finished{0};  // workers done with the current job
  std::atomic<int> finished_sleepers{0};
  std::vector<std::thread> threads;

  void work(int64_t index) {
    uint32_t seen = 0;
    for (;;) {
      seen = wait_for_change(generation, seen, generation_sleepers);
      if (stop) return;
      if (index < chunks) (*fn)(n * index / chunks, n * (index + 1) / chunks);
      finished.fetch_add(1, std::memory_order_seq_cst);
      wake_if_sleeping(finished, finished_sleepers);
    }
  }
};

ComputePool::ComputePool(int threads) : threads_(std::max(1, threads)) {
  if (threads_ == 1) return;
  workers_ = std::make_unique<Workers>();
  workers_->threads.reserve(static_cast<size_t>(threads_ - 1));
  for (int i = 1; i < threads_; ++i) workers_->threads.emplace_back([w = workers_.get(), i] { w->work(i); });
}

ComputePool::~ComputePool() {
  if (workers_ == nullptr) return;
  workers_->stop = true;
  workers_->generation.fetch_add(1, std::memory_order_release);
  futex_wake_all(workers_->generation);
  for (auto& t : workers_->threads) t.join();
}

void ComputePool::run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t chunks = std::min<int64_t>(threads_, n);
  if (chunks <= 1 || workers_ == nullptr) {
    if (n > 0) fn(0, n);
    return;
  }
  Workers& w = *workers_;
  w.fn = &fn;
  w.n = n;
  w.chunks = chunks;
  const uint32_t done_before = w.finished.load(std::memory_order_relaxed);
  w.generation.fetch_add(1, std::memory_order_seq_cst);
  wake_if_sleeping(w.generation, w.generation_sleepers);
  fn(0, n / chunks);
  const auto workers = static_cast<uint32_t>(threads_ - 1);
  uint32_t done = w.finished.load(std::memory_order_acquire);
  while (done - done_before < workers) done = wait_for_change(w.finished, done, w.finished_sleepers);
}

}  // namespace keel::engine
