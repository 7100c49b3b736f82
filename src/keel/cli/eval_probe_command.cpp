// `keel eval probe security|bias -m MODEL`: the review probes (eval/probes.h) run on a
// model (the local engine, a registered remote model or an endpoint) and stored as an
// eval run of task "security" or "bias" (or the suite's own name): parameters, metrics
// (pass_rate and <category>.pass_rate; max_parity_gap, <category>.parity_gap, ...),
// examples.jsonl (one row per case or counterfactual prompt, with scores that `keel eval
// compare` pairs up), suite.yaml and summary.json. A registered version gets the
// keel.eval.<suite> tag, so a gate policy can require "security.pass_rate >= 0.98".
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "keel/cli/commands.h"
#include "keel/cli/eval_generators.h"
#include "keel/cli/eval_runs.h"
#include "keel/eval/probes.h"
#include "keel/eval/text.h"
#include "keel/tracking/tracking_service.h"
#include "keel/util/file.h"
#include "keel/util/id.h"
#include "keel/util/sha256.h"

namespace keel::cli {
namespace {

struct ProbeOptions {
  std::string model;
  std::string suite;  // a suite file; "": the built-in one
  std::string endpoint;
  std::string api_key_env;
  std::string experiment = "eval";
  std::string mode = "auto";  // bias: auto, loglikelihood, generate
  int64_t limit = 0;
  int batch_size = 8;
  int threads = 1;
  int top = 10;
};

struct SuiteText {
  std::string text;
  std::string reference;  // "builtin" or the absolute file
};

Result<SuiteText> read_suite(const ProbeOptions& o, std::string_view builtin) {
  if (o.suite.empty()) return SuiteText{std::string(builtin), "builtin"};
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(o.suite, size_t{8} << 20));
  return SuiteText{std::move(text), std::filesystem::absolute(o.suite).lexically_normal().string()};
}

// The run's parameters every probe shares.
std::vector<tracking::KeyValue> probe_params(const char* probe, const SuiteText& suite, const ResolvedModel& model,
                                             const ProbeOptions& o, const eval::Generator& generator) {
  std::vector<tracking::KeyValue> params = {{"probe", probe},
                                            {"suite", suite.reference},
                                            {"suite_sha256", Sha256::of(suite.text)},
                                            {"model", model.reference},
                                            {"model_reference", o.model},
                                            {"generator", generator.description()},
                                            {"limit", std::to_string(o.limit)}};
  if (model.version && !model.sha256.empty()) params.push_back({"model_sha256", model.sha256});
  if (!o.endpoint.empty()) params.push_back({"endpoint", o.endpoint});
  return params;
}

Result<std::unique_ptr<eval::Generator>> probe_generator(CliContext& ctx, const ResolvedModel& model,
                                                         const ProbeOptions& o) {
  LocalGeneratorOptions lo;
  lo.threads = o.threads;
  lo.batch_size = o.batch_size;
  return open_generator(ctx, model, lo);
}

// Stores the rows, the suite and the summary, logs the metrics and closes the run; with
// --json, prints the summary.
Status store_probe(CliContext& ctx, tracking::TrackingService& tracking, const tracking::Run& run,
                   const std::string& task, const ResolvedModel& model, const std::string& rows, const SuiteText& text,
                   const Json& summary, const std::vector<std::pair<std::string, double>>& metrics) {
  KEEL_RETURN_IF_ERROR(finish_eval_run(
      ctx, tracking, run, task, model,
      {{"examples.jsonl", rows}, {"suite.yaml", text.text}, {"summary.json", dump_json(summary, 2) + "\n"}}, metrics,
      {}));
  if (ctx.json()) print_json(summary);
  return Status::Ok();
}

Status run_security(CliContext& ctx, const ProbeOptions& o) {
  KEEL_ASSIGN_OR_RETURN(SuiteText text, read_suite(o, eval::builtin_security_suite()));
  KEEL_ASSIGN_OR_RETURN(eval::SecuritySuite suite,
                        eval::parse_security_suite(text.text, o.suite.empty() ? "the built-in security suite" : o.suite));
  if (o.limit > 0 && static_cast<int64_t>(suite.cases.size()) > o.limit) suite.cases.resize(static_cast<size_t>(o.limit));
  KEEL_ASSIGN_OR_RETURN(ResolvedModel model, resolve_model(ctx, o.model, o.endpoint, o.api_key_env));
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<eval::Generator> generator, probe_generator(ctx, model, o));
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run run, start_eval_run(ctx, tracking, o.experiment, suite.name, model,
                                                          {{"keel.eval.probe", "security"}}));
  std::vector<tracking::KeyValue> params = probe_params("security", text, model, o, *generator);
  params.push_back({"cases", std::to_string(suite.cases.size())});
  params.push_back({"max_tokens", std::to_string(suite.generation.max_tokens)});
  params.push_back({"output_type", "probe"});
  KEEL_RETURN_IF_ERROR(tracking.log_batch(run.id, {}, params, {}));
  if (!ctx.json()) std::printf("run %s: %zu security cases on %s\n", run.id.c_str(), suite.cases.size(), model.reference.c_str());
  std::fflush(stdout);

  std::vector<eval::Conversation> conversations;
  for (const auto& c : suite.cases) conversations.push_back(eval::security_conversation(c));
  auto answers = generator->converse(conversations, suite.generation);
  if (!answers.ok()) {
    (void)tracking.update_run(run.id, tracking::RunStatus::kFailed, now_millis(), std::nullopt);
    return answers.status().with_context("probing " + model.reference);
  }
  std::vector<eval::SecurityCaseResult> results;
  std::string rows;
  for (size_t i = 0; i < suite.cases.size(); ++i) {
    const eval::SecurityCase& c = suite.cases[i];
    results.push_back(eval::check_security_case(c, (*answers)[i].text));
    Json row = eval::to_json(results.back());
    row["index"] = static_cast<int64_t>(i);
    row["input"] = eval::plain_transcript(conversations[i]);
    row["reference"] = "";
    row["scores"] = {{"passed", results.back().passed ? 1.0 : 0.0}};
    rows += dump_json(row) + "\n";
  }
  const eval::SecurityReport report = eval::summarize_security(std::move(results));
  Json failing = Json::array();
  for (const auto& r : report.results) {
    if (!r.passed) failing.push_back(eval::to_json(r));
  }
  Json categories = Json::object();
  for (const auto& c : report.categories) {
    categories[c.category] = {{"cases", c.cases}, {"passed", c.passed}, {"pass_rate", c.pass_rate}};
  }
  Json summary = {{"run_id", run.id},          {"probe", "security"},       {"suite", text.reference},
                  {"model", model.reference},  {"cases", report.cases},     {"passed", report.passed},
                  {"pass_rate", report.pass_rate}, {"categories", categories}, {"failing", failing}};
  KEEL_RETURN_IF_ERROR(store_probe(ctx, tracking, run, suite.name, model, rows, text, summary,
                                   eval::security_metrics(report)));
  if (ctx.json()) return Status::Ok();
  std::printf("security on %s: %lld of %lld cases passed (pass rate %.3f)\n", model.reference.c_str(),
              static_cast<long long>(report.passed), static_cast<long long>(report.cases), report.pass_rate);
  for (const auto& c : report.categories) {
    std::printf("  %-26s %3lld/%-3lld %.3f\n", c.category.c_str(), static_cast<long long>(c.passed),
                static_cast<long long>(c.cases), c.pass_rate);
  }
  if (!failing.empty()) std::printf("failing cases:\n");
  for (const auto& r : report.results) {
    if (r.passed) continue;
    std::string shown = r.output.substr(0, 100);
    for (char& ch : shown) ch = ch == '\n' ? ' ' : ch;
    std::printf("  %-30s %s\n    answer: %s\n", r.id.c_str(), r.reason.c_str(), shown.c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

Status run_bias(CliContext& ctx, const ProbeOptions& o) {
  KEEL_ASSIGN_OR_RETURN(SuiteText text, read_suite(o, eval::builtin_bias_suite()));
  KEEL_ASSIGN_OR_RETURN(eval::BiasSuite suite,
                        eval::parse_bias_suite(text.text, o.suite.empty() ? "the built-in bias suite" : o.suite));
  std::vector<eval::BiasItem> items = eval::bias_items(suite);
  if (o.limit > 0) {
    // The first N templates, whole: a template's counterfactual prompts stand or go together.
    std::vector<eval::BiasItem> kept;
    std::vector<std::string> templates;
    for (auto& item : items) {
      if (std::find(templates.begin(), templates.end(), item.template_id) == templates.end()) {
        if (static_cast<int64_t>(templates.size()) == o.limit) break;
        templates.push_back(item.template_id);
      }
      kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  KEEL_ASSIGN_OR_RETURN(ResolvedModel model, resolve_model(ctx, o.model, o.endpoint, o.api_key_env));
  // At an endpoint, log-likelihoods need an echo of the prompt with log-probabilities,
  // which hosted APIs do not give: generated answers unless --mode loglikelihood says so.
  const bool by_loglikelihood = o.mode == "loglikelihood" || (o.mode == "auto" && !model.remote);
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<eval::Generator> generator, probe_generator(ctx, model, o));
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run run,
                        start_eval_run(ctx, tracking, o.experiment, suite.name, model, {{"keel.eval.probe", "bias"}}));
  std::vector<tracking::KeyValue> params = probe_params("bias", text, model, o, *generator);
  params.push_back({"items", std::to_string(items.size())});
  params.push_back({"scored_by", by_loglikelihood ? "loglikelihood" : "generation"});
  params.push_back({"output_type", "probe"});
  KEEL_RETURN_IF_ERROR(tracking.log_batch(run.id, {}, params, {}));
  if (!ctx.json()) {
    std::printf("run %s: %zu counterfactual prompts on %s, scored by %s\n", run.id.c_str(), items.size(),
                model.reference.c_str(), by_loglikelihood ? "log-likelihood" : "generated answers");
  }
  std::fflush(stdout);

  std::vector<eval::BiasAnswer> answers;
  auto fail = [&](const Status& st) {
    (void)tracking.update_run(run.id, tracking::RunStatus::kFailed, now_millis(), std::nullopt);
    return st.with_context("probing " + model.reference);
  };
  // Continuation items first write about the person; what they wrote is then scored.
  std::vector<std::string> outputs(items.size());
  {
    std::vector<std::string> prompts;
    std::vector<size_t> at;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].continuation) continue;
      prompts.push_back(items[i].prompt);
      at.push_back(i);
    }
    if (!prompts.empty()) {
      // As the suite says (generation.chat for a chat-only endpoint): the same on every generator.
      auto written = generator->complete(prompts, suite.generation);
      if (!written.ok()) return fail(written.status());
      for (size_t k = 0; k < at.size(); ++k) outputs[at[k]] = (*written)[k].text;
    }
  }
  auto context = [&](size_t i) {
    return items[i].continuation ? eval::sentiment_context(suite, outputs[i]) : items[i].prompt;
  };
  if (by_loglikelihood) {
    std::vector<eval::LoglikelihoodRequest> requests;
    for (size_t i = 0; i < items.size(); ++i) {
      requests.push_back({context(i), items[i].favourable});
      requests.push_back({context(i), items[i].unfavourable});
    }
    auto scored = generator->loglikelihood(requests);
    if (!scored.ok()) return fail(scored.status());
    for (size_t i = 0; i < items.size(); ++i) {
      answers.push_back(eval::answer_from_margin((*scored)[2 * i].logprob - (*scored)[2 * i + 1].logprob));
    }
  } else {
    std::vector<std::string> prompts;
    for (size_t i = 0; i < items.size(); ++i) prompts.push_back(context(i));
    eval::GenerationParams gp;
    gp.max_tokens = 8;
    gp.chat = static_cast<bool>(model.remote);
    auto generated = generator->complete(prompts, gp);
    if (!generated.ok()) return fail(generated.status());
    for (size_t i = 0; i < items.size(); ++i) answers.push_back(eval::answer_from_text(items[i], (*generated)[i].text));
  }
  for (size_t i = 0; i < items.size(); ++i) answers[i].output = outputs[i];
  const eval::BiasReport report = eval::summarize_bias(items, answers, static_cast<size_t>(o.top));

  std::string rows;
  for (size_t i = 0; i < items.size(); ++i) {
    const eval::BiasItem& it = items[i];
    const eval::BiasAnswer& a = answers[i];
    Json row = {{"index", static_cast<int64_t>(i)},
                {"id", it.template_id + "/" + it.category + "/" + it.term},
                {"template", it.template_id},
                {"category", it.category},
                {"term", it.term},
                {"input", it.prompt},
                {"output", a.margin ? (a.favourable ? it.favourable : it.unfavourable) : a.text},
                {"reference", it.favourable},
                {"parsed", a.parsed}};
    if (it.continuation) row["continuation"] = a.output;
    Json scores = {{"favourable", a.favourable ? 1.0 : 0.0}};
    if (a.margin) scores["margin"] = *a.margin;
    row["scores"] = scores;
    rows += dump_json(row) + "\n";
  }
  Json summary = eval::to_json(report);
  summary["run_id"] = run.id;
  summary["probe"] = "bias";
  summary["suite"] = text.reference;
  summary["model"] = model.reference;
  KEEL_RETURN_IF_ERROR(
      store_probe(ctx, tracking, run, suite.name, model, rows, text, summary, eval::bias_metrics(report)));
  if (ctx.json()) return Status::Ok();
  std::printf(
      "bias on %s: %lld prompts (%lld unparsed); largest statistical parity difference %.3f (of decisions), %.3f (of "
      "the favourable answer's probability)\n",
      model.reference.c_str(), static_cast<long long>(report.items), static_cast<long long>(report.unparsed),
      report.max_parity_gap, report.max_probability_gap);
  std::printf("  %-14s %8s %8s %9s %8s  favourable rate (probability) per term\n", "CATEGORY", "parity", "p-parity",
              "mean gap", "max gap");
  for (const auto& c : report.categories) {
    std::string rates;
    for (const auto& t : c.terms) {
      char cell[160];
      if (report.loglikelihood) {
        std::snprintf(cell, sizeof cell, "%s%s %.2f (%.2f)", rates.empty() ? "" : ", ", t.term.c_str(), t.rate,
                      t.mean_probability);
      } else {
        std::snprintf(cell, sizeof cell, "%s%s %.2f", rates.empty() ? "" : ", ", t.term.c_str(), t.rate);
      }
      rates += cell;
    }
    std::printf("  %-14s %8.3f %8.3f %9.3f %8.3f  %s\n", c.category.c_str(), c.parity_gap, c.probability_gap,
                c.mean_gap, c.max_gap, rates.c_str());
  }
  if (!report.worst_pairs.empty()) {
    std::printf("largest gaps between counterfactual prompts (%s):\n",
                report.loglikelihood ? "log-likelihood margin of the favourable answer" : "decisions that differ");
  }
  for (const auto& p : report.worst_pairs) {
    if (p.margin_a && p.margin_b) {
      std::printf("  %-12s %-12s %-32s %+.3f  vs  %-32s %+.3f  gap %.3f\n", p.template_id.c_str(), p.category.c_str(),
                  p.term_a.c_str(), *p.margin_a, p.term_b.c_str(), *p.margin_b, p.gap);
      if (!p.output_a.empty() || !p.output_b.empty()) {
        std::printf("      %s: %s\n      %s: %s\n", p.term_a.c_str(), eval::py_strip(p.output_a).c_str(),
                    p.term_b.c_str(), eval::py_strip(p.output_b).c_str());
      }
    } else {
      std::printf("  %-12s %-12s %-32s %s  vs  %-32s %s\n", p.template_id.c_str(), p.category.c_str(), p.term_a.c_str(),
                  p.favourable_a ? "favourable" : "unfavourable", p.term_b.c_str(),
                  p.favourable_b ? "favourable" : "unfavourable");
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

void add_common(CLI::App* app, ProbeOptions& o) {
  app->add_option("-m,--model", o.model,
                  "Registered NAME[@VERSION|@ALIAS] (local or remote), a GGUF file, or the model name at --endpoint")
      ->required();
  app->add_option("--suite", o.suite, "A suite file (YAML) in the built-in suite's format; default: the built-in suite");
  app->add_option("--endpoint", o.endpoint, "An OpenAI-compatible base URL (http://host:port/v1) to probe");
  app->add_option("--api-key-env", o.api_key_env, "Environment variable holding the endpoint's API key");
  app->add_option("--experiment", o.experiment, "Experiment of the run")->capture_default_str();
  app->add_option("--batch-size", o.batch_size, "Sequences decoded together; results do not depend on it")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app->add_option("--threads", o.threads, "Engine threads")->check(CLI::Range(1, 256))->capture_default_str();
}

}  // namespace

void add_eval_probe_commands(CLI::App& eval, CliContext& ctx, Status& outcome) {
  auto* probe = eval.add_subcommand("probe", "Review probes: security (injection, jailbreak, extraction, PII leakage) and bias");
  probe->require_subcommand(1);

  auto s = std::make_shared<ProbeOptions>();
  auto* security = probe->add_subcommand(
      "security", "Prompt injection, jailbreaks, system-prompt extraction and PII leakage: a pass rate and the failing cases");
  add_common(security, *s);
  security->add_option("--limit", s->limit, "Only the first N cases (0: all)")->check(CLI::Range(int64_t{0}, INT64_MAX));
  security->callback([&ctx, &outcome, s] { outcome = run_security(ctx, *s); });

  auto b = std::make_shared<ProbeOptions>();
  auto* bias = probe->add_subcommand(
      "bias", "Counterfactual prompts differing in a demographic term: statistical parity difference and the worst pairs");
  add_common(bias, *b);
  bias->add_option("--limit", b->limit, "Only the first N templates (0: all)")->check(CLI::Range(int64_t{0}, INT64_MAX));
  bias->add_option("--mode", b->mode,
                   "auto (log-likelihood on a local model, generated answers at an endpoint), loglikelihood or generate")
      ->check(CLI::IsMember({"auto", "loglikelihood", "generate"}))
      ->capture_default_str();
  bias->add_option("--top", b->top, "Worst counterfactual pairs to list")->check(CLI::Range(0, 10000))->capture_default_str();
  bias->callback([&ctx, &outcome, b] { outcome = run_bias(ctx, *b); });
}

}  // namespace keel::cli
