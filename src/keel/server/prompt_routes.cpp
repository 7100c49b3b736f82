#include "keel/server/prompt_routes.h"

#include "keel/prompts/prompt_registry.h"
#include "keel/registry/model_registry.h"

namespace keel::server {
namespace {

// Who is acting, for the audit log, until API keys name users.

HttpResponse bad_request(const std::string& message) { return HttpResponse::error(400, "invalid_argument", message); }

// {"template": "..."} or {"messages": [...]}, "commit_message", "model_parameters", "tags".
Result<prompts::NewPromptVersion> parse_new_version(const Json& body) {
  if (!body.is_object()) return invalid_argument("the body must be a JSON object");
  prompts::NewPromptVersion spec;
  bool has_template = body.contains("template") && !body["template"].is_null();
  bool has_messages = body.contains("messages") && !body["messages"].is_null();
  if (has_template == has_messages) {
    return invalid_argument("give exactly one of \"template\" (a string) or \"messages\" (a list of {role, content})");
  }
  if (has_template) {
    if (!body["template"].is_string()) return invalid_argument("\"template\" must be a string");
    spec.template_text = body["template"].get<std::string>();
  } else {
    KEEL_ASSIGN_OR_RETURN(std::vector<prompts::ChatMessage> messages, prompts::messages_from_json(body["messages"]));
    spec.messages = std::move(messages);
  }
  if (body.contains("commit_message") && !body["commit_message"].is_null()) {
    if (!body["commit_message"].is_string()) return invalid_argument("\"commit_message\" must be a string");
    spec.commit_message = body["commit_message"].get<std::string>();
  }
  if (body.contains("model_parameters")) spec.model_parameters = body["model_parameters"];
  if (body.contains("tags") && !body["tags"].is_null()) {
    if (!body["tags"].is_object()) return invalid_argument("\"tags\" must be an object of string values");
    for (const auto& [key, value] : body["tags"].items()) {
      if (!value.is_string()) return invalid_argument("tag '" + key + "' must have a string value");
      spec.tags.push_back({key, value.get<std::string>()});
    }
  }
  return spec;
}

}  // namespace

void add_prompt_routes(Router& router, store::Db& db, store::ArtifactStore& blobs) {
  router.get("/api/prompts", [&db, &blobs](const HttpRequest&) {
    registry::ModelRegistry models(db, blobs);
    auto list = prompts::PromptRegistry(models).list();
    if (!list.ok()) return HttpResponse::from_status(list.status());
    Json out = Json::array();
    for (const auto& p : *list) out.push_back(prompts::to_json(p));
    return HttpResponse::json(200, {{"prompts", out}});
  });
  router.get("/api/prompts/{name}", [&db, &blobs](const HttpRequest& req) {
    registry::ModelRegistry models(db, blobs);
    auto [name, ref] = prompts::split_prompt_reference(req.path_params.at("name"));
    auto v = prompts::PromptRegistry(models).get(name, ref);
    if (!v.ok()) return HttpResponse::from_status(v.status());
    return HttpResponse::json(200, prompts::to_json(*v));
  });
  router.get("/api/prompts/{name}/versions/{ref}", [&db, &blobs](const HttpRequest& req) {
    registry::ModelRegistry models(db, blobs);
    auto v = prompts::PromptRegistry(models).get(req.path_params.at("name"), req.path_params.at("ref"));
    if (!v.ok()) return HttpResponse::from_status(v.status());
    return HttpResponse::json(200, prompts::to_json(*v));
  });
  router.post("/api/prompts/{name}/versions", [&db, &blobs](const HttpRequest& req) {
    auto body = req.json_body();
    if (!body.ok()) return HttpResponse::from_status(body.status());
    auto spec = parse_new_version(*body);
    if (!spec.ok()) return HttpResponse::from_status(spec.status());
    registry::ModelRegistry models(db, blobs);
    auto v = prompts::PromptRegistry(models).create_version(req.path_params.at("name"), *spec, req.user.empty() ? std::string("anonymous") : req.user);
    if (!v.ok()) return HttpResponse::from_status(v.status());
    return HttpResponse::json(201, prompts::to_json(*v));
  });
  router.post("/api/prompts/{name}/render", [&db, &blobs](const HttpRequest& req) {
    auto body = req.json_body();
    if (!body.ok()) return HttpResponse::from_status(body.status());
    if (!body->is_object()) return bad_request("the body must be {\"version\": ref (optional), \"variables\": {...}}");
    std::string ref;
    if (body->contains("version") && !(*body)["version"].is_null()) {
      const Json& v = (*body)["version"];
      if (v.is_number_integer()) {
        ref = std::to_string(v.get<int64_t>());
      } else if (v.is_string()) {
        ref = v.get<std::string>();
      } else {
        return bad_request("\"version\" must be a version number or an alias");
      }
    }
    Json variables = body->contains("variables") ? (*body)["variables"] : Json::object();
    registry::ModelRegistry models(db, blobs);
    auto r = prompts::PromptRegistry(models).render(req.path_params.at("name"), ref, variables);
    if (!r.ok()) return HttpResponse::from_status(r.status());
    return HttpResponse::json(200, prompts::to_json(*r));
  });
  router.get("/api/prompts/{name}/diff", [&db, &blobs](const HttpRequest& req) {
    if (!req.query.count("from") || !req.query.count("to")) return bad_request("give ?from=VERSION&to=VERSION");
    registry::ModelRegistry models(db, blobs);
    auto d = prompts::PromptRegistry(models).diff(req.path_params.at("name"), req.query.at("from"), req.query.at("to"));
    if (!d.ok()) return HttpResponse::from_status(d.status());
    return HttpResponse::json(200, prompts::to_json(*d));
  });
  router.put("/api/prompts/{name}/aliases/{alias}", [&db, &blobs](const HttpRequest& req) {
    auto body = req.json_body();
    if (!body.ok()) return HttpResponse::from_status(body.status());
    if (!body->is_object() || !body->contains("version")) return bad_request("the body must be {\"version\": N}");
    const Json& v = (*body)["version"];
    int64_t version = 0;
    if (v.is_number_integer()) {
      version = v.get<int64_t>();
    } else if (v.is_string() && !v.get<std::string>().empty() && v.get<std::string>().size() <= 9 &&
               v.get<std::string>().find_first_not_of("0123456789") == std::string::npos) {
      version = std::stoll(v.get<std::string>());
    } else {
      return bad_request("\"version\" must be a version number");
    }
    registry::ModelRegistry models(db, blobs);
    prompts::PromptRegistry prompt_registry(models);
    const std::string& name = req.path_params.at("name");
    Status st = prompt_registry.set_alias(name, req.path_params.at("alias"), version, req.user.empty() ? std::string("anonymous") : req.user);
    if (!st.ok()) return HttpResponse::from_status(st);
    auto got = prompt_registry.get(name, req.path_params.at("alias"));
    if (!got.ok()) return HttpResponse::from_status(got.status());
    return HttpResponse::json(200, prompts::to_json(*got));
  });
  router.del("/api/prompts/{name}/aliases/{alias}", [&db, &blobs](const HttpRequest& req) {
    registry::ModelRegistry models(db, blobs);
    Status st = prompts::PromptRegistry(models).delete_alias(req.path_params.at("name"), req.path_params.at("alias"), req.user.empty() ? std::string("anonymous") : req.user);
    if (!st.ok()) return HttpResponse::from_status(st);
    return HttpResponse::json(200, Json::object());
  });
}

}  // namespace keel::server
