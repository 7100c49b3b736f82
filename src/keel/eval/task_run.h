// Running a task (task.h) over a dataset with a Generator (generator.h): reading the
// JSONL examples, turning each into a prompt (template, few-shot examples) and a
// reference, asking the generator in batches, filtering and scoring each answer, and
// aggregating the scores. Pure: no store, no files beyond the dataset, so the CLI's
// `keel eval run` adds the tracking run, the checkpoint and resume around it. Results
// with a greedy generator depend only on the task, the data and the model, never on the
// batch size or on which examples were done in an earlier, interrupted run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "keel/eval/generator.h"
#include "keel/eval/task.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::eval {

struct DatasetRecord {
  int64_t line = 0;  // 1-based line in the file
  Json doc;          // a JSON object
};

// One JSON object per line; blank lines are skipped. Errors name the file and line:
// a missing or empty file, invalid UTF-8, malformed JSON, a line that is not an object.
Result<std::vector<DatasetRecord>> read_jsonl_examples(const std::string& path);

// Substitutes `{{ field }}` with the example's fields (the prompt registry's syntax).
// A missing field, or one that is not a string, number or boolean, is kInvalidArgument.
Result<std::string> render_template(const std::string& text, const Json& doc);

// The `{{ name }}` references of a template, in order: where each stands in the text
// ([begin, end) spans the braces) and its name, trimmed, as render_template reads them.
struct TemplateField {
  size_t begin = 0, end = 0;
  std::string name;
};
std::vector<TemplateField> template_fields(const std::string& text);

struct EvalExample {
  int64_t index = 0;  // position among the evaluated examples (0-based); the resume key
  std::string id;     // the record's "id" field, else "line N"
  int64_t line = 0;
  std::string prompt;     // the full prompt, few-shot examples included (the context)
  std::string reference;  // the rendered target (multiple_choice: the correct choice)
  std::vector<std::string> choices;
  int64_t gold = -1;  // multiple_choice: index of the correct choice
  Json fields;        // the record's fields (a judge's rubric may use them)
};

// The examples of the task's split with prompts and references; few-shot examples come
// from the task (inline) or from the first num_fewshot records of fewshot_split.
// `prompt_template` is the task's prompt (already resolved when it names the registry).
// Errors name the file line of the record at fault; an empty selection is an error.
Result<std::vector<EvalExample>> prepare_examples(const Task& task, const std::string& prompt_template,
                                                  const std::vector<DatasetRecord>& records,
                                                  const std::string& dataset_name);

struct ExampleResult {
  int64_t index = 0;
  std::string id;
  std::string input;
  std::string output;    // generate_until: the raw answer; multiple_choice: the chosen choice
  std::string filtered;  // generate_until: after the filters
  std::string reference;
  std::vector<std::string> choices;
  std::vector<double> choice_logprobs;
  int64_t gold = -1;
  int64_t prediction = -1;       // argmax of the log-likelihoods (acc)
  int64_t prediction_norm = -1;  // argmax of log-likelihood / byte length (acc_norm)
  double logprob = 0;            // loglikelihood: of the reference
  int64_t tokens = 0;
  bool is_greedy = false;
  std::map<std::string, double> scores;  // per metric
  // The judge's verdict (judge.h) when the task has a judge; null otherwise.
  Json judge;
};

Json to_json(const ExampleResult& r);
Result<ExampleResult> example_result_from_json(const Json& j);

// lm-eval's filters, in order.
std::string apply_filters(const std::vector<AnswerFilter>& filters, const std::string& answer);

// Runs and scores the examples as one batch (one generate or loglikelihood call).
Result<std::vector<ExampleResult>> evaluate_batch(const Task& task, Generator& generator,
                                                  std::span<const EvalExample> examples);

// The task's metrics over all results: means of the per-example scores, except BLEU and
// chrF (sacrebleu's corpus scores) and perplexity (exp of the mean negative
// log-likelihood per token over the whole set). Scales are the reference tools': 0-1 for
// exact_match, f1, ROUGE, acc and acc_norm; 0-100 for BLEU and chrF.
Result<std::map<std::string, double>> aggregate_metrics(const Task& task, const std::vector<ExampleResult>& results);

}  // namespace keel::eval
