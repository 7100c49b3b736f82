// `keel eval compare RUN_A RUN_B` (metrics side by side, the examples whose scores
// differ most, and with --judge FILE a pairwise LLM judge's preferences between the two
// runs' answers, each pair asked in both orders) and `keel eval gate NAME@VERSION
// --policy FILE` (a release gate over the version's eval results, absolute or relative
// to the version an alias names, recorded as a named check on the version so that a
// promotion policy can require it).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <set>

#include "keel/cli/commands.h"
#include "keel/cli/eval_judges.h"
#include "keel/cli/eval_runs.h"
#include "keel/eval/gate_policy.h"
#include "keel/eval/judge.h"
#include "keel/eval/paired_bootstrap.h"
#include "keel/registry/governance.h"
#include "keel/registry/model_registry.h"
#include "keel/eval/task.h"
#include "keel/util/file.h"
#include "keel/util/sha256.h"

namespace keel::cli {
namespace {

struct CompareOptions {
  std::string a, b;
  std::string metric;
  int top = 5;
  std::string judge;  // a pairwise judge file
  int threads = 1;
  std::string task;          // with model versions for A and B: whose eval runs to compare
  int64_t bootstrap = 1000;  // paired bootstrap resamples (0: none)
  double confidence = 0.95;
  uint64_t seed = 0;
};

std::string shorten(const std::string& text, size_t width) {
  std::string one;
  for (char c : text) one += (c == '\n' ? ' ' : c);
  if (one.size() <= width) return one;
  return one.substr(0, width - 3) + "...";
}

// The judge's preference for each pair of answers, asked with A's answer first and again
// with B's first; a pair the two orders disagree on counts as a tie.
Result<Json> judge_pairs(CliContext& ctx, const CompareOptions& o, const std::vector<Json>& rows_a,
                         const std::vector<Json>& rows_b, std::vector<eval::PairwiseVerdict>& verdicts) {
  KEEL_ASSIGN_OR_RETURN(eval::Judge judge, eval::load_judge(o.judge));
  if (judge.verdict.kind != eval::VerdictParser::Kind::kPairwise) {
    return invalid_argument(o.judge + ": a " + std::string(eval::verdict_kind_name(judge.verdict.kind)) +
                            " judge scores one run's answers (give it to a task's judge: section); --judge takes a "
                            "judge with verdict type pairwise");
  }
  LocalGeneratorOptions lo;
  lo.threads = o.threads;
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<JudgeClient> client, JudgeClient::open(ctx, judge, lo));
  std::vector<std::string> prompts;
  for (size_t i = 0; i < rows_a.size(); ++i) {
    auto p = eval::pairwise_prompts(client->rubric(), rows_a[i]["input"].get<std::string>(),
                                    rows_a[i]["reference"].get<std::string>(), rows_a[i]["output"].get<std::string>(),
                                    rows_b[i]["output"].get<std::string>());
    if (!p.ok()) return invalid_argument(o.judge + ": the rubric: " + p.status().message());
    prompts.push_back(std::move(p->first));
    prompts.push_back(std::move(p->second));
  }
  KEEL_ASSIGN_OR_RETURN(std::vector<JudgeAnswer> answers, client->ask(prompts));
  Json examples = Json::array();
  int64_t cached = 0;
  for (size_t i = 0; i < rows_a.size(); ++i) {
    const JudgeAnswer& first = answers[2 * i];
    const JudgeAnswer& second = answers[2 * i + 1];
    verdicts.push_back(eval::combine_pairwise(judge.verdict, first.text, second.text));
    Json j = eval::to_json(verdicts.back());
    j["first"]["cached"] = first.cached;
    j["first"]["trace_id"] = first.trace_id;
    j["second"]["cached"] = second.cached;
    j["second"]["trace_id"] = second.trace_id;
    j["index"] = rows_a[i]["index"];
    j["id"] = rows_a[i]["id"];
    examples.push_back(std::move(j));
    cached += (first.cached ? 1 : 0) + (second.cached ? 1 : 0);
  }
  Json out = eval::to_json(eval::summarize_pairwise(verdicts));
  out["name"] = judge.name;
  out["file"] = o.judge;
  out["model"] = client->model_reference();
  out["cache_hits"] = cached;
  out["calls"] = client->calls();
  out["examples"] = std::move(examples);
  return out;
}

// A compared side: an eval run id, or a model version (NAME@VERSION or NAME@ALIAS, e.g.
// the production one) standing for its latest eval run of `task`.
Result<tracking::Run> compared_run(store::Db& db, store::ArtifactStore& blobs, tracking::TrackingService& tracking,
                                   const std::string& reference, const std::string& task) {
  if (reference.find('@') == std::string::npos) return get_eval_run(tracking, reference);
  if (task.empty()) {
    return invalid_argument("comparing model versions (" + reference + ") needs --task NAME, the task whose runs to compare");
  }
  KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, registry::ModelRegistry(db, blobs).get(reference));
  const std::string label = v.model_name + "@" + std::to_string(v.version);
  for (const auto& t : v.tags) {
    if (t.key == eval_version_tag(task)) return get_eval_run(tracking, t.value);
  }
  return not_found(label + " (" + reference + ") has no eval run of task " + task + " (keel eval run -m " + label +
                   " -t TASK.yaml)");
}

