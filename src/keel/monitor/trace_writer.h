// TraceWriter: the server's way of recording traces without waiting on the store. A
// handler calls submit(), which only moves the trace into a bounded in-memory queue
// (a short mutex hold, never a database call); one background thread applies the text
// policy and writes batches through TraceStore::append. When the queue is full the
// trace is dropped and counted: under overload Keel loses traces, never latency.
// A batch the store refuses is retried a few times, then counted as failed and logged.
// Traces still queued when the process dies are lost; the destructor writes them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "keel/monitor/traces.h"

namespace keel::monitor {

struct TraceWriterOptions {
  size_t max_queue = 10000;                       // traces waiting to be written; more are dropped
  size_t max_queue_bytes = 256u << 20;            // and the text they hold (prompt + response + error)
  size_t batch_size = 256;                        // traces per transaction
  std::chrono::milliseconds flush_interval{200};  // a partial batch waits at most this long
  TextPolicy text = TextPolicy::kStore;
  // Prompt and response are each cut to this many bytes (at a UTF-8 boundary) before
  // they are stored; 0 keeps them whole.
  size_t max_text_bytes = 1u << 20;
  int max_attempts = 3;                          // writes of one batch before it counts as failed
  std::chrono::milliseconds retry_backoff{100};  // before the 2nd attempt; doubles after
};

struct TraceWriterStats {
  uint64_t submitted = 0;       // submit() calls
  uint64_t queued = 0;          // accepted and not yet written or failed (the backlog)
  uint64_t written = 0;         // traces in batches the store committed
  uint64_t dropped = 0;         // refused by submit(): the queue was full (or the writer stopping)
  uint64_t failed_batches = 0;  // batches given up after max_attempts
  uint64_t failed_traces = 0;   // the traces in those batches
  uint64_t retries = 0;         // failed attempts that were tried again
  // Invariant: submitted == queued + written + dropped + failed_traces.
};

class TraceWriter {
 public:
  // store must outlive the writer. Starts the background thread. A kRedactPii policy
  // whose PII scanner cannot be built (an unsupported CPU) stores "" instead of the
  // text, so that nothing unredacted is ever written; the error is logged once.
  TraceWriter(TraceStore& store, TraceWriterOptions options = {});
  // Writes everything still queued (flush()), then stops and joins the thread.
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Queues the trace for writing; false when it was dropped (queue full, or the writer
  // is shutting down). Never blocks on the store. A trace without an id gets a new one.
  bool submit(Trace trace);

  // Blocks until every trace submitted before this call is written or has failed.
  void flush();

  TraceWriterStats stats() const;

 private:
  void run();
  // The text policy and size bound, applied on the writer thread.
  void prepare(Trace& trace);
  // True when the store committed the batch (after up to max_attempts tries).
  bool write_batch(const std::vector<Trace>& batch);

  TraceStore& store_;
  const TraceWriterOptions options_;
  struct Redactor;
  std::unique_ptr<Redactor> redactor_;  // used only by the writer thread

  mutable std::mutex mu_;
  std::condition_variable work_ready_;  // signalled on a full batch, a flush or stop
  std::condition_variable progress_;    // signalled when a batch is done
  // REQUIRES: mu_ held for everything below.
  std::deque<Trace> queue_;
  size_t queue_bytes_ = 0;
  uint64_t accepted_ = 0;      // traces ever queued (their sequence numbers are 1..accepted_)
  uint64_t finished_ = 0;      // of those, written or failed, in queue order
  uint64_t flush_target_ = 0;  // the writer thread writes at once while finished_ < flush_target_
  bool stopping_ = false;
  TraceWriterStats stats_;

  std::thread thread_;  // last: starts after everything above is ready
};

}  // namespace keel::monitor
