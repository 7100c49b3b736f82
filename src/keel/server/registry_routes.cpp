// Keel's REST API for review and approval and the audit log:
//   GET|PUT /api/models/{name}/policy
//   GET|POST /api/models/{name}/versions/{version}/checks
//   POST /api/models/{name}/versions/{version}/promotion-requests   {"alias", "comment"}
//   POST /api/models/{name}/versions/{version}/reviews              {"alias", "decision": "approve"|"reject", "comment"}
//   GET /api/models/{name}/promotion-requests
//   PUT|DELETE /api/models/{name}/aliases/{alias}                   {"version": N}
//   POST /api/models/{name}/versions/{version}/archive
//   GET /api/models/{name}/versions/{version}/lineage, .../card (Markdown)
//   GET /api/audit?actor=&action=&target=&since=&until=&limit=
#include "keel/auth/users.h"
#include "keel/registry/governance.h"
#include "keel/registry/lineage.h"
#include "keel/server/auth_guard.h"
#include "keel/registry/deployments.h"
#include "keel/server/platform_routes.h"
#include "keel/store/audit_log.h"

namespace keel::server {
namespace {

Result<int64_t> version_param(const HttpRequest& req) {
  const std::string& v = req.path_params.at("version");
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    return invalid_argument("'" + v + "' is not a version number");
  }
  return std::stoll(v);
}

Result<Json> object_body(const HttpRequest& req) {
  KEEL_ASSIGN_OR_RETURN(Json body, req.json_body());
  if (!body.is_object()) return invalid_argument("the request body must be a JSON object");
  return body;
}

Result<std::string> string_field(const Json& body, const char* name, const std::string& fallback, bool required = false) {
  if (!body.contains(name) || body[name].is_null()) {
    if (required) return invalid_argument(std::string("missing field '") + name + "'");
    return fallback;
  }
  if (!body[name].is_string()) return invalid_argument(std::string("field '") + name + "' must be a string");
  return body[name].get<std::string>();
}

// Runs fn and turns its Result into a response; a role requirement is checked first.
template <typename Fn>
Handler guarded(const char* role, Fn fn) {
  return [role, fn = std::move(fn)](const HttpRequest& req) -> HttpResponse {
    if (auto refused = require_role(req, role)) return *refused;
    Result<HttpResponse> out = fn(req);
    if (!out.ok()) return HttpResponse::from_status(out.status());
    return std::move(*out);
  };
}

}  // namespace

void add_deployment_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  router.get("/api/deployments", guarded("viewer", [&db, &blobs](const HttpRequest&) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(std::vector<registry::Deployment> all, registry::DeploymentRegistry(db, blobs).list());
    Json out = Json::array();
    for (const auto& d : all) out.push_back(registry::to_json(d));
    return HttpResponse::json(200, Json{{"deployments", out}});
  }));
  router.get("/api/deployments/{name}", guarded("viewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(registry::Deployment d, registry::DeploymentRegistry(db, blobs).get(req.path_params.at("name")));
    return HttpResponse::json(200, registry::to_json(d));
  }));
  // {"version": N, "weight": W, "model": M}: one target's weight (0 removes it); the
  // model defaults to the deployment's, or to its name for a new one.
  router.put("/api/deployments/{name}/targets", guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(Json body, object_body(req));
    if (!body.contains("version") || !body["version"].is_number_integer() || !body.contains("weight") ||
        !body["weight"].is_number_integer()) {
      return invalid_argument("the body must be {\"version\": N, \"weight\": W} (and optionally \"model\")");
    }
    const std::string& name = req.path_params.at("name");
    registry::DeploymentRegistry deployments(db, blobs);
    auto existing = deployments.get(name);
    KEEL_ASSIGN_OR_RETURN(std::string model, string_field(body, "model", existing.ok() ? existing->model : name));
    KEEL_ASSIGN_OR_RETURN(registry::Deployment d,
                          deployments.set_target(name, model, body["version"].get<int64_t>(),
                                                 body["weight"].get<int64_t>(), req.user));
    return HttpResponse::json(200, registry::to_json(d));
  }));
  router.del("/api/deployments/{name}", guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_RETURN_IF_ERROR(registry::DeploymentRegistry(db, blobs).remove(req.path_params.at("name"), req.user));
    return HttpResponse::json(200, Json{{"deleted", req.path_params.at("name")}});
  }));
}

