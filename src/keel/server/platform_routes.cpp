#include "keel/server/platform_routes.h"

#include "keel/registry/model_registry.h"

namespace keel::server {

void add_platform_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
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
