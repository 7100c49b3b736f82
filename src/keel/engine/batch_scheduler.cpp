#include "keel/engine/batch_scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

namespace keel::engine {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// The length of the common prefix of a and b.
int64_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<int64_t>(i);
}

}  // namespace

// A request from submit() to its end. `tokens` mirrors what the sequence's cache holds.
struct BatchScheduler::Slot {
  Slot(GenerationRequest r, GenerationState s, size_t reserve)
      : request(std::move(r)), state(std::move(s)), reserved_bytes(reserve) {}
  GenerationRequest request;
  GenerationState state;
  size_t reserved_bytes;
  SequenceId sequence = -1;
  std::vector<TokenId> tokens;
  Clock::time_point admitted;
  Clock::time_point first_token;
  bool decoding = false;  // the prompt is in the cache and a token has been picked
  int64_t decode_forwards = 0;
  std::vector<TokenLogprobs> prompt_logprobs;  // when the request asks for them
};

// A finished sequence kept for its cache; `tokens` are the positions it holds.
struct BatchScheduler::CachedPrefix {
  SequenceId sequence;
  std::vector<TokenId> tokens;
};

Result<std::unique_ptr<BatchScheduler>> BatchScheduler::create(const Model& model, const Tokenizer& tokenizer,
                                                                const SessionOptions& session,
                                                                const SchedulerOptions& options) {
  if (options.max_sequences < 1) return invalid_argument("max_sequences must be at least 1");
  if (options.max_queue < 0) return invalid_argument("max_queue must not be negative");
  if (options.max_batch_tokens < 1) return invalid_argument("max_batch_tokens must be at least 1");
  if (options.prefix_cache_sequences < 0) return invalid_argument("prefix_cache_sequences must not be negative");
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder, Decoder::create(model, session));
  return std::unique_ptr<BatchScheduler>(new BatchScheduler(std::move(decoder), tokenizer, options));
}

BatchScheduler::BatchScheduler(std::unique_ptr<Decoder> decoder, const Tokenizer& tokenizer,
                               const SchedulerOptions& options)
    : decoder_(std::move(decoder)),
      tokenizer_(tokenizer),
      options_(options),
      context_length_(decoder_->context_length()),
      thread_([this] { run(); }) {}

BatchScheduler::~BatchScheduler() { stop(); }

void BatchScheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status BatchScheduler::submit(GenerationRequest request) {
  if (request.prompt_logprobs > kMaxTopLogprobs) {
    return invalid_argument("prompt_logprobs must be at most " + std::to_string(kMaxTopLogprobs));
  }
  KEEL_ASSIGN_OR_RETURN(GenerationState state,
                        GenerationState::create(tokenizer_, request.prompt, context_length_, request.options));
  // The cache the request may grow to: its prompt and every token but the last.
  const auto positions = std::min<int64_t>(static_cast<int64_t>(request.prompt.size()) + state.limit(), context_length_);
  const size_t reserve = static_cast<size_t>(positions) * decoder_->kv_bytes_per_position();
  if (options_.kv_cache_budget_bytes > 0 && reserve > options_.kv_cache_budget_bytes) {
    return invalid_argument("the request needs " + std::to_string(reserve >> 20) +
                              " MiB of KV cache, more than the budget of " +
                              std::to_string(options_.kv_cache_budget_bytes >> 20) +
                              " MiB: send a shorter prompt or a smaller max_tokens");
  }
  auto slot = std::make_unique<Slot>(std::move(request), std::move(state), reserve);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return unavailable("the scheduler is stopping");
    if (requests_ >= options_.max_queue + options_.max_sequences) {
      return resource_exhausted("the queue is full (" + std::to_string(queue_.size()) + " requests waiting, " +
                                std::to_string(requests_ - static_cast<int64_t>(queue_.size())) + " running)");
    }
    ++requests_;
    queue_.push_back(std::move(slot));
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  wake_.notify_one();
  return Status::Ok();
}

Status BatchScheduler::submit(EmbeddingRequest request) {
  if (request.tokens.empty()) return invalid_argument("the input has no tokens");
  if (static_cast<int64_t>(request.tokens.size()) > context_length_) {
    return resource_exhausted("the input has " + std::to_string(request.tokens.size()) +
                              " tokens, more than the context of " + std::to_string(context_length_));
  }
  const auto vocab = static_cast<TokenId>(tokenizer_.vocab_size());
  for (TokenId id : request.tokens) {
    if (id < 0 || id >= vocab) return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary");
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return unavailable("the scheduler is stopping");
    if (static_cast<int64_t>(embedding_queue_.size()) >= options_.max_queue + options_.max_sequences) {
      return resource_exhausted("the queue is full (" + std::to_string(embedding_queue_.size()) +
                                " embedding requests waiting)");
    }
    embedding_queue_.push_back(std::move(request));
  }
  wake_.notify_one();
  return Status::Ok();
}

