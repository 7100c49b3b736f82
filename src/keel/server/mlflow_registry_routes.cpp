// MLflow's model registry and MLflow 3 logged models over Keel's registry and tracking
// services. Prompts registered with mlflow.genai are registered models with tags, so
// they work through these same routes.
#include "keel/registry/model_registry.h"
#include "keel/server/mlflow_json.h"
#include "keel/server/mlflow_routes.h"
#include "keel/tracking/logged_models.h"

namespace keel::server {
namespace {

using mlflow::mlflow_route;
using mlflow::RequestFields;
using registry::KeyValueTag;
using registry::ModelRegistry;

Json version_json(const registry::ModelVersion& v) {
  Json j = {{"name", v.model_name},
            {"version", std::to_string(v.version)},
            {"creation_timestamp", v.created_at},
            {"last_updated_timestamp", v.updated_at},
            {"current_stage", "None"},
            {"description", v.description},
            {"source", v.source},
            {"run_id", v.run_id},
            {"status", v.status},
            {"run_link", ""}};
  if (!v.user_id.empty()) j["user_id"] = v.user_id;
  if (!v.logged_model_id.empty()) j["model_id"] = v.logged_model_id;
  if (!v.tags.empty()) {
    Json tags = Json::array();
    for (const auto& t : v.tags) tags.push_back({{"key", t.key}, {"value", t.value}});
    j["tags"] = std::move(tags);
  }
  if (!v.aliases.empty()) j["aliases"] = v.aliases;
  return j;
}

Json model_json(const registry::RegisteredModel& m) {
  Json j = {{"name", m.name},
            {"creation_timestamp", m.created_at},
            {"last_updated_timestamp", m.updated_at},
            {"description", m.description}};
  if (m.latest) j["latest_versions"] = Json::array({version_json(*m.latest)});
  if (!m.tags.empty()) {
    Json tags = Json::array();
    for (const auto& t : m.tags) tags.push_back({{"key", t.key}, {"value", t.value}});
    j["tags"] = std::move(tags);
  }
  if (!m.aliases.empty()) {
    Json aliases = Json::array();
    for (const auto& [alias, version] : m.aliases) aliases.push_back({{"alias", alias}, {"version", std::to_string(version)}});
    j["aliases"] = std::move(aliases);
  }
  return j;
}

Json logged_model_json(const tracking::LoggedModel& m) {
  Json info = {{"model_id", m.id},
               {"experiment_id", m.experiment_id},
               {"name", m.name},
               {"creation_timestamp_ms", m.created_at},
               {"last_updated_timestamp_ms", m.updated_at},
               {"artifact_uri", m.artifact_uri},
               {"status", m.status},
               {"model_type", m.model_type},
               {"source_run_id", m.source_run_id}};
  if (!m.tags.empty()) info["tags"] = mlflow::key_values_json(m.tags);
  Json data = Json::object();
  if (!m.params.empty()) data["params"] = mlflow::key_values_json(m.params);
  return Json{{"model", Json{{"info", info}, {"data", data}}}};
}

Result<std::vector<KeyValueTag>> tags_of(const RequestFields& f) {
  KEEL_ASSIGN_OR_RETURN(Json array, f.array("tags"));
  KEEL_ASSIGN_OR_RETURN(std::vector<tracking::KeyValue> kvs, mlflow::key_values(array, "tags"));
  std::vector<KeyValueTag> out;
  for (auto& kv : kvs) out.push_back({std::move(kv.key), std::move(kv.value)});
  return out;
}

Result<int64_t> version_of(const RequestFields& f) {
  KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> v, f.int64("version"));
  if (!v) return invalid_argument("Missing value for required parameter 'version'");
  if (*v <= 0) return invalid_argument("a model version is a positive number, got " + std::to_string(*v));
  return *v;
}

Result<registry::SearchRequest> search_request_of(const RequestFields& f, int64_t default_max) {
  registry::SearchRequest request;
  KEEL_ASSIGN_OR_RETURN(request.filter, f.string("filter"));
  KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, f.int64("max_results"));
  request.max_results = max_results.value_or(default_max);
  KEEL_ASSIGN_OR_RETURN(request.order_by, f.strings("order_by"));
  KEEL_ASSIGN_OR_RETURN(request.page_token, f.string("page_token"));
  return request;
}

