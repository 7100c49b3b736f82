// GCC 12 reports a false -Wmaybe-uninitialized inside <regex> (the std::function in its
// automaton's states) when it optimizes with the sanitizers on; see task.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "keel/eval/judge.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <regex>
#include <set>

#include "keel/eval/yaml_map_reader.h"
#include "keel/util/file.h"
#include "keel/util/yaml_messages.h"

namespace keel::eval {
namespace {

constexpr const char* kDefaultScoreRegex = "(-?[0-9]+(?:\\.[0-9]+)?)";

// The names a `{{ field }}` template uses.
std::set<std::string> template_field_names(const std::string& text) {
  std::set<std::string> names;
  for (TemplateField& f : template_fields(text)) names.insert(std::move(f.name));
  return names;
}

std::string format_number(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// The first match of the regex: group 1 when it has one, else the whole match.
std::optional<std::string> first_match(const std::string& pattern, const std::string& text) {
  const std::regex re(pattern, std::regex::ECMAScript);
  std::smatch m;
  if (!std::regex_search(text, m, re)) return std::nullopt;
  return re.mark_count() > 0 ? m[1].str() : m[0].str();
}

Status parse_model(const YamlMapReader& top, const YAML::Node& node, const std::string& source,
                   const std::string& context, JudgeModel& model) {
  if (!node) return top.error("missing \"model\": the judge model, NAME[@VERSION|@ALIAS] or {name: M, endpoint: URL}");
  if (node.IsScalar()) {
    model.reference = node.Scalar();
  } else if (node.IsMap()) {
    YamlMapReader m(node, context.empty() ? "model" : context + ": model", source);
    KEEL_RETURN_IF_ERROR(m.check_keys({"name", "endpoint", "api_key_env"}));
    KEEL_RETURN_IF_ERROR(m.string("name", model.reference, true));
    KEEL_RETURN_IF_ERROR(m.string("endpoint", model.endpoint));
    KEEL_RETURN_IF_ERROR(m.string("api_key_env", model.api_key_env));
    if (!model.api_key_env.empty() && model.endpoint.empty()) {
      return m.error("api_key_env" + yaml_where(node["api_key_env"]) + " is for a model at an endpoint");
    }
  } else {
    return top.wrong("model", node, "NAME[@VERSION|@ALIAS] or {name: M, endpoint: URL, api_key_env: VAR}");
  }
  if (model.reference.empty()) return top.error("model" + yaml_where(node) + " names no model");
  return Status::Ok();
}

Status parse_verdict_section(const YamlMapReader& top, const YAML::Node& node, const std::string& source,
                             const std::string& context, VerdictParser& v) {
  if (!node) {
    return top.error(
        "missing \"verdict\": {type: score, min: 1, max: 5}, {type: label, labels: {...}} or "
        "{type: pairwise}");
  }
  if (!node.IsMap()) return top.wrong("verdict", node, "a map with type: score, label or pairwise");
  YamlMapReader m(node, context.empty() ? "verdict" : context + ": verdict", source);
  std::string type;
  KEEL_RETURN_IF_ERROR(m.string("type", type, true));
  if (type == "score") {
    v.kind = VerdictParser::Kind::kScore;
    KEEL_RETURN_IF_ERROR(m.check_keys({"type", "regex", "min", "max"}));
    if (!m.has("min") || !m.has("max")) return m.error("a score needs its scale: min and max" + yaml_where(node));
    KEEL_RETURN_IF_ERROR(m.number("min", v.min, -1e12, 1e12));
    KEEL_RETURN_IF_ERROR(m.number("max", v.max, -1e12, 1e12));
    if (!(v.max > v.min)) {
      return m.error("max " + format_number(v.max) + " must be above min " + format_number(v.min) + yaml_where(node));
    }
    v.regex = kDefaultScoreRegex;
  } else if (type == "label") {
    v.kind = VerdictParser::Kind::kLabel;
    KEEL_RETURN_IF_ERROR(m.check_keys({"type", "regex", "labels", "case_sensitive"}));
    const YAML::Node labels = node["labels"];
    if (!labels) return m.error("missing \"labels\": a map of label: value, e.g. {correct: 1, wrong: 0}");
    if (!labels.IsMap() || labels.size() == 0) return m.wrong("labels", labels, "a map of label: value (0-1)");
    for (const auto& entry : labels) {
      const std::string label = entry.first.Scalar();
      double value = 0;
      if (!entry.second.IsScalar() || !YAML::convert<double>::decode(entry.second, value) || !std::isfinite(value)) {
        return m.wrong("labels: " + label, entry.second, "a number");
      }
      if (label.empty()) return m.error("labels: an empty label" + yaml_where(entry.first));
      v.labels.push_back({label, value});
    }
    KEEL_RETURN_IF_ERROR(m.boolean("case_sensitive", v.case_sensitive));
  } else if (type == "pairwise") {
    v.kind = VerdictParser::Kind::kPairwise;
    KEEL_RETURN_IF_ERROR(m.check_keys({"type", "regex", "a", "b", "tie", "case_sensitive"}));
    std::string a = "A", b = "B", tie = "tie";
    KEEL_RETURN_IF_ERROR(m.string("a", a));
    KEEL_RETURN_IF_ERROR(m.string("b", b));
    KEEL_RETURN_IF_ERROR(m.string("tie", tie));
    if (a.empty() || b.empty() || tie.empty())
      return m.error("a, b and tie must be non-empty words" + yaml_where(node));
    v.labels = {{a, 1.0}, {b, 0.0}, {tie, 0.5}};
    v.case_sensitive = true;  // "A" is a verdict; the article "a" is not
    KEEL_RETURN_IF_ERROR(m.boolean("case_sensitive", v.case_sensitive));
  } else {
    return m.error("type \"" + type + "\"" + yaml_where(node["type"]) + " is not one of score, label, pairwise");
  }
  if (v.kind != VerdictParser::Kind::kScore) {
    std::set<std::string> seen;
    for (const auto& [label, value] : v.labels) {
      if (!seen.insert(v.case_sensitive ? label : ascii_lower(label)).second) {
        return m.error("label \"" + label + "\"" + yaml_where(node) + " is given twice");
      }
    }
  }
  KEEL_RETURN_IF_ERROR(m.string("regex", v.regex));
  try {
    const std::regex re(v.regex, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return m.error("regex \"" + v.regex + "\" is not a valid pattern: " + e.what() + yaml_where(node["regex"]));
  }
  return Status::Ok();
}

}  // namespace

std::string_view verdict_kind_name(VerdictParser::Kind kind) {
  switch (kind) {
    case VerdictParser::Kind::kScore:
      return "score";
    case VerdictParser::Kind::kLabel:
      return "label";
    case VerdictParser::Kind::kPairwise:
      return "pairwise";
  }
  return "";
}

Result<Judge> parse_judge_node(const YAML::Node& node, const std::string& source, const std::string& context) {
  Judge judge;
  judge.name = "judge";
  judge.source = source;
  judge.generation.max_tokens = 16;
  try {
    if (!node.IsMap()) {
      return invalid_argument(source + ": " + (context.empty() ? "" : context + ": ") +
                              "a judge is a YAML map (model:, rubric:, verdict:, ...)" + yaml_where(node));
    }
    YamlMapReader top(node, context, source);
    KEEL_RETURN_IF_ERROR(top.check_keys({"judge", "description", "model", "rubric", "generation", "verdict"}));
    KEEL_RETURN_IF_ERROR(top.string("judge", judge.name));
    if (!is_plain_name(judge.name)) {
      return top.error("judge name \"" + judge.name + "\"" + yaml_where(node["judge"]) +
                       " must be letters, digits, '_', '-' or '.'");
    }
    KEEL_RETURN_IF_ERROR(top.string("description", judge.description));
    KEEL_RETURN_IF_ERROR(parse_model(top, node["model"], source, context, judge.model));

    const YAML::Node rubric = node["rubric"];
    if (!rubric)
      return top.error("missing \"rubric\": the judge's prompt, a template over {{ output }} and the example");
    if (rubric.IsScalar()) {
      judge.rubric = rubric.Scalar();
      if (judge.rubric.empty()) return top.error("rubric" + yaml_where(rubric) + " is empty");
    } else if (rubric.IsMap()) {
      YamlMapReader m(rubric, context.empty() ? "rubric" : context + ": rubric", source);
      KEEL_RETURN_IF_ERROR(m.check_keys({"registry"}));
      KEEL_RETURN_IF_ERROR(m.string("registry", judge.rubric_reference, true));
      if (judge.rubric_reference.empty()) return m.error("registry must name a prompt (NAME@VERSION)");
    } else {
      return top.wrong("rubric", rubric, "a template string or {registry: NAME@VERSION}");
    }

    if (const YAML::Node g = node["generation"]) {
      KEEL_RETURN_IF_ERROR(
          read_generation(g, context.empty() ? "generation" : context + ": generation", source, judge.generation));
    }
    KEEL_RETURN_IF_ERROR(parse_verdict_section(top, node["verdict"], source, context, judge.verdict));
    if (!judge.rubric.empty()) {
      Status st = check_rubric(judge, judge.rubric);
      if (!st.ok()) return top.error(st.message() + yaml_where(rubric));
    }
  } catch (const YAML::Exception& e) {
    return invalid_argument(source + ": " + e.what());
  }
  return judge;
}

Result<Judge> parse_judge(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return invalid_argument(source + ": not valid YAML: " + e.what());
  }
  return parse_judge_node(root, source, "");
}

Result<Judge> load_judge(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return invalid_argument(path + " is a folder, not a judge file (YAML)");
  auto text = read_file(path, size_t{1} << 20);
  if (!text.ok()) return text.status().with_context("reading the judge file");
  return parse_judge(*text, path);
}

Status check_rubric(const Judge& judge, const std::string& rubric) {
  const std::set<std::string> fields = template_field_names(rubric);
  if (judge.verdict.kind == VerdictParser::Kind::kPairwise) {
    if (!fields.count("output_a") || !fields.count("output_b")) {
      return invalid_argument("a pairwise rubric must show both answers: {{ output_a }} and {{ output_b }}");
    }
    for (const auto& f : fields) {
      if (f != "input" && f != "reference" && f != "output_a" && f != "output_b") {
        return invalid_argument("a pairwise rubric may use input, reference, output_a and output_b, not {{ " + f +
                                " }}");
      }
    }
  } else if (!fields.count("output") && !fields.count("filtered")) {
    return invalid_argument("the rubric never shows the answer to judge: use {{ output }} (or {{ filtered }})");
  }
  return Status::Ok();
}

Verdict parse_verdict(const VerdictParser& parser, const std::string& text) {
  Verdict v;
  v.raw = text;
  std::string searched = text;
  if (!parser.regex.empty()) {
    auto found = first_match(parser.regex, text);
    if (!found) {
      v.error = "no match for /" + parser.regex + "/";
      return v;
    }
    searched = *found;
  }
  if (parser.kind == VerdictParser::Kind::kScore) {
    double number = 0;
    try {
      size_t used = 0;
      number = std::stod(searched, &used);
      if (used == 0) throw std::invalid_argument("empty");
    } catch (const std::exception&) {
      v.error = "\"" + searched + "\" is not a number";
      return v;
    }
    v.label = searched;
    if (!std::isfinite(number) || number < parser.min || number > parser.max) {
      v.error = "score " + searched + " is outside " + format_number(parser.min) + "-" + format_number(parser.max);
      return v;
    }
    v.value = (number - parser.min) / (parser.max - parser.min);
    v.parsed = true;
    return v;
  }
  // The label found earliest as a whole word; the longest one where two start together.
  const std::string hay = parser.case_sensitive ? searched : ascii_lower(searched);
  size_t best_pos = std::string::npos, best_len = 0;
  const std::pair<std::string, double>* best = nullptr;
  for (const auto& entry : parser.labels) {
    const std::string needle = parser.case_sensitive ? entry.first : ascii_lower(entry.first);
    for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
      const bool start_ok = at == 0 || !is_word_char(hay[at - 1]) || !is_word_char(needle.front());
      const size_t end = at + needle.size();
      const bool end_ok = end == hay.size() || !is_word_char(hay[end]) || !is_word_char(needle.back());
      if (!start_ok || !end_ok) continue;
      if (at < best_pos || (at == best_pos && needle.size() > best_len)) {
        best_pos = at;
        best_len = needle.size();
        best = &entry;
      }
      break;
    }
  }
  if (!best) {
    std::string list;
    for (const auto& [label, value] : parser.labels) list += (list.empty() ? "" : ", ") + label;
    v.error = "none of the labels (" + list + ") is in the answer";
    return v;
  }
  v.label = best->first;
  v.value = best->second;
  v.parsed = true;
  return v;
}

Json to_json(const Verdict& v) {
  Json j = {{"status", v.parsed ? "parsed" : "unparsed"}, {"raw", v.raw}};
  if (v.parsed) {
    j["value"] = v.value;
    j["label"] = v.label;
  } else {
    j["value"] = nullptr;
    j["error"] = v.error;
    if (!v.label.empty()) j["label"] = v.label;
  }
  return j;
}

Result<std::string> judge_prompt(const std::string& rubric, const Json& fields, const ExampleResult& result) {
  Json doc = fields.is_object() ? fields : Json::object();
  doc["input"] = result.input;
  doc["output"] = result.output;
  doc["filtered"] = result.filtered;
  doc["reference"] = result.reference;
  auto text = render_template(rubric, doc);
  if (!text.ok()) return invalid_argument("the judge's rubric: example " + result.id + " " + text.status().message());
  return text;
}

Result<std::pair<std::string, std::string>> pairwise_prompts(const std::string& rubric, const std::string& input,
                                                             const std::string& reference, const std::string& output_a,
                                                             const std::string& output_b) {
  Json doc = {{"input", input}, {"reference", reference}, {"output_a", output_a}, {"output_b", output_b}};
  KEEL_ASSIGN_OR_RETURN(std::string first, render_template(rubric, doc));
  doc["output_a"] = output_b;
  doc["output_b"] = output_a;
  KEEL_ASSIGN_OR_RETURN(std::string second, render_template(rubric, doc));
  return std::make_pair(std::move(first), std::move(second));
}

PairwiseVerdict combine_pairwise(const VerdictParser& parser, const std::string& first, const std::string& second) {
  PairwiseVerdict p;
  p.first = parse_verdict(parser, first);
  p.second = parse_verdict(parser, second);
  // value 1: the answer shown as A is better; 0: the one shown as B; 0.5: a tie.
  auto winner = [](const Verdict& v, bool swapped) -> std::string {
    if (!v.parsed) return "";
    if (v.value == 0.5) return "tie";
    const bool shown_a = v.value == 1.0;
    return shown_a != swapped ? "a" : "b";
  };
  p.first_winner = winner(p.first, false);
  p.second_winner = winner(p.second, true);
  p.both_parsed = p.first.parsed && p.second.parsed;
  p.consistent = p.both_parsed && p.first_winner == p.second_winner;
  if (!p.both_parsed) {
    p.winner = "unparsed";
  } else {
    p.winner = p.consistent ? p.first_winner : "tie";
  }
  return p;
}

Json to_json(const PairwiseVerdict& v) {
  Json first = to_json(v.first), second = to_json(v.second);
  first["order"] = "a,b";
  first["winner"] = v.first_winner.empty() ? Json(nullptr) : Json(v.first_winner);
  second["order"] = "b,a";
  second["winner"] = v.second_winner.empty() ? Json(nullptr) : Json(v.second_winner);
  return {{"first", first}, {"second", second}, {"consistent", v.consistent}, {"winner", v.winner}};
}

PairwiseSummary summarize_pairwise(const std::vector<PairwiseVerdict>& verdicts) {
  PairwiseSummary s;
  int64_t agreed = 0;
  for (const auto& v : verdicts) {
    ++s.pairs;
    if (!v.both_parsed) {
      ++s.unparsed;
      continue;
    }
    if (v.consistent) ++agreed;
    if (!v.consistent) ++s.inconsistent;
    if (v.winner == "a") ++s.a_wins;
    if (v.winner == "b") ++s.b_wins;
    if (v.winner == "tie") ++s.ties;
  }
  const int64_t decided = s.pairs - s.unparsed;
  if (decided > 0) {
    s.agreement = static_cast<double>(agreed) / static_cast<double>(decided);
    s.b_win_rate = (static_cast<double>(s.b_wins) + 0.5 * static_cast<double>(s.ties)) / static_cast<double>(decided);
  }
  return s;
}

Json to_json(const PairwiseSummary& s) {
  return {{"pairs", s.pairs},
          {"a_wins", s.a_wins},
          {"b_wins", s.b_wins},
          {"ties", s.ties},
          {"inconsistent", s.inconsistent},
          {"unparsed", s.unparsed},
          {"agreement", s.agreement ? Json(*s.agreement) : Json(nullptr)},
          {"b_win_rate", s.b_win_rate ? Json(*s.b_win_rate) : Json(nullptr)}};
}

JudgeSummary summarize_judge(const std::vector<ExampleResult>& results) {
  JudgeSummary s;
  double sum = 0;
  for (const auto& r : results) {
    if (!r.judge.is_object()) continue;
    ++s.judged;
    if (r.judge.value("cached", false)) ++s.cache_hits;
    if (r.judge.value("status", "") == "parsed" && r.judge.contains("value") && r.judge["value"].is_number()) {
      ++s.parsed;
      sum += r.judge["value"].get<double>();
    } else {
      ++s.unparsed;
    }
  }
  if (s.parsed > 0) s.mean = sum / static_cast<double>(s.parsed);
  return s;
}

}  // namespace keel::eval