// The side-by-side table, the paired intervals and the largest differences.
void print_comparison(const tracking::Run& a, const tracking::Run& b, const RunComparison& cmp, int64_t bootstrap,
                      double confidence) {
  const Json& metrics = cmp.metrics;
  const Json& examples = cmp.examples;
  const Json& paired = cmp.paired;
  const std::string& metric = cmp.metric;
  const std::string& note = cmp.note;
  std::printf("A: %s  %s on %s\nB: %s  %s on %s\n\n", a.id.c_str(), run_tag(a, kEvalTaskTag).c_str(),
              run_param(a, "model").c_str(), b.id.c_str(), run_tag(b, kEvalTaskTag).c_str(),
              run_param(b, "model").c_str());
  std::printf("%-16s %12s %12s %12s\n", "METRIC", "A", "B", "B - A");
  for (const auto& [k, v] : metrics.items()) {
    auto cell = [](const Json& j) { return j.is_null() ? std::string("-") : std::to_string(j.get<double>()); };
    std::printf("%-16s %12s %12s %12s\n", k.c_str(), cell(v["a"]).c_str(), cell(v["b"]).c_str(),
                cell(v["delta"]).c_str());
  }
  if (!paired.empty()) {
    std::printf("\nper-example means, paired bootstrap (%lld resamples, %.0f%% interval of B - A):\n",
                static_cast<long long>(bootstrap), 100 * confidence);
    std::printf("%-16s %10s %10s %10s %22s %10s\n", "SCORE", "A", "B", "B - A", "interval", "B better");
    for (const auto& [k, v] : paired.items()) {
      char interval[64];
      std::snprintf(interval, sizeof interval, "[%+.4f, %+.4f]", v["low"].get<double>(), v["high"].get<double>());
      std::printf("%-16s %10.4f %10.4f %+10.4f %22s %9.1f%%\n", k.c_str(), v["mean_a"].get<double>(),
                  v["mean_b"].get<double>(), v["mean_delta"].get<double>(), interval,
                  100 * v["b_better_share"].get<double>());
    }
  }
  if (!note.empty()) {
    std::printf("\n%s\n", note.c_str());
  } else {
    std::printf("\nlargest differences in %s (%zu shown):\n", metric.c_str(), examples.size());
    for (const auto& e : examples) {
      std::printf("[%lld] %s  %+.4f\n  input:     %s\n  reference: %s\n  A (%.4f): %s\n  B (%.4f): %s\n",
                  static_cast<long long>(e["index"].get<int64_t>()), e["id"].get<std::string>().c_str(),
                  e["delta"].get<double>(), shorten(e["input"].get<std::string>(), 100).c_str(),
                  shorten(e["reference"].get<std::string>(), 100).c_str(), e["a"]["score"].get<double>(),
                  shorten(e["a"]["output"].get<std::string>(), 100).c_str(), e["b"]["score"].get<double>(),
                  shorten(e["b"]["output"].get<std::string>(), 100).c_str());
    }
  }
}