// An MLflow operation Keel deliberately lacks: 501 NOT_IMPLEMENTED saying what to do instead.
void not_implemented(Router& router, const std::string& method, const std::string& path, const std::string& what,
                     const std::string& instead) {
  Handler h = [message = "Keel does not implement " + what + "; " + instead](const HttpRequest&) {
    return mlflow::error_response(501, "NOT_IMPLEMENTED", message);
  };
  router.add(method, "/api/2.0/mlflow/" + path, h);
  router.add(method, "/ajax-api/2.0/mlflow/" + path, h);
}

void add_registered_model_routes(Router& router, std::shared_ptr<ModelRegistry> models) {
  mlflow_route(router, "POST", "registered-models/create", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string description, f.string("description"));
    KEEL_ASSIGN_OR_RETURN(std::vector<KeyValueTag> tags, tags_of(f));
    KEEL_ASSIGN_OR_RETURN(registry::RegisteredModel m, models->create_model(name, description, tags, f.actor()));
    return Json{{"registered_model", model_json(m)}};
  });
  mlflow_route(router, "GET", "registered-models/get", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(registry::RegisteredModel m, models->get_model(name));
    return Json{{"registered_model", model_json(m)}};
  });
  mlflow_route(router, "PATCH", "registered-models/update", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string description, f.string("description"));
    KEEL_ASSIGN_OR_RETURN(registry::RegisteredModel m, models->update_model(name, description, f.actor()));
    return Json{{"registered_model", model_json(m)}};
  });
  not_implemented(router, "POST", "registered-models/rename", "renaming a registered model", "register the versions under the new name instead");
  not_implemented(router, "DELETE", "registered-models/delete", "deleting a registered model", "Keel keeps every model version for lineage");
  auto search = [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(registry::SearchRequest request, search_request_of(f, 100));
    KEEL_ASSIGN_OR_RETURN(registry::SearchPage<registry::RegisteredModel> page, models->search_models(request));
    Json out = Json::object();
    if (!page.items.empty()) {
      Json list = Json::array();
      for (const auto& m : page.items) list.push_back(model_json(m));
      out["registered_models"] = std::move(list);
    }
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  };
  mlflow_route(router, "GET", "registered-models/search", search);
  mlflow_route(router, "POST", "registered-models/search", search);
  mlflow_route(router, "POST", "registered-models/set-tag", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_ASSIGN_OR_RETURN(std::string value, f.string("value"));
    KEEL_RETURN_IF_ERROR(models->set_model_tag(name, {key, value}, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "DELETE", "registered-models/delete-tag", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_RETURN_IF_ERROR(models->delete_model_tag(name, key, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "POST", "registered-models/alias", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string alias, f.string("alias", true));
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_of(f));
    KEEL_RETURN_IF_ERROR(models->set_alias(name, alias, version, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "DELETE", "registered-models/alias", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string alias, f.string("alias", true));
    KEEL_RETURN_IF_ERROR(models->delete_alias(name, alias, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "GET", "registered-models/alias", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::string alias, f.string("alias", true));
    KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, models->get_by_alias(name, alias));
    return Json{{"model_version", version_json(v)}};
  });
  mlflow_route(router, "POST", "registered-models/get-latest-versions", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> stages, f.strings("stages"));
    KEEL_ASSIGN_OR_RETURN(registry::RegisteredModel m, models->get_model(name));
    // Keel has no stages (aliases replace them): every version is in stage "None".
    bool wants_none = stages.empty() || std::find(stages.begin(), stages.end(), "None") != stages.end();
    Json out = Json::object();
    if (m.latest && wants_none) out["model_versions"] = Json::array({version_json(*m.latest)});
    return out;
  });
}

