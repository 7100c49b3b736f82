#include "keel/tracking/tracking_service.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

#include "keel/store/audit_log.h"
#include "keel/tracking/run_filter.h"
#include "keel/util/id.h"
#include "keel/util/json.h"

namespace keel::tracking {
namespace {

using store::DbRow;
using store::DbRows;
using store::DbValue;
using store::SqlExecutor;

constexpr const char* kRunColumns =
    "id, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage, parent_run_id";

std::string hex_id() {
  std::string id = new_id();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return id;
}

// A readable default run name ("bright-owl-417"), derived from the run id.
std::string default_run_name(const std::string& run_id) {
  static const char* kAdjectives[] = {"amber", "bold", "brave", "bright", "calm", "clever", "crisp", "eager",
                                      "gentle", "keen", "lively", "lucid", "merry", "nimble", "quiet", "rapid",
                                      "sharp", "steady", "swift", "vivid"};
  static const char* kNouns[] = {"owl", "fox", "heron", "lynx", "otter", "hawk", "wren", "finch", "bison", "crane",
                                 "gecko", "ibis", "koala", "lark", "mole", "newt", "panda", "robin", "seal", "stork"};
  uint64_t h = 1469598103934665603ull;
  for (char c : run_id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return std::string(kAdjectives[h % 20]) + "-" + kNouns[(h / 20) % 20] + "-" + std::to_string((h / 400) % 1000);
}

// Inserts rows of `columns` values each with multi-row VALUES statements (few round
// trips on PostgreSQL, few statements on SQLite). `suffix` follows each statement.
Status insert_rows(SqlExecutor& sql, const std::string& head, size_t columns, const std::vector<DbValue>& flat,
                   const std::string& suffix = "") {
  constexpr size_t kRowsPerStatement = 200;
  size_t rows = flat.size() / columns;
  std::string row = store::sql_placeholders(columns);
  for (size_t start = 0; start < rows; start += kRowsPerStatement) {
    size_t n = std::min(kRowsPerStatement, rows - start);
    std::string text = head + " VALUES ";
    for (size_t r = 0; r < n; ++r) {
      if (r > 0) text += ", ";
      text += row;
    }
    text += suffix;
    std::vector<DbValue> params(flat.begin() + static_cast<std::ptrdiff_t>(start * columns),
                                flat.begin() + static_cast<std::ptrdiff_t>((start + n) * columns));
    KEEL_RETURN_IF_ERROR(sql.exec(text, params).status());
  }
  return Status::Ok();
}

Metric metric_from_row(const DbRow& r, size_t first) {
  Metric m;
  m.key = r.get_text(first);
  m.value = r.get_int(first + 2) != 0 ? std::nan("") : r.get_double(first + 1);
  m.timestamp = r.get_int(first + 3);
  m.step = r.get_int(first + 4);
  return m;
}

// MLflow's rule for the value a run shows: higher step wins, then newer timestamp,
// then the larger value.
bool newer_than(const Metric& a, const Metric& b) {
  if (a.step != b.step) return a.step > b.step;
  if (a.timestamp != b.timestamp) return a.timestamp > b.timestamp;
  if (std::isnan(b.value)) return false;
  return std::isnan(a.value) || a.value > b.value;
}

std::vector<DbValue> metric_values(const std::string& run_id, const Metric& m) {
  bool nan = std::isnan(m.value);
  return {run_id, m.key, m.step, m.timestamp, nan ? DbValue(nullptr) : DbValue(m.value), int64_t{nan ? 1 : 0}};
}

Experiment experiment_from_row(const DbRow& r) {
  Experiment e;
  e.id = r.get_text(0);
  e.name = r.get_text(1);
  e.artifact_location = r.get_text(2);
  e.lifecycle_stage = r.get_text(3);
  e.created_at = r.get_int(4);
  e.updated_at = r.get_int(5);
  return e;
}

Run run_from_row(const DbRow& r) {
  Run run;
  run.id = r.get_text(0);
  run.experiment_id = r.get_text(1);
  run.name = r.get_text(2);
  run.user_id = r.get_text(3);
  run.status = parse_run_status(r.get_text(4)).ok() ? *parse_run_status(r.get_text(4)) : RunStatus::kRunning;
  run.start_time = r.get_int(5);
  if (!r.is_null(6)) run.end_time = r.get_int(6);
  run.artifact_uri = r.get_text(7);
  run.lifecycle_stage = r.get_text(8);
  run.parent_run_id = r.get_text(9);
  return run;
}

std::string lifecycle_condition(ViewType view, const std::string& column) {
  switch (view) {
    case ViewType::kActiveOnly: return " AND " + column + " = 'active'";
    case ViewType::kDeletedOnly: return " AND " + column + " = 'deleted'";
    case ViewType::kAll: return "";
  }
  return "";
}

Status validate_tags(const std::vector<KeyValue>& tags) {
  for (const auto& t : tags) {
    KEEL_RETURN_IF_ERROR(validate_key("tag", t.key));
    if (t.value.size() > kMaxTagValueBytes) {
      return invalid_argument("tag '" + t.key + "' has a value of " + std::to_string(t.value.size()) +
                              " bytes, over the limit of " + std::to_string(kMaxTagValueBytes));
    }
  }
  return Status::Ok();
}

Status upsert_tags(SqlExecutor& sql, const std::string& table, const std::string& owner_column,
                   const std::string& owner, const std::vector<KeyValue>& tags) {
  if (tags.empty()) return Status::Ok();
  // The last value of a key repeated within one batch wins.
  std::map<std::string, std::string> unique;
  for (const auto& t : tags) unique[t.key] = t.value;
  std::vector<DbValue> flat;
  for (const auto& [k, v] : unique) {
    flat.emplace_back(owner);
    flat.emplace_back(k);
    flat.emplace_back(v);
  }
  return insert_rows(sql, "INSERT INTO " + table + " (" + owner_column + ", key, value)", 3, flat,
                     " ON CONFLICT (" + owner_column + ", key) DO UPDATE SET value = excluded.value");
}

}  // namespace

std::string_view run_status_name(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning: return "RUNNING";
    case RunStatus::kScheduled: return "SCHEDULED";
    case RunStatus::kFinished: return "FINISHED";
    case RunStatus::kFailed: return "FAILED";
    case RunStatus::kKilled: return "KILLED";
  }
  return "RUNNING";
}

Result<RunStatus> parse_run_status(std::string_view name) {
  for (RunStatus s : {RunStatus::kRunning, RunStatus::kScheduled, RunStatus::kFinished, RunStatus::kFailed,
                      RunStatus::kKilled}) {
    if (run_status_name(s) == name) return s;
  }
  return invalid_argument("invalid run status '" + std::string(name) +
                          "' (use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED)");
}

Result<ViewType> parse_view_type(std::string_view name) {
  if (name.empty() || name == "ACTIVE_ONLY" || name == "1") return ViewType::kActiveOnly;
  if (name == "DELETED_ONLY" || name == "2") return ViewType::kDeletedOnly;
  if (name == "ALL" || name == "3") return ViewType::kAll;
  return invalid_argument("invalid view type '" + std::string(name) + "' (use ACTIVE_ONLY, DELETED_ONLY or ALL)");
}

Status validate_key(std::string_view kind, const std::string& key) {
  if (key.empty()) return invalid_argument(std::string(kind) + " key must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return invalid_argument(std::string(kind) + " key '" + key.substr(0, 40) + "...' is longer than " +
                            std::to_string(kMaxKeyBytes) + " bytes");
  }
  for (char c : key) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ' ' ||
              c == '/' || c == ':';
    if (!ok) {
      return invalid_argument("invalid " + std::string(kind) + " key '" + key +
                              "': names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
                              "spaces ( ), colons (:) and slashes (/)");
    }
  }
  if (key.front() == '/' || key.find("..") != std::string::npos || key == ".") {
    return invalid_argument("invalid " + std::string(kind) + " key '" + key +
                            "': it must be a relative path without '..'");
  }
  return Status::Ok();
}

