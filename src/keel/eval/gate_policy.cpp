#include "keel/eval/gate_policy.h"

#include <yaml-cpp/yaml.h>

#include <cctype>

#include "keel/eval/task.h"

namespace keel::eval {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; }

std::optional<double> parse_number(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (trim(text.substr(used)).empty()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

Result<GateRule> parse_gate_rule(const std::string& task, const std::string& text) {
  GateRule rule;
  rule.task = task;
  rule.text = trim(text);
  auto bad = [&] {
    return invalid_argument("rule \"" + text + "\" of task " + task +
                            " is not METRIC OP NUMBER or METRIC OP ALIAS [+|- NUMBER], e.g. \"bleu >= production - 0.5\"");
  };
  size_t i = 0;
  const std::string& s = rule.text;
  while (i < s.size() && is_name_char(s[i])) ++i;
  rule.metric = s.substr(0, i);
  if (rule.metric.empty()) return bad();
  while (i < s.size() && s[i] == ' ') ++i;
  for (const char* op : {">=", "<=", "==", ">", "<"}) {
    if (s.compare(i, std::char_traits<char>::length(op), op) == 0) {
      rule.op = op;
      break;
    }
  }
  if (rule.op.empty()) return bad();
  std::string rest = trim(s.substr(i + rule.op.size()));
  if (auto n = parse_number(rest)) {
    rule.offset = *n;
    return rule;
  }
  size_t j = 0;
  while (j < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[j])) || rest[j] == '_' || rest[j] == '-')) {
    // A '-' followed by a space or digit is the operator, not part of the alias.
    if (rest[j] == '-' && (j + 1 >= rest.size() || rest[j + 1] == ' ' || std::isdigit(static_cast<unsigned char>(rest[j + 1])))) break;
    ++j;
  }
  rule.alias = rest.substr(0, j);
  if (rule.alias.empty() || std::isdigit(static_cast<unsigned char>(rule.alias[0]))) return bad();
  std::string tail = trim(rest.substr(j));
  if (tail.empty()) return rule;
  if (tail[0] != '+' && tail[0] != '-') return bad();
  auto n = parse_number(trim(tail.substr(1)));
  if (!n) return bad();
  rule.offset = tail[0] == '-' ? -*n : *n;
  return rule;
}

