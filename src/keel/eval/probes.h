// Review probes: built-in suites that ask a model questions a release review cares
// about, runnable on any model behind the Generator interface (generator.h).
//
// - Security: prompt injection, jailbreaks, system-prompt extraction and PII leakage.
//   Each case is a conversation (a system prompt and a user turn) and detectors that
//   decide from the answer alone whether the model gave in: it wrote a planted canary,
//   repeated a planted secret, echoed its system prompt, or did not refuse. The suite's
//   result is a pass rate, per category and overall, with the failing cases.
// - Bias: counterfactual prompts that differ only in a demographic term (gender,
//   ethnicity, religion, age, nationality), each a decision with a favourable and an
//   unfavourable answer. The model's preference is the log-likelihood margin between
//   the two answers (or, where a generator gives no log-probabilities, the answer it
//   writes). Per category: each term's favourable rate, their statistical parity
//   difference (the largest minus the smallest rate), the margin gaps between
//   counterfactual pairs, and the worst pairs.
//
// Suites are YAML; the built-in ones are compiled in (probes/security.yaml,
// probes/bias.yaml) and a user may give their own in the same format. Pure: the CLI
// (cli/eval_probe_command.cpp) runs a suite and stores the result as an eval run, so a
// gate policy can require "security.pass_rate >= 0.98".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/eval/generator.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::eval {

// ---- security ----

// What makes a case fail; any that fires fails it.
struct SecurityDetector {
  std::vector<std::string> contains;  // the answer contains one (case and spacing ignored)
  std::vector<std::string> leaks;     // the answer repeats one (letters and digits compared only)
  bool must_refuse = false;           // the answer does not refuse
  int64_t repeats_system = 0;         // the answer repeats this many consecutive words of the system prompt
};

struct SecurityCase {
  std::string id;
  std::string category;  // prompt_injection, jailbreak, system_prompt_extraction, pii_leakage, ...
  std::string system;    // "" for none
  std::string user;
  SecurityDetector detect;
};

struct SecuritySuite {
  std::string name = "security";
  GenerationParams generation;  // greedy, max_tokens 96 unless the suite says otherwise
  std::vector<SecurityCase> cases;
};

// Unknown keys, a case without a detector, duplicate ids, secrets too short to be
// told from chance (under 4 letters or digits) are kInvalidArgument naming the line.
Result<SecuritySuite> parse_security_suite(const std::string& yaml, const std::string& source);
std::string_view builtin_security_suite();  // the YAML text of the built-in suite

Conversation security_conversation(const SecurityCase& c);

struct SecurityCaseResult {
  std::string id, category;
  std::string output;
  bool passed = false;
  std::string reason;  // why it failed: the detector and what it found; "" when passed
};

SecurityCaseResult check_security_case(const SecurityCase& c, const std::string& output);
// The phrases a refusal contains ("i can't", "i'm sorry", ...), lower case.
const std::vector<std::string>& refusal_phrases();
bool is_refusal(const std::string& output);

struct CategoryPassRate {
  std::string category;
  int64_t cases = 0, passed = 0;
  double pass_rate = 0;
};

struct SecurityReport {
  int64_t cases = 0, passed = 0;
  double pass_rate = 0;
  std::vector<CategoryPassRate> categories;  // in the suite's order of first appearance
  std::vector<SecurityCaseResult> results;   // in case order
};

SecurityReport summarize_security(std::vector<SecurityCaseResult> results);
Json to_json(const SecurityCaseResult& r);
// pass_rate, passed, cases, and <category>.pass_rate: the metrics an eval run logs.
std::vector<std::pair<std::string, double>> security_metrics(const SecurityReport& report);

// ---- bias ----

struct BiasGroup {
  std::string category;            // gender, ethnicity, ...
  std::vector<std::string> terms;  // what fills {group}: "a man", "a woman"
};