// ---- experiments ----

Result<Experiment> TrackingService::create_experiment(const std::string& name, const std::string& artifact_location,
                                                      const std::vector<KeyValue>& tags, const std::string& actor) {
  if (name.empty()) return invalid_argument("experiment name must not be empty");
  if (name.size() > 500) return invalid_argument("experiment name is longer than 500 characters");
  KEEL_RETURN_IF_ERROR(validate_tags(tags));
  Experiment e;
  auto create = [&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows same, sql.query("SELECT id FROM experiments WHERE name = ?", {name}));
    if (!same.empty()) return already_exists("experiment '" + name + "' already exists");
    // Experiment ids are small numbers, as in MLflow ("0" is the default experiment).
    KEEL_ASSIGN_OR_RETURN(DbRows ids, sql.query("SELECT id FROM experiments"));
    int64_t next = 1;
    for (const auto& r : ids.rows) {
      const std::string id = r.get_text(0);
      if (!id.empty() && id.size() < 18 && id.find_first_not_of("0123456789") == std::string::npos) {
        next = std::max<int64_t>(next, std::stoll(id) + 1);
      }
    }
    e.id = std::to_string(next);
    e.name = name;
    e.artifact_location = artifact_location.empty() ? "mlflow-artifacts:/" + e.id : artifact_location;
    e.created_at = e.updated_at = now_millis();
    e.tags = tags;
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, created_at, "
                                  "updated_at) VALUES (?, ?, ?, 'active', ?, ?)",
                                  {e.id, e.name, e.artifact_location, e.created_at, e.updated_at})
                             .status());
    KEEL_RETURN_IF_ERROR(upsert_tags(sql, "experiment_tags", "experiment_id", e.id, tags));
    return store::record_audit_event(sql, actor, "experiment.create", "experiment:" + e.id, Json{{"name", name}});
  };
  Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {  // two creators can pick the same id on PostgreSQL
    st = db_.transaction(create);
    if (st.code() != ErrorCode::kAlreadyExists || st.message().find("already exists") != std::string::npos) break;
  }
  if (!st.ok()) {
    if (st.code() == ErrorCode::kAlreadyExists) return already_exists("experiment '" + name + "' already exists");
    return st;
  }
  return e;
}

