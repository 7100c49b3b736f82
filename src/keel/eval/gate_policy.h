// Release gates over evaluation results: a YAML policy of per-task rules, each an
// absolute threshold ("f1 >= 0.5") or one relative to the version an alias names
// ("bleu >= production - 0.5"). Used by `keel eval gate`, which finds the eval runs and
// records the outcome as a named check on the model version (registry/governance.h).
//
//   check: eval-gate          # the check's name (default eval-gate)
//   tasks:
//     reading: ["f1 >= 0.5", "exact_match >= production - 0.05"]
//     capitals: ["acc >= 0.8"]
//   rules:                    # the same, as TASK.METRIC (the task is up to the first '.')
//     - "security.pass_rate >= 0.98"
//     - "bias.max_parity_gap <= 0.1"
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::eval {

struct GateRule {
  std::string task;
  std::string metric;
  std::string op;     // >=, >, <=, <, ==
  std::string alias;  // "" for an absolute threshold
  double offset = 0;  // the number, or what is added to the alias's value
  std::string text;   // as written
};

struct GatePolicy {
  std::string check = "eval-gate";
  std::vector<GateRule> rules;
};

// "METRIC OP NUMBER" or "METRIC OP ALIAS [+|- NUMBER]".
Result<GateRule> parse_gate_rule(const std::string& task, const std::string& text);
// Unknown keys, an empty policy and malformed rules are kInvalidArgument naming the line.
Result<GatePolicy> parse_gate_policy(const std::string& yaml, const std::string& source);

struct GateOutcome {
  GateRule rule;
  std::optional<double> value;      // the candidate's metric
  std::optional<double> baseline;   // the alias version's metric (relative rules)
  std::optional<double> threshold;  // what value was compared with
  bool passed = false;
  std::string reason;  // why it failed, or ""
};

// Looks up a task's metric for a version: the candidate (alias "") or the version an
// alias names. nullopt with a reason in *why when there is no such result.
using MetricLookup =
    std::function<std::optional<double>(const std::string& task, const std::string& metric, const std::string& alias,
                                        std::string* why)>;

std::vector<GateOutcome> evaluate_gate(const GatePolicy& policy, const MetricLookup& lookup);
Json to_json(const GateOutcome& outcome);

}  // namespace keel::eval
