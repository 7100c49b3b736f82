// MLflow 3's logged models: a model object of an experiment (optionally produced by a
// run) with params, tags, a status and its own artifact folder
// ("mlflow-artifacts:/<experiment>/models/<id>/artifacts"). Registry versions may point
// at one (source "models:/<id>").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/store/db.h"
#include "keel/tracking/tracking_service.h"

namespace keel::tracking {

struct LoggedModel {
  std::string id;  // "m-" + 32 hex digits
  std::string experiment_id;
  std::string name;
  std::string source_run_id;
  std::string status = "LOGGED_MODEL_PENDING";  // LOGGED_MODEL_PENDING | LOGGED_MODEL_READY | LOGGED_MODEL_UPLOAD_FAILED
  std::string model_type;
  std::string artifact_uri;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<KeyValue> params;
  std::vector<KeyValue> tags;
};

class LoggedModels {
 public:
  explicit LoggedModels(store::Db& db) : db_(db) {}

  Result<LoggedModel> create(const std::string& experiment_id, const std::string& name, const std::string& source_run_id,
                             const std::string& model_type, const std::vector<KeyValue>& params,
                             const std::vector<KeyValue>& tags);
  Result<LoggedModel> get(const std::string& id);
  Result<LoggedModel> set_status(const std::string& id, const std::string& status);
  Status set_tags(const std::string& id, const std::vector<KeyValue>& tags);
  Status delete_tag(const std::string& id, const std::string& key);
  Status log_params(const std::string& id, const std::vector<KeyValue>& params);
  // Newest first; filter supports name, source_run_id and status comparisons.
  Result<std::vector<LoggedModel>> search(const std::vector<std::string>& experiment_ids, const std::string& filter,
                                          int64_t max_results, const std::string& page_token,
                                          std::string* next_page_token);

 private:
  store::Db& db_;
};

}  // namespace keel::tracking
