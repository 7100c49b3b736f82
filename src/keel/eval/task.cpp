// GCC 12 reports a false -Wmaybe-uninitialized inside <regex> (the std::function in its
// automaton's states) when it optimizes with the sanitizers on; the warning is about the
// library's code, so it is silenced for this file (before any header brings <functional>).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "keel/eval/task.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>

#include "keel/eval/judge.h"
#include "keel/eval/yaml_map_reader.h"
#include "keel/util/file.h"
#include "keel/util/yaml_messages.h"

namespace keel::eval {
namespace {

using MapReader = YamlMapReader;

// A YAML node as JSON (few-shot examples given inline). Scalars become strings except
// plain integers, numbers and booleans, as a YAML reader would type them.
Json to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    Json out = Json::object();
    for (const auto& entry : node) out[entry.first.Scalar()] = to_json(entry.second);
    return out;
  }
  if (node.IsSequence()) {
    Json out = Json::array();
    for (const auto& item : node) out.push_back(to_json(item));
    return out;
  }
  if (!node.IsScalar()) return nullptr;
  if (node.Tag() != "!") {  // not quoted
    int64_t i = 0;
    double d = 0;
    bool b = false;
    if (YAML::convert<int64_t>::decode(node, i)) return i;
    if (YAML::convert<double>::decode(node, d)) return d;
    if (YAML::convert<bool>::decode(node, b) && (node.Scalar() == "true" || node.Scalar() == "false")) return b;
  }
  return node.Scalar();
}

Status parse_filters(const MapReader& top, const YAML::Node& node, Task& task) {
  if (!node.IsSequence()) return top.wrong("filters", node, "a list (regex, strip, lowercase)");
  for (const auto& item : node) {
    AnswerFilter f;
    if (item.IsScalar()) {
      if (item.Scalar() == "strip") {
        f.kind = AnswerFilter::Kind::kStrip;
      } else if (item.Scalar() == "lowercase") {
        f.kind = AnswerFilter::Kind::kLowercase;
      } else {
        return top.error("filters: unknown filter \"" + item.Scalar() + "\"" + yaml_where(item) +
                         "; expected strip, lowercase or {regex: PATTERN}");
      }
    } else if (item.IsMap()) {
      MapReader m(item, "filters", task.source);
      KEEL_RETURN_IF_ERROR(m.check_keys({"regex", "group", "select", "fallback"}));
      f.kind = AnswerFilter::Kind::kRegex;
      KEEL_RETURN_IF_ERROR(m.string("regex", f.pattern, true));
      int64_t group = -1;
      KEEL_RETURN_IF_ERROR(m.integer("group", group, 0, 99));
      f.group = static_cast<int>(group);
      KEEL_RETURN_IF_ERROR(m.string("fallback", f.fallback));
      std::string select = "first";
      KEEL_RETURN_IF_ERROR(m.string("select", select));
      if (select != "first" && select != "last") {
        return m.error("select \"" + select + "\"" + yaml_where(item) + " is not first or last");
      }
      f.last = select == "last";
      try {
        std::regex re(f.pattern, std::regex::ECMAScript);
        if (f.group > static_cast<int>(re.mark_count())) {
          return m.error("group " + std::to_string(f.group) + " but the pattern has " +
                         std::to_string(re.mark_count()) + " groups" + yaml_where(item));
        }
      } catch (const std::regex_error& e) {
        return m.error("regex \"" + f.pattern + "\" is not a valid pattern: " + e.what() + yaml_where(item));
      }
    } else {
      return top.wrong("filters", item, "strip, lowercase or {regex: PATTERN}");
    }
    task.filters.push_back(std::move(f));
  }
  return Status::Ok();
}

}  // namespace

std::string_view output_type_name(OutputType type) {
  switch (type) {
    case OutputType::kGenerateUntil:
      return "generate_until";
    case OutputType::kLoglikelihood:
      return "loglikelihood";
    case OutputType::kMultipleChoice:
      return "multiple_choice";
  }
  return "";
}