void add_registry_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  const std::string base = "/api/models/{name}";
  router.get(base + "/policy", guarded("viewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(registry::Policy p, registry::Governance(db, blobs).policy(req.path_params.at("name")));
    return HttpResponse::json(200, registry::to_json(p));
  }));
  router.put(base + "/policy", guarded("admin", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(Json body, object_body(req));
    KEEL_ASSIGN_OR_RETURN(registry::Policy p, registry::parse_policy(body));
    KEEL_RETURN_IF_ERROR(registry::Governance(db, blobs).set_policy(req.path_params.at("name"), p, req.user));
    return HttpResponse::json(200, registry::to_json(p));
  }));
  router.post(base + "/versions/{version}/checks", guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
    KEEL_ASSIGN_OR_RETURN(Json body, object_body(req));
    registry::CheckResult check;
    KEEL_ASSIGN_OR_RETURN(check.name, string_field(body, "name", "", true));
    if (!body.contains("passed") || !body["passed"].is_boolean()) return invalid_argument("field 'passed' must be true or false");
    check.passed = body["passed"].get<bool>();
    if (body.contains("value") && !body["value"].is_null()) {
      if (!body["value"].is_number()) return invalid_argument("field 'value' must be a number");
      check.value = body["value"].get<double>();
    }
    KEEL_ASSIGN_OR_RETURN(check.details, string_field(body, "details", ""));
    KEEL_RETURN_IF_ERROR(registry::Governance(db, blobs).record_check(req.path_params.at("name"), version, check, req.user));
    return HttpResponse::json(201, Json{{"name", check.name}, {"passed", check.passed}});
  }));
  router.get(base + "/versions/{version}/checks", guarded("viewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
    KEEL_ASSIGN_OR_RETURN(std::vector<registry::CheckResult> all,
                          registry::Governance(db, blobs).checks(req.path_params.at("name"), version));
    Json out = Json::array();
    for (const auto& c : all) {
      out.push_back({{"name", c.name}, {"passed", c.passed}, {"value", c.value ? Json(*c.value) : Json(nullptr)},
                     {"details", c.details}, {"recorded_at", c.recorded_at}, {"recorded_by", c.recorded_by}});
    }
    return HttpResponse::json(200, Json{{"checks", out}});
  }));
  router.post(base + "/versions/{version}/promotion-requests",
              guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
                KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
                KEEL_ASSIGN_OR_RETURN(Json body, object_body(req));
                KEEL_ASSIGN_OR_RETURN(std::string alias, string_field(body, "alias", "production"));
                KEEL_ASSIGN_OR_RETURN(std::string comment, string_field(body, "comment", ""));
                KEEL_ASSIGN_OR_RETURN(registry::PromotionRequest r,
                                      registry::Governance(db, blobs).request_promotion(req.path_params.at("name"), version,
                                                                                        alias, comment, req.user));
                return HttpResponse::json(201, registry::to_json(r));
              }));
  router.post(base + "/versions/{version}/reviews", guarded("reviewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
    KEEL_ASSIGN_OR_RETURN(Json body, object_body(req));
    KEEL_ASSIGN_OR_RETURN(std::string alias, string_field(body, "alias", "production"));
    KEEL_ASSIGN_OR_RETURN(std::string decision, string_field(body, "decision", "", true));
    if (decision != "approve" && decision != "reject") return invalid_argument("decision must be 'approve' or 'reject'");
    KEEL_ASSIGN_OR_RETURN(std::string comment, string_field(body, "comment", ""));
    auto reviewer = auth::UserDirectory(db).get_user(req.user);
    if (!reviewer.ok()) {
      return permission_denied("reviews need an authenticated Keel user (start the server with --auth required)");
    }
    KEEL_ASSIGN_OR_RETURN(registry::PromotionRequest r,
                          registry::Governance(db, blobs).review(req.path_params.at("name"), version, alias,
                                                                 decision == "approve", comment, *reviewer));
    return HttpResponse::json(200, registry::to_json(r));
  }));
  router.get(base + "/promotion-requests", guarded("viewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(std::vector<registry::PromotionRequest> all,
                          registry::Governance(db, blobs).requests(req.path_params.at("name")));
    Json out = Json::array();
    for (const auto& r : all) out.push_back(registry::to_json(r));
    return HttpResponse::json(200, Json{{"requests", out}});
  }));
  router.put(base + "/aliases/{alias}", guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(Json body, object_body(req));
    if (!body.contains("version") || !body["version"].is_number_integer()) {
      return invalid_argument("the body must be {\"version\": N}");
    }
    int64_t version = body["version"].get<int64_t>();
    KEEL_RETURN_IF_ERROR(registry::ModelRegistry(db, blobs).set_alias(req.path_params.at("name"),
                                                                      req.path_params.at("alias"), version, req.user));
    return HttpResponse::json(200, Json{{"alias", req.path_params.at("alias")}, {"version", version}});
  }));
  router.del(base + "/aliases/{alias}", guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_RETURN_IF_ERROR(registry::ModelRegistry(db, blobs).delete_alias(req.path_params.at("name"),
                                                                         req.path_params.at("alias"), req.user));
    return HttpResponse::json(200, Json{{"deleted", req.path_params.at("alias")}});
  }));
  router.post(base + "/versions/{version}/archive", guarded("editor", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
    KEEL_RETURN_IF_ERROR(registry::Governance(db, blobs).archive(req.path_params.at("name"), version, req.user));
    return HttpResponse::json(200, Json{{"archived", version}});
  }));
  router.get(base + "/versions/{version}/lineage", guarded("viewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
    KEEL_ASSIGN_OR_RETURN(Json trace, registry::Lineage(db, blobs).trace(req.path_params.at("name"), version));
    return HttpResponse::json(200, trace);
  }));
  router.get(base + "/versions/{version}/card", guarded("viewer", [&db, &blobs](const HttpRequest& req) -> Result<HttpResponse> {
    KEEL_ASSIGN_OR_RETURN(int64_t version, version_param(req));
    KEEL_ASSIGN_OR_RETURN(std::string card, registry::Lineage(db, blobs).model_card(req.path_params.at("name"), version));
    return HttpResponse::text(200, std::move(card), "text/markdown; charset=utf-8");
  }));
  router.get("/api/audit", guarded("reviewer", [&db](const HttpRequest& req) -> Result<HttpResponse> {
    store::AuditQuery q;
    auto text = [&](const char* name) { return req.query.count(name) ? req.query.at(name) : std::string(); };
    auto number = [&](const char* name, int64_t fallback) -> Result<int64_t> {
      std::string v = text(name);
      if (v.empty()) return fallback;
      if (v.size() > 15 || v.find_first_not_of("0123456789") != std::string::npos) {
        return invalid_argument(std::string("'") + name + "' must be a number");
      }
      return std::stoll(v);
    };
    q.actor = text("actor");
    q.action_prefix = text("action");
    q.target = text("target");
    KEEL_ASSIGN_OR_RETURN(q.since, number("since", 0));
    KEEL_ASSIGN_OR_RETURN(q.until, number("until", 0));
    KEEL_ASSIGN_OR_RETURN(q.limit, number("limit", 100));
    KEEL_ASSIGN_OR_RETURN(std::vector<store::AuditEvent> events, store::list_audit_events(db, q));
    Json out = Json::array();
    for (const auto& e : events) out.push_back(store::to_json(e));
    return HttpResponse::json(200, Json{{"events", out}});
  }));
}

}  // namespace keel::server