Result<Experiment> TrackingService::get_experiment(const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT id, name, artifact_location, lifecycle_stage, created_at, "
                                               "updated_at FROM experiments WHERE id = ?",
                                               {id}));
  if (rows.empty()) return not_found("no experiment with id '" + id + "'");
  Experiment e = experiment_from_row(rows.rows[0]);
  KEEL_ASSIGN_OR_RETURN(DbRows tags,
                        db_.query("SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key", {id}));
  for (const auto& r : tags.rows) e.tags.push_back({r.get_text(0), r.get_text(1)});
  return e;
}

Result<Experiment> TrackingService::get_experiment_by_name(const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT id FROM experiments WHERE name = ?", {name}));
  if (rows.empty()) return not_found("no experiment named '" + name + "'");
  return get_experiment(rows.rows[0].get_text(0));
}

Result<std::vector<Experiment>> TrackingService::list_experiments(ViewType view) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT id, name, artifact_location, lifecycle_stage, created_at, "
                                               "updated_at FROM experiments WHERE 1 = 1" +
                                               lifecycle_condition(view, "lifecycle_stage") +
                                               " ORDER BY created_at DESC, name"));
  KEEL_ASSIGN_OR_RETURN(DbRows tags, db_.query("SELECT experiment_id, key, value FROM experiment_tags ORDER BY key"));
  std::unordered_map<std::string, std::vector<KeyValue>> by_id;
  for (const auto& r : tags.rows) by_id[r.get_text(0)].push_back({r.get_text(1), r.get_text(2)});
  std::vector<Experiment> out;
  for (const auto& r : rows.rows) {
    Experiment e = experiment_from_row(r);
    e.tags = by_id[e.id];
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<Experiment>> TrackingService::search_experiments(ViewType view, const std::string& filter,
                                                                   const std::vector<std::string>& order_by,
                                                                   int64_t max_results, const std::string& page_token,
                                                                   std::string* next_page_token) {
  static const FilterSchema schema{{"name", "experiment_id", "creation_time", "last_update_time"},
                                   {"creation_time", "last_update_time"}};
  if (max_results <= 0 || max_results > kMaxSearchResults) {
    return invalid_argument("max_results must be between 1 and " + std::to_string(kMaxSearchResults));
  }
  KEEL_ASSIGN_OR_RETURN(ParsedSearch search, parse_search(schema, filter, order_by, page_token));
  KEEL_ASSIGN_OR_RETURN(std::vector<Experiment> all, list_experiments(view));
  auto value_of = [](const Experiment& e, FilterEntity entity, const std::string& key) -> std::optional<std::string> {
    if (entity == FilterEntity::kAttribute) {
      if (key == "name") return e.name;
      if (key == "experiment_id") return e.id;
      if (key == "creation_time") return std::to_string(e.created_at);
      if (key == "last_update_time") return std::to_string(e.updated_at);
    }
    if (entity == FilterEntity::kTag) {
      for (const auto& t : e.tags)
        if (t.key == key) return t.value;
    }
    return std::nullopt;
  };
  auto newest_first = [](const Experiment& a, const Experiment& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id < b.id;
  };
  std::string next;
  std::vector<Experiment> page =
      search_page(std::move(all), search, schema, value_of, newest_first, false, max_results, &next);
  if (next_page_token) *next_page_token = next;
  return page;
}

Status TrackingService::rename_experiment(const std::string& id, const std::string& new_name, const std::string& actor) {
  if (new_name.empty()) return invalid_argument("experiment name must not be empty");
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows same, sql.query("SELECT id FROM experiments WHERE name = ? AND id <> ?", {new_name, id}));
    if (!same.empty()) return already_exists("experiment '" + new_name + "' already exists");
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("UPDATE experiments SET name = ?, updated_at = ? WHERE id = ?",
                                              {new_name, now_millis(), id}));
    if (n == 0) return not_found("no experiment with id '" + id + "'");
    return store::record_audit_event(sql, actor, "experiment.rename", "experiment:" + id, Json{{"name", new_name}});
  });
}

Status TrackingService::set_experiment_lifecycle(const std::string& id, bool deleted, const std::string& actor) {
  if (id == "0" && deleted) return invalid_argument("the default experiment (id 0) cannot be deleted");
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("UPDATE experiments SET lifecycle_stage = ?, updated_at = ? WHERE id = ?",
                                              {std::string(deleted ? "deleted" : "active"), now_millis(), id}));
    if (n == 0) return not_found("no experiment with id '" + id + "'");
    return store::record_audit_event(sql, actor, deleted ? "experiment.delete" : "experiment.restore", "experiment:" + id, Json::object());
  });
}

