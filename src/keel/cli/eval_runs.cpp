#include "keel/cli/eval_runs.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "keel/eval/paired_bootstrap.h"
#include "keel/registry/model_registry.h"
#include "keel/tracking/artifact_files.h"
#include "keel/util/id.h"

namespace keel::cli {

std::string run_param(const tracking::Run& run, const std::string& key) {
  for (const auto& p : run.params) {
    if (p.key == key) return p.value;
  }
  return "";
}

std::string run_tag(const tracking::Run& run, const std::string& key) {
  for (const auto& t : run.tags) {
    if (t.key == key) return t.value;
  }
  return "";
}

std::string run_artifact_root(const tracking::Run& run) {
  const std::string scheme = "mlflow-artifacts:/";
  return run.artifact_uri.rfind(scheme, 0) == 0 ? run.artifact_uri.substr(scheme.size()) : "";
}

Result<tracking::Run> get_eval_run(tracking::TrackingService& tracking, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(tracking::Run run, tracking.get_run(run_id));
  if (run_tag(run, kEvalTaskTag).empty()) return invalid_argument("run " + run_id + " is not an eval run");
  return run;
}

Result<std::vector<Json>> read_eval_rows(store::Db& db, store::ArtifactStore& blobs, const tracking::Run& run) {
  tracking::ArtifactFiles files(db, blobs);
  auto stat = files.stat(run_artifact_root(run) + "/examples.jsonl");
  if (!stat.ok()) {
    return failed_precondition("run " + run.id + " has no examples.jsonl yet (" +
                               std::string(tracking::run_status_name(run.status)) + "; resume it to finish)");
  }
  KEEL_ASSIGN_OR_RETURN(std::string text, blobs.get_bytes(stat->sha256, size_t{2} << 30));
  std::vector<Json> rows;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    KEEL_ASSIGN_OR_RETURN(Json row, parse_json(std::string_view(text.data() + begin, end - begin)));
    rows.push_back(std::move(row));
    begin = end + 1;
  }
  return rows;
}

std::optional<double> run_metric(const tracking::Run& run, const std::string& key) {
  for (const auto& m : run.latest_metrics) {
    if (m.key == key) return m.value;
  }
  return std::nullopt;
}

Result<RunComparison> compare_eval_runs(const tracking::Run& a, const std::vector<Json>& rows_a, const tracking::Run& b,
                                        const std::vector<Json>& rows_b, const CompareSettings& o) {
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

  RunComparison out;
  out.metrics = std::move(metrics);
  out.metric = metric;
  out.examples = std::move(examples);
  out.paired = std::move(paired);
  out.note = note;
  out.same_examples = same_examples;
  return out;
}

Result<tracking::Run> start_eval_run(CliContext& ctx, tracking::TrackingService& tracking, const std::string& experiment,
                                     const std::string& task, const ResolvedModel& model,
                                     std::vector<tracking::KeyValue> extra_tags) {
  auto found = tracking.get_experiment_by_name(experiment);
  if (!found.ok() && found.status().code() == ErrorCode::kNotFound) {
    found = tracking.create_experiment(experiment, "", {}, ctx.actor());
  }
  if (!found.ok()) return found.status().with_context("experiment " + experiment);
  std::vector<tracking::KeyValue> tags = {{kEvalTaskTag, task}};
  if (model.version) {
    tags.push_back({kEvalModelNameTag, model.version->model_name});
    tags.push_back({kEvalModelVersionTag, std::to_string(model.version->version)});
    tags.push_back({kEvalModelVersionIdTag, model.version->id});
  }
  for (auto& t : extra_tags) tags.push_back(std::move(t));
  return tracking.create_run(found->id, ctx.actor(), 0, task + " " + model.reference, tags);
}

Status finish_eval_run(CliContext& ctx, tracking::TrackingService& tracking, const tracking::Run& run,
                       const std::string& task, const ResolvedModel& model,
                       const std::vector<std::pair<std::string, std::string>>& files,
                       const std::vector<std::pair<std::string, double>>& metrics,
                       const std::vector<tracking::KeyValue>& tags) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  const std::string root = run_artifact_root(run);
  if (root.empty()) return failed_precondition("run " + run.id + " keeps its artifacts outside Keel: " + run.artifact_uri);
  tracking::ArtifactFiles artifacts(*db, *blobs);
  for (const auto& [path, text] : files) KEEL_RETURN_IF_ERROR(artifacts.put(root + "/" + path, text).status());
  std::vector<tracking::Metric> logged;
  const int64_t at = now_millis();
  for (const auto& [k, v] : metrics) logged.push_back({k, v, at, 0});
  KEEL_RETURN_IF_ERROR(tracking.log_batch(run.id, logged, {}, tags));
  KEEL_RETURN_IF_ERROR(tracking.update_run(run.id, tracking::RunStatus::kFinished, now_millis(), std::nullopt).status());
  if (model.version) {
    registry::ModelRegistry models(*db, *blobs);
    KEEL_RETURN_IF_ERROR(models.set_version_tag(model.version->model_name, model.version->version,
                                                {eval_version_tag(task), run.id}, ctx.actor()));
  }
  return Status::Ok();
}

}  // namespace keel::cli
