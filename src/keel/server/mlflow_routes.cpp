#include "keel/server/mlflow_routes.h"

#include "keel/server/mlflow_json.h"
#include "keel/tracking/artifact_files.h"
#include "keel/tracking/tracking_service.h"
#include "keel/util/id.h"

#include <memory>

namespace keel::server {
namespace {

using mlflow::RequestFields;
using tracking::KeyValue;
using tracking::TrackingService;
using mlflow::mlflow_route;

Result<std::string> run_id_of(const RequestFields& f) {
  KEEL_ASSIGN_OR_RETURN(std::string id, f.string("run_id"));
  if (id.empty()) {
    KEEL_ASSIGN_OR_RETURN(std::string uuid, f.string("run_uuid"));
    id = uuid;
  }
  if (id.empty()) return invalid_argument("Missing value for required parameter 'run_id'");
  return id;
}

Result<tracking::ViewType> view_of(const RequestFields& f, const std::string& field) {
  KEEL_ASSIGN_OR_RETURN(std::string v, f.string(field));
  return tracking::parse_view_type(v);
}

Result<tracking::Metric> metric_from(const Json& j) {
  if (!j.is_object()) return invalid_argument("a metric must be an object with key, value, timestamp and step");
  tracking::Metric m;
  if (!j.contains("key") || !j["key"].is_string()) return invalid_argument("Missing value for required parameter 'key'");
  m.key = j["key"].get<std::string>();
  if (!j.contains("value")) return invalid_argument("Missing value for required parameter 'value' of metric " + m.key);
  KEEL_ASSIGN_OR_RETURN(m.value, mlflow::double_from_json(j["value"], "value"));
  RequestFields none;
  auto int_of = [&](const char* name, int64_t fallback) -> Result<int64_t> {
    if (!j.contains(name) || j[name].is_null()) return fallback;
    const Json& v = j[name];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (!s.empty() && s.size() < 20 && s.find_first_not_of("-0123456789") == std::string::npos) return std::stoll(s);
    }
    return invalid_argument(std::string("Invalid value for parameter '") + name + "': expected an integer");
  };
  KEEL_ASSIGN_OR_RETURN(m.timestamp, int_of("timestamp", now_millis()));
  KEEL_ASSIGN_OR_RETURN(m.step, int_of("step", 0));
  return m;
}

void add_experiment_routes(Router& router, std::shared_ptr<TrackingService> tracking) {
  mlflow_route(router, "POST", "experiments/create", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string location, f.string("artifact_location"));
    KEEL_ASSIGN_OR_RETURN(Json tags_json, f.array("tags"));
    KEEL_ASSIGN_OR_RETURN(std::vector<KeyValue> tags, mlflow::key_values(tags_json, "tags"));
    KEEL_ASSIGN_OR_RETURN(tracking::Experiment e, tracking->create_experiment(name, location, tags, f.actor()));
    return Json{{"experiment_id", e.id}};
  });
  mlflow_route(router, "GET", "experiments/get", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("experiment_id", true));
    auto e = tracking->get_experiment(id);
    if (!e.ok() && e.status().code() == ErrorCode::kNotFound) {
      return not_found("No Experiment with id=" + id + " exists");
    }
    KEEL_RETURN_IF_ERROR(e.status());
    return Json{{"experiment", mlflow::experiment_json(*e)}};
  });
  mlflow_route(router, "GET", "experiments/get-by-name", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("experiment_name", true));
    auto e = tracking->get_experiment_by_name(name);
    if (!e.ok() && e.status().code() == ErrorCode::kNotFound) {
      return not_found("Could not find experiment with name '" + name + "'");
    }
    KEEL_RETURN_IF_ERROR(e.status());
    return Json{{"experiment", mlflow::experiment_json(*e)}};
  });
  auto search = [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(tracking::ViewType view, view_of(f, "view_type"));
    KEEL_ASSIGN_OR_RETURN(std::string filter, f.string("filter"));
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> order_by, f.strings("order_by"));
    KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, f.int64("max_results"));
    KEEL_ASSIGN_OR_RETURN(std::string token, f.string("page_token"));
    std::string next;
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::Experiment> found,
                          tracking->search_experiments(view, filter, order_by, max_results.value_or(1000), token, &next));
    Json list = Json::array();
    for (const auto& e : found) list.push_back(mlflow::experiment_json(e));
    Json out = Json::object();
    if (!list.empty()) out["experiments"] = std::move(list);
    if (!next.empty()) out["next_page_token"] = next;
    return out;
  };
  mlflow_route(router, "POST", "experiments/search", search);
  mlflow_route(router, "GET", "experiments/search", search);
  mlflow_route(router, "POST", "experiments/update", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("experiment_id", true));
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("new_name", true));
    KEEL_RETURN_IF_ERROR(tracking->rename_experiment(id, name, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "POST", "experiments/delete", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("experiment_id", true));
    KEEL_RETURN_IF_ERROR(tracking->set_experiment_lifecycle(id, true, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "POST", "experiments/restore", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("experiment_id", true));
    KEEL_RETURN_IF_ERROR(tracking->set_experiment_lifecycle(id, false, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "POST", "experiments/set-experiment-tag", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("experiment_id", true));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_ASSIGN_OR_RETURN(std::string value, f.string("value"));
    KEEL_RETURN_IF_ERROR(tracking->set_experiment_tag(id, {key, value}));
    return Json::object();
  });
}