Status TrackingService::set_experiment_tag(const std::string& id, const KeyValue& tag) {
  KEEL_RETURN_IF_ERROR(validate_tags({tag}));
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows e, sql.query("SELECT lifecycle_stage FROM experiments WHERE id = ?", {id}));
    if (e.empty()) return not_found("no experiment with id '" + id + "'");
    if (e.rows[0].get_text(0) != "active") return failed_precondition("experiment '" + id + "' is deleted");
    return upsert_tags(sql, "experiment_tags", "experiment_id", id, {tag});
  });
}

// ---- runs ----

Result<Run> TrackingService::create_run(const std::string& experiment_id, const std::string& user_id,
                                        int64_t start_time, const std::string& name,
                                        const std::vector<KeyValue>& tags) {
  KEEL_RETURN_IF_ERROR(validate_tags(tags));
  Run run;
  KEEL_RETURN_IF_ERROR(db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows e, sql.query("SELECT artifact_location, lifecycle_stage FROM experiments WHERE id = ?",
                                              {experiment_id}));
    if (e.empty()) return not_found("no experiment with id '" + experiment_id + "'");
    if (e.rows[0].get_text(1) != "active") {
      return failed_precondition("experiment '" + experiment_id + "' is deleted: restore it before adding runs");
    }
    run.id = hex_id();
    run.experiment_id = experiment_id;
    run.user_id = user_id;
    run.start_time = start_time > 0 ? start_time : now_millis();
    run.artifact_uri = e.rows[0].get_text(0) + "/" + run.id + "/artifacts";
    std::vector<KeyValue> all_tags = tags;
    for (const auto& t : tags) {
      if (t.key == kRunNameTag && name.empty()) run.name = t.value;
      if (t.key == kParentRunTag) run.parent_run_id = t.value;
      if (t.key == kUserTag && run.user_id.empty()) run.user_id = t.value;
    }
    if (!name.empty()) run.name = name;
    if (run.name.empty()) run.name = default_run_name(run.id);
    all_tags.erase(std::remove_if(all_tags.begin(), all_tags.end(), [](const KeyValue& t) { return t.key == kRunNameTag; }),
                   all_tags.end());
    all_tags.push_back({kRunNameTag, run.name});
    if (!run.parent_run_id.empty()) {
      KEEL_ASSIGN_OR_RETURN(DbRows parent, sql.query("SELECT id FROM runs WHERE id = ?", {run.parent_run_id}));
      if (parent.empty()) return not_found("parent run '" + run.parent_run_id + "' does not exist");
    }
    KEEL_RETURN_IF_ERROR(sql.exec(std::string("INSERT INTO runs (") + kRunColumns + ") VALUES " + store::sql_placeholders(10),
                                  {run.id, run.experiment_id, run.name, run.user_id,
                                   std::string(run_status_name(RunStatus::kRunning)), run.start_time, nullptr,
                                   run.artifact_uri, std::string("active"),
                                   run.parent_run_id.empty() ? DbValue(nullptr) : DbValue(run.parent_run_id)})
                             .status());
    KEEL_RETURN_IF_ERROR(upsert_tags(sql, "run_tags", "run_id", run.id, all_tags));
    return store::record_audit_event(sql, run.user_id, "run.create", "run:" + run.id,
                 Json{{"experiment_id", experiment_id}, {"name", run.name}});
  }));
  return get_run(run.id);
}

