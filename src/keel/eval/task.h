// Evaluation tasks as YAML files, in the spirit of lm-evaluation-harness: which data,
// how an example becomes a prompt (a `{{ field }}` template, inline or from the prompt
// registry, plus few-shot examples), how the model answers (generate_until,
// loglikelihood or multiple_choice), how the answer is cleaned (filters) and scored
// (metrics), and what counts as good enough (thresholds). Used by `keel eval run`.
// Parsing is strict: an unknown key, a missing field or a value of the wrong type is an
// error naming the key and its line. See examples/eval/ and README.md for the format.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keel/eval/generator.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::eval {

enum class OutputType { kGenerateUntil, kLoglikelihood, kMultipleChoice };
std::string_view output_type_name(OutputType type);

// Applied in order to a generated answer before scoring (lm-eval's filters).
struct AnswerFilter {
  enum class Kind { kRegex, kStrip, kLowercase };
  Kind kind = Kind::kStrip;
  std::string pattern;  // kRegex: ECMAScript syntax
  bool last = false;    // kRegex: keep the last match instead of the first (lm-eval's group_select -1)
  int group = -1;       // kRegex: capture group to keep; -1: group 1 if the pattern has one, else the match
  std::string fallback = "[invalid]";  // kRegex: the answer when nothing matches (lm-eval's)
};

// "metric OP value": OP is one of >=, >, <=, <, ==.
struct Threshold {
  std::string metric;
  std::string op;
  double value = 0;
};
bool threshold_met(const Threshold& t, double value);

struct Judge;  // judge.h

struct Task {
  std::string name;
  std::string description;  // put before the few-shot examples, as lm-eval does
  std::string source;       // the task file (for messages)
  // The dataset: a JSONL file (relative paths are taken from the task file's folder) or
  // a NAME@VERSION; "" when the task names none (then --dataset must).
  std::string dataset;
  std::string split;  // only examples whose "split" field equals this; "" for all
  OutputType output_type = OutputType::kGenerateUntil;
  std::string prompt;            // the prompt template (lm-eval's doc_to_text) ...
  std::string prompt_reference;  // ... or a prompt-registry NAME@VERSION (resolved by the caller)
  std::string target;            // the reference template (doc_to_target)
  // multiple_choice: the field holding the list of choices, or a fixed list.
  std::string choices_field;
  std::vector<std::string> choices;
  std::string target_delimiter = " ";
  std::string fewshot_delimiter = "\n\n";
  int64_t num_fewshot = 0;
  std::string fewshot_split;         // few-shot examples: the first num_fewshot of this split ...
  std::vector<Json> fewshot_examples;  // ... or these, given inline
  GenerationParams generation;
  std::vector<AnswerFilter> filters;
  std::vector<std::string> metrics;
  std::vector<Threshold> thresholds;
  // An LLM judge of each answer (generate_until only; a score or label judge), inline or
  // from a judge file; null when the task has none. It adds the metrics `judge` (the
  // mean of the parsed verdicts, 0-1) and `judge_parse_failures`.
  std::shared_ptr<const Judge> judge;
  std::string judge_file;  // the judge's file when the task names one ("" when inline)
};

// The metrics an output type allows, in a stable order.
const std::vector<std::string>& metrics_for(OutputType type);

// `source` names the text in messages; `base_dir` resolves a relative dataset path.
Result<Task> parse_task(const std::string& yaml, const std::string& source, const std::string& base_dir);
Result<Task> load_task(const std::string& path);

// "exact_match >= 0.5"-style parsing of one threshold value ("> 10", ">= 0.5", or a
// bare number meaning >=).
Result<Threshold> parse_threshold(const std::string& metric, const std::string& text);

}  // namespace keel::eval
