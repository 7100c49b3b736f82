// Runs a Model (model.h). A Decoder holds any number of sequences, each with its own
// KV cache (kv_cache.h) and position, and runs one batch at a time: every item of a
// batch appends tokens to one sequence, all items' tokens go through the weight
// matrices together (matmul.h), and each item attends to its own sequence only — the
// interface continuous batching needs (sequences join and leave between batches).
// InferenceSession is the one-sequence form most callers want. Results do not depend
// on the thread count or on which other sequences share a batch. Both borrow their
// Model, which must outlive them; neither is thread-safe itself.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/kv_cache.h"
#include "keel/engine/model.h"
#include "keel/util/status.h"

namespace keel::engine {

struct SessionOptions {
  int threads = 1;
  // KV cache positions per sequence; 0 means min(model's context_length, 4096).
  int64_t context_length = 0;
  KvCacheType kv_cache_type = KvCacheType::kF16;
};

enum class LogitsFor { kNone, kLastToken, kEveryToken };

using SequenceId = int64_t;

struct BatchItem {
  SequenceId sequence = 0;
  std::span<const int32_t> tokens;
  LogitsFor logits = LogitsFor::kLastToken;
  // Also return the final hidden states (after the output norm), [rows][embedding_length]:
  // of the rows the logits are for, or of every token when logits is kNone (then no
  // logits are computed at all). Embeddings are pooled from these.
  bool hidden_states = false;
};

struct BatchItemOutput {
  std::vector<float> logits;         // [rows][vocab], rows = 0, 1 or tokens.size()
  std::vector<float> hidden_states;  // [rows][embedding_length] when asked for
};

class Decoder {
 public:
  static Result<std::unique_ptr<Decoder>> create(const Model& model, const SessionOptions& options);
  ~Decoder();

  // A new, empty sequence. Its cache grows as it does, up to context_length().
  SequenceId add_sequence();
  // Frees the sequence's cache at once. kNotFound for an unknown id.
  Status remove_sequence(SequenceId sequence);
  // Keeps positions [0, length) and forgets the rest (prefix reuse, rollback).
  Status truncate(SequenceId sequence, int64_t length);
  // Makes `to` a copy of the first `length` positions of `from` (a shared prompt prefix
  // computed once). kInvalidArgument when `from` has fewer positions.
  Status copy_prefix(SequenceId from, SequenceId to, int64_t length);
  Result<int64_t> position(SequenceId sequence) const;
  size_t sequence_count() const { return sequences_.size(); }
  // Bytes held by every sequence's KV cache.
  size_t kv_cache_bytes() const;
  // Bytes one position of one sequence takes in the KV cache (keys and values, all layers).
  size_t kv_bytes_per_position() const;

  // Runs one batch. Every item must name a distinct existing sequence and at least one
  // token in the vocabulary, and fit in the context. kInvalidArgument /
  // kResourceExhausted / kNotFound otherwise; on error no sequence changes.
  Result<std::vector<BatchItemOutput>> forward(std::span<const BatchItem> batch);

  int64_t context_length() const { return context_length_; }
  int threads() const { return pool_.threads(); }
  const Model& model() const { return model_; }

 private:
  struct Sequence {
    explicit Sequence(KvCache c) : cache(std::move(c)) {}
    KvCache cache;
    int64_t position = 0;
  };
  // One row of the concatenated batch: which sequence, at which position.
  struct Row {
    Sequence* sequence;
    int64_t position;
  };

  Decoder(const Model& model, int threads, int64_t context_length, KvCacheType kv_type);

  Result<Sequence*> find(SequenceId sequence) const;
  void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* out);
  // Several matrices on one input: quantized once, one fork-join, when their activation
  // types agree; the same bits as separate matmul calls either way.
  void matmul_group(std::initializer_list<const WeightMatrix*> weights, const float* x, int64_t n_tokens,
                    std::initializer_list<float*> out);
  void attention(int64_t layer, std::span<const BatchItem> batch, const std::vector<Sequence*>& sequences,
                 const float* q, float* out);

  const Model& model_;
  ComputePool pool_;
  int64_t context_length_;
  KvCacheType kv_type_;
  SequenceId next_id_ = 1;
  std::map<SequenceId, std::unique_ptr<Sequence>> sequences_;
  std::vector<uint8_t> quantized_;  // activation rows in a vec_dot_type (matmul scratch)
};

// One sequence on its own Decoder: the form generation, perplexity and tests use.
class InferenceSession {
 public:
  static Result<std::unique_ptr<InferenceSession>> create(const Model& model, const SessionOptions& options);

  // Appends `tokens` at positions position() .. position() + n - 1 and returns the
  // logits of the last token ([vocab]) or of every token ([n][vocab], row-major).
  // kInvalidArgument for an empty batch or an id outside the vocabulary;
  // kResourceExhausted when the cache would overflow. On error the sequence is unchanged.
  Result<std::vector<float>> forward(std::span<const int32_t> tokens, LogitsFor which = LogitsFor::kLastToken);

  int64_t position() const;
  int64_t context_length() const { return decoder_->context_length(); }
  void reset() { (void)decoder_->truncate(sequence_, 0); }
  // Keeps the first `length` positions (a shared prefix with the next prompt).
  Status truncate(int64_t length) { return decoder_->truncate(sequence_, length); }
  const Model& model() const { return decoder_->model(); }
  Decoder& decoder() { return *decoder_; }

 private:
  InferenceSession(std::unique_ptr<Decoder> decoder, SequenceId sequence)
      : decoder_(std::move(decoder)), sequence_(sequence) {}
  std::unique_ptr<Decoder> decoder_;
  SequenceId sequence_;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // the generated ids (not the prompt)
  double prompt_seconds = 0;
  double decode_seconds = 0;
  double prompt_tokens_per_second = 0;
  // Over the decode steps (tokens.size() - 1 forwards; the first token comes from the prompt).
  double generated_tokens_per_second = 0;
};

// Resets the session, runs the prompt as one batch, then picks up to `max_new_tokens`
// tokens greedily (argmax, lowest id on ties). Generation ends early at `stop_token`
// (not included in the result; -1: none). on_token, if set, sees each token as soon as
// it is picked (for streaming); an error it returns ends generation with that error.
Result<GenerationResult> generate_greedy(InferenceSession& session, std::span<const int32_t> prompt,
                                         int64_t max_new_tokens, int32_t stop_token = -1,
                                         const std::function<Status(int32_t)>& on_token = {});

// Index of the largest value, lowest index on ties.
int64_t argmax(std::span<const float> values);

}  // namespace keel::engine
