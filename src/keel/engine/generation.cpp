#include "keel/engine/generation.h"

#include <algorithm>
#include <chrono>

#include "keel/engine/stop_strings.h"

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

Result<Generation> generate(InferenceSession& session, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                            const GenerationOptions& options,
                            const std::function<Status(const GeneratedPiece&)>& on_piece) {
  using Clock = std::chrono::steady_clock;
  const auto prompt_size = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) return invalid_argument("the prompt is empty");
  if (prompt_size > session.context_length()) {
    return resource_exhausted("the prompt has " + std::to_string(prompt_size) + " tokens, more than the context of " +
                              std::to_string(session.context_length()));
  }
  if (options.max_tokens < 0) return invalid_argument("max_tokens must not be negative");
  if (options.top_logprobs < 0 || options.top_logprobs > kMaxTopLogprobs) {
    return invalid_argument("top_logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], not " +
                            std::to_string(options.top_logprobs));
  }
  KEEL_RETURN_IF_ERROR(validate(options.sampling, static_cast<int64_t>(tokenizer.vocab_size())));
  KEEL_ASSIGN_OR_RETURN(StopStringMatcher matcher, StopStringMatcher::create(options.stop));
  const std::vector<TokenId> stop_tokens = options.stop_tokens.value_or(default_stop_tokens(tokenizer));
  auto is_stop_token = [&](TokenId id) {
    return std::find(stop_tokens.begin(), stop_tokens.end(), id) != stop_tokens.end();
  };

  const int64_t limit = std::min(options.max_tokens, session.context_length() - prompt_size + 1);
  Generation g;
  g.prompt_tokens = prompt_size;
  g.finish_reason = "length";
  if (limit == 0) return g;

  session.reset();
  const auto prompt_start = Clock::now();
  KEEL_ASSIGN_OR_RETURN(std::vector<float> logits, session.forward(prompt, LogitsFor::kLastToken));
  const auto decode_start = Clock::now();
  KEEL_ASSIGN_OR_RETURN(Sampler sampler, Sampler::create(options.sampling, static_cast<int64_t>(logits.size())));
  StreamingDecoder decoder(tokenizer);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  history.reserve(prompt.size() + static_cast<size_t>(limit));
  const size_t history_start = options.penalize_prompt ? 0 : prompt.size();
  int64_t decode_forwards = 0;

  while (static_cast<int64_t>(g.tokens.size()) < limit) {
    if (!g.tokens.empty()) {
      const int32_t last = g.tokens.back();
      KEEL_ASSIGN_OR_RETURN(logits, session.forward(std::span<const int32_t>(&last, 1), LogitsFor::kLastToken));
      ++decode_forwards;
    }
    KEEL_ASSIGN_OR_RETURN(int32_t token,
                          sampler.sample(logits, std::span<const int32_t>(history).subspan(history_start)));
    if (is_stop_token(token)) {
      g.finish_reason = "stop";
      break;
    }
    g.tokens.push_back(token);
    history.push_back(token);
    if (options.logprobs) {
      KEEL_ASSIGN_OR_RETURN(TokenLogprobs lp, compute_logprobs(logits, token, options.top_logprobs));
      g.logprobs.push_back(std::move(lp));
    }
    KEEL_ASSIGN_OR_RETURN(std::string piece, decoder.feed(token));
    const std::string safe = matcher.feed(piece);
    g.text += safe;
    if (on_piece) {
      KEEL_RETURN_IF_ERROR(on_piece({safe, token, options.logprobs ? &g.logprobs.back() : nullptr}));
    }
    if (matcher.stopped()) break;
  }

  if (!matcher.stopped()) {
    // An unfinished character comes out as U+FFFD; it may still complete a stop string.
    std::string rest = matcher.feed(decoder.finish());
    rest += matcher.finish();
    g.text += rest;
    if (on_piece && !rest.empty()) KEEL_RETURN_IF_ERROR(on_piece({rest, -1, nullptr}));
  }
  if (matcher.stopped()) {
    g.finish_reason = "stop";
    g.stop_string = matcher.matched();
  }

  const auto end = Clock::now();
  g.generated_tokens = static_cast<int64_t>(g.tokens.size());
  g.prompt_seconds = std::chrono::duration<double>(decode_start - prompt_start).count();
  g.decode_seconds = std::chrono::duration<double>(end - decode_start).count();
  if (g.prompt_seconds > 0) g.prompt_tokens_per_second = static_cast<double>(prompt_size) / g.prompt_seconds;
  if (g.decode_seconds > 0 && decode_forwards > 0) {
    g.generated_tokens_per_second = static_cast<double>(decode_forwards) / g.decode_seconds;
  }
  return g;
}

}  // namespace keel::engine
