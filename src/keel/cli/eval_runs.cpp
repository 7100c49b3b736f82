#include "keel/cli/eval_runs.h"

#include "keel/tracking/artifact_files.h"

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

}  // namespace keel::cli
