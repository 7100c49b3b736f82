// Reading eval runs back (for `keel eval show`, `compare` and `gate`): the tags and
// parameters `keel eval run` writes, and the per-example rows of its examples.jsonl.
#pragma once

#include <string>
#include <vector>

#include "keel/cli/eval_generators.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"
#include "keel/tracking/tracking_service.h"
#include "keel/util/json.h"

namespace keel::cli {

inline constexpr const char* kEvalTaskTag = "keel.eval.task";
inline constexpr const char* kEvalModelNameTag = "keel.model.name";
inline constexpr const char* kEvalModelVersionTag = "keel.model.version";
inline constexpr const char* kEvalModelVersionIdTag = "keel.model.version_id";
// The version tag naming the latest eval run of a task on that version.
inline std::string eval_version_tag(const std::string& task) { return "keel.eval." + task; }

std::string run_param(const tracking::Run& run, const std::string& key);  // "" when absent
std::string run_tag(const tracking::Run& run, const std::string& key);
// "<experiment>/<run>/artifacts" for a run whose artifacts Keel keeps; else "".
std::string run_artifact_root(const tracking::Run& run);
// The run, checked to be an eval run (kInvalidArgument otherwise).
Result<tracking::Run> get_eval_run(tracking::TrackingService& tracking, const std::string& run_id);
// The rows of a finished eval run, in example order.
Result<std::vector<Json>> read_eval_rows(store::Db& db, store::ArtifactStore& blobs, const tracking::Run& run);
// The latest value of a metric the run logged.
std::optional<double> run_metric(const tracking::Run& run, const std::string& key);

struct CompareSettings {
  std::string metric;  // the per-example score to rank differences by ("": the first)
  int top = 5;
  int64_t bootstrap = 1000;  // paired bootstrap resamples (0: none)
  double confidence = 0.95;
  uint64_t seed = 0;
};

// Two eval runs side by side: every aggregate metric (a, b, delta); when both scored the
// same examples of the same task and data, the `top` examples whose `metric` changed
// most and, for every per-example score, the paired bootstrap interval of the mean
// difference b - a; else a note saying why not.
struct RunComparison {
  Json metrics;   // key -> {a, b, delta}
  std::string metric;
  Json examples;  // the largest per-example differences
  Json paired;    // score -> {mean_a, mean_b, mean_delta, low, high, confidence, b_better_share, ...}
  std::string note;
  bool same_examples = false;
};
Result<RunComparison> compare_eval_runs(const tracking::Run& a, const std::vector<Json>& rows_a, const tracking::Run& b,
                                        const std::vector<Json>& rows_b, const CompareSettings& settings);

struct EvalRunOptions {
  std::string model;
  std::string dataset;
  std::string task;
  std::string resume;
  std::string endpoint;
  std::string api_key_env;
  std::string experiment = "eval";
  int64_t limit = 0;
  int batch_size = 8;
  int threads = 1;
  bool quiet = false;  // print only the run's id line (a caller prints the results)
};

// `keel eval run`: a task on a model, stored as an eval run (eval_run_command.cpp). The
// run's id goes to *run_id as soon as it exists. A run below the task's thresholds is
// stored and then kFailedPrecondition.
Status run_eval_task(CliContext& ctx, EvalRunOptions options, std::string* run_id);

// A new eval run of `task` on `model` in the experiment (made when missing), tagged with
// the task and the model version; the name is "<task> <model>".
Result<tracking::Run> start_eval_run(CliContext& ctx, tracking::TrackingService& tracking, const std::string& experiment,
                                     const std::string& task, const ResolvedModel& model,
                                     std::vector<tracking::KeyValue> extra_tags = {});

// Ends an eval run: stores each (path, text) under the run's artifacts, logs the
// metrics and tags, marks the run finished and, for a registered model version, points
// its keel.eval.<task> tag at the run (what `keel eval gate` and `compare` read).
Status finish_eval_run(CliContext& ctx, tracking::TrackingService& tracking, const tracking::Run& run,
                       const std::string& task, const ResolvedModel& model,
                       const std::vector<std::pair<std::string, std::string>>& files,
                       const std::vector<std::pair<std::string, double>>& metrics,
                       const std::vector<tracking::KeyValue>& tags);

}  // namespace keel::cli