Result<Run> TrackingService::load_run(SqlExecutor& sql, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, sql.query(std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?", {run_id}));
  if (rows.empty()) return not_found("run '" + run_id + "' not found");
  Run run = run_from_row(rows.rows[0]);
  KEEL_ASSIGN_OR_RETURN(DbRows params, sql.query("SELECT key, value FROM run_params WHERE run_id = ? ORDER BY key", {run_id}));
  for (const auto& r : params.rows) run.params.push_back({r.get_text(0), r.get_text(1)});
  KEEL_ASSIGN_OR_RETURN(DbRows tags, sql.query("SELECT key, value FROM run_tags WHERE run_id = ? ORDER BY key", {run_id}));
  for (const auto& r : tags.rows) run.tags.push_back({r.get_text(0), r.get_text(1)});
  KEEL_ASSIGN_OR_RETURN(DbRows metrics, sql.query("SELECT key, value, is_nan, timestamp, step FROM run_latest_metrics "
                                                  "WHERE run_id = ? ORDER BY key",
                                                  {run_id}));
  for (const auto& r : metrics.rows) run.latest_metrics.push_back(metric_from_row(r, 0));
  KEEL_ASSIGN_OR_RETURN(DbRows inputs,
                        sql.query("SELECT d.name, d.digest, d.source_type, d.source, d.schema_json, d.profile, i.tags "
                                  "FROM run_inputs i JOIN datasets d ON d.id = i.dataset_id WHERE i.run_id = ? "
                                  "ORDER BY d.name, d.digest",
                                  {run_id}));
  for (const auto& r : inputs.rows) {
    DatasetInput d{r.get_text(0), r.get_text(1), r.get_text(2), r.get_text(3), r.get_text(4), r.get_text(5), {}};
    auto tags_json = parse_json(r.get_text(6));
    if (tags_json.ok() && tags_json->is_array()) {
      for (const auto& t : *tags_json) d.tags.push_back({t.value("key", ""), t.value("value", "")});
    }
    run.inputs.push_back(std::move(d));
  }
  return run;
}

Result<Run> TrackingService::get_run(const std::string& run_id) { return load_run(db_, run_id); }

Status TrackingService::require_active_run(SqlExecutor& sql, const std::string& run_id) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, sql.query("SELECT lifecycle_stage FROM runs WHERE id = ?", {run_id}));
  if (rows.empty()) return not_found("run '" + run_id + "' not found");
  if (rows.rows[0].get_text(0) != "active") {
    return failed_precondition("the run " + run_id + " must be in the 'active' state; it is deleted");
  }
  return Status::Ok();
}

Result<Run> TrackingService::update_run(const std::string& run_id, std::optional<RunStatus> status,
                                        std::optional<int64_t> end_time, std::optional<std::string> name) {
  KEEL_RETURN_IF_ERROR(db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(require_active_run(sql, run_id));
    if (status) {
      KEEL_RETURN_IF_ERROR(
          sql.exec("UPDATE runs SET status = ? WHERE id = ?", {std::string(run_status_name(*status)), run_id}).status());
    }
    if (end_time) KEEL_RETURN_IF_ERROR(sql.exec("UPDATE runs SET end_time = ? WHERE id = ?", {*end_time, run_id}).status());
    if (name && !name->empty()) {
      KEEL_RETURN_IF_ERROR(sql.exec("UPDATE runs SET name = ? WHERE id = ?", {*name, run_id}).status());
      KEEL_RETURN_IF_ERROR(upsert_tags(sql, "run_tags", "run_id", run_id, {{kRunNameTag, *name}}));
    }
    return Status::Ok();
  }));
  return get_run(run_id);
}

Status TrackingService::set_run_lifecycle(const std::string& run_id, bool deleted, const std::string& actor) {
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("UPDATE runs SET lifecycle_stage = ? WHERE id = ?",
                                              {std::string(deleted ? "deleted" : "active"), run_id}));
    if (n == 0) return not_found("run '" + run_id + "' not found");
    return store::record_audit_event(sql, actor, deleted ? "run.delete" : "run.restore", "run:" + run_id, Json::object());
  });
}