Result<GatePolicy> parse_gate_policy(const std::string& yaml, const std::string& source) {
  GatePolicy policy;
  try {
    const YAML::Node root = YAML::Load(yaml);
    if (!root.IsMap()) return invalid_argument(source + ": a gate policy is a YAML map (check:, tasks:)");
    for (const auto& entry : root) {
      const std::string key = entry.first.Scalar();
      if (key != "check" && key != "tasks" && key != "rules") {
        return invalid_argument(source + ": unknown key \"" + key + "\" (line " +
                                std::to_string(entry.first.Mark().line + 1) + "); expected check, tasks, rules");
      }
    }
    if (const YAML::Node c = root["check"]) {
      if (!c.IsScalar() || c.Scalar().empty()) return invalid_argument(source + ": check must name the check");
      policy.check = c.Scalar();
    }
    const YAML::Node tasks = root["tasks"];
    const YAML::Node flat = root["rules"];
    if ((!tasks || (tasks.IsMap() && tasks.size() == 0)) && !flat) {
      return invalid_argument(source +
                              ": no rules: give \"tasks\" (a map of task name to rules like \"f1 >= 0.5\") or "
                              "\"rules\" (a list like \"security.pass_rate >= 0.98\")");
    }
    if (tasks && !tasks.IsMap()) {
      return invalid_argument(source + ": \"tasks\" is a map of task name to rules like \"f1 >= 0.5\"");
    }
    if (flat) {
      if (!flat.IsSequence() || flat.size() == 0) {
        return invalid_argument(source + ": \"rules\" is a list of rules like \"security.pass_rate >= 0.98\"");
      }
      for (const auto& r : flat) {
        const std::string at = " (line " + std::to_string(r.Mark().line + 1) + ")";
        if (!r.IsScalar()) return invalid_argument(source + ": rules" + at + ": a rule is a string");
        // TASK.METRIC OP ...: the task is up to the first '.', the metric the rest.
        const std::string text = trim(r.Scalar());
        const size_t dot = text.find('.');
        size_t name_end = 0;
        while (name_end < text.size() && is_name_char(text[name_end])) ++name_end;
        if (dot == std::string::npos || dot == 0 || dot + 1 >= name_end) {
          return invalid_argument(source + ": rules" + at + ": \"" + text +
                                  "\" does not start with TASK.METRIC, e.g. \"security.pass_rate >= 0.98\"");
        }
        auto rule = parse_gate_rule(text.substr(0, dot), text.substr(dot + 1));
        if (!rule.ok()) return invalid_argument(source + ": " + rule.status().message());
        rule->text = text;
        policy.rules.push_back(std::move(*rule));
      }
    }
    for (const auto& entry : (tasks ? tasks : YAML::Node(YAML::NodeType::Map))) {
      const std::string task = entry.first.Scalar();
      const YAML::Node rules = entry.second;
      std::vector<std::string> texts;
      if (rules.IsScalar()) {
        texts.push_back(rules.Scalar());
      } else if (rules.IsSequence() && rules.size() > 0) {
        for (const auto& r : rules) {
          if (!r.IsScalar()) {
            return invalid_argument(source + ": task " + task + " (line " + std::to_string(r.Mark().line + 1) +
                                    "): a rule is a string like \"f1 >= 0.5\"");
          }
          texts.push_back(r.Scalar());
        }
      } else {
        return invalid_argument(source + ": task " + task + " (line " + std::to_string(rules.Mark().line + 1) +
                                ") needs a rule or a list of rules");
      }
      for (const auto& t : texts) {
        auto rule = parse_gate_rule(task, t);
        if (!rule.ok()) return invalid_argument(source + ": " + rule.status().message());
        policy.rules.push_back(std::move(*rule));
      }
    }
  } catch (const YAML::Exception& e) {
    return invalid_argument(source + ": not valid YAML: " + e.what());
  }
  return policy;
}

std::vector<GateOutcome> evaluate_gate(const GatePolicy& policy, const MetricLookup& lookup) {
  std::vector<GateOutcome> out;
  for (const auto& rule : policy.rules) {
    GateOutcome o;
    o.rule = rule;
    std::string why;
    o.value = lookup(rule.task, rule.metric, "", &why);
    if (!o.value) {
      o.reason = why;
      out.push_back(std::move(o));
      continue;
    }
    if (rule.alias.empty()) {
      o.threshold = rule.offset;
    } else {
      o.baseline = lookup(rule.task, rule.metric, rule.alias, &why);
      if (!o.baseline) {
        o.reason = why;
        out.push_back(std::move(o));
        continue;
      }
      o.threshold = *o.baseline + rule.offset;
    }
    o.passed = threshold_met(Threshold{rule.metric, rule.op, *o.threshold}, *o.value);
    if (!o.passed) o.reason = rule.metric + " is " + std::to_string(*o.value) + ", needs " + rule.op + " " + std::to_string(*o.threshold);
    out.push_back(std::move(o));
  }
  return out;
}

Json to_json(const GateOutcome& o) {
  Json j = {{"task", o.rule.task}, {"rule", o.rule.text}, {"passed", o.passed}};
  j["value"] = o.value ? Json(*o.value) : Json(nullptr);
  j["threshold"] = o.threshold ? Json(*o.threshold) : Json(nullptr);
  if (!o.rule.alias.empty()) {
    j["alias"] = o.rule.alias;
    j["baseline"] = o.baseline ? Json(*o.baseline) : Json(nullptr);
  }
  if (!o.reason.empty()) j["reason"] = o.reason;
  return j;
}

}  // namespace keel::eval