void add_run_routes(Router& router, std::shared_ptr<TrackingService> tracking) {
  mlflow_route(router, "POST", "runs/create", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string given_experiment, f.string("experiment_id"));
    const std::string experiment_id = given_experiment.empty() ? std::string(tracking::kDefaultExperimentId) : given_experiment;
    KEEL_ASSIGN_OR_RETURN(std::string user, f.string("user_id"));
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("run_name"));
    KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> start, f.int64("start_time"));
    KEEL_ASSIGN_OR_RETURN(Json tags_json, f.array("tags"));
    KEEL_ASSIGN_OR_RETURN(std::vector<KeyValue> tags, mlflow::key_values(tags_json, "tags"));
    KEEL_ASSIGN_OR_RETURN(tracking::Run run, tracking->create_run(experiment_id, user, start.value_or(0), name, tags));
    return Json{{"run", mlflow::run_json(run)}};
  });
  mlflow_route(router, "GET", "runs/get", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    auto run = tracking->get_run(id);
    if (!run.ok() && run.status().code() == ErrorCode::kNotFound) return not_found("Run with id=" + id + " not found");
    KEEL_RETURN_IF_ERROR(run.status());
    return Json{{"run", mlflow::run_json(*run)}};
  });
  mlflow_route(router, "POST", "runs/update", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string status_name, f.string("status"));
    std::optional<tracking::RunStatus> status;
    if (!status_name.empty()) {
      KEEL_ASSIGN_OR_RETURN(tracking::RunStatus s, tracking::parse_run_status(status_name));
      status = s;
    }
    KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> end, f.int64("end_time"));
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("run_name"));
    KEEL_ASSIGN_OR_RETURN(tracking::Run run,
                          tracking->update_run(id, status, end, name.empty() ? std::nullopt : std::optional(name)));
    return Json{{"run_info", mlflow::run_info_json(run)}};
  });
  mlflow_route(router, "POST", "runs/delete", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_RETURN_IF_ERROR(tracking->set_run_lifecycle(id, true, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/restore", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_RETURN_IF_ERROR(tracking->set_run_lifecycle(id, false, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/log-metric", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(tracking::Metric m, metric_from(f.json()));
    KEEL_RETURN_IF_ERROR(tracking->log_batch(id, {m}, {}, {}));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/log-parameter", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_ASSIGN_OR_RETURN(std::string value, f.string("value"));
    KEEL_RETURN_IF_ERROR(tracking->log_batch(id, {}, {{key, value}}, {}));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/set-tag", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_ASSIGN_OR_RETURN(std::string value, f.string("value"));
    KEEL_RETURN_IF_ERROR(tracking->log_batch(id, {}, {}, {{key, value}}));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/delete-tag", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_RETURN_IF_ERROR(tracking->delete_tag(id, key));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/log-batch", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(Json metrics_json, f.array("metrics"));
    std::vector<tracking::Metric> metrics;
    metrics.reserve(metrics_json.size());
    for (const auto& m : metrics_json) {
      KEEL_ASSIGN_OR_RETURN(tracking::Metric metric, metric_from(m));
      metrics.push_back(std::move(metric));
    }
    KEEL_ASSIGN_OR_RETURN(Json params_json, f.array("params"));
    KEEL_ASSIGN_OR_RETURN(std::vector<KeyValue> params, mlflow::key_values(params_json, "params"));
    KEEL_ASSIGN_OR_RETURN(Json tags_json, f.array("tags"));
    KEEL_ASSIGN_OR_RETURN(std::vector<KeyValue> tags, mlflow::key_values(tags_json, "tags"));
    KEEL_RETURN_IF_ERROR(tracking->log_batch(id, metrics, params, tags));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/log-inputs", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(Json datasets, f.array("datasets"));
    std::vector<tracking::DatasetInput> inputs;
    for (const auto& item : datasets) {
      if (!item.is_object() || !item.contains("dataset") || !item["dataset"].is_object()) {
        return invalid_argument("each dataset input needs a 'dataset' object");
      }
      const Json& d = item["dataset"];
      auto text = [&](const char* name) -> Result<std::string> {
        if (!d.contains(name) || d[name].is_null()) return std::string();
        if (!d[name].is_string()) return invalid_argument(std::string("dataset field '") + name + "' must be a string");
        return d[name].get<std::string>();
      };
      tracking::DatasetInput input;
      KEEL_ASSIGN_OR_RETURN(input.name, text("name"));
      KEEL_ASSIGN_OR_RETURN(input.digest, text("digest"));
      KEEL_ASSIGN_OR_RETURN(input.source_type, text("source_type"));
      KEEL_ASSIGN_OR_RETURN(input.source, text("source"));
      KEEL_ASSIGN_OR_RETURN(input.schema, text("schema"));
      KEEL_ASSIGN_OR_RETURN(input.profile, text("profile"));
      KEEL_ASSIGN_OR_RETURN(input.tags, mlflow::key_values(item.value("tags", Json::array()), "dataset tags"));
      inputs.push_back(std::move(input));
    }
    // Model inputs/outputs (MLflow 3 logged models) are accepted and not yet recorded.
    KEEL_RETURN_IF_ERROR(tracking->log_inputs(id, inputs));
    return Json::object();
  });
  mlflow_route(router, "POST", "runs/search", [tracking](const RequestFields& f) -> Result<Json> {
    tracking::SearchRunsRequest request;
    KEEL_ASSIGN_OR_RETURN(request.experiment_ids, f.strings("experiment_ids"));
    KEEL_ASSIGN_OR_RETURN(request.filter, f.string("filter"));
    KEEL_ASSIGN_OR_RETURN(request.view, view_of(f, "run_view_type"));
    KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, f.int64("max_results"));
    request.max_results = max_results.value_or(1000);
    KEEL_ASSIGN_OR_RETURN(request.order_by, f.strings("order_by"));
    KEEL_ASSIGN_OR_RETURN(request.page_token, f.string("page_token"));
    KEEL_ASSIGN_OR_RETURN(tracking::RunPage page, tracking->search_runs(request));
    Json out = Json::object();
    if (!page.runs.empty()) {
      Json runs = Json::array();
      for (const auto& r : page.runs) runs.push_back(mlflow::run_json(r));
      out["runs"] = std::move(runs);
    }
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  });
  mlflow_route(router, "GET", "metrics/get-history", [tracking](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, run_id_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("metric_key", true));
    KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, f.int64("max_results"));
    KEEL_ASSIGN_OR_RETURN(std::string token, f.string("page_token"));
    auto page = tracking->metric_history(id, key, max_results.value_or(25000), token);
    if (!page.ok() && page.status().code() == ErrorCode::kNotFound) return not_found("Run with id=" + id + " not found");
    KEEL_RETURN_IF_ERROR(page.status());
    Json out = Json::object();
    if (!page->metrics.empty()) {
      Json metrics = Json::array();
      for (const auto& m : page->metrics) metrics.push_back(mlflow::metric_json(m));
      out["metrics"] = std::move(metrics);
    }
    if (!page->next_page_token.empty()) out["next_page_token"] = page->next_page_token;
    return out;
  });
}

