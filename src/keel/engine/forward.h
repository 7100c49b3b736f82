// Runs a Model (model.h) on one token sequence: InferenceSession owns the KV cache
// (F32 for now), scratch buffers and a ThreadPool, and appends tokens to the sequence
// one batch at a time. Matrix-vector products quantize each activation row once to the
// weight type's vec_dot_type (Q8_1 for Q4_1 weights, as llama.cpp's CPU backend does)
// and split weight rows across `threads`; each output element is computed by one
// thread in a fixed order, so results do not depend on the thread count. A session
// borrows its Model, which must outlive it; a session is not thread-safe itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"
#include "keel/util/status.h"

namespace keel::engine {

struct SessionOptions {
  int threads = 1;
  // KV cache positions; 0 means min(model's context_length, 4096).
  int64_t context_length = 0;
};

enum class LogitsFor { kLastToken, kEveryToken };

class InferenceSession {
 public:
  static Result<std::unique_ptr<InferenceSession>> create(const Model& model, const SessionOptions& options);
  ~InferenceSession();

  // Appends `tokens` at positions position() .. position() + n - 1 and returns the
  // logits of the last token ([vocab]) or of every token ([n][vocab], row-major).
  // kInvalidArgument for an empty batch or an id outside the vocabulary;
  // kResourceExhausted when the cache would overflow. On error the sequence is unchanged.
  Result<std::vector<float>> forward(std::span<const int32_t> tokens, LogitsFor which = LogitsFor::kLastToken);

  int64_t position() const { return position_; }
  int64_t context_length() const { return context_length_; }
  void reset() { position_ = 0; }
  const Model& model() const { return model_; }

 private:
  InferenceSession(const Model& model, int threads, int64_t context_length);

  void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* out);
  void attention(int64_t layer, int64_t n_tokens, const float* q, float* out);

  const Model& model_;
  ComputePool pool_;
  int64_t context_length_;
  int64_t position_ = 0;
  // [layer][position][head_count_kv * head_dim], keys and values.
  std::vector<float> key_cache_;
  std::vector<float> value_cache_;
  std::vector<uint8_t> quantized_;  // activation rows in a vec_dot_type
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
