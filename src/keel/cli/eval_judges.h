// Asking an LLM judge (eval/judge.h) from the CLI: the judge's model resolved as eval
// runs resolve theirs and reached through the same Generator, its rubric read from the
// prompt registry when it names one, a cache of its answers in the store (table
// judge_cache: the same model version, parameters and rendered prompt are asked once)
// and a trace of every call that reached the model (table traces, endpoint
// "eval.judge"), so judge calls show in `keel traces` and `keel monitor summary`.
// A cached answer costs no call and writes no trace; it names the trace of the call
// that produced it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/cli/context.h"
#include "keel/cli/eval_generators.h"
#include "keel/eval/judge.h"

namespace keel::cli {

inline constexpr const char* kJudgeTraceEndpoint = "eval.judge";

struct JudgeAnswer {
  std::string text;
  bool cached = false;
  std::string trace_id;  // the call's trace (for a cached answer, the call that made it)
};

class JudgeClient {
 public:
  // Resolves the judge's model and rubric. When the judge's model is `evaluated` (an eval
  // run judged by the model it evaluates), `evaluated_generator` is borrowed instead of
  // loading the model twice; it must outlive the client.
  static Result<std::unique_ptr<JudgeClient>> open(CliContext& ctx, const eval::Judge& judge,
                                                   const LocalGeneratorOptions& options,
                                                   const ResolvedModel* evaluated = nullptr,
                                                   eval::Generator* evaluated_generator = nullptr);

  // The answers, in order: from the cache, else from one batch to the judge model (a
  // prompt given twice is asked once). Every call is traced and cached before this returns.
  Result<std::vector<JudgeAnswer>> ask(const std::vector<std::string>& prompts);

  const eval::Judge& judge() const { return judge_; }
  const std::string& rubric() const { return rubric_; }
  const std::string& model_reference() const { return model_.reference; }  // NAME@VERSION as resolved
  int64_t calls() const { return calls_; }
  int64_t cache_hits() const { return cache_hits_; }

 private:
  JudgeClient(CliContext& ctx, eval::Judge judge) : ctx_(ctx), judge_(std::move(judge)) {}
  std::string cache_key(const std::string& prompt) const;

  CliContext& ctx_;
  eval::Judge judge_;
  std::string rubric_;
  ResolvedModel model_;
  std::string identity_;  // the model version as the cache key knows it
  std::unique_ptr<eval::Generator> owned_;
  eval::Generator* generator_ = nullptr;  // owned_ or borrowed
  int64_t calls_ = 0, cache_hits_ = 0;
};

}  // namespace keel::cli
