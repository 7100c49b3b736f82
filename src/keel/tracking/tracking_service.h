// Experiment tracking: experiments, runs, parameters, tags, metric histories and
// dataset inputs, in the metadata store (SQLite or PostgreSQL). Keel's REST API, the
// MLflow-compatible API and the CLI all call this one service, so a run logged through
// either API is the same object in both. Parameters are immutable once set: logging
// one again with another value is kInvalidArgument and changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/store/db.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::tracking {

// A run's state, with MLflow's names (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED).
enum class RunStatus { kRunning, kScheduled, kFinished, kFailed, kKilled };
std::string_view run_status_name(RunStatus status);
Result<RunStatus> parse_run_status(std::string_view name);

// Which objects a listing includes, by lifecycle stage.
enum class ViewType { kActiveOnly, kDeletedOnly, kAll };
Result<ViewType> parse_view_type(std::string_view name);  // ACTIVE_ONLY, DELETED_ONLY, ALL

struct KeyValue {
  std::string key;
  std::string value;
};

struct Experiment {
  std::string id;
  std::string name;
  std::string artifact_location;
  std::string lifecycle_stage = "active";  // "active" or "deleted"
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<KeyValue> tags;
};

struct Metric {
  std::string key;
  double value = 0;  // NaN and ±infinity are kept as such
  int64_t timestamp = 0;  // epoch ms
  int64_t step = 0;
};

struct DatasetInput {
  std::string name;
  std::string digest;
  std::string source_type;
  std::string source;
  std::string schema;
  std::string profile;
  std::vector<KeyValue> tags;  // of the input (for example mlflow.data.context = training)
};

struct Run {
  std::string id;
  std::string experiment_id;
  std::string name;
  std::string user_id;
  RunStatus status = RunStatus::kRunning;
  int64_t start_time = 0;
  std::optional<int64_t> end_time;
  std::string artifact_uri;
  std::string lifecycle_stage = "active";
  std::string parent_run_id;  // "" for a top-level run
  std::vector<KeyValue> params;       // by key
  std::vector<KeyValue> tags;         // by key
  std::vector<Metric> latest_metrics;  // one per key: highest step, then newest timestamp
  std::vector<DatasetInput> inputs;
};

struct RunPage {
  std::vector<Run> runs;
  std::string next_page_token;  // "" when there is no more
};

struct MetricPage {
  std::vector<Metric> metrics;
  std::string next_page_token;
};

struct SearchRunsRequest {
  std::vector<std::string> experiment_ids;
  std::string filter;  // MLflow's filter syntax: "metrics.m > 0.5 and params.p = 'x'"
  ViewType view = ViewType::kActiveOnly;
  int64_t max_results = 1000;
  std::vector<std::string> order_by;  // "metrics.m DESC", "attributes.start_time"
  std::string page_token;
};

// The tag MLflow clients set on a nested run; Keel keeps the parent in a column too.
inline constexpr const char* kParentRunTag = "mlflow.parentRunId";
inline constexpr const char* kRunNameTag = "mlflow.runName";
inline constexpr const char* kUserTag = "mlflow.user";
inline constexpr const char* kDefaultExperimentId = "0";

// Limits (MLflow's, so that a client gets the same answers from both servers).
inline constexpr size_t kMaxParamValueBytes = 6000;
inline constexpr size_t kMaxTagValueBytes = 8000;
inline constexpr size_t kMaxKeyBytes = 250;
inline constexpr size_t kMaxBatchMetrics = 1000;
inline constexpr size_t kMaxBatchParams = 100;
inline constexpr size_t kMaxBatchTags = 100;
inline constexpr int64_t kMaxSearchResults = 50000;

class TrackingService {
 public:
  explicit TrackingService(store::Db& db) : db_(db) {}

  // Experiments. artifact_location "" gives "mlflow-artifacts:/<id>".
  // actor names who acts, for the audit log (experiment and run lifecycle changes are
  // audited; metric, param and tag logging is not: the run itself is that record).
  Result<Experiment> create_experiment(const std::string& name, const std::string& artifact_location,
                                       const std::vector<KeyValue>& tags, const std::string& actor = "");
  Result<Experiment> get_experiment(const std::string& id);
  Result<Experiment> get_experiment_by_name(const std::string& name);
  Result<std::vector<Experiment>> list_experiments(ViewType view);
  // MLflow's experiment search: filter on name, creation_time, last_update_time and
  // tags; order_by those attributes; offset page tokens.
  Result<std::vector<Experiment>> search_experiments(ViewType view, const std::string& filter,
                                                    const std::vector<std::string>& order_by, int64_t max_results,
                                                    const std::string& page_token, std::string* next_page_token);
  Status rename_experiment(const std::string& id, const std::string& new_name, const std::string& actor = "");
  Status set_experiment_lifecycle(const std::string& id, bool deleted, const std::string& actor = "");
  Status set_experiment_tag(const std::string& id, const KeyValue& tag);

  // Runs. start_time 0 means now. Tags may carry mlflow.runName / mlflow.parentRunId.
  Result<Run> create_run(const std::string& experiment_id, const std::string& user_id, int64_t start_time,
                         const std::string& name, const std::vector<KeyValue>& tags);
  Result<Run> get_run(const std::string& run_id);
  Result<Run> update_run(const std::string& run_id, std::optional<RunStatus> status, std::optional<int64_t> end_time,
                         std::optional<std::string> name);
  Status set_run_lifecycle(const std::string& run_id, bool deleted, const std::string& actor = "");
  // Logs metrics, params and tags atomically: all or nothing.
  Status log_batch(const std::string& run_id, const std::vector<Metric>& metrics, const std::vector<KeyValue>& params,
                   const std::vector<KeyValue>& tags);
  Status delete_tag(const std::string& run_id, const std::string& key);
  Status log_inputs(const std::string& run_id, const std::vector<DatasetInput>& inputs);

  Result<RunPage> search_runs(const SearchRunsRequest& request);
  // One metric's history in (step, timestamp) order; page_token / max_results page it.
  Result<MetricPage> metric_history(const std::string& run_id, const std::string& key, int64_t max_results,
                                    const std::string& page_token);
  // The history thinned to at most max_points points for charts: the first and the
  // last point and, in between, the point of each step bucket with the extreme value.
  Result<std::vector<Metric>> metric_history_downsampled(const std::string& run_id, const std::string& key,
                                                         size_t max_points);

 private:
  Result<Run> load_run(store::SqlExecutor& sql, const std::string& run_id);
  Status require_active_run(store::SqlExecutor& sql, const std::string& run_id);
  Result<std::vector<Run>> load_runs(const std::vector<std::string>& experiment_ids, ViewType view);

  store::Db& db_;
};

// Keel's own JSON for its REST API and `--json` output: params and tags as objects,
// metrics by key; NaN and infinities as the strings "NaN", "Infinity", "-Infinity".
Json to_json(const Experiment& e);
Json to_json(const Run& run);
Json to_json(const Metric& m);
Json number_json(double value);
// Side by side: {"runs": [{id, name, status}...], "params": {key: [value or null per run]},
// "metrics": {key: [latest value or null per run]}, "differing_params": [keys whose values differ]}.
Json compare_json(const std::vector<Run>& runs);

// Validates a metric/param/tag key the way MLflow does: non-empty, at most 250 bytes,
// no "..", no leading "/", and only letters, digits, '_', '-', '.', ' ', '/' and ':'.
Status validate_key(std::string_view kind, const std::string& key);

}  // namespace keel::tracking