const std::vector<std::string>& metrics_for(OutputType type) {
  static const std::vector<std::string> generated = {"exact_match", "f1",     "bleu",   "chrf",
                                                     "rouge1",      "rouge2", "rougeL", "rougeLsum"};
  static const std::vector<std::string> loglikelihood = {"loglikelihood", "perplexity", "acc"};
  static const std::vector<std::string> choice = {"acc", "acc_norm"};
  switch (type) {
    case OutputType::kGenerateUntil:
      return generated;
    case OutputType::kLoglikelihood:
      return loglikelihood;
    case OutputType::kMultipleChoice:
      return choice;
  }
  return generated;
}

bool threshold_met(const Threshold& t, double value) {
  if (t.op == ">=") return value >= t.value;
  if (t.op == ">") return value > t.value;
  if (t.op == "<=") return value <= t.value;
  if (t.op == "<") return value < t.value;
  return value == t.value;
}

Result<Threshold> parse_threshold(const std::string& metric, const std::string& text) {
  Threshold t;
  t.metric = metric;
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  for (const char* op : {">=", "<=", "==", ">", "<"}) {
    if (text.compare(i, std::char_traits<char>::length(op), op) == 0) {
      t.op = op;
      i += t.op.size();
      break;
    }
  }
  if (t.op.empty()) t.op = ">=";
  const std::string number = text.substr(i);
  try {
    size_t used = 0;
    t.value = std::stod(number, &used);
    while (used < number.size() && number[used] == ' ') ++used;
    if (used != number.size()) throw std::invalid_argument("trailing text");
  } catch (const std::exception&) {
    return invalid_argument("threshold for " + metric + ": \"" + text +
                            "\" is not OP NUMBER (OP one of >=, >, <=, <, ==), e.g. \">= 0.5\"");
  }
  return t;
}

