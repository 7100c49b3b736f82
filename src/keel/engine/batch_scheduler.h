// Continuous batching: one thread owns a Decoder (forward.h) and runs every admitted
// request's next tokens in one batch per step. Requests join between steps (up to
// max_sequences at once, within a KV-cache budget) and leave as soon as they finish or
// their client goes away; the rest wait in a bounded queue. A prompt that shares a
// prefix with a finished or running sequence (a system prompt, an earlier turn of the
// conversation) reuses that prefix's cache instead of recomputing it. Greedy results
// are the same bits as generate() on the same prompt alone (batching, chunked prompts
// and prefix reuse do not change them). Callbacks run on the scheduler's thread: they
// must not block. Used by the OpenAI-compatible server.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "keel/engine/forward.h"
#include "keel/engine/generation.h"
#include "keel/engine/tokenizer.h"
#include "keel/util/status.h"

namespace keel::engine {

struct SchedulerOptions {
  int max_sequences = 8;  // requests decoding at once (the slots)
  int max_queue = 64;     // requests waiting for a slot; past it submit() fails
  // Tokens per forward pass: every decoding sequence's one token first, then chunks of
  // prompts in arrival order (a long prompt takes several steps and never stalls the
  // decoding sequences for long).
  int64_t max_batch_tokens = 512;
  // KV-cache bytes that running requests may reserve (prompt + max tokens each, clipped
  // to the context) plus what cached prefixes hold; a request waits until it fits, and
  // one that could never fit alone is refused at submit(). 0: no limit.
  size_t kv_cache_budget_bytes = size_t{1} << 30;
  int prefix_cache_sequences = 4;  // finished sequences kept for prefix reuse (LRU)
  int64_t min_prefix_tokens = 4;   // shorter shared prefixes are recomputed
};

struct GenerationRequest {
  std::vector<TokenId> prompt;
  GenerationOptions options;
  // Every generated piece in order, then the flush of held-back text (token -1), as
  // generate()'s on_piece sees them. Optional.
  std::function<void(const GeneratedPiece&)> on_piece;
  // Exactly once: the generation (timings: prompt_seconds from admission to the first
  // token, decode_seconds after it), or the error that ended it (kUnavailable when the
  // request was cancelled or the scheduler stopped first).
  std::function<void(Result<Generation>)> on_done;
  // Polled before every step; true ends the request at once and frees its slot.
  std::function<bool()> cancelled;
  // >= 0: the log-probability of every prompt token after the first, given the tokens
  // before it, with this many alternatives (0..kMaxTopLogprobs), in the generation's
  // prompt_logprobs (an OpenAI echo with logprobs; lm-eval scores text this way). Such a
  // prompt is computed whole (no prefix reuse) and runs even with max_tokens 0.
  int prompt_logprobs = -1;
};

struct EmbeddingRequest {
  std::vector<TokenId> tokens;
  // Exactly once: the mean over the tokens' final hidden states, L2-normalised
  // ([embedding_length]), or the error.
  std::function<void(Result<std::vector<float>>)> on_done;
};

struct SchedulerStats {
  int64_t running = 0;  // requests holding a slot
  int64_t queued = 0;   // requests waiting for one
  int64_t cached_prefixes = 0;
  size_t kv_cache_bytes = 0;        // held by all sequences' caches now
  size_t kv_cache_reserved_bytes = 0;  // counted against the budget
  int64_t steps = 0;                // forward passes run
  int64_t last_batch_tokens = 0;
  int64_t last_batch_sequences = 0;
  int64_t prompt_tokens_computed = 0;
  int64_t prompt_tokens_reused = 0;  // prompt tokens taken from a cached or shared prefix
  int64_t generated_tokens = 0;
};

class BatchScheduler {
 public:
  // Borrows model and tokenizer, which must outlive the scheduler.
  static Result<std::unique_ptr<BatchScheduler>> create(const Model& model, const Tokenizer& tokenizer,
                                                        const SessionOptions& session, const SchedulerOptions& options);
  // stop(), if not done yet.
  ~BatchScheduler();
  // Running and queued requests end with kUnavailable and the thread is joined; later
  // submits fail with kUnavailable. Idempotent. Not from a callback (the scheduler's
  // own thread).
  void stop();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Checks the request at once, on the caller's thread, with generate()'s rules
  // (kInvalidArgument, kResourceExhausted for a prompt longer than the context), then
  // queues it. kInvalidArgument when the request alone exceeds the KV-cache budget (it
  // could never run); kResourceExhausted when the queue is full (try again later). On
  // any error no callback is called.
  Status submit(GenerationRequest request);
  // kInvalidArgument for no tokens or ids outside the vocabulary, kResourceExhausted
  // for more tokens than the context or a full queue.
  Status submit(EmbeddingRequest request);

  SchedulerStats stats() const;
  int64_t context_length() const { return context_length_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Slot;
  struct CachedPrefix;
  BatchScheduler(std::unique_ptr<Decoder> decoder, const Tokenizer& tokenizer, const SchedulerOptions& options);

  void run();
  // Moves queued requests into slots while the slots and the budget allow.
  void admit();
  void start(std::unique_ptr<Slot> slot);
  void run_embeddings(std::vector<EmbeddingRequest>& requests);
  // One forward pass over the running slots.
  void step();
  void finish(Slot& slot);
  void fail(Slot& slot, const Status& status);
  // Keeps the slot's sequence as a cached prefix, or frees it.
  void release(Slot& slot);
  // A generation request has ended (just before its on_done).
  void leave();
  size_t reserved_bytes() const;
  void evict_prefix();
  void publish_stats();

  std::unique_ptr<Decoder> decoder_;
  const Tokenizer& tokenizer_;
  const SchedulerOptions options_;
  const int64_t context_length_;

  // Only the scheduler thread touches these.
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<CachedPrefix> prefixes_;  // least recently used first
  SchedulerStats worker_stats_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // REQUIRES: mutex_ held for these five.
  int64_t requests_ = 0;  // generation requests queued or running
  std::deque<std::unique_ptr<Slot>> queue_;  // checked requests, no sequence yet
  std::deque<EmbeddingRequest> embedding_queue_;
  bool stopping_ = false;
  SchedulerStats stats_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace keel::engine
