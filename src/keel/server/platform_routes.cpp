#include "keel/server/platform_routes.h"

#include <limits>

#include "keel/registry/model_registry.h"
#include "keel/tracking/artifact_files.h"
#include "keel/tracking/tracking_service.h"

namespace keel::server {

namespace {

// Experiments and runs: GET /api/experiments, POST /api/experiments, GET /api/experiments/{id},
// GET /api/runs (experiment_id or experiment, filter, order_by, max_results, page_token),
// GET /api/runs/{id} (with the model versions registered from it), GET /api/runs/{id}/artifacts,
// GET /api/runs/{id}/metrics/{key} (max_points thins the history for
// charts), GET /api/runs/compare?ids=a,b.
void add_tracking_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  router.get("/api/experiments", [&db](const HttpRequest& req) {
    tracking::TrackingService tracking(db);
    auto view = tracking::parse_view_type(req.query.count("view") ? req.query.at("view") : "");
    if (!view.ok()) return HttpResponse::from_status(view.status());
    auto list = tracking.list_experiments(*view);
    if (!list.ok()) return HttpResponse::from_status(list.status());
    Json out = Json::array();
    for (const auto& e : *list) out.push_back(tracking::to_json(e));
    return HttpResponse::json(200, {{"experiments", out}});
  });
  router.post("/api/experiments", [&db](const HttpRequest& req) {
    auto body = req.json_body();
    if (!body.ok()) return HttpResponse::from_status(body.status());
    if (!body->is_object() || !body->contains("name") || !(*body)["name"].is_string()) {
      return HttpResponse::error(400, "invalid_argument", "the body must be {\"name\": \"...\"}");
    }
    tracking::TrackingService tracking(db);
    auto e = tracking.create_experiment((*body)["name"].get<std::string>(), "", {}, req.user);
    if (!e.ok()) return HttpResponse::from_status(e.status());
    return HttpResponse::json(201, tracking::to_json(*e));
  });
  router.get("/api/experiments/{id}", [&db](const HttpRequest& req) {
    tracking::TrackingService tracking(db);
    const std::string& id = req.path_params.at("id");
    auto e = tracking.get_experiment(id);
    if (!e.ok() && e.status().code() == ErrorCode::kNotFound) e = tracking.get_experiment_by_name(id);
    if (!e.ok()) return HttpResponse::from_status(e.status());
    return HttpResponse::json(200, tracking::to_json(*e));
  });
  router.get("/api/runs", [&db](const HttpRequest& req) {
    tracking::TrackingService tracking(db);
    tracking::SearchRunsRequest request;
    auto q = [&](const char* name) { return req.query.count(name) ? req.query.at(name) : std::string(); };
    if (!q("experiment").empty()) {
      auto e = tracking.get_experiment_by_name(q("experiment"));
      if (!e.ok()) return HttpResponse::from_status(e.status());
      request.experiment_ids = {e->id};
    } else if (!q("experiment_id").empty()) {
      request.experiment_ids = {q("experiment_id")};
    } else {
      auto all = tracking.list_experiments(tracking::ViewType::kActiveOnly);
      if (!all.ok()) return HttpResponse::from_status(all.status());
      for (const auto& e : *all) request.experiment_ids.push_back(e.id);
    }
    request.filter = q("filter");
    if (!q("order_by").empty()) request.order_by = {q("order_by")};
    request.page_token = q("page_token");
    if (!q("max_results").empty()) {
      const std::string m = q("max_results");
      if (m.size() > 9 || m.find_first_not_of("0123456789") != std::string::npos) {
        return HttpResponse::error(400, "invalid_argument", "max_results must be a number");
      }
      request.max_results = std::stoll(m);
    }
    auto page = tracking.search_runs(request);
    if (!page.ok()) return HttpResponse::from_status(page.status());
    Json runs = Json::array();
    for (const auto& r : page->runs) runs.push_back(tracking::to_json(r));
    Json out = {{"runs", runs}};
    if (!page->next_page_token.empty()) out["next_page_token"] = page->next_page_token;
    return HttpResponse::json(200, out);
  });
  router.get("/api/runs/compare", [&db](const HttpRequest& req) {
    tracking::TrackingService tracking(db);
    std::string ids = req.query.count("ids") ? req.query.at("ids") : "";
    std::vector<tracking::Run> runs;
    size_t start = 0;
    while (start < ids.size()) {
      size_t comma = ids.find(',', start);
      if (comma == std::string::npos) comma = ids.size();
      auto run = tracking.get_run(ids.substr(start, comma - start));
      if (!run.ok()) return HttpResponse::from_status(run.status());
      runs.push_back(std::move(*run));
      start = comma + 1;
    }
    if (runs.size() < 2) return HttpResponse::error(400, "invalid_argument", "give two or more run ids: ?ids=a,b");
    return HttpResponse::json(200, tracking::compare_json(runs));
  });
  router.get("/api/runs/{id}", [&db, &blobs](const HttpRequest& req) {
    auto run = tracking::TrackingService(db).get_run(req.path_params.at("id"));
    if (!run.ok()) return HttpResponse::from_status(run.status());
    Json out = tracking::to_json(*run);
    // The run's outputs: model versions registered from it.
    registry::SearchRequest search;
    search.filter = "run_id = '" + run->id + "'";
    search.max_results = 1000;
    auto versions = registry::ModelRegistry(db, blobs).search_versions(search);
    if (!versions.ok()) return HttpResponse::from_status(versions.status());
    Json models = Json::array();
    for (const auto& v : versions->items) models.push_back({{"name", v.model_name}, {"version", v.version}});
    out["model_versions"] = models;
    return HttpResponse::json(200, out);
  });
  // Files a run logged: ?path=sub/folder lists below the run's artifact root.
  router.get("/api/runs/{id}/artifacts", [&db, &blobs](const HttpRequest& req) {
    auto run = tracking::TrackingService(db).get_run(req.path_params.at("id"));
    if (!run.ok()) return HttpResponse::from_status(run.status());
    const std::string scheme = "mlflow-artifacts:/";
    if (run->artifact_uri.rfind(scheme, 0) != 0) {
      return HttpResponse::error(400, "invalid_argument", "run artifacts live outside Keel: " + run->artifact_uri);
    }
    std::string root = run->artifact_uri.substr(scheme.size());
    std::string sub = req.query.count("path") ? req.query.at("path") : "";
    while (!sub.empty() && sub.back() == '/') sub.pop_back();
    Status valid = tracking::validate_artifact_path(sub, true);
    if (!valid.ok()) return HttpResponse::from_status(valid);
    auto list = tracking::ArtifactFiles(db, blobs).list(sub.empty() ? root : root + "/" + sub, root);
    if (!list.ok()) return HttpResponse::from_status(list.status());
    Json files = Json::array();
    for (const auto& e : *list) {
      Json j = {{"path", e.path}, {"is_dir", e.is_dir}};
      if (!e.is_dir) j["size_bytes"] = e.size_bytes;
      files.push_back(std::move(j));
    }
    return HttpResponse::json(200, {{"run_id", run->id}, {"files", files}});
  });
  router.get("/api/runs/{id}/metrics/{key}", [&db](const HttpRequest& req) {
    tracking::TrackingService tracking(db);
    std::string max_points = req.query.count("max_points") ? req.query.at("max_points") : "";
    std::vector<tracking::Metric> points;
    if (max_points.empty()) {
      auto page = tracking.metric_history(req.path_params.at("id"), req.path_params.at("key"),
                                          std::numeric_limits<int32_t>::max(), "");
      if (!page.ok()) return HttpResponse::from_status(page.status());
      points = std::move(page->metrics);
    } else {
      if (max_points.size() > 7 || max_points.find_first_not_of("0123456789") != std::string::npos) {
        return HttpResponse::error(400, "invalid_argument", "max_points must be a number");
      }
      auto thin = tracking.metric_history_downsampled(req.path_params.at("id"), req.path_params.at("key"),
                                                      static_cast<size_t>(std::stoll(max_points)));
      if (!thin.ok()) return HttpResponse::from_status(thin.status());
      points = std::move(*thin);
    }
    Json out = Json::array();
    for (const auto& m : points) {
      out.push_back({{"step", m.step}, {"timestamp", m.timestamp}, {"value", tracking::number_json(m.value)}});
    }
    return HttpResponse::json(200, {{"key", req.path_params.at("key")}, {"points", out}});
  });
}

}  // namespace