Status run_compare(CliContext& ctx, const CompareOptions& o) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run a, compared_run(*db, *blobs, tracking, o.a, o.task));
  KEEL_ASSIGN_OR_RETURN(tracking::Run b, compared_run(*db, *blobs, tracking, o.b, o.task));
  KEEL_ASSIGN_OR_RETURN(std::vector<Json> rows_a, read_eval_rows(*db, *blobs, a));
  KEEL_ASSIGN_OR_RETURN(std::vector<Json> rows_b, read_eval_rows(*db, *blobs, b));

  KEEL_ASSIGN_OR_RETURN(RunComparison cmp,
                        compare_eval_runs(a, rows_a, b, rows_b, {o.metric, o.top, o.bootstrap, o.confidence, o.seed}));
  const bool same_examples = cmp.same_examples;
  const std::string& note = cmp.note;

  Json judged;
  std::vector<eval::PairwiseVerdict> verdicts;
  if (!o.judge.empty()) {
    if (!same_examples) {
      return failed_precondition("--judge compares the runs' answers example by example, but " + note);
    }
    if (run_param(a, "output_type") != "generate_until") {
      return failed_precondition("--judge compares generated answers; task " + run_tag(a, kEvalTaskTag) + " is " +
                                 run_param(a, "output_type"));
    }
    KEEL_ASSIGN_OR_RETURN(judged, judge_pairs(ctx, o, rows_a, rows_b, verdicts));
  }

  auto who = [](const tracking::Run& r) {
    return Json{{"id", r.id}, {"task", run_tag(r, kEvalTaskTag)}, {"model", run_param(r, "model")}};
  };
  if (ctx.json()) {
    Json out = {{"runs", {who(a), who(b)}}, {"metrics", cmp.metrics},   {"metric", cmp.metric},
                {"examples", cmp.examples},     {"paired", cmp.paired}};
    if (!note.empty()) out["note"] = note;
    if (!judged.is_null()) out["judge"] = judged;
    print_json(out);
    return Status::Ok();
  }
  print_comparison(a, b, cmp, o.bootstrap, o.confidence);
  if (!judged.is_null()) {
    auto rate = [](const Json& j) { return j.is_null() ? std::string("-") : std::to_string(j.get<double>()); };
    std::printf(
        "\njudge %s (%s), pairwise over %lld examples, each asked in both orders:\n"
        "  A better %lld, B better %lld, ties %lld (%lld of them position-inconsistent), unparsed %lld\n"
        "  agreement of the two orders %s, B's win rate %s\n"
        "  %lld answers from the cache, %lld judge calls\n",
        judged["name"].get<std::string>().c_str(), judged["model"].get<std::string>().c_str(),
        static_cast<long long>(judged["pairs"].get<int64_t>()), static_cast<long long>(judged["a_wins"].get<int64_t>()),
        static_cast<long long>(judged["b_wins"].get<int64_t>()), static_cast<long long>(judged["ties"].get<int64_t>()),
        static_cast<long long>(judged["inconsistent"].get<int64_t>()),
        static_cast<long long>(judged["unparsed"].get<int64_t>()), rate(judged["agreement"]).c_str(),
        rate(judged["b_win_rate"]).c_str(), static_cast<long long>(judged["cache_hits"].get<int64_t>()),
        static_cast<long long>(judged["calls"].get<int64_t>()));
    for (const auto& e : judged["examples"]) {
      auto pass = [](const Json& p) {
        return p["status"] == "parsed" ? p["winner"].get<std::string>() : std::string("unparsed");
      };
      std::printf("  [%lld] %-14s A,B: %-8s B,A: %-8s -> %s\n", static_cast<long long>(e["index"].get<int64_t>()),
                  e["id"].get<std::string>().c_str(), pass(e["first"]).c_str(), pass(e["second"]).c_str(),
                  e["winner"].get<std::string>().c_str());
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

Status run_gate(CliContext& ctx, const std::string& reference, const std::string& policy_path) {
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(policy_path, size_t{1} << 20));
  KEEL_ASSIGN_OR_RETURN(eval::GatePolicy policy, eval::parse_gate_policy(text, policy_path));
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(registry::ModelVersion candidate, models.get(reference));
  const std::string name = candidate.model_name + "@" + std::to_string(candidate.version);

  auto lookup = [&](const std::string& task, const std::string& metric, const std::string& alias,
                    std::string* why) -> std::optional<double> {
    registry::ModelVersion v = candidate;
    if (!alias.empty()) {
      auto aliased = models.get_by_alias(candidate.model_name, alias);
      if (!aliased.ok()) {
        *why = "no version of " + candidate.model_name + " has the alias " + alias;
        return std::nullopt;
      }
      v = *aliased;
    }
    const std::string label = v.model_name + "@" + std::to_string(v.version);
    std::string run_id;
    for (const auto& t : v.tags) {
      if (t.key == eval_version_tag(task)) run_id = t.value;
    }
    if (run_id.empty()) {
      *why = label + " has no eval run of task " + task + " (keel eval run -m " + label + " -t TASK.yaml)";
      return std::nullopt;
    }
    auto run = tracking.get_run(run_id);
    if (!run.ok()) {
      *why = "eval run " + run_id + " of " + label + ": " + run.status().message();
      return std::nullopt;
    }
    auto value = run_metric(*run, metric);
    if (!value) *why = "eval run " + run_id + " of " + label + " (task " + task + ") has no metric " + metric;
    return value;
  };
  std::vector<eval::GateOutcome> outcomes = eval::evaluate_gate(policy, lookup);
  bool passed = true;
  Json rules = Json::array();
  std::string reasons;
  for (const auto& o : outcomes) {
    passed = passed && o.passed;
    rules.push_back(eval::to_json(o));
    if (!o.passed) reasons += (reasons.empty() ? "" : "; ") + o.rule.task + ": " + o.rule.text + " (" + o.reason + ")";
  }
  registry::CheckResult check{policy.check, passed, std::nullopt, dump_json(Json{{"policy", policy_path}, {"rules", rules}}),
                              0, ""};
  KEEL_RETURN_IF_ERROR(registry::Governance(*db, *blobs)
                           .record_check(candidate.model_name, candidate.version, check, ctx.actor()));
  if (ctx.json()) {
    print_json({{"model", name}, {"check", policy.check}, {"passed", passed}, {"rules", rules}});
  } else {
    std::printf("gate %s on %s: %s\n", policy.check.c_str(), name.c_str(), passed ? "passed" : "FAILED");
    for (const auto& o : outcomes) {
      std::printf("  %-4s %-10s %-36s", o.passed ? "ok" : "FAIL", o.rule.task.c_str(), o.rule.text.c_str());
      if (o.value) std::printf(" value %.4f", *o.value);
      if (o.threshold) std::printf(" threshold %.4f", *o.threshold);
      if (!o.reason.empty() && !o.value) std::printf(" %s", o.reason.c_str());
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  if (!passed) return failed_precondition("gate " + policy.check + " failed for " + name + ": " + reasons);
  return Status::Ok();
}


struct RegressionOptions {
  std::string candidate;               // NAME@VERSION (or NAME@ALIAS)
  std::string against = "production";  // the alias (or version number) of the baseline
  std::string task;                    // the task file
  std::string dataset;
  std::string experiment = "eval";
  int64_t limit = 0;
  int batch_size = 8;
  int threads = 1;
  bool rerun = false;
  CompareSettings compare;
};

// A side's eval run of the task: the version's latest one when it is finished and scored
// this very task file with the same limit (and no --dataset overrides the task's data);
// else a new run, made now.
Result<tracking::Run> regression_side(CliContext& ctx, tracking::TrackingService& tracking,
                                      const registry::ModelVersion& v, const std::string& task_name,
                                      const std::string& task_sha, const RegressionOptions& o) {
  const std::string label = v.model_name + "@" + std::to_string(v.version);
  if (!o.rerun && o.dataset.empty()) {
    for (const auto& t : v.tags) {
      if (t.key != eval_version_tag(task_name)) continue;
      auto run = tracking.get_run(t.value);
      if (run.ok() && run->status == tracking::RunStatus::kFinished && run_param(*run, "task_sha256") == task_sha &&
          run_param(*run, "limit") == std::to_string(o.limit)) {
        if (!ctx.json()) std::printf("eval run %s: %s on %s (reused)\n", run->id.c_str(), task_name.c_str(), label.c_str());
        return *run;
      }
    }
  }
  EvalRunOptions e;
  e.model = label;
  e.dataset = o.dataset;
  e.task = o.task;
  e.experiment = o.experiment;
  e.limit = o.limit;
  e.batch_size = o.batch_size;
  e.threads = o.threads;
  e.quiet = true;
  std::string id;
  Status st = run_eval_task(ctx, e, &id);
  if (id.empty()) return st;
  KEEL_ASSIGN_OR_RETURN(tracking::Run run, tracking.get_run(id));
  // Below the task's own thresholds is a result to compare, not a failure to stop on.
  if (run.status != tracking::RunStatus::kFinished) return st.ok() ? failed_precondition("eval run " + id + " did not finish") : st;
  return run;
}

Status run_regression(CliContext& ctx, const RegressionOptions& o) {
  KEEL_ASSIGN_OR_RETURN(eval::Task task, eval::load_task(o.task));
  KEEL_ASSIGN_OR_RETURN(std::string task_text, read_file(o.task));
  const std::string task_sha = Sha256::of(task_text);
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(registry::ModelVersion candidate, models.get(o.candidate));
  auto baseline = models.get(candidate.model_name + "@" + o.against);
  if (!baseline.ok()) {
    return baseline.status().with_context("the baseline " + candidate.model_name + "@" + o.against +
                                          " (--against names an alias or a version of " + candidate.model_name + ")");
  }
  const std::string candidate_label = candidate.model_name + "@" + std::to_string(candidate.version);
  const std::string baseline_label = baseline->model_name + "@" + std::to_string(baseline->version);
  if (baseline->id == candidate.id) {
    return failed_precondition(candidate_label + " is itself " + candidate.model_name + "@" + o.against +
                               "; a regression check compares a candidate with another version");
  }
  KEEL_ASSIGN_OR_RETURN(tracking::Run base_run, regression_side(ctx, tracking, *baseline, task.name, task_sha, o));
  KEEL_ASSIGN_OR_RETURN(tracking::Run cand_run, regression_side(ctx, tracking, candidate, task.name, task_sha, o));
  KEEL_ASSIGN_OR_RETURN(std::vector<Json> rows_a, read_eval_rows(*db, *blobs, base_run));
  KEEL_ASSIGN_OR_RETURN(std::vector<Json> rows_b, read_eval_rows(*db, *blobs, cand_run));
  KEEL_ASSIGN_OR_RETURN(RunComparison cmp, compare_eval_runs(base_run, rows_a, cand_run, rows_b, o.compare));
  if (!cmp.same_examples) {
    return failed_precondition("the runs of " + baseline_label + " (" + base_run.id + ") and " + candidate_label + " (" +
                               cand_run.id + ") cannot be paired: " + cmp.note);
  }

  // The check itself is an eval run of task <task>-regression on the candidate.
  const std::string name = task.name + "-regression";
  ResolvedModel model;
  model.version = candidate;
  model.reference = candidate_label;
  KEEL_ASSIGN_OR_RETURN(tracking::Run run, start_eval_run(ctx, tracking, o.experiment, name, model,
                                                          {{"keel.eval.probe", "regression"},
                                                           {"keel.eval.baseline", baseline_label}}));
  KEEL_RETURN_IF_ERROR(tracking.log_batch(
      run.id, {},
      {{"task", task.name},
       {"task_sha256", task_sha},
       {"output_type", "regression"},
       {"model", candidate_label},
       {"baseline", baseline_label},
       {"against", o.against},
       {"candidate_run", cand_run.id},
       {"baseline_run", base_run.id},
       {"bootstrap", std::to_string(o.compare.bootstrap)},
       {"confidence", std::to_string(o.compare.confidence)},
       {"seed", std::to_string(o.compare.seed)}},
      {}));
  std::vector<std::pair<std::string, double>> metrics;
  for (const auto& [k, v] : cmp.paired.items()) {
    metrics.push_back({k + ".mean_delta", v["mean_delta"].get<double>()});
    metrics.push_back({k + ".low", v["low"].get<double>()});
    metrics.push_back({k + ".high", v["high"].get<double>()});
  }
  for (const auto& [k, v] : cmp.metrics.items()) {
    if (v["delta"].is_number()) metrics.push_back({k + ".delta", v["delta"].get<double>()});
  }
  std::string rows;
  int64_t changed = 0;
  for (size_t i = 0; i < rows_a.size(); ++i) {
    Json deltas = Json::object();
    bool differs = false;
    for (const auto& [k, v] : rows_b[i]["scores"].items()) {
      if (!v.is_number() || !rows_a[i]["scores"].contains(k) || !rows_a[i]["scores"][k].is_number()) continue;
      const double d = v.get<double>() - rows_a[i]["scores"][k].get<double>();
      deltas[k] = d;
      differs = differs || d != 0;
    }
    changed += differs ? 1 : 0;
    rows += dump_json(Json{{"index", rows_a[i]["index"]},
                           {"id", rows_a[i]["id"]},
                           {"input", rows_a[i]["input"]},
                           {"reference", rows_a[i]["reference"]},
                           {"output", rows_b[i]["output"]},
                           {"baseline_output", rows_a[i]["output"]},
                           {"scores", deltas}}) +
            "\n";
  }
  metrics.push_back({"changed_examples", static_cast<double>(changed)});
  Json summary = {{"run_id", run.id},
                  {"task", task.name},
                  {"candidate", {{"model", candidate_label}, {"run", cand_run.id}}},
                  {"baseline", {{"model", baseline_label}, {"alias", o.against}, {"run", base_run.id}}},
                  {"examples", rows_a.size()},
                  {"changed_examples", changed},
                  {"metrics", cmp.metrics},
                  {"paired", cmp.paired},
                  {"metric", cmp.metric},
                  {"largest_changes", cmp.examples}};
  KEEL_RETURN_IF_ERROR(finish_eval_run(ctx, tracking, run, name, model,
                                       {{"examples.jsonl", rows}, {"task.yaml", task_text},
                                        {"summary.json", dump_json(summary, 2) + "\n"}},
                                       metrics, {}));
  if (ctx.json()) {
    print_json(summary);
    return Status::Ok();
  }
  std::printf("\nregression check %s: %s against %s (%s), %zu examples, %lld changed\n", run.id.c_str(),
              candidate_label.c_str(), baseline_label.c_str(), o.against.c_str(), rows_a.size(),
              static_cast<long long>(changed));
  std::printf("(A is the baseline, B the candidate; a gate reads %s.SCORE.low / .mean_delta / .high)\n\n", name.c_str());
  print_comparison(base_run, cand_run, cmp, o.compare.bootstrap, o.compare.confidence);
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

void add_eval_review_commands(CLI::App& eval, CliContext& ctx, Status& outcome) {
  auto c = std::make_shared<CompareOptions>();
  auto* compare = eval.add_subcommand("compare", "Compare two eval runs: metrics side by side, largest per-example differences");
  compare->add_option("run_a", c->a, "Run A: an eval run id, or a model NAME@VERSION / NAME@ALIAS (with --task)")
      ->required();
  compare->add_option("run_b", c->b, "Run B, as A")->required();
  compare->add_option("--task", c->task, "With model versions: the task whose latest eval runs to compare");
  compare->add_option("--metric", c->metric, "Per-example score to rank differences by (default: the first)");
  compare->add_option("--top", c->top, "Examples to show")->check(CLI::Range(0, 10000))->capture_default_str();
  compare->add_option("--bootstrap", c->bootstrap, "Paired bootstrap resamples of the per-example scores (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}))
      ->capture_default_str();
  compare->add_option("--confidence", c->confidence, "Confidence of the bootstrap interval")
      ->check(CLI::Range(0.5, 0.999))
      ->capture_default_str();
  compare->add_option("--seed", c->seed, "Seed of the bootstrap resampling")->capture_default_str();
  compare->add_option("--judge", c->judge,
                      "A pairwise judge (YAML): which answer is better, each pair asked in both orders");
  compare->add_option("--threads", c->threads, "Engine threads of a local judge")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  compare->callback([&ctx, &outcome, c] { outcome = run_compare(ctx, *c); });

  auto ref = std::make_shared<std::string>();
  auto policy = std::make_shared<std::string>();
  auto* gate = eval.add_subcommand(
      "gate", "Check NAME@VERSION's eval results against a policy (YAML) and record the result as a named check");
  gate->add_option("ref", *ref, "NAME@VERSION (or NAME@ALIAS)")->required();
  gate->add_option("--policy", *policy, "Gate policy file (YAML): check name and per-task rules")->required();
  gate->callback([&ctx, &outcome, ref, policy] { outcome = run_gate(ctx, *ref, *policy); });

  auto r = std::make_shared<RegressionOptions>();
  auto* regression = eval.add_subcommand(
      "regression",
      "Regression probe: a candidate version against the one under an alias on the same task and data, per score, "
      "with paired bootstrap intervals and the examples that changed most; recorded as an eval run");
  regression->add_option("candidate", r->candidate, "NAME@VERSION of the candidate")->required();
  regression->add_option("-t,--task", r->task, "Task file (YAML)")->required();
  regression->add_option("--against", r->against, "Alias (or version number) of the baseline")->capture_default_str();
  regression->add_option("-d,--dataset", r->dataset, "JSONL file or dataset version; default: the task's dataset");
  regression->add_option("--limit", r->limit, "Only the first N examples (0: all)")
      ->check(CLI::Range(int64_t{0}, INT64_MAX));
  regression->add_flag("--rerun", r->rerun, "Evaluate both versions anew instead of reusing their latest runs");
  regression->add_option("--experiment", r->experiment, "Experiment of the runs")->capture_default_str();
  regression->add_option("--batch-size", r->batch_size, "Examples per batch")->check(CLI::Range(1, 256))->capture_default_str();
  regression->add_option("--threads", r->threads, "Engine threads")->check(CLI::Range(1, 256))->capture_default_str();
  regression->add_option("--metric", r->compare.metric, "Per-example score to rank changes by (default: the first)");
  regression->add_option("--top", r->compare.top, "Changed examples to show")->check(CLI::Range(0, 10000))->capture_default_str();
  regression->add_option("--bootstrap", r->compare.bootstrap, "Paired bootstrap resamples")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  regression->add_option("--confidence", r->compare.confidence, "Confidence of the interval")
      ->check(CLI::Range(0.5, 0.999))
      ->capture_default_str();
  regression->add_option("--seed", r->compare.seed, "Seed of the bootstrap resampling")->capture_default_str();
  regression->callback([&ctx, &outcome, r] { outcome = run_regression(ctx, *r); });
}

}  // namespace keel::cli