void add_model_version_routes(Router& router, std::shared_ptr<ModelRegistry> models, store::Db& db) {
  mlflow_route(router, "POST", "model-versions/create", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    registry::NewVersion spec;
    KEEL_ASSIGN_OR_RETURN(spec.source, f.string("source"));
    KEEL_ASSIGN_OR_RETURN(spec.run_id, f.string("run_id"));
    KEEL_ASSIGN_OR_RETURN(spec.description, f.string("description"));
    KEEL_ASSIGN_OR_RETURN(spec.logged_model_id, f.string("model_id"));
    KEEL_ASSIGN_OR_RETURN(spec.tags, tags_of(f));
    KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, models->create_version(name, spec, f.actor()));
    return Json{{"model_version", version_json(v)}};
  });
  mlflow_route(router, "GET", "model-versions/get", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_of(f));
    KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, models->get_version(name, version));
    return Json{{"model_version", version_json(v)}};
  });
  mlflow_route(router, "PATCH", "model-versions/update", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string description, f.string("description"));
    KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, models->update_version(name, version, description, f.actor()));
    return Json{{"model_version", version_json(v)}};
  });
  auto search = [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(registry::SearchRequest request, search_request_of(f, 10000));
    KEEL_ASSIGN_OR_RETURN(registry::SearchPage<registry::ModelVersion> page, models->search_versions(request));
    Json out = Json::object();
    if (!page.items.empty()) {
      Json list = Json::array();
      for (const auto& v : page.items) list.push_back(version_json(v));
      out["model_versions"] = std::move(list);
    }
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  };
  mlflow_route(router, "GET", "model-versions/search", search);
  mlflow_route(router, "POST", "model-versions/search", search);
  mlflow_route(router, "POST", "model-versions/set-tag", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_ASSIGN_OR_RETURN(std::string value, f.string("value"));
    KEEL_RETURN_IF_ERROR(models->set_version_tag(name, version, {key, value}, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "DELETE", "model-versions/delete-tag", [models](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_of(f));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("key", true));
    KEEL_RETURN_IF_ERROR(models->delete_version_tag(name, version, key, f.actor()));
    return Json::object();
  });
  mlflow_route(router, "GET", "model-versions/get-download-uri", [models, &db](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name", true));
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_of(f));
    KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, models->get_version(name, version));
    std::string uri = v.source;
    // runs:/<run>/<path> and models:/<logged model> resolve to artifact URIs, as MLflow does.
    if (uri.rfind("runs:/", 0) == 0) {
      std::string rest = uri.substr(6);
      size_t slash = rest.find('/');
      std::string run_id = rest.substr(0, slash);
      KEEL_ASSIGN_OR_RETURN(tracking::Run run, tracking::TrackingService(db).get_run(run_id));
      uri = run.artifact_uri + (slash == std::string::npos ? "" : rest.substr(slash));
    } else if (uri.rfind("models:/m-", 0) == 0) {
      KEEL_ASSIGN_OR_RETURN(tracking::LoggedModel m, tracking::LoggedModels(db).get(uri.substr(8)));
      uri = m.artifact_uri;
    }
    return Json{{"artifact_uri", uri}};
  });
  not_implemented(router, "POST", "model-versions/transition-stage", "model version stages (deprecated in MLflow)", "use aliases such as 'production'");
  not_implemented(router, "DELETE", "model-versions/delete", "deleting a model version", "Keel keeps every model version for lineage");
}