void add_platform_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  add_tracking_routes(router, db, blobs);
  add_registry_routes(router, db, blobs);
  router.get("/api/models", [&db, &blobs](const HttpRequest&) {
    registry::ModelRegistry models(db, blobs);
    auto list = models.list();
    if (!list.ok()) return HttpResponse::from_status(list.status());
    Json data = Json::array();
    for (const auto& m : *list) {
      Json j = {{"name", m.name}, {"versions", m.version_count}, {"created_at", m.created_at}};
      j["latest"] = m.latest ? registry::to_json(*m.latest) : Json(nullptr);
      data.push_back(std::move(j));
    }
    return HttpResponse::json(200, {{"models", data}});
  });
  router.get("/api/models/{name}", [&db, &blobs](const HttpRequest& req) {
    registry::ModelRegistry models(db, blobs);
    auto v = models.get(req.path_params.at("name"));
    if (!v.ok()) return HttpResponse::from_status(v.status());
    return HttpResponse::json(200, registry::to_json(*v));
  });
  router.get("/api/models/{name}/versions", [&db, &blobs](const HttpRequest& req) {
    registry::ModelRegistry models(db, blobs);
    auto versions = models.versions(req.path_params.at("name"));
    if (!versions.ok()) return HttpResponse::from_status(versions.status());
    Json data = Json::array();
    for (const auto& v : *versions) data.push_back(registry::to_json(v));
    return HttpResponse::json(200, {{"versions", data}});
  });
}

}  // namespace keel::server
