// GCC 12 reports a false -Wmaybe-uninitialized inside <regex> (the std::function in its
// automaton's states) when it optimizes with the sanitizers on; see task.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "keel/eval/task_run.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "keel/eval/bleu.h"
#include "keel/eval/chrf.h"
#include "keel/eval/rouge.h"
#include "keel/eval/squad.h"
#include "keel/eval/text.h"
#include "keel/util/file.h"

namespace keel::eval {
namespace {

constexpr size_t kMaxDatasetBytes = size_t{1} << 30;

std::string json_type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  return "a string";
}

bool is_rouge(const std::string& metric) { return metric.rfind("rouge", 0) == 0; }

}  // namespace

Result<std::vector<DatasetRecord>> read_jsonl_examples(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return invalid_argument(path + " is a folder; the dataset is a JSONL file (one JSON object per line)");
  }
  auto text = read_file(path, kMaxDatasetBytes);
  if (!text.ok()) return text.status().with_context("reading the dataset");
  std::vector<DatasetRecord> records;
  int64_t line = 0;
  size_t begin = 0;
  while (begin < text->size()) {
    size_t end = text->find('\n', begin);
    if (end == std::string::npos) end = text->size();
    std::string_view piece(text->data() + begin, end - begin);
    begin = end + 1;
    ++line;
    if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
    if (piece.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (!is_valid_utf8(piece)) {
      return invalid_argument(path + " line " + std::to_string(line) + " is not valid UTF-8");
    }
    auto doc = parse_json(piece);
    if (!doc.ok()) {
      return invalid_argument(path + " line " + std::to_string(line) + " is not valid JSON: " + doc.status().message());
    }
    if (!doc->is_object()) {
      return invalid_argument(path + " line " + std::to_string(line) + " is " + json_type_name(*doc) +
                              ", not a JSON object of fields");
    }
    records.push_back({line, std::move(*doc)});
  }
  if (records.empty()) {
    return invalid_argument(path + " holds no examples: give one JSON object per line");
  }
  return records;
}

std::vector<TemplateField> template_fields(const std::string& text) {
  std::vector<TemplateField> fields;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string name = text.substr(open + 2, close - open - 2);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    fields.push_back({open, close + 2, std::move(name)});
    pos = close + 2;
  }
  return fields;
}

