#include "keel/tracking/logged_models.h"

#include <algorithm>
#include <map>

#include "keel/tracking/run_filter.h"
#include "keel/util/id.h"

namespace keel::tracking {
namespace {

constexpr const char* kColumns =
    "id, experiment_id, name, source_run_id, status, model_type, artifact_uri, created_at, updated_at";

LoggedModel from_row(const store::DbRow& r) {
  LoggedModel m;
  m.id = r.get_text(0);
  m.experiment_id = r.get_text(1);
  m.name = r.get_text(2);
  m.source_run_id = r.get_text(3);
  m.status = r.get_text(4);
  m.model_type = r.get_text(5);
  m.artifact_uri = r.get_text(6);
  m.created_at = r.get_int(7);
  m.updated_at = r.get_int(8);
  return m;
}

Status validate_status(const std::string& status) {
  if (status == "LOGGED_MODEL_PENDING" || status == "LOGGED_MODEL_READY" || status == "LOGGED_MODEL_UPLOAD_FAILED") {
    return Status::Ok();
  }
  return invalid_argument("invalid logged model status '" + status +
                          "' (use LOGGED_MODEL_PENDING, LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED)");
}

Status upsert(store::SqlExecutor& sql, const std::string& table, const std::string& id, const std::vector<KeyValue>& kvs) {
  for (const auto& kv : kvs) {
    KEEL_RETURN_IF_ERROR(validate_key("tag", kv.key));
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO " + table + " (model_id, key, value) VALUES (?, ?, ?) ON CONFLICT "
                                  "(model_id, key) DO UPDATE SET value = excluded.value",
                                  {id, kv.key, kv.value})
                             .status());
  }
  return Status::Ok();
}

}  // namespace

Result<LoggedModel> LoggedModels::create(const std::string& experiment_id, const std::string& name,
                                         const std::string& source_run_id, const std::string& model_type,
                                         const std::vector<KeyValue>& params, const std::vector<KeyValue>& tags) {
  TrackingService tracking(db_);
  KEEL_ASSIGN_OR_RETURN(Experiment e, tracking.get_experiment(experiment_id));
  if (!source_run_id.empty()) KEEL_RETURN_IF_ERROR(tracking.get_run(source_run_id).status());
  LoggedModel m;
  std::string hex = new_id();
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  m.id = "m-" + hex;
  m.experiment_id = experiment_id;
  m.name = name.empty() ? "model" : name;
  m.source_run_id = source_run_id;
  m.model_type = model_type;
  m.artifact_uri = e.artifact_location + "/models/" + m.id + "/artifacts";
  m.created_at = m.updated_at = now_millis();
  KEEL_RETURN_IF_ERROR(db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(sql.exec(std::string("INSERT INTO logged_models (") + kColumns +
                                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  {m.id, m.experiment_id, m.name, m.source_run_id, m.status, m.model_type,
                                   m.artifact_uri, m.created_at, m.updated_at})
                             .status());
    KEEL_RETURN_IF_ERROR(upsert(sql, "logged_model_params", m.id, params));
    return upsert(sql, "logged_model_tags", m.id, tags);
  }));
  return get(m.id);
}

Result<LoggedModel> LoggedModels::get(const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query(std::string("SELECT ") + kColumns + " FROM logged_models WHERE id = ?", {id}));
  if (rows.empty()) return not_found("Logged model with ID '" + id + "' not found.");
  LoggedModel m = from_row(rows.rows[0]);
  KEEL_ASSIGN_OR_RETURN(store::DbRows params,
                        db_.query("SELECT key, value FROM logged_model_params WHERE model_id = ? ORDER BY key", {id}));
  for (const auto& r : params.rows) m.params.push_back({r.get_text(0), r.get_text(1)});
  KEEL_ASSIGN_OR_RETURN(store::DbRows tags,
                        db_.query("SELECT key, value FROM logged_model_tags WHERE model_id = ? ORDER BY key", {id}));
  for (const auto& r : tags.rows) m.tags.push_back({r.get_text(0), r.get_text(1)});
  return m;
}

Result<LoggedModel> LoggedModels::set_status(const std::string& id, const std::string& status) {
  KEEL_RETURN_IF_ERROR(validate_status(status));
  KEEL_ASSIGN_OR_RETURN(int64_t n, db_.exec("UPDATE logged_models SET status = ?, updated_at = ? WHERE id = ?",
                                            {status, now_millis(), id}));
  if (n == 0) return not_found("Logged model with ID '" + id + "' not found.");
  return get(id);
}

Status LoggedModels::set_tags(const std::string& id, const std::vector<KeyValue>& tags) {
  KEEL_RETURN_IF_ERROR(get(id).status());
  return db_.transaction([&](store::SqlExecutor& sql) { return upsert(sql, "logged_model_tags", id, tags); });
}

Status LoggedModels::delete_tag(const std::string& id, const std::string& key) {
  KEEL_RETURN_IF_ERROR(get(id).status());
  KEEL_ASSIGN_OR_RETURN(int64_t n, db_.exec("DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", {id, key}));
  if (n == 0) return not_found("logged model " + id + " has no tag '" + key + "'");
  return Status::Ok();
}

Status LoggedModels::log_params(const std::string& id, const std::vector<KeyValue>& params) {
  KEEL_RETURN_IF_ERROR(get(id).status());
  return db_.transaction([&](store::SqlExecutor& sql) { return upsert(sql, "logged_model_params", id, params); });
}

Result<std::vector<LoggedModel>> LoggedModels::search(const std::vector<std::string>& experiment_ids,
                                                      const std::string& filter, int64_t max_results,
                                                      const std::string& page_token, std::string* next_page_token) {
  static const FilterSchema schema{{"name", "source_run_id", "status", "model_id", "model_type", "creation_timestamp"},
                                   {"creation_timestamp"}};
  if (max_results <= 0 || max_results > 50000) return invalid_argument("max_results must be between 1 and 50000");
  KEEL_ASSIGN_OR_RETURN(ParsedSearch search, parse_search(schema, filter, {}, page_token));
  std::vector<LoggedModel> all;
  for (const auto& experiment_id : experiment_ids) {
    KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(std::string("SELECT ") + kColumns +
                                                            " FROM logged_models WHERE experiment_id = ?",
                                                        {experiment_id}));
    for (const auto& r : rows.rows) all.push_back(from_row(r));
  }
  auto field = [](const LoggedModel& m, FilterEntity entity, const std::string& key) -> std::optional<std::string> {
    if (entity != FilterEntity::kAttribute) return std::nullopt;
    if (key == "name") return m.name;
    if (key == "source_run_id") return m.source_run_id;
    if (key == "status") return m.status;
    if (key == "model_id") return m.id;
    if (key == "model_type") return m.model_type;
    if (key == "creation_timestamp") return std::to_string(m.created_at);
    return std::nullopt;
  };
  auto newest_first = [](const LoggedModel& a, const LoggedModel& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
  };
  std::vector<LoggedModel> page;
  for (auto& m : search_page(std::move(all), search, schema, field, newest_first, false, max_results, next_page_token)) {
    KEEL_ASSIGN_OR_RETURN(LoggedModel full, get(m.id));
    page.push_back(std::move(full));
  }
  return page;
}

}  // namespace keel::tracking