Result<Task> parse_task(const std::string& yaml, const std::string& source, const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return invalid_argument(source + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) return invalid_argument(source + ": a task is a YAML map (task:, output_type:, prompt:, ...)");
  Task task;
  task.source = source;
  try {
    MapReader top(root, "", source);
    KEEL_RETURN_IF_ERROR(top.check_keys({"task", "description", "dataset", "output_type", "prompt", "target", "choices",
                                         "target_delimiter", "fewshot_delimiter", "fewshot", "generation", "filters",
                                         "metrics", "thresholds", "judge"}));
    KEEL_RETURN_IF_ERROR(top.string("task", task.name, true));
    if (!is_plain_name(task.name)) {
      return top.error("task name \"" + task.name + "\"" + yaml_where(root["task"]) +
                       " must be letters, digits, '_', '-' or '.' (it names tags and runs)");
    }
    KEEL_RETURN_IF_ERROR(top.string("description", task.description));

    std::string type;
    KEEL_RETURN_IF_ERROR(top.string("output_type", type, true));
    if (type == "generate_until") {
      task.output_type = OutputType::kGenerateUntil;
    } else if (type == "loglikelihood") {
      task.output_type = OutputType::kLoglikelihood;
    } else if (type == "multiple_choice") {
      task.output_type = OutputType::kMultipleChoice;
    } else {
      return top.error("output_type \"" + type + "\"" + yaml_where(root["output_type"]) +
                       " is not one of generate_until, loglikelihood, multiple_choice");
    }

    if (const YAML::Node d = root["dataset"]) {
      if (d.IsScalar()) {
        task.dataset = d.Scalar();
      } else if (d.IsMap()) {
        MapReader m(d, "dataset", source);
        KEEL_RETURN_IF_ERROR(m.check_keys({"path", "split"}));
        KEEL_RETURN_IF_ERROR(m.string("path", task.dataset));
        KEEL_RETURN_IF_ERROR(m.string("split", task.split));
      } else {
        return top.wrong("dataset", d, "a file name or {path: FILE, split: NAME}");
      }
      // A file path relative to the task file; a NAME@VERSION stays as it is.
      if (!task.dataset.empty() && task.dataset[0] != '/' && task.dataset.find('@') == std::string::npos &&
          !base_dir.empty()) {
        task.dataset = base_dir + "/" + task.dataset;
      }
    }

    const YAML::Node prompt = root["prompt"];
    if (!prompt) return top.error("missing \"prompt\": a template such as \"Question: {{question}}\\nAnswer:\"");
    if (prompt.IsScalar()) {
      task.prompt = prompt.Scalar();
    } else if (prompt.IsMap()) {
      MapReader m(prompt, "prompt", source);
      KEEL_RETURN_IF_ERROR(m.check_keys({"registry"}));
      KEEL_RETURN_IF_ERROR(m.string("registry", task.prompt_reference, true));
      if (task.prompt_reference.empty()) return m.error("registry must name a prompt (NAME@VERSION)");
    } else {
      return top.wrong("prompt", prompt, "a template string or {registry: NAME@VERSION}");
    }
    KEEL_RETURN_IF_ERROR(top.string("target", task.target, true));

    if (const YAML::Node c = root["choices"]) {
      if (task.output_type != OutputType::kMultipleChoice) {
        return top.error("\"choices\"" + yaml_where(c) + " is for output_type multiple_choice");
      }
      if (c.IsScalar()) {
        task.choices_field = c.Scalar();
      } else {
        KEEL_RETURN_IF_ERROR(top.strings("choices", task.choices));
        if (task.choices.size() < 2) return top.error("choices" + yaml_where(c) + " needs at least two entries");
      }
    } else if (task.output_type == OutputType::kMultipleChoice) {
      return top.error("missing \"choices\": the field holding each example's choices, or a list");
    }
    KEEL_RETURN_IF_ERROR(top.string("target_delimiter", task.target_delimiter));
    KEEL_RETURN_IF_ERROR(top.string("fewshot_delimiter", task.fewshot_delimiter));

    if (const YAML::Node f = root["fewshot"]) {
      if (!f.IsMap()) return top.wrong("fewshot", f, "{num: N, split: NAME} or {num: N, examples: [...]}");
      MapReader m(f, "fewshot", source);
      KEEL_RETURN_IF_ERROR(m.check_keys({"num", "split", "examples"}));
      KEEL_RETURN_IF_ERROR(m.integer("num", task.num_fewshot, 0, 64));
      KEEL_RETURN_IF_ERROR(m.string("split", task.fewshot_split));
      if (const YAML::Node ex = f["examples"]) {
        if (!ex.IsSequence()) return m.wrong("examples", ex, "a list of examples (maps of fields)");
        for (const auto& item : ex) {
          if (!item.IsMap()) return m.wrong("examples", item, "a map of fields");
          task.fewshot_examples.push_back(to_json(item));
        }
      }
      if (!task.fewshot_split.empty() && !task.fewshot_examples.empty()) {
        return m.error("give either split or examples, not both");
      }
      if (task.num_fewshot > 0 && task.fewshot_split.empty() && task.fewshot_examples.empty()) {
        return m.error("num " + std::to_string(task.num_fewshot) + " needs a split or examples to take them from");
      }
      if (!task.fewshot_examples.empty() && task.num_fewshot > static_cast<int64_t>(task.fewshot_examples.size())) {
        return m.error("num " + std::to_string(task.num_fewshot) + " but only " +
                       std::to_string(task.fewshot_examples.size()) + " examples are given");
      }
      if (!task.fewshot_split.empty() && task.fewshot_split == task.split) {
        return m.error("split \"" + task.fewshot_split + "\" is also the evaluation split; take few-shot examples from another");
      }
    }

    if (const YAML::Node g = root["generation"]) {
      if (task.output_type != OutputType::kGenerateUntil) {
        return top.error("\"generation\"" + yaml_where(g) + " is for output_type generate_until");
      }
      KEEL_RETURN_IF_ERROR(read_generation(g, "generation", source, task.generation, true));
    }

    if (const YAML::Node f = root["filters"]) {
      if (task.output_type != OutputType::kGenerateUntil) {
        return top.error("\"filters\"" + yaml_where(f) + " apply to generated answers (output_type generate_until)");
      }
      KEEL_RETURN_IF_ERROR(parse_filters(top, f, task));
    }

    if (const YAML::Node j = root["judge"]) {
      if (task.output_type != OutputType::kGenerateUntil) {
        return top.error("\"judge\"" + yaml_where(j) + " judges generated answers (output_type generate_until)");
      }
      if (!j.IsScalar() && !j.IsMap()) {
        return top.wrong("judge", j, "a judge file or a map (model:, rubric:, verdict:)");
      }
      if (j.IsScalar()) {
        // A judge file relative to the task file.
        task.judge_file = j.Scalar();
        if (!task.judge_file.empty() && task.judge_file[0] != '/' && !base_dir.empty()) {
          task.judge_file = base_dir + "/" + task.judge_file;
        }
      }
      Result<Judge> judge = j.IsScalar() ? load_judge(task.judge_file) : parse_judge_node(j, source, "judge");
      if (!judge.ok() && j.IsScalar()) {
        return invalid_argument(source + ": judge" + yaml_where(j) + ": " + judge.status().message());
      }
      if (!judge.ok()) return judge.status();
      if (judge->verdict.kind == VerdictParser::Kind::kPairwise) {
        return top.error("a pairwise judge" + yaml_where(j) +
                         " compares two runs' answers: use it with `keel eval compare RUN_A RUN_B --judge FILE`; "
                         "a task's judge gives a score or a label");
      }
      task.judge = std::make_shared<const Judge>(std::move(*judge));
    }

    const YAML::Node metrics = root["metrics"];
    if (!metrics && !task.judge) return top.error("missing \"metrics\": a list such as [exact_match]");
    KEEL_RETURN_IF_ERROR(top.strings("metrics", task.metrics));
    if (task.metrics.empty() && !task.judge) {
      return top.error("metrics" + yaml_where(metrics) + " is empty: name at least one");
    }
    const auto& allowed = metrics_for(task.output_type);
    std::set<std::string> seen;
    for (const auto& metric : task.metrics) {
      if (metric == "judge" || metric == "judge_parse_failures") {
        return top.error("metric \"" + metric + "\"" + yaml_where(metrics) +
                         " comes from the task's judge: section; leave it out of metrics");
      }
      if (std::find(allowed.begin(), allowed.end(), metric) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        return top.error("metric \"" + metric + "\"" + yaml_where(metrics) + " is not available for " + type +
                         "; choose from " + list);
      }
      if (!seen.insert(metric).second) return top.error("metric \"" + metric + "\" is listed twice");
    }
    std::set<std::string> thresholdable = seen;
    if (task.judge) thresholdable.insert({"judge", "judge_parse_failures"});

    if (const YAML::Node t = root["thresholds"]) {
      if (!t.IsMap()) return top.wrong("thresholds", t, "a map of metric: \">= VALUE\"");
      for (const auto& entry : t) {
        const std::string metric = entry.first.Scalar();
        if (!thresholdable.count(metric)) {
          return top.error("threshold on \"" + metric + "\"" + yaml_where(entry.first) + ", which is not in metrics" +
                           (task.judge ? " (nor judge, judge_parse_failures)" : ""));
        }
        if (!entry.second.IsScalar()) return top.wrong("thresholds: " + metric, entry.second, "\">= VALUE\"");
        auto parsed = parse_threshold(metric, entry.second.Scalar());
        if (!parsed.ok()) return invalid_argument(source + ": " + parsed.status().message() + yaml_where(entry.second));
        task.thresholds.push_back(*parsed);
      }
    }
  } catch (const YAML::Exception& e) {
    return invalid_argument(source + ": " + e.what());
  }
  return task;
}

Result<Task> load_task(const std::string& path) {
  auto text = read_file(path, size_t{16} << 20);
  if (!text.ok()) return text.status().with_context("reading the task file");
  return parse_task(*text, path, parent_dir(path));
}

}  // namespace keel::eval