Result<std::string> render_template(const std::string& text, const Json& doc) {
  std::string out;
  size_t pos = 0;
  for (const TemplateField& f : template_fields(text)) {
    const std::string& name = f.name;
    out.append(text, pos, f.begin - pos);
    const auto it = doc.find(name);
    if (name.empty() || it == doc.end()) {
      return invalid_argument("has no field \"" + name + "\" (the template uses {{ " + name + " }})");
    }
    if (it->is_string()) {
      out += it->get<std::string>();
    } else if (it->is_number() || it->is_boolean()) {
      out += it->dump();
    } else {
      return invalid_argument("field \"" + name + "\" is " + json_type_name(*it) +
                              "; a template takes a string, number or boolean");
    }
    pos = f.end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

namespace {

// The text and target of one example, as lm-eval renders them.
struct Rendered {
  std::string text;
  std::string target;
  std::vector<std::string> choices;
  int64_t gold = -1;
};

Result<Rendered> render_example(const Task& task, const std::string& prompt_template, const Json& doc) {
  Rendered r;
  KEEL_ASSIGN_OR_RETURN(r.text, render_template(prompt_template, doc));
  KEEL_ASSIGN_OR_RETURN(r.target, render_template(task.target, doc));
  if (task.output_type != OutputType::kMultipleChoice) return r;
  if (!task.choices_field.empty()) {
    const auto it = doc.find(task.choices_field);
    if (it == doc.end()) return invalid_argument("has no field \"" + task.choices_field + "\" (the task's choices)");
    if (!it->is_array() || it->size() < 2) {
      return invalid_argument("field \"" + task.choices_field + "\" is " + json_type_name(*it) +
                              "; choices are a list of at least two strings");
    }
    for (const auto& c : *it) {
      if (!c.is_string()) {
        return invalid_argument("field \"" + task.choices_field + "\" holds " + json_type_name(c) +
                                "; choices are strings");
      }
      r.choices.push_back(c.get<std::string>());
    }
  } else {
    r.choices = task.choices;
  }
  // The target is the index of the correct choice, or its text.
  const bool digits = !r.target.empty() && std::all_of(r.target.begin(), r.target.end(), ::isdigit);
  if (digits && r.target.size() < 10) {
    r.gold = std::stoll(r.target);
    if (r.gold >= static_cast<int64_t>(r.choices.size())) {
      return invalid_argument("target " + r.target + " is out of range for " + std::to_string(r.choices.size()) +
                              " choices (0-based)");
    }
  } else {
    const auto found = std::find(r.choices.begin(), r.choices.end(), r.target);
    if (found == r.choices.end()) {
      return invalid_argument("target \"" + r.target + "\" is neither a choice index nor one of the choices");
    }
    r.gold = found - r.choices.begin();
  }
  r.target = r.choices[static_cast<size_t>(r.gold)];
  return r;
}

}  // namespace

Result<std::vector<EvalExample>> prepare_examples(const Task& task, const std::string& prompt_template,
                                                  const std::vector<DatasetRecord>& records,
                                                  const std::string& dataset_name) {
  auto at_line = [&](int64_t line, const Status& st) {
    return invalid_argument(dataset_name + " line " + std::to_string(line) + ": " + st.message());
  };
  auto split_of = [](const Json& doc) -> std::string {
    const auto it = doc.find("split");
    return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
  };

  // The few-shot context, the same for every example.
  std::string context = task.description;
  if (!context.empty()) context += task.fewshot_delimiter;
  if (task.num_fewshot > 0) {
    std::vector<std::pair<int64_t, const Json*>> shots;
    if (!task.fewshot_examples.empty()) {
      for (const auto& ex : task.fewshot_examples) shots.push_back({0, &ex});
    } else {
      for (const auto& r : records) {
        if (split_of(r.doc) == task.fewshot_split) shots.push_back({r.line, &r.doc});
      }
    }
    if (static_cast<int64_t>(shots.size()) < task.num_fewshot) {
      return invalid_argument(task.source + ": fewshot num " + std::to_string(task.num_fewshot) + " but " +
                              dataset_name + " has only " + std::to_string(shots.size()) + " examples in split \"" +
                              task.fewshot_split + "\"");
    }
    for (int64_t i = 0; i < task.num_fewshot; ++i) {
      auto shot = render_example(task, prompt_template, *shots[static_cast<size_t>(i)].second);
      if (!shot.ok()) {
        if (shots[static_cast<size_t>(i)].first == 0) {
          return invalid_argument(task.source + ": few-shot example " + std::to_string(i + 1) + " " +
                                  shot.status().message());
        }
        return at_line(shots[static_cast<size_t>(i)].first, shot.status());
      }
      context += shot->text + task.target_delimiter + shot->target + task.fewshot_delimiter;
    }
  }

  std::vector<EvalExample> examples;
  for (const auto& r : records) {
    if (!task.split.empty() && split_of(r.doc) != task.split) continue;
    if (task.split.empty() && !task.fewshot_split.empty() && split_of(r.doc) == task.fewshot_split) continue;
    auto rendered = render_example(task, prompt_template, r.doc);
    if (!rendered.ok()) return at_line(r.line, rendered.status());
    EvalExample e;
    e.index = static_cast<int64_t>(examples.size());
    e.line = r.line;
    const auto id = r.doc.find("id");
    if (id != r.doc.end() && (id->is_string() || id->is_number_integer())) {
      e.id = id->is_string() ? id->get<std::string>() : id->dump();
    } else {
      e.id = "line " + std::to_string(r.line);
    }
    e.prompt = context + rendered->text;
    e.reference = std::move(rendered->target);
    e.choices = std::move(rendered->choices);
    e.gold = rendered->gold;
    e.fields = r.doc;
    examples.push_back(std::move(e));
  }
  if (examples.empty()) {
    return invalid_argument(dataset_name + " has no examples" +
                            (task.split.empty() ? std::string() : " in split \"" + task.split + "\"") +
                            " to evaluate");
  }
  return examples;
}

std::string apply_filters(const std::vector<AnswerFilter>& filters, const std::string& answer) {
  std::string text = answer;
  for (const auto& f : filters) {
    switch (f.kind) {
      case AnswerFilter::Kind::kStrip:
        text = py_strip(text);
        break;
      case AnswerFilter::Kind::kLowercase:
        text = py_lower(text);
        break;
      case AnswerFilter::Kind::kRegex: {
        const std::regex re(f.pattern, std::regex::ECMAScript);
        const int group = f.group >= 0 ? f.group : (re.mark_count() > 0 ? 1 : 0);
        std::string kept;
        bool found = false;
        for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
          kept = (*it)[static_cast<size_t>(group)].str();
          found = true;
          if (!f.last) break;
        }
        text = found ? kept : f.fallback;
        break;
      }
    }
  }
  return text;
}

Json to_json(const ExampleResult& r) {
  Json scores = Json::object();
  for (const auto& [k, v] : r.scores) scores[k] = v;
  Json j = {{"index", r.index}, {"id", r.id}, {"input", r.input}, {"output", r.output}, {"reference", r.reference},
            {"scores", scores}};
  if (!r.choices.empty()) {
    j["choices"] = r.choices;
    j["choice_logprobs"] = r.choice_logprobs;
    j["gold"] = r.gold;
    j["prediction"] = r.prediction;
    j["prediction_norm"] = r.prediction_norm;
  } else if (r.tokens > 0) {
    j["logprob"] = r.logprob;
    j["tokens"] = r.tokens;
    j["is_greedy"] = r.is_greedy;
  } else {
    j["filtered"] = r.filtered;
  }
  if (!r.judge.is_null()) j["judge"] = r.judge;
  return j;
}

Result<ExampleResult> example_result_from_json(const Json& j) {
  ExampleResult r;
  try {
    r.index = j.at("index").get<int64_t>();
    r.id = j.at("id").get<std::string>();
    r.input = j.at("input").get<std::string>();
    r.output = j.at("output").get<std::string>();
    r.reference = j.at("reference").get<std::string>();
    for (const auto& [k, v] : j.at("scores").items()) r.scores[k] = v.get<double>();
    if (j.contains("choices")) {
      r.choices = j.at("choices").get<std::vector<std::string>>();
      r.choice_logprobs = j.at("choice_logprobs").get<std::vector<double>>();
      r.gold = j.at("gold").get<int64_t>();
      r.prediction = j.at("prediction").get<int64_t>();
      r.prediction_norm = j.at("prediction_norm").get<int64_t>();
    }
    if (j.contains("tokens")) {
      r.logprob = j.at("logprob").get<double>();
      r.tokens = j.at("tokens").get<int64_t>();
      r.is_greedy = j.at("is_greedy").get<bool>();
    }
    if (j.contains("filtered")) r.filtered = j.at("filtered").get<std::string>();
    if (j.contains("judge")) r.judge = j.at("judge");
  } catch (const Json::exception& e) {
    return invalid_argument(std::string("an example result is malformed: ") + e.what());
  }
  return r;
}

namespace {

Status score_generated(const Task& task, ExampleResult& r) {
  RougeOptions rouge;
  rouge.types.clear();
  for (const auto& m : task.metrics) {
    if (is_rouge(m)) rouge.types.push_back(m);
  }
  RougeScores rouge_scores;
  if (!rouge.types.empty()) {
    KEEL_ASSIGN_OR_RETURN(rouge_scores, rouge_score(r.reference, r.filtered, rouge));
  }
  for (const auto& m : task.metrics) {
    if (m == "exact_match") {
      r.scores[m] = r.filtered == r.reference ? 1.0 : 0.0;
    } else if (m == "f1") {
      KEEL_ASSIGN_OR_RETURN(SquadScore s, squad_score(r.filtered, {r.reference}));
      r.scores[m] = s.f1;
    } else if (m == "bleu") {
      KEEL_ASSIGN_OR_RETURN(BleuScore s, sentence_bleu(r.filtered, {r.reference}));
      r.scores[m] = s.score;
    } else if (m == "chrf") {
      KEEL_ASSIGN_OR_RETURN(ChrfScore s, sentence_chrf(r.filtered, {r.reference}));
      r.scores[m] = s.score;
    } else if (is_rouge(m)) {
      r.scores[m] = rouge_scores.at(m).fmeasure;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<ExampleResult>> evaluate_batch(const Task& task, Generator& generator,
                                                  std::span<const EvalExample> examples) {
  std::vector<ExampleResult> results(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    results[i].index = examples[i].index;
    results[i].id = examples[i].id;
    results[i].input = examples[i].prompt;
    results[i].reference = examples[i].reference;
  }
  if (examples.empty()) return results;

  if (task.output_type == OutputType::kGenerateUntil) {
    std::vector<std::string> prompts;
    for (const auto& e : examples) prompts.push_back(e.prompt);
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> outputs, generator.generate(prompts, task.generation));
    if (outputs.size() != examples.size()) return internal_error("the generator returned a wrong number of answers");
    for (size_t i = 0; i < examples.size(); ++i) {
      results[i].output = std::move(outputs[i]);
      results[i].filtered = apply_filters(task.filters, results[i].output);
      KEEL_RETURN_IF_ERROR(score_generated(task, results[i]));
    }
    return results;
  }

  std::vector<LoglikelihoodRequest> requests;
  for (const auto& e : examples) {
    if (task.output_type == OutputType::kLoglikelihood) {
      requests.push_back({e.prompt, task.target_delimiter + e.reference});
    } else {
      for (const auto& c : e.choices) requests.push_back({e.prompt, task.target_delimiter + c});
    }
  }
  KEEL_ASSIGN_OR_RETURN(std::vector<LoglikelihoodResult> scored, generator.loglikelihood(requests));
  if (scored.size() != requests.size()) return internal_error("the generator returned a wrong number of scores");
  size_t next = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    ExampleResult& r = results[i];
    if (task.output_type == OutputType::kLoglikelihood) {
      const LoglikelihoodResult& s = scored[next++];
      r.logprob = s.logprob;
      r.tokens = std::max<int64_t>(s.tokens, 1);
      r.is_greedy = s.is_greedy;
      for (const auto& m : task.metrics) {
        if (m == "loglikelihood") r.scores[m] = s.logprob;
        if (m == "acc") r.scores[m] = s.is_greedy ? 1.0 : 0.0;
        if (m == "perplexity") r.scores[m] = std::exp(-s.logprob / static_cast<double>(r.tokens));
      }
      continue;
    }
    // multiple_choice: lm-eval's acc (argmax of the log-likelihoods) and acc_norm
    // (argmax of log-likelihood / the choice's length in bytes); the first on ties.
    r.choices = examples[i].choices;
    r.gold = examples[i].gold;
    double best = -INFINITY, best_norm = -INFINITY;
    for (size_t c = 0; c < r.choices.size(); ++c) {
      const double ll = scored[next++].logprob;
      r.choice_logprobs.push_back(ll);
      const double norm = ll / static_cast<double>(std::max<size_t>(r.choices[c].size(), 1));
      if (ll > best) {
        best = ll;
        r.prediction = static_cast<int64_t>(c);
      }
      if (norm > best_norm) {
        best_norm = norm;
        r.prediction_norm = static_cast<int64_t>(c);
      }
    }
    r.output = r.choices[static_cast<size_t>(r.prediction)];
    for (const auto& m : task.metrics) {
      if (m == "acc") r.scores[m] = r.prediction == r.gold ? 1.0 : 0.0;
      if (m == "acc_norm") r.scores[m] = r.prediction_norm == r.gold ? 1.0 : 0.0;
    }
  }
  return results;
}

Result<std::map<std::string, double>> aggregate_metrics(const Task& task, const std::vector<ExampleResult>& results) {
  std::map<std::string, double> out;
  if (results.empty()) return out;
  for (const auto& m : task.metrics) {
    if (m == "bleu" || m == "chrf") {
      std::vector<std::string> hyps;
      std::vector<std::vector<std::string>> refs(1);
      for (const auto& r : results) {
        hyps.push_back(r.filtered);
        refs[0].push_back(r.reference);
      }
      if (m == "bleu") {
        KEEL_ASSIGN_OR_RETURN(BleuScore s, corpus_bleu(hyps, refs, BleuOptions{}));
        out[m] = s.score;
      } else {
        KEEL_ASSIGN_OR_RETURN(ChrfScore s, corpus_chrf(hyps, refs));
        out[m] = s.score;
      }
      continue;
    }
    if (m == "perplexity") {
      double nll = 0;
      int64_t tokens = 0;
      for (const auto& r : results) {
        nll -= r.logprob;
        tokens += r.tokens;
      }
      out[m] = std::exp(nll / static_cast<double>(std::max<int64_t>(tokens, 1)));
      continue;
    }
    double sum = 0;
    for (const auto& r : results) {
      const auto it = r.scores.find(m);
      if (it == r.scores.end()) return internal_error("example " + r.id + " has no score for " + m);
      sum += it->second;
    }
    out[m] = sum / static_cast<double>(results.size());
  }
  return out;
}

}  // namespace keel::eval
