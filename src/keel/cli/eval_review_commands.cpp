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
#include "keel/util/file.h"

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

Status run_compare(CliContext& ctx, const CompareOptions& o) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run a, compared_run(*db, *blobs, tracking, o.a, o.task));
  KEEL_ASSIGN_OR_RETURN(tracking::Run b, compared_run(*db, *blobs, tracking, o.b, o.task));
  KEEL_ASSIGN_OR_RETURN(std::vector<Json> rows_a, read_eval_rows(*db, *blobs, a));
  KEEL_ASSIGN_OR_RETURN(std::vector<Json> rows_b, read_eval_rows(*db, *blobs, b));

  std::set<std::string> keys;
  for (const auto* run : {&a, &b}) {
    for (const auto& m : run->latest_metrics) {
      if (m.key != "examples_done") keys.insert(m.key);
    }
  }
  Json metrics = Json::object();
  for (const auto& k : keys) {
    auto va = run_metric(a, k), vb = run_metric(b, k);
    metrics[k] = {{"a", va ? Json(*va) : Json(nullptr)},
                  {"b", vb ? Json(*vb) : Json(nullptr)},
                  {"delta", va && vb ? Json(*vb - *va) : Json(nullptr)}};
  }

  // Examples pair up by index when both runs scored the same examples.
  const bool same_examples = run_param(a, "task_sha256") == run_param(b, "task_sha256") &&
                             run_param(a, "dataset_sha256") == run_param(b, "dataset_sha256") &&
                             rows_a.size() == rows_b.size();
  std::string metric = o.metric;
  if (metric.empty() && !rows_a.empty() && !rows_a[0]["scores"].empty()) metric = rows_a[0]["scores"].begin().key();
  Json examples = Json::array();
  std::string note;
  if (!same_examples) {
    note = "the runs scored different tasks or datasets: no per-example comparison";
  } else if (!metric.empty()) {
    if (!rows_a.empty() && !rows_a[0]["scores"].contains(metric)) {
      return invalid_argument("the runs have no per-example score " + metric + " (their rows score " +
                              rows_a[0]["scores"].dump() + ")");
    }
    std::vector<std::pair<double, size_t>> order;
    for (size_t i = 0; i < rows_a.size(); ++i) {
      const double d = rows_b[i]["scores"][metric].get<double>() - rows_a[i]["scores"][metric].get<double>();
      if (d != 0) order.push_back({d, i});
    }
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& x, const auto& y) { return std::fabs(x.first) > std::fabs(y.first); });
    for (size_t k = 0; k < order.size() && static_cast<int>(k) < o.top; ++k) {
      const size_t i = order[k].second;
      examples.push_back({{"index", rows_a[i]["index"]},
                          {"id", rows_a[i]["id"]},
                          {"input", rows_a[i]["input"]},
                          {"reference", rows_a[i]["reference"]},
                          {"a", {{"output", rows_a[i]["output"]}, {"score", rows_a[i]["scores"][metric]}}},
                          {"b", {{"output", rows_b[i]["output"]}, {"score", rows_b[i]["scores"][metric]}}},
                          {"delta", order[k].first}});
    }
  }

  // Every per-example score, paired: the mean difference and its bootstrap interval.
  Json paired = Json::object();
  if (same_examples && !rows_a.empty() && o.bootstrap > 0) {
    for (const auto& [key, value] : rows_a[0]["scores"].items()) {
      if (!value.is_number()) continue;
      std::vector<double> sa, sb;
      for (size_t i = 0; i < rows_a.size(); ++i) {
        const Json& x = rows_a[i]["scores"];
        const Json& y = rows_b[i]["scores"];
        if (!x.contains(key) || !y.contains(key) || !x[key].is_number() || !y[key].is_number()) break;
        sa.push_back(x[key].get<double>());
        sb.push_back(y[key].get<double>());
      }
      if (sa.size() != rows_a.size()) continue;  // not scored on every example of both
      KEEL_ASSIGN_OR_RETURN(eval::PairedInterval iv, eval::paired_bootstrap(sa, sb, o.bootstrap, o.confidence, o.seed));
      paired[key] = {{"mean_a", std::accumulate(sa.begin(), sa.end(), 0.0) / static_cast<double>(sa.size())},
                     {"mean_b", std::accumulate(sb.begin(), sb.end(), 0.0) / static_cast<double>(sb.size())},
                     {"mean_delta", iv.mean_delta},
                     {"low", iv.low},
                     {"high", iv.high},
                     {"confidence", iv.confidence},
                     {"b_better_share", iv.b_better},
                     {"examples", iv.examples},
                     {"samples", iv.samples}};
    }
  }

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
    Json out = {{"runs", {who(a), who(b)}}, {"metrics", metrics},   {"metric", metric},
                {"examples", examples},         {"paired", paired}};
    if (!note.empty()) out["note"] = note;
    if (!judged.is_null()) out["judge"] = judged;
    print_json(out);
    return Status::Ok();
  }
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
                static_cast<long long>(o.bootstrap), 100 * o.confidence);
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
}

}  // namespace keel::cli