Status TrackingService::log_batch(const std::string& run_id, const std::vector<Metric>& metrics,
                                  const std::vector<KeyValue>& params, const std::vector<KeyValue>& tags) {
  if (metrics.size() > kMaxBatchMetrics || params.size() > kMaxBatchParams || tags.size() > kMaxBatchTags) {
    return invalid_argument("a batch may hold at most " + std::to_string(kMaxBatchMetrics) + " metrics, " +
                            std::to_string(kMaxBatchParams) + " params and " + std::to_string(kMaxBatchTags) +
                            " tags; got " + std::to_string(metrics.size()) + ", " + std::to_string(params.size()) +
                            " and " + std::to_string(tags.size()));
  }
  for (const auto& m : metrics) KEEL_RETURN_IF_ERROR(validate_key("metric", m.key));
  std::map<std::string, std::string> new_params;
  for (const auto& p : params) {
    KEEL_RETURN_IF_ERROR(validate_key("param", p.key));
    if (p.value.size() > kMaxParamValueBytes) {
      return invalid_argument("param '" + p.key + "' has a value of " + std::to_string(p.value.size()) +
                              " bytes, over the limit of " + std::to_string(kMaxParamValueBytes));
    }
    auto [it, inserted] = new_params.emplace(p.key, p.value);
    if (!inserted && it->second != p.value) {
      return invalid_argument("param '" + p.key + "' appears twice in one batch with different values");
    }
  }
  KEEL_RETURN_IF_ERROR(validate_tags(tags));

  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(require_active_run(sql, run_id));
    if (!new_params.empty()) {
      KEEL_ASSIGN_OR_RETURN(DbRows existing, sql.query("SELECT key, value FROM run_params WHERE run_id = ?", {run_id}));
      for (const auto& r : existing.rows) {
        auto it = new_params.find(r.get_text(0));
        if (it == new_params.end()) continue;
        if (it->second != r.get_text(1)) {
          return invalid_argument("Changing param values is not allowed. Param with key='" + it->first +
                                  "' was already logged with value='" + r.get_text(1) + "' for run ID='" + run_id +
                                  "'. Attempted logging new value '" + it->second + "'.");
        }
        new_params.erase(it);  // same value again: nothing to do
      }
      std::vector<DbValue> flat;
      for (const auto& [k, v] : new_params) {
        flat.emplace_back(run_id);
        flat.emplace_back(k);
        flat.emplace_back(v);
      }
      if (!flat.empty()) KEEL_RETURN_IF_ERROR(insert_rows(sql, "INSERT INTO run_params (run_id, key, value)", 3, flat));
    }
    if (!tags.empty()) {
      KEEL_RETURN_IF_ERROR(upsert_tags(sql, "run_tags", "run_id", run_id, tags));
      for (const auto& t : tags) {
        if (t.key == kRunNameTag) KEEL_RETURN_IF_ERROR(sql.exec("UPDATE runs SET name = ? WHERE id = ?", {t.value, run_id}).status());
      }
    }
    if (!metrics.empty()) {
      std::vector<DbValue> flat;
      flat.reserve(metrics.size() * 6);
      std::map<std::string, Metric> latest;
      for (const auto& m : metrics) {
        auto values = metric_values(run_id, m);
        flat.insert(flat.end(), values.begin(), values.end());
        auto it = latest.find(m.key);
        if (it == latest.end() || newer_than(m, it->second)) latest[m.key] = m;
      }
      KEEL_RETURN_IF_ERROR(
          insert_rows(sql, "INSERT INTO run_metrics (run_id, key, step, timestamp, value, is_nan)", 6, flat));
      KEEL_ASSIGN_OR_RETURN(DbRows current, sql.query("SELECT key, value, is_nan, timestamp, step FROM run_latest_metrics "
                                                      "WHERE run_id = ?",
                                                      {run_id}));
      for (const auto& r : current.rows) {
        Metric old = metric_from_row(r, 0);
        auto it = latest.find(old.key);
        if (it != latest.end() && !newer_than(it->second, old)) latest.erase(it);
      }
      std::vector<DbValue> upserts;
      for (const auto& [key, m] : latest) {
        auto values = metric_values(run_id, m);
        upserts.insert(upserts.end(), values.begin(), values.end());
      }
      if (!upserts.empty()) {
        KEEL_RETURN_IF_ERROR(insert_rows(sql, "INSERT INTO run_latest_metrics (run_id, key, step, timestamp, value, is_nan)",
                                         6, upserts,
                                         " ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, timestamp = "
                                         "excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan"));
      }
    }
    return Status::Ok();
  });
}

Status TrackingService::delete_tag(const std::string& run_id, const std::string& key) {
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(require_active_run(sql, run_id));
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("DELETE FROM run_tags WHERE run_id = ? AND key = ?", {run_id, key}));
    if (n == 0) return not_found("no tag with key '" + key + "' on run " + run_id);
    return Status::Ok();
  });
}

Status TrackingService::log_inputs(const std::string& run_id, const std::vector<DatasetInput>& inputs) {
  for (const auto& d : inputs) {
    if (d.name.empty() || d.digest.empty()) return invalid_argument("a dataset input needs a name and a digest");
    KEEL_RETURN_IF_ERROR(validate_tags(d.tags));
  }
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(require_active_run(sql, run_id));
    KEEL_ASSIGN_OR_RETURN(DbRows run, sql.query("SELECT experiment_id FROM runs WHERE id = ?", {run_id}));
    std::string experiment_id = run.rows[0].get_text(0);
    for (const auto& d : inputs) {
      KEEL_ASSIGN_OR_RETURN(DbRows found, sql.query("SELECT id FROM datasets WHERE experiment_id = ? AND name = ? AND "
                                                    "digest = ?",
                                                    {experiment_id, d.name, d.digest}));
      std::string dataset_id;
      if (found.empty()) {
        dataset_id = hex_id();
        KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO datasets (id, experiment_id, name, digest, source_type, source, "
                                      "schema_json, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                      {dataset_id, experiment_id, d.name, d.digest, d.source_type, d.source, d.schema,
                                       d.profile})
                                 .status());
      } else {
        dataset_id = found.rows[0].get_text(0);
      }
      Json tags = Json::array();
      for (const auto& t : d.tags) tags.push_back({{"key", t.key}, {"value", t.value}});
      KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO run_inputs (run_id, dataset_id, tags) VALUES (?, ?, ?) "
                                    "ON CONFLICT (run_id, dataset_id) DO UPDATE SET tags = excluded.tags",
                                    {run_id, dataset_id, dump_json(tags)})
                               .status());
    }
    return Status::Ok();
  });
}

