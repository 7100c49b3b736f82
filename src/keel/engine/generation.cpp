#include "keel/engine/generation.h"

#include <algorithm>
#include <chrono>


namespace keel::engine {

std::vector<TokenId> default_stop_tokens(const Tokenizer& tokenizer) {
  // The texts llama.cpp also treats as end of generation when a file names no EOT id.
  static constexpr const char* kEndMarkers[] = {
      "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<EOT>",
  };
  std::vector<TokenId> out;
  if (tokenizer.eos_id() >= 0) out.push_back(tokenizer.eos_id());
  for (const char* marker : kEndMarkers) {
    auto id = tokenizer.find_token(marker);
    if (!id) continue;
    const TokenType type = tokenizer.token_type(*id);
    if (type == TokenType::kControl || type == TokenType::kUserDefined) out.push_back(*id);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<GenerationState> GenerationState::create(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                                                int64_t context_length, const GenerationOptions& options) {
  const auto prompt_size = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) return invalid_argument("the prompt is empty");
  if (prompt_size > context_length) {
    return resource_exhausted("the prompt has " + std::to_string(prompt_size) + " tokens, more than the context of " +
                              std::to_string(context_length));
  }
  if (options.max_tokens < 0) return invalid_argument("max_tokens must not be negative");
  if (options.top_logprobs < 0 || options.top_logprobs > kMaxTopLogprobs) {
    return invalid_argument("top_logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], not " +
                            std::to_string(options.top_logprobs));
  }
  KEEL_RETURN_IF_ERROR(validate(options.sampling, static_cast<int64_t>(tokenizer.vocab_size())));
  KEEL_ASSIGN_OR_RETURN(StopStringMatcher matcher, StopStringMatcher::create(options.stop));
  std::vector<TokenId> stop_tokens = options.stop_tokens.value_or(default_stop_tokens(tokenizer));
  std::sort(stop_tokens.begin(), stop_tokens.end());
  // The last position of the context is never run, so it can still be sampled from.
  const int64_t limit = std::min(options.max_tokens, context_length - prompt_size + 1);
  return GenerationState(tokenizer, prompt, options, std::move(matcher), std::move(stop_tokens), limit);
}

GenerationState::GenerationState(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                                 const GenerationOptions& options, StopStringMatcher matcher,
                                 std::vector<TokenId> stop_tokens, int64_t limit)
    : tokenizer_(&tokenizer),
      options_(options),
      matcher_(std::move(matcher)),
      stop_tokens_(std::move(stop_tokens)),
      limit_(limit),
      decoder_(tokenizer) {
  if (options_.penalize_prompt) history_.assign(prompt.begin(), prompt.end());
  result_.prompt_tokens = static_cast<int64_t>(prompt.size());
  result_.finish_reason = "length";
  done_ = limit_ == 0;
}

Result<std::optional<GeneratedPiece>> GenerationState::step(std::span<const float> logits) {
  if (done_ || finished_) return failed_precondition("the generation has ended");
  if (!sampler_) {
    KEEL_ASSIGN_OR_RETURN(Sampler sampler, Sampler::create(options_.sampling, static_cast<int64_t>(logits.size())));
    sampler_.emplace(std::move(sampler));
  }
  KEEL_ASSIGN_OR_RETURN(int32_t token, sampler_->sample(logits, history_));
  if (std::binary_search(stop_tokens_.begin(), stop_tokens_.end(), token)) {
    result_.finish_reason = "stop";
    done_ = true;
    return std::optional<GeneratedPiece>();
  }
  result_.tokens.push_back(token);
  history_.push_back(token);
  if (options_.logprobs) {
    KEEL_ASSIGN_OR_RETURN(TokenLogprobs lp, compute_logprobs(logits, token, options_.top_logprobs));
    result_.logprobs.push_back(std::move(lp));
  }
  KEEL_ASSIGN_OR_RETURN(std::string piece, decoder_.feed(token));
  piece_ = matcher_.feed(piece);
  result_.text += piece_;
  if (matcher_.stopped() || static_cast<int64_t>(result_.tokens.size()) >= limit_) done_ = true;
  return std::optional<GeneratedPiece>(
      GeneratedPiece{piece_, token, options_.logprobs ? &result_.logprobs.back() : nullptr});
}

std::string GenerationState::finish() {
  if (finished_) return "";
  finished_ = true;
  done_ = true;
  std::string rest;
  if (!matcher_.stopped()) {
    // An unfinished character comes out as U+FFFD; it may still complete a stop string.
    rest = matcher_.feed(decoder_.finish());
    rest += matcher_.finish();
    result_.text += rest;
  }
  if (matcher_.stopped()) {
    result_.finish_reason = "stop";
    result_.stop_string = matcher_.matched();
  }
  result_.generated_tokens = static_cast<int64_t>(result_.tokens.size());
  return rest;
}

Result<Generation> generate(InferenceSession& session, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                            const GenerationOptions& options,
                            const std::function<Status(const GeneratedPiece&)>& on_piece) {
  using Clock = std::chrono::steady_clock;
  KEEL_ASSIGN_OR_RETURN(GenerationState state,
                        GenerationState::create(tokenizer, prompt, session.context_length(), options));
  if (state.done()) {
    state.finish();
    return std::move(state.result());
  }

  session.reset();
  const auto prompt_start = Clock::now();
  KEEL_ASSIGN_OR_RETURN(std::vector<float> logits, session.forward(prompt, LogitsFor::kLastToken));
  const auto decode_start = Clock::now();
  int64_t decode_forwards = 0;
  while (true) {
    KEEL_ASSIGN_OR_RETURN(std::optional<GeneratedPiece> piece, state.step(logits));
    if (piece && on_piece) KEEL_RETURN_IF_ERROR(on_piece(*piece));
    if (state.done()) break;
    const int32_t last = state.next_input();
    KEEL_ASSIGN_OR_RETURN(logits, session.forward(std::span<const int32_t>(&last, 1), LogitsFor::kLastToken));
    ++decode_forwards;
  }
  const std::string rest = state.finish();
  if (on_piece && !rest.empty()) KEEL_RETURN_IF_ERROR(on_piece({rest, -1, nullptr}));

  const auto end = Clock::now();
  Generation g = std::move(state.result());
  g.prompt_seconds = std::chrono::duration<double>(decode_start - prompt_start).count();
  g.decode_seconds = std::chrono::duration<double>(end - decode_start).count();
  if (g.prompt_seconds > 0) g.prompt_tokens_per_second = static_cast<double>(g.prompt_tokens) / g.prompt_seconds;
  if (g.decode_seconds > 0 && decode_forwards > 0) {
    g.generated_tokens_per_second = static_cast<double>(decode_forwards) / g.decode_seconds;
  }
  return g;
}

}  // namespace keel::engine
