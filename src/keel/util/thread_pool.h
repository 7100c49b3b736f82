// A fixed-size pool of worker threads running submitted tasks in FIFO order.
// The pool owns its threads and joins them in the destructor, after running every
// task already submitted. Tasks must not throw; submit() after shutdown is refused.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace keel {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues fn; returns false when the pool is shutting down.
  bool post(std::function<void()> fn);

  // Queues fn and returns a future for its result. An invalid future is returned
  // when the pool is shutting down.
  template <typename F>
  auto submit(F fn) -> std::future<std::invoke_result_t<F>> {
    using R = std::invoke_result_t<F>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> future = task->get_future();
    if (!post([task] { (*task)(); })) return {};
    return future;
  }

  // Blocks until every queued and running task has finished.
  void wait_idle();

  size_t size() const { return workers_.size(); }

 private:
  void worker_loop();

  std::mutex mutex_;                  // guards queue_, stopping_, busy_
  std::condition_variable work_cv_;   // signalled when work arrives or on stop
  std::condition_variable idle_cv_;   // signalled when the pool may be idle
  std::deque<std::function<void()>> queue_;
  size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace keel