SchedulerStats BatchScheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void BatchScheduler::run() {
  while (true) {
    std::vector<EmbeddingRequest> embeddings;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !embedding_queue_.empty() || !slots_.empty(); });
      if (stopping_) break;
      // Embedding inputs run whole, several per pass while they fit in a batch.
      int64_t tokens = 0;
      while (!embedding_queue_.empty()) {
        const auto n = static_cast<int64_t>(embedding_queue_.front().tokens.size());
        if (!embeddings.empty() && tokens + n > options_.max_batch_tokens) break;
        tokens += n;
        embeddings.push_back(std::move(embedding_queue_.front()));
        embedding_queue_.pop_front();
      }
    }
    if (!embeddings.empty()) run_embeddings(embeddings);
    admit();
    // Cancelled requests leave before the step.
    for (auto& slot : slots_) {
      if (slot->request.cancelled && slot->request.cancelled()) fail(*slot, unavailable("the request was cancelled"));
    }
    std::erase_if(slots_, [](const std::unique_ptr<Slot>& s) { return s->sequence < 0; });
    if (!slots_.empty()) step();
    publish_stats();
  }

  // Stopping: everything still here ends, in order, with kUnavailable.
  for (auto& slot : slots_) fail(*slot, unavailable("the server is shutting down"));
  slots_.clear();
  std::deque<std::unique_ptr<Slot>> queued;
  std::deque<EmbeddingRequest> embeddings;
  {
    std::lock_guard lock(mutex_);
    queued.swap(queue_);
    embeddings.swap(embedding_queue_);
  }
  for (auto& slot : queued) {
    leave();
    slot->request.on_done(unavailable("the server is shutting down"));
  }
  for (auto& request : embeddings) request.on_done(unavailable("the server is shutting down"));
}

size_t BatchScheduler::reserved_bytes() const {
  size_t total = 0;
  for (const auto& slot : slots_) total += slot->reserved_bytes;
  for (const auto& prefix : prefixes_) total += prefix.tokens.size() * decoder_->kv_bytes_per_position();
  return total;
}

void BatchScheduler::evict_prefix() {
  (void)decoder_->remove_sequence(prefixes_.front().sequence);
  prefixes_.erase(prefixes_.begin());
}

void BatchScheduler::admit() {
  while (static_cast<int>(slots_.size()) < options_.max_sequences) {
    std::unique_ptr<Slot> slot;
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return;
      const size_t need = queue_.front()->reserved_bytes;
      if (options_.kv_cache_budget_bytes > 0) {
        // Cached prefixes give way to requests; running ones finish first.
        while (!prefixes_.empty() && reserved_bytes() + need > options_.kv_cache_budget_bytes) evict_prefix();
        if (reserved_bytes() + need > options_.kv_cache_budget_bytes) return;
      }
      slot = std::move(queue_.front());
      queue_.pop_front();
    }
    start(std::move(slot));
  }
}

