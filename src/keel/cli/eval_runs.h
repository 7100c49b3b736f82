// Reading eval runs back (for `keel eval show`, `compare` and `gate`): the tags and
// parameters `keel eval run` writes, and the per-example rows of its examples.jsonl.
#pragma once

#include <string>
#include <vector>

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

}  // namespace keel::cli
