// The generation loop: runs a prompt through an InferenceSession, samples tokens
// (sampler.h) until a stop token, a stop string (stop_strings.h) or max_tokens, and
// streams the text as it becomes final. Used by `keel generate` and the OpenAI server.
// generate() resets the session first: whatever the session held before is gone.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/engine/forward.h"
#include "keel/engine/sampler.h"
#include "keel/engine/stop_strings.h"
#include "keel/engine/tokenizer.h"
#include "keel/util/status.h"

namespace keel::engine {

struct GenerationOptions {
  // At most this many tokens; clipped to the room the context leaves after the prompt
  // (context_length - prompt + 1: the last token is never run), finishing as "length".
  int64_t max_tokens = 256;
  SamplingOptions sampling;
  // Generation ends before the first of these in the text, which is not returned.
  std::vector<std::string> stop;
  // Tokens that end generation without being returned; nullopt: default_stop_tokens().
  std::optional<std::vector<TokenId>> stop_tokens;
  // Per-token log-probabilities of the chosen token and its top_logprobs (0..20) best
  // alternatives (compute_logprobs, sampler.h).
  bool logprobs = false;
  int top_logprobs = 0;
  // Whether the penalties' history includes the prompt (llama.cpp's server: yes) or
  // only the generated tokens.
  bool penalize_prompt = true;
};

// One step of the stream. The texts of all pieces, in order, are Generation::text.
// The text and logprobs are borrowed: valid only during the on_piece call.
struct GeneratedPiece {
  std::string_view text;                    // text that became final with this token (often "", held back)
  TokenId token = -1;                       // the token just generated; -1 for the last piece, which
                                            // flushes held-back text once generation has ended
  const TokenLogprobs* logprobs = nullptr;  // when GenerationOptions::logprobs; else null
};

struct Generation {
  std::string text;                     // cut before a stop string; no stop token's text
  std::vector<TokenId> tokens;          // generated ids, including one that completed a
                                        // stop string, excluding a stop token
  std::vector<TokenLogprobs> logprobs;  // one per token, when asked
  // The prompt's tokens after the first, scored (BatchScheduler's prompt_logprobs).
  std::vector<TokenLogprobs> prompt_logprobs;
  std::string finish_reason;            // "stop" (stop token or string) or "length"
  std::string stop_string;              // the stop string that matched, if one did
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // tokens.size()
  double prompt_seconds = 0;
  double decode_seconds = 0;
  double prompt_tokens_per_second = 0;
  double generated_tokens_per_second = 0;  // decode forwards per second of decoding
};

// The tokenizer's EOS and every control token whose text marks an end of turn or of
// text in a common chat format (<|im_end|>, <|eot_id|>, <end_of_turn>, <|endoftext|>,
// ...), as llama.cpp's end-of-generation set does. Sorted, no duplicates.
std::vector<TokenId> default_stop_tokens(const Tokenizer& tokenizer);

// One sequence's generation a token at a time: the checks, sampler, stop tokens, stop
// strings, streaming detokenization and log-probabilities of generate(), without the
// forward passes, so that a caller running many sequences in one batch (the batch
// scheduler) and generate() share them. The caller runs the prompt, hands each step's
// logits to step() until done(), then calls finish() once. Borrows the tokenizer.
class GenerationState {
 public:
  // The checks generate() makes before any work (see there), for a prompt in a context
  // of context_length positions.
  static Result<GenerationState> create(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                                        int64_t context_length, const GenerationOptions& options);

  // Picks the next token from the logits of the sequence's last position. Returns the
  // piece to stream, or nullopt when the step ended generation without a token (a stop
  // token). The piece's text and logprobs are valid until the next call.
  Result<std::optional<GeneratedPiece>> step(std::span<const float> logits);
  // True once nothing more will be generated: a stop token or string, or max_tokens
  // (also at once when the context leaves no room).
  bool done() const { return done_; }
  // The token to run through the model next (the last one generated). REQUIRES: a step
  // returned a piece and !done().
  TokenId next_input() const { return result_.tokens.back(); }
  // Ends the generation, also before done() (a cancelled request): the held-back text,
  // "" when there is none. Call once; result() is complete after it.
  std::string finish();

  const Generation& result() const { return result_; }
  Generation& result() { return result_; }
  // The most tokens this generation may produce (max_tokens clipped to the context).
  int64_t limit() const { return limit_; }

 private:
  GenerationState(const Tokenizer& tokenizer, std::span<const int32_t> prompt, const GenerationOptions& options,
                  StopStringMatcher matcher, std::vector<TokenId> stop_tokens, int64_t limit);

  const Tokenizer* tokenizer_;
  GenerationOptions options_;
  StopStringMatcher matcher_;
  std::vector<TokenId> stop_tokens_;  // sorted
  int64_t limit_;
  std::optional<Sampler> sampler_;  // made at the first step, when the logits' width is known
  StreamingDecoder decoder_;
  std::vector<int32_t> history_;  // the penalties' window source: the prompt (if penalized) and the output
  std::string piece_;
  Generation result_;
  bool done_ = false;
  bool finished_ = false;
};

// Resets the session, runs `prompt` as one batch and generates. on_piece (optional)
// sees every generated token in order, then a final piece with any held-back text; an
// error it returns ends generation with that error. Errors before any work:
// kInvalidArgument for an empty prompt, negative max_tokens, bad sampling options,
// stop strings or top_logprobs; kResourceExhausted when the prompt is longer than the
// session's context. Errors of the session and the tokenizer pass through.
Result<Generation> generate(InferenceSession& session, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                            const GenerationOptions& options,
                            const std::function<Status(const GeneratedPiece&)>& on_piece = {});

}  // namespace keel::engine