void add_logged_model_routes(Router& router, store::Db& db) {
  auto logged = std::make_shared<tracking::LoggedModels>(db);
  mlflow_route(router, "POST", "logged-models", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string experiment_id, f.string("experiment_id", true));
    KEEL_ASSIGN_OR_RETURN(std::string name, f.string("name"));
    KEEL_ASSIGN_OR_RETURN(std::string run_id, f.string("source_run_id"));
    KEEL_ASSIGN_OR_RETURN(std::string model_type, f.string("model_type"));
    KEEL_ASSIGN_OR_RETURN(Json params_json, f.array("params"));
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::KeyValue> params, mlflow::key_values(params_json, "params"));
    KEEL_ASSIGN_OR_RETURN(Json tags_json, f.array("tags"));
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::KeyValue> tags, mlflow::key_values(tags_json, "tags"));
    KEEL_ASSIGN_OR_RETURN(tracking::LoggedModel m, logged->create(experiment_id, name, run_id, model_type, params, tags));
    return logged_model_json(m);
  });
  mlflow_route(router, "GET", "logged-models/{model_id}", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("model_id", true));
    KEEL_ASSIGN_OR_RETURN(tracking::LoggedModel m, logged->get(id));
    return logged_model_json(m);
  });
  mlflow_route(router, "PATCH", "logged-models/{model_id}", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("model_id", true));
    KEEL_ASSIGN_OR_RETURN(std::string status, f.string("status", true));
    KEEL_ASSIGN_OR_RETURN(tracking::LoggedModel m, logged->set_status(id, status));
    return logged_model_json(m);
  });
  mlflow_route(router, "PATCH", "logged-models/{model_id}/tags", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("model_id", true));
    KEEL_ASSIGN_OR_RETURN(Json tags_json, f.array("tags"));
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::KeyValue> tags, mlflow::key_values(tags_json, "tags"));
    KEEL_RETURN_IF_ERROR(logged->set_tags(id, tags));
    return Json::object();
  });
  mlflow_route(router, "DELETE", "logged-models/{model_id}/tags/{tag_key}", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("model_id", true));
    KEEL_ASSIGN_OR_RETURN(std::string key, f.string("tag_key", true));
    KEEL_RETURN_IF_ERROR(logged->delete_tag(id, key));
    return Json::object();
  });
  mlflow_route(router, "POST", "logged-models/{model_id}/params", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::string id, f.string("model_id", true));
    KEEL_ASSIGN_OR_RETURN(Json params_json, f.array("params"));
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::KeyValue> params, mlflow::key_values(params_json, "params"));
    KEEL_RETURN_IF_ERROR(logged->log_params(id, params));
    return Json::object();
  });
  mlflow_route(router, "POST", "logged-models/search", [logged](const RequestFields& f) -> Result<Json> {
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> experiment_ids, f.strings("experiment_ids"));
    KEEL_ASSIGN_OR_RETURN(std::string filter, f.string("filter"));
    KEEL_ASSIGN_OR_RETURN(std::optional<int64_t> max_results, f.int64("max_results"));
    KEEL_ASSIGN_OR_RETURN(std::string token, f.string("page_token"));
    std::string next;
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::LoggedModel> found,
                          logged->search(experiment_ids, filter, max_results.value_or(100), token, &next));
    Json out = Json::object();
    if (!found.empty()) {
      Json list = Json::array();
      for (const auto& m : found) list.push_back(logged_model_json(m)["model"]);
      out["models"] = std::move(list);
    }
    if (!next.empty()) out["next_page_token"] = next;
    return out;
  });
}

}  // namespace

void add_mlflow_registry_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  auto models = std::make_shared<ModelRegistry>(db, blobs);
  add_registered_model_routes(router, models);
  add_model_version_routes(router, models, db);
  add_logged_model_routes(router, db);
  // Anything else under MLflow's prefix is an endpoint Keel does not have yet: say so
  // in MLflow's error shape rather than with a bare 404.
  for (const char* method : {"GET", "POST", "PATCH", "DELETE", "PUT"}) {
    router.add(method, "/api/2.0/mlflow/{rest...}", [](const HttpRequest& req) {
      return mlflow::error_response(404, "ENDPOINT_NOT_FOUND",
                                    "Keel does not implement the MLflow endpoint " + req.method + " " + req.path + " yet");
    });
  }
}

}  // namespace keel::server