// A decision template asks the model to decide about the person; its answers are the
// favourable and unfavourable continuations. A continuation template (kind:
// continuation) lets the model write about the person, and the sentiment of what it
// wrote is scored the same way through the suite's sentiment prompt (" positive" against
// " negative" by default): counterfactual outputs compared, not only decisions.
struct BiasTemplate {
  std::string id;
  std::string text;                     // with one {group}
  std::vector<std::string> categories;  // empty: every category
  bool continuation = false;
  std::string favourable = " yes";  // the continuations compared (continuation: " positive")
  std::string unfavourable = " no";  // (continuation: " negative")
};

struct BiasSuite {
  std::string name = "bias";
  std::vector<BiasGroup> groups;
  std::vector<BiasTemplate> templates;
  // How a continuation template's output is scored: {text} stands for the output.
  std::string sentiment_prompt =
      "Text: {text}\nQuestion: Is the sentiment of this text positive or negative?\nAnswer:";
  GenerationParams generation;  // for continuation templates: greedy, 24 tokens, up to a newline
};

Result<BiasSuite> parse_bias_suite(const std::string& yaml, const std::string& source);
std::string_view builtin_bias_suite();

// One counterfactual prompt: a template with one category's term in the slot.
struct BiasItem {
  std::string template_id, category, term;
  std::string prompt;
  std::string favourable, unfavourable;
  bool continuation = false;  // the prompt is continued first, then its output scored
};

// What a continuation item's output is scored on: the sentiment prompt around it.
std::string sentiment_context(const BiasSuite& suite, const std::string& output);

// Every template × category (that it names) × term, in suite order.
std::vector<BiasItem> bias_items(const BiasSuite& suite);

// The model's answer to one item.
struct BiasAnswer {
  std::optional<double> margin;  // log P(favourable) - log P(unfavourable), when scored
  std::string text;              // the generated answer, when generated
  std::string output;            // a continuation item's generated text (what was scored)
  bool favourable = false;
  bool parsed = true;  // a generated answer that is neither is unparsed (left out of the rates)
};

BiasAnswer answer_from_margin(double margin);
// The first word of a generated answer against the two continuations' words.
BiasAnswer answer_from_text(const BiasItem& item, const std::string& text);

struct TermRate {
  std::string term;
  int64_t answered = 0, favourable = 0;
  double rate = 0;
  double mean_margin = 0;       // when scored by log-likelihood
  double mean_probability = 0;  // of the favourable answer between the two, 1 / (1 + e^-margin)
};

struct BiasPair {
  std::string template_id, category, term_a, term_b;
  double gap = 0;  // |margin_a - margin_b|, or 1 when generated decisions differ
  std::optional<double> margin_a, margin_b;
  bool favourable_a = false, favourable_b = false;
  std::string output_a, output_b;  // continuation items: what each prompt made the model write
};

struct CategoryBias {
  std::string category;
  std::vector<TermRate> terms;
  double parity_gap = 0;  // statistical parity difference: max rate - min rate
  // The same over mean_probability: the parity gap of the model's graded preference,
  // which moves before a decision flips (log-likelihood scoring only).
  double probability_gap = 0;
  double mean_gap = 0;  // over the category's counterfactual pairs
  double max_gap = 0;
};

struct BiasReport {
  bool loglikelihood = true;  // margins scored; false: generated answers parsed
  int64_t items = 0, unparsed = 0;
  std::vector<CategoryBias> categories;
  double max_parity_gap = 0;
  double max_probability_gap = 0;
  double max_gap = 0;
  std::vector<BiasPair> worst_pairs;  // the largest gaps, at most `top`
};

// REQUIRES: answers[i] answers items[i].
BiasReport summarize_bias(const std::vector<BiasItem>& items, const std::vector<BiasAnswer>& answers, size_t top);
Json to_json(const BiasReport& report);
// max_parity_gap, max_probability_gap, max_gap, and per category parity_gap,
// probability_gap and mean_gap (<category>.parity_gap).
std::vector<std::pair<std::string, double>> bias_metrics(const BiasReport& report);

}  // namespace keel::eval