// Proxied artifacts: PUT uploads a file, GET downloads it, GET without a path lists a
// folder (names relative to it, as MLflow's server lists them), DELETE removes.
void add_artifact_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  const std::string base = "/api/2.0/mlflow-artifacts/artifacts";
  router.put(base + "/{path...}", [&db, &blobs](const HttpRequest& req) {
    tracking::ArtifactFiles files(db, blobs);
    auto stored = files.put(req.path_params.at("path"), req.body);
    if (!stored.ok()) return mlflow::error_response(stored.status());
    return HttpResponse::json(200, Json::object());
  });
  router.get(base + "/{path...}", [&db, &blobs](const HttpRequest& req) {
    tracking::ArtifactFiles files(db, blobs);
    auto stat = files.stat(req.path_params.at("path"));
    if (!stat.ok()) return mlflow::error_response(stat.status());
    auto bytes = blobs.get_bytes(stat->sha256, 1ull << 31);
    if (!bytes.ok()) return mlflow::error_response(bytes.status());
    HttpResponse response;
    response.content_type = "application/octet-stream";
    response.body = std::move(*bytes);
    return response;
  });
  router.get(base, [&db, &blobs](const HttpRequest& req) {
    auto it = req.query.find("path");
    std::string folder = it == req.query.end() ? "" : it->second;
    while (!folder.empty() && folder.back() == '/') folder.pop_back();
    Status valid = tracking::validate_artifact_path(folder, true);
    if (!valid.ok()) return mlflow::error_response(invalid_argument("Invalid path"));
    tracking::ArtifactFiles files(db, blobs);
    auto list = files.list(folder, folder);
    if (!list.ok()) return mlflow::error_response(list.status());
    Json out = Json::object();
    if (!list->empty()) {
      Json entries = Json::array();
      for (const auto& e : *list) {
        Json j = {{"path", e.path}, {"is_dir", e.is_dir}};
        if (!e.is_dir) j["file_size"] = e.size_bytes;
        entries.push_back(std::move(j));
      }
      out["files"] = std::move(entries);
    }
    return HttpResponse::json(200, out);
  });
  router.del(base + "/{path...}", [&db, &blobs](const HttpRequest& req) {
    tracking::ArtifactFiles files(db, blobs);
    auto removed = files.remove(req.path_params.at("path"));
    if (!removed.ok()) return mlflow::error_response(removed.status());
    return HttpResponse::json(200, Json::object());
  });
}

}  // namespace

void add_mlflow_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  // The service holds no state beyond the store; the handlers share one.
  auto tracking = std::make_shared<TrackingService>(db);
  add_experiment_routes(router, tracking);
  add_run_routes(router, tracking);
  add_artifact_routes(router, db, blobs);
  add_mlflow_registry_routes(router, db, blobs);
  router.get("/api/3.0/mlflow/server-info", [](const HttpRequest&) {
    return HttpResponse::json(200, Json{{"store_type", "SqlStore"},
                                        {"workspaces_enabled", false},
                                        {"multipart_uploads_enabled", false},
                                        {"multipart_downloads_enabled", false}});
  });
}

}  // namespace keel::server