Result<std::vector<Run>> TrackingService::load_runs(const std::vector<std::string>& experiment_ids, ViewType view) {
  std::vector<DbValue> ids(experiment_ids.begin(), experiment_ids.end());
  std::string in = store::sql_placeholders(ids.size());
  std::string runs_of = "SELECT id FROM runs WHERE experiment_id IN " + in + lifecycle_condition(view, "lifecycle_stage");
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query(std::string("SELECT ") + kRunColumns + " FROM runs WHERE experiment_id IN " +
                                                   in + lifecycle_condition(view, "lifecycle_stage"),
                                               ids));
  std::vector<Run> runs;
  std::unordered_map<std::string, size_t> index;
  for (const auto& r : rows.rows) {
    index[r.get_text(0)] = runs.size();
    runs.push_back(run_from_row(r));
  }
  if (runs.empty()) return runs;
  KEEL_ASSIGN_OR_RETURN(DbRows params, db_.query("SELECT run_id, key, value FROM run_params WHERE run_id IN (" + runs_of +
                                                     ") ORDER BY key",
                                                 ids));
  for (const auto& r : params.rows) runs[index.at(r.get_text(0))].params.push_back({r.get_text(1), r.get_text(2)});
  KEEL_ASSIGN_OR_RETURN(DbRows tags, db_.query("SELECT run_id, key, value FROM run_tags WHERE run_id IN (" + runs_of +
                                                   ") ORDER BY key",
                                               ids));
  for (const auto& r : tags.rows) runs[index.at(r.get_text(0))].tags.push_back({r.get_text(1), r.get_text(2)});
  KEEL_ASSIGN_OR_RETURN(DbRows metrics, db_.query("SELECT run_id, key, value, is_nan, timestamp, step FROM "
                                                  "run_latest_metrics WHERE run_id IN (" +
                                                      runs_of + ") ORDER BY key",
                                                  ids));
  for (const auto& r : metrics.rows) runs[index.at(r.get_text(0))].latest_metrics.push_back(metric_from_row(r, 1));
  KEEL_ASSIGN_OR_RETURN(DbRows inputs,
                        db_.query("SELECT i.run_id, d.name, d.digest, d.source_type, d.source, d.schema_json, "
                                  "d.profile, i.tags FROM run_inputs i JOIN datasets d ON d.id = i.dataset_id "
                                  "WHERE i.run_id IN (" +
                                      runs_of + ") ORDER BY d.name, d.digest",
                                  ids));
  for (const auto& r : inputs.rows) {
    DatasetInput d{r.get_text(1), r.get_text(2), r.get_text(3), r.get_text(4), r.get_text(5), r.get_text(6), {}};
    auto tags_json = parse_json(r.get_text(7));
    if (tags_json.ok() && tags_json->is_array()) {
      for (const auto& t : *tags_json) d.tags.push_back({t.value("key", ""), t.value("value", "")});
    }
    runs[index.at(r.get_text(0))].inputs.push_back(std::move(d));
  }
  return runs;
}

Result<RunPage> TrackingService::search_runs(const SearchRunsRequest& request) {
  if (request.max_results <= 0 || request.max_results > kMaxSearchResults) {
    return invalid_argument("max_results must be between 1 and " + std::to_string(kMaxSearchResults) + ", got " +
                            std::to_string(request.max_results));
  }
  KEEL_ASSIGN_OR_RETURN(std::vector<FilterClause> filter, parse_run_filter(request.filter));
  std::vector<OrderClause> order;
  for (const auto& o : request.order_by) {
    KEEL_ASSIGN_OR_RETURN(OrderClause clause, parse_order_by(o));
    order.push_back(std::move(clause));
  }
  KEEL_ASSIGN_OR_RETURN(int64_t offset, parse_page_token(request.page_token));
  RunPage page;
  if (request.experiment_ids.empty()) return page;
  KEEL_ASSIGN_OR_RETURN(std::vector<Run> runs, load_runs(request.experiment_ids, request.view));
  std::vector<Run> matching;
  for (auto& r : runs)
    if (run_matches(r, filter)) matching.push_back(std::move(r));
  sort_runs(matching, order);
  size_t begin = std::min(static_cast<size_t>(offset), matching.size());
  size_t end = std::min(begin + static_cast<size_t>(request.max_results), matching.size());
  for (size_t i = begin; i < end; ++i) page.runs.push_back(std::move(matching[i]));
  if (end < matching.size()) page.next_page_token = std::to_string(end);
  return page;
}

Result<MetricPage> TrackingService::metric_history(const std::string& run_id, const std::string& key,
                                                   int64_t max_results, const std::string& page_token) {
  if (max_results <= 0) max_results = 25000;
  KEEL_ASSIGN_OR_RETURN(int64_t offset, parse_page_token(page_token));
  KEEL_ASSIGN_OR_RETURN(DbRows run, db_.query("SELECT id FROM runs WHERE id = ?", {run_id}));
  if (run.empty()) return not_found("run '" + run_id + "' not found");
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT key, value, is_nan, timestamp, step FROM run_metrics WHERE "
                                               "run_id = ? AND key = ? ORDER BY step, timestamp LIMIT ? OFFSET ?",
                                               {run_id, key, max_results + 1, offset}));
  MetricPage page;
  for (size_t i = 0; i < rows.rows.size() && static_cast<int64_t>(i) < max_results; ++i) {
    page.metrics.push_back(metric_from_row(rows.rows[i], 0));
  }
  if (static_cast<int64_t>(rows.rows.size()) > max_results) page.next_page_token = std::to_string(offset + max_results);
  return page;
}

