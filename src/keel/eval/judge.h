// LLM-as-judge: a served model, a rubric (a `{{ field }}` prompt template) and a parser
// for its verdict. A judge is defined in YAML, standalone or as a task's `judge:`
// section (see examples/eval/ and README.md), and parsed as strictly as a task. The
// verdict parsers are pure: `score` (a number found by a regex, inside a range, scaled
// to 0-1), `label` (one of a set of words, each worth a value) and `pairwise` (which of
// two answers shown as A and B is better, asked twice with the order swapped). A
// verdict that cannot be parsed is a value (parsed = false, the raw text and the
// reason kept), never an error and never a score of 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/eval/generator.h"
#include "keel/eval/task_run.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace YAML {
class Node;
}

namespace keel::eval {

struct VerdictParser {
  enum class Kind { kScore, kLabel, kPairwise };
  Kind kind = Kind::kScore;
  // kScore: the number is capture group 1 of the first match (the whole match when the
  // pattern has no group). kLabel / kPairwise: when set, the labels are looked for in
  // group 1 of the first match instead of the whole answer.
  std::string regex;
  double min = 0, max = 10;  // kScore: the scale; a number outside it is unparsed
  // kLabel: each label and its value (0-1 by convention); kPairwise: the words for
  // "A is better", "B is better" and "they are equal", in that order. The first label
  // found as a whole word (earliest in the text) is the verdict.
  std::vector<std::pair<std::string, double>> labels;
  bool case_sensitive = false;
};
std::string_view verdict_kind_name(VerdictParser::Kind kind);

struct JudgeModel {
  std::string reference;  // NAME[@VERSION|@ALIAS], a GGUF file, or the model name at endpoint
  std::string endpoint;   // an OpenAI-compatible base URL; "" for a registered model or a file
  std::string api_key_env;
};

struct Judge {
  std::string name;
  std::string description;
  std::string source;  // the file it came from (for messages)
  JudgeModel model;
  std::string rubric;            // the prompt template ...
  std::string rubric_reference;  // ... or a prompt-registry NAME@VERSION (resolved by the caller)
  GenerationParams generation;   // temperature 0 (greedy) and max_tokens 16 unless given
  VerdictParser verdict;
};

// A standalone judge file. Strict as parse_task: unknown keys, missing fields, wrong
// types, a bad regex or range, a rubric that never shows the output are errors naming
// the key and its line.
Result<Judge> parse_judge(const std::string& yaml, const std::string& source);
Result<Judge> load_judge(const std::string& path);
// A judge as a map inside another document (a task's `judge:`); `context` prefixes
// messages ("judge").
Result<Judge> parse_judge_node(const YAML::Node& node, const std::string& source, const std::string& context);

// The variables a rubric may use besides the example's own fields.
// score / label: input (the prompt the model saw), output, filtered, reference.
// pairwise: input, reference, output_a, output_b.
// The rubric must show the output(s): checked when the judge is parsed, and again here
// for a rubric from the registry.
Status check_rubric(const Judge& judge, const std::string& rubric);

struct Verdict {
  bool parsed = false;
  double value = 0;   // 0-1 when parsed (score scaled to the range, the label's value)
  std::string label;  // the number or label found, as written
  std::string raw;    // the judge's whole answer
  std::string error;  // why it did not parse
};
Verdict parse_verdict(const VerdictParser& parser, const std::string& text);
Json to_json(const Verdict& v);

// The judge's prompt for one result of a run: the rubric over the example's fields
// (`fields`, may be null) and the result's input, output, filtered and reference.
Result<std::string> judge_prompt(const std::string& rubric, const Json& fields, const ExampleResult& result);

// Pairwise judging of two outputs for the same input. `first` is the judge's answer with
// run A's output shown as A, `second` with the order swapped (run B's output shown as A).
struct PairwiseVerdict {
  Verdict first, second;
  // Each pass read back in terms of the runs: "a", "b", "tie", or "" when unparsed.
  std::string first_winner, second_winner;
  bool both_parsed = false;
  bool consistent = false;  // both parsed and they name the same winner
  // "a", "b" or "tie" when both parsed (a position-inconsistent pair is a tie);
  // "unparsed" otherwise.
  std::string winner;
};
// The prompts of the two passes: {first, second}.
Result<std::pair<std::string, std::string>> pairwise_prompts(const std::string& rubric, const std::string& input,
                                                             const std::string& reference, const std::string& output_a,
                                                             const std::string& output_b);
PairwiseVerdict combine_pairwise(const VerdictParser& parser, const std::string& first, const std::string& second);
Json to_json(const PairwiseVerdict& v);

struct PairwiseSummary {
  int64_t pairs = 0;
  int64_t a_wins = 0, b_wins = 0, ties = 0;  // ties include the inconsistent pairs
  int64_t inconsistent = 0;                  // both parsed, different winners
  int64_t unparsed = 0;                      // either pass unparsed (not in wins or ties)
  // Of the pairs with both passes parsed: the share where they agree; (b + ties / 2)
  // over them: B's win rate. Absent with no such pair.
  std::optional<double> agreement, b_win_rate;
};
PairwiseSummary summarize_pairwise(const std::vector<PairwiseVerdict>& verdicts);
Json to_json(const PairwiseSummary& s);

// A run's judge results: each row's "judge" object holds its verdict (to_json above plus
// "cached" and "trace_id"); the parsed verdicts' mean, and how many did not parse.
struct JudgeSummary {
  int64_t judged = 0, parsed = 0, unparsed = 0, cache_hits = 0;
  std::optional<double> mean;  // absent when no verdict parsed: never a silent 0
};
JudgeSummary summarize_judge(const std::vector<ExampleResult>& results);

}  // namespace keel::eval