void BatchScheduler::start(std::unique_ptr<Slot> slot) {
  slot->admitted = Clock::now();
  const bool scored = slot->request.prompt_logprobs >= 0;
  if (slot->state.done() && !scored) {  // max_tokens 0, or no room in the context: nothing to run
    slot->state.finish();
    leave();
    slot->request.on_done(std::move(slot->state.result()));
    return;
  }
  const std::span<const TokenId> prompt = slot->request.prompt;
  // At least the prompt's last token must run: its logits pick the first new token.
  const auto usable = static_cast<int64_t>(prompt.size()) - 1;
  int64_t best = 0;
  int best_prefix = -1;
  const Slot* best_slot = nullptr;
  for (size_t i = 0; i < prefixes_.size(); ++i) {
    const int64_t n = std::min(common_prefix(prefixes_[i].tokens, prompt), usable);
    if (n > best) best = n, best_prefix = static_cast<int>(i), best_slot = nullptr;
  }
  for (const auto& other : slots_) {
    const int64_t n = std::min(common_prefix(other->tokens, prompt), usable);
    if (n > best) best = n, best_prefix = -1, best_slot = other.get();
  }
  // A scored prompt needs every position's logits: it is computed whole.
  if (best < options_.min_prefix_tokens || scored) best = 0, best_prefix = -1, best_slot = nullptr;

  if (best_prefix >= 0 && best == static_cast<int64_t>(prefixes_[static_cast<size_t>(best_prefix)].tokens.size())) {
    // The prompt extends the cached sequence (the next turn of a conversation): take it over.
    slot->sequence = prefixes_[static_cast<size_t>(best_prefix)].sequence;
    prefixes_.erase(prefixes_.begin() + best_prefix);
  } else if (best_prefix >= 0) {
    // Only a prefix is shared (a system prompt): copy it and keep the cached sequence,
    // now the most recently used.
    CachedPrefix source = std::move(prefixes_[static_cast<size_t>(best_prefix)]);
    prefixes_.erase(prefixes_.begin() + best_prefix);
    slot->sequence = decoder_->add_sequence();
    if (!decoder_->copy_prefix(source.sequence, slot->sequence, best).ok()) best = 0;
    prefixes_.push_back(std::move(source));
  } else {
    slot->sequence = decoder_->add_sequence();
    if (best_slot != nullptr && !decoder_->copy_prefix(best_slot->sequence, slot->sequence, best).ok()) best = 0;
  }
  slot->tokens.assign(prompt.begin(), prompt.begin() + best);
  worker_stats_.prompt_tokens_reused += best;
  slots_.push_back(std::move(slot));
}

void BatchScheduler::step() {
  // Decoding sequences first (one token each), then prompt chunks while there is room.
  std::vector<BatchItem> batch;
  std::vector<Slot*> owners;
  std::vector<TokenId> decode_inputs(slots_.size());
  int64_t budget = options_.max_batch_tokens;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = *slots_[i];
    if (!s.decoding) continue;
    decode_inputs[i] = s.state.next_input();
    batch.push_back({.sequence = s.sequence, .tokens = std::span<const TokenId>(&decode_inputs[i], 1)});
    owners.push_back(&s);
    --budget;
  }
  for (auto& slot : slots_) {
    Slot& s = *slot;
    if (s.decoding || budget <= 0) continue;
    const std::span<const TokenId> prompt = s.request.prompt;
    const auto done = static_cast<int64_t>(s.tokens.size());
    const int64_t n = std::min<int64_t>(budget, static_cast<int64_t>(prompt.size()) - done);
    const bool last = done + n == static_cast<int64_t>(prompt.size());
    const LogitsFor logits = s.request.prompt_logprobs >= 0 ? LogitsFor::kEveryToken
                             : last                          ? LogitsFor::kLastToken
                                                             : LogitsFor::kNone;
    batch.push_back({.sequence = s.sequence,
                     .tokens = prompt.subspan(static_cast<size_t>(done), static_cast<size_t>(n)),
                     .logits = logits});
    owners.push_back(&s);
    budget -= n;
  }
  if (batch.empty()) return;

  auto outputs = decoder_->forward(batch);
  ++worker_stats_.steps;
  worker_stats_.last_batch_sequences = static_cast<int64_t>(batch.size());
  worker_stats_.last_batch_tokens = options_.max_batch_tokens - budget;
  if (!outputs.ok()) {
    for (Slot* s : owners) fail(*s, outputs.status());
    std::erase_if(slots_, [](const std::unique_ptr<Slot>& s) { return s->sequence < 0; });
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Slot& s = *owners[i];
    const size_t done = s.tokens.size();
    s.tokens.insert(s.tokens.end(), batch[i].tokens.begin(), batch[i].tokens.end());
    std::span<const float> logits = (*outputs)[i].logits;
    if (s.decoding) {
      ++s.decode_forwards;
    } else {
      const size_t rows = batch[i].tokens.size();
      worker_stats_.prompt_tokens_computed += static_cast<int64_t>(rows);
      const std::span<const TokenId> prompt = s.request.prompt;
      if (s.request.prompt_logprobs >= 0) {
        // Row r predicts the prompt's token at done + r + 1.
        const size_t vocab = logits.size() / rows;
        Status scored = Status::Ok();
        for (size_t r = 0; r < rows && done + r + 1 < prompt.size() && scored.ok(); ++r) {
          auto lp = compute_logprobs(logits.subspan(r * vocab, vocab), prompt[done + r + 1], s.request.prompt_logprobs);
          if (lp.ok()) {
            s.prompt_logprobs.push_back(std::move(*lp));
          } else {
            scored = lp.status();
          }
        }
        if (!scored.ok()) {
          fail(s, scored);
          continue;
        }
        logits = logits.subspan((rows - 1) * vocab, vocab);
      }
      if (s.tokens.size() < prompt.size()) continue;  // more of the prompt to come
      s.decoding = true;
      s.first_token = Clock::now();
      if (s.state.done()) {  // only the prompt's scores were asked for
        finish(s);
        continue;
      }
    }
    auto piece = s.state.step(logits);
    if (!piece.ok()) {
      fail(s, piece.status());
      continue;
    }
    if (piece->has_value()) {
      ++worker_stats_.generated_tokens;
      if (s.request.on_piece) s.request.on_piece(**piece);
    }
    if (s.state.done()) finish(s);
  }
  std::erase_if(slots_, [](const std::unique_ptr<Slot>& s) { return s->sequence < 0; });
}

