// Generator: who produces text for an evaluation, behind one interface, so that a task
// runs the same on the local engine, a running Keel server or any OpenAI-compatible
// endpoint. The evaluation code (task_run.h) depends on this only; the implementations
// live where their dependencies may be used (the CLI: cli/eval_generators.h). A caller
// must not assume that two calls share state: each request stands alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

struct GenerationParams {
  int64_t max_tokens = 64;
  double temperature = 0;  // 0: greedy, so that a run is reproducible and resumable
  double top_p = 1;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // generation ends before the first of these (lm-eval's `until`)
  bool chat = false;              // send the prompt as one user message through the chat template
};

// One turn of a conversation: a role ("system", "user", "assistant") and its text.
struct ChatTurn {
  std::string role;
  std::string content;
};
using Conversation = std::vector<ChatTurn>;

// A conversation as plain text for a model without a chat template:
// "System: ...\n\nUser: ...\n\nAssistant:".
std::string plain_transcript(const Conversation& conversation);

struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
};

struct LoglikelihoodResult {
  double logprob = 0;      // log P(continuation | context), summed over its tokens
  bool is_greedy = false;  // every continuation token was the most likely one
  int64_t tokens = 0;      // tokens of the continuation
};

// One answer with what it cost, for callers that record it (a judge's traces).
struct Completion {
  std::string text;
  int64_t prompt_tokens = 0, completion_tokens = 0;  // 0 when the generator cannot tell
  std::string finish_reason;                         // "stop", "length"; "" when unknown
  double latency_ms = 0;                             // this request's own time; 0 when unknown
};

class Generator {
 public:
  virtual ~Generator() = default;
  // One completion per prompt, in order. An implementation may run them in one batch.
  virtual Result<std::vector<std::string>> generate(const std::vector<std::string>& prompts,
                                                    const GenerationParams& params) = 0;
  // generate() with each answer's tokens, finish reason and latency. The default knows
  // only the texts.
  virtual Result<std::vector<Completion>> complete(const std::vector<std::string>& prompts,
                                                   const GenerationParams& params) {
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> texts, generate(prompts, params));
    std::vector<Completion> out(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) out[i].text = std::move(texts[i]);
    return out;
  }
  // One answer per conversation (a system prompt, earlier turns), in order, through the
  // model's chat template. The default, for a generator that knows only text, sends
  // each conversation's plain_transcript.
  virtual Result<std::vector<Completion>> converse(const std::vector<Conversation>& conversations,
                                                   const GenerationParams& params) {
    std::vector<std::string> prompts;
    for (const auto& c : conversations) prompts.push_back(plain_transcript(c));
    GenerationParams plain = params;
    plain.chat = false;
    return complete(prompts, plain);
  }
  // kFailedPrecondition when the generator cannot score text
  // (most hosted APIs give no log-probabilities of the prompt).
  virtual Result<std::vector<LoglikelihoodResult>> loglikelihood(const std::vector<LoglikelihoodRequest>& requests) = 0;
  // "local engine, 8 sequences per batch", "http://host:8080/v1 (model m)": for run parameters.
  virtual std::string description() const = 0;
};

}  // namespace keel::eval