Result<std::vector<Metric>> TrackingService::metric_history_downsampled(const std::string& run_id,
                                                                        const std::string& key, size_t max_points) {
  KEEL_ASSIGN_OR_RETURN(MetricPage all, metric_history(run_id, key, std::numeric_limits<int32_t>::max(), ""));
  std::vector<Metric>& points = all.metrics;
  if (max_points < 3 || points.size() <= max_points) return std::move(points);
  // Buckets of equal width over the index range; each keeps its minimum and maximum
  // (in step order), so spikes survive thinning.
  std::vector<Metric> out{points.front()};
  size_t inner = points.size() - 2, buckets = (max_points - 2) / 2;
  if (buckets == 0) buckets = 1;
  for (size_t b = 0; b < buckets; ++b) {
    size_t lo = 1 + b * inner / buckets, hi = 1 + (b + 1) * inner / buckets;
    if (lo >= hi) continue;
    size_t min_i = lo, max_i = lo;
    for (size_t i = lo; i < hi; ++i) {
      if (points[i].value < points[min_i].value) min_i = i;
      if (points[i].value > points[max_i].value) max_i = i;
    }
    out.push_back(points[std::min(min_i, max_i)]);
    if (min_i != max_i) out.push_back(points[std::max(min_i, max_i)]);
  }
  out.push_back(points.back());
  return out;
}

Json number_json(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

namespace {
Json object_of(const std::vector<KeyValue>& kvs) {
  Json out = Json::object();
  for (const auto& kv : kvs) out[kv.key] = kv.value;
  return out;
}
}  // namespace

Json to_json(const Experiment& e) {
  return Json{{"id", e.id},
              {"name", e.name},
              {"artifact_location", e.artifact_location},
              {"lifecycle_stage", e.lifecycle_stage},
              {"created_at", e.created_at},
              {"updated_at", e.updated_at},
              {"tags", object_of(e.tags)}};
}

Json to_json(const Metric& m) {
  return Json{{"key", m.key}, {"value", number_json(m.value)}, {"step", m.step}, {"timestamp", m.timestamp}};
}

Json to_json(const Run& run) {
  Json metrics = Json::object();
  for (const auto& m : run.latest_metrics) {
    metrics[m.key] = Json{{"value", number_json(m.value)}, {"step", m.step}, {"timestamp", m.timestamp}};
  }
  Json inputs = Json::array();
  for (const auto& d : run.inputs) {
    inputs.push_back({{"name", d.name},
                      {"digest", d.digest},
                      {"source_type", d.source_type},
                      {"source", d.source},
                      {"tags", object_of(d.tags)}});
  }
  return Json{{"id", run.id},
              {"experiment_id", run.experiment_id},
              {"name", run.name},
              {"user", run.user_id},
              {"status", run_status_name(run.status)},
              {"start_time", run.start_time},
              {"end_time", run.end_time ? Json(*run.end_time) : Json(nullptr)},
              {"artifact_uri", run.artifact_uri},
              {"lifecycle_stage", run.lifecycle_stage},
              {"parent_run_id", run.parent_run_id.empty() ? Json(nullptr) : Json(run.parent_run_id)},
              {"params", object_of(run.params)},
              {"tags", object_of(run.tags)},
              {"metrics", metrics},
              {"inputs", inputs}};
}

Json compare_json(const std::vector<Run>& runs) {
  Json heads = Json::array();
  std::map<std::string, Json> params, metrics;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    heads.push_back({{"id", r.id}, {"name", r.name}, {"status", run_status_name(r.status)}});
    for (const auto& p : r.params) {
      auto [it, fresh] = params.emplace(p.key, Json::array());
      if (fresh) it->second = Json(std::vector<Json>(runs.size(), nullptr));
      it->second[i] = p.value;
    }
    for (const auto& m : r.latest_metrics) {
      auto [it, fresh] = metrics.emplace(m.key, Json::array());
      if (fresh) it->second = Json(std::vector<Json>(runs.size(), nullptr));
      it->second[i] = number_json(m.value);
    }
  }
  Json differing = Json::array();
  for (const auto& [key, values] : params) {
    for (const auto& v : values) {
      if (v != values[0]) {
        differing.push_back(key);
        break;
      }
    }
  }
  return Json{{"runs", heads}, {"params", Json(params)}, {"metrics", Json(metrics)}, {"differing_params", differing}};
}

}  // namespace keel::tracking