void BatchScheduler::finish(Slot& slot) {
  const std::string rest = slot.state.finish();
  if (!rest.empty() && slot.request.on_piece) slot.request.on_piece({rest, -1, nullptr});
  Generation g = std::move(slot.state.result());
  g.prompt_logprobs = std::move(slot.prompt_logprobs);
  const auto end = Clock::now();
  g.prompt_seconds = seconds_between(slot.admitted, slot.first_token);
  g.decode_seconds = seconds_between(slot.first_token, end);
  if (g.prompt_seconds > 0) g.prompt_tokens_per_second = static_cast<double>(g.prompt_tokens) / g.prompt_seconds;
  if (g.decode_seconds > 0 && slot.decode_forwards > 0) {
    g.generated_tokens_per_second = static_cast<double>(slot.decode_forwards) / g.decode_seconds;
  }
  release(slot);
  leave();
  slot.request.on_done(std::move(g));
}

void BatchScheduler::fail(Slot& slot, const Status& status) {
  if (slot.sequence >= 0) {
    (void)decoder_->remove_sequence(slot.sequence);
    slot.sequence = -1;
  }
  leave();
  slot.request.on_done(status);
}

void BatchScheduler::leave() {
  std::lock_guard lock(mutex_);
  --requests_;
}

void BatchScheduler::release(Slot& slot) {
  if (options_.prefix_cache_sequences > 0 && static_cast<int64_t>(slot.tokens.size()) >= options_.min_prefix_tokens) {
    prefixes_.push_back({slot.sequence, std::move(slot.tokens)});
    while (static_cast<int>(prefixes_.size()) > options_.prefix_cache_sequences) evict_prefix();
  } else {
    (void)decoder_->remove_sequence(slot.sequence);
  }
  slot.sequence = -1;
}

void BatchScheduler::run_embeddings(std::vector<EmbeddingRequest>& requests) {
  std::vector<BatchItem> batch;
  for (const EmbeddingRequest& r : requests) {
    batch.push_back(
        {.sequence = decoder_->add_sequence(), .tokens = r.tokens, .logits = LogitsFor::kNone, .hidden_states = true});
  }
  auto outputs = decoder_->forward(batch);
  const auto d = static_cast<size_t>(decoder_->model().config().embedding_length);
  for (size_t i = 0; i < requests.size(); ++i) {
    (void)decoder_->remove_sequence(batch[i].sequence);
    if (!outputs.ok()) {
      requests[i].on_done(outputs.status());
      continue;
    }
    const std::vector<float>& hidden = (*outputs)[i].hidden_states;
    const size_t rows = hidden.size() / d;
    std::vector<double> sum(d, 0.0);
    for (size_t r = 0; r < rows; ++r) {
      for (size_t j = 0; j < d; ++j) sum[j] += hidden[r * d + j];
    }
    double norm = 0;
    for (double v : sum) norm += v * v;
    norm = std::sqrt(norm);
    std::vector<float> embedding(d);
    for (size_t j = 0; j < d; ++j) embedding[j] = norm > 0 ? static_cast<float>(sum[j] / norm) : 0.0f;
    requests[i].on_done(std::move(embedding));
  }
}

void BatchScheduler::publish_stats() {
  worker_stats_.running = static_cast<int64_t>(slots_.size());
  worker_stats_.cached_prefixes = static_cast<int64_t>(prefixes_.size());
  worker_stats_.kv_cache_bytes = decoder_->kv_cache_bytes();
  worker_stats_.kv_cache_reserved_bytes = reserved_bytes();
  std::lock_guard lock(mutex_);
  worker_stats_.queued = static_cast<int64_t>(queue_.size());
  stats_ = worker_stats_;
}

}  // namespace keel::engine
