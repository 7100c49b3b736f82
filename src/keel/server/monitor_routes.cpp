#include "keel/server/monitor_routes.h"

#include "keel/monitor/feedback.h"
#include "keel/monitor/summary.h"
#include "keel/monitor/time_window.h"
#include "keel/monitor/traces.h"

namespace keel::server {
namespace {

std::string query(const HttpRequest& req, const char* name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? std::string() : it->second;
}

// An optional integer query parameter; "" when absent.
Result<std::optional<int64_t>> int_param(const HttpRequest& req, const char* name) {
  std::string text = query(req, name);
  if (text.empty()) return std::optional<int64_t>();
  size_t start = text[0] == '-' ? 1 : 0;
  if (text.size() == start || text.size() > 18 || text.find_first_not_of("0123456789", start) != std::string::npos) {
    return invalid_argument(std::string(name) + " must be an integer, not '" + text + "'");
  }
  return std::optional<int64_t>(std::stoll(text));
}

Result<std::optional<int64_t>> time_param(const HttpRequest& req, const char* name) {
  std::string text = query(req, name);
  if (text.empty()) return std::optional<int64_t>();
  auto t = monitor::parse_time_ms(text);
  if (!t.ok()) return t.status().with_context(name);
  return std::optional<int64_t>(*t);
}

Result<monitor::TraceFilter> trace_filter(const HttpRequest& req) {
  monitor::TraceFilter f;
  f.model = query(req, "model");
  f.user = query(req, "user");
  f.endpoint = query(req, "endpoint");
  f.page_token = query(req, "page_token");
  KEEL_ASSIGN_OR_RETURN(f.version, int_param(req, "version"));
  KEEL_ASSIGN_OR_RETURN(auto status, int_param(req, "status"));
  if (status) f.status = static_cast<int>(*status);
  KEEL_ASSIGN_OR_RETURN(auto limit, int_param(req, "limit"));
  if (limit) f.limit = *limit;
  KEEL_ASSIGN_OR_RETURN(f.since_ms, time_param(req, "since"));
  KEEL_ASSIGN_OR_RETURN(f.until_ms, time_param(req, "until"));
  std::string text = query(req, "include_text");
  if (text == "false" || text == "0") {
    f.include_text = false;
  } else if (!text.empty() && text != "true" && text != "1") {
    return invalid_argument("include_text must be true or false, not '" + text + "'");
  }
  return f;
}

Result<monitor::FeedbackFilter> feedback_filter(const HttpRequest& req) {
  monitor::FeedbackFilter f;
  f.trace_id = query(req, "trace_id");
  f.model = query(req, "model");
  f.user = query(req, "user");
  f.kind = query(req, "kind");
  f.page_token = query(req, "page_token");
  KEEL_ASSIGN_OR_RETURN(f.version, int_param(req, "version"));
  KEEL_ASSIGN_OR_RETURN(auto limit, int_param(req, "limit"));
  if (limit) f.limit = *limit;
  return f;
}

Json token_json(const std::string& token) {
  return token.empty() ? Json(nullptr) : Json(token);
}

// A JSON body field that must be a string when present.
Status optional_string(const Json& body, const char* name, std::string* out) {
  if (!body.contains(name) || body[name].is_null()) return Status::Ok();
  if (!body[name].is_string()) return invalid_argument(std::string(name) + " must be a string");
  *out = body[name].get<std::string>();
  return Status::Ok();
}

Result<monitor::NewFeedback> new_feedback(const HttpRequest& req) {
  KEEL_ASSIGN_OR_RETURN(Json body, req.json_body());
  if (!body.is_object()) {
    return invalid_argument("the body must be {\"trace_id\": \"...\", \"score\": 1, \"kind\": \"thumbs\"}");
  }
  monitor::NewFeedback f;
  if (!body.contains("trace_id") || !body["trace_id"].is_string()) {
    return invalid_argument("trace_id (the x-request-id of the answer) must be a string");
  }
  f.trace_id = body["trace_id"].get<std::string>();
  if (!body.contains("score") || !body["score"].is_number_integer()) {
    return invalid_argument("score must be an integer: -1 or 1 for thumbs, 1..5 for a rating");
  }
  int64_t score = body["score"].get<int64_t>();
  if (score < -1000 || score > 1000) return invalid_argument("score " + std::to_string(score) + " is out of range");
  f.score = static_cast<int>(score);
  KEEL_RETURN_IF_ERROR(optional_string(body, "kind", &f.kind));
  KEEL_RETURN_IF_ERROR(optional_string(body, "comment", &f.comment));
  KEEL_RETURN_IF_ERROR(optional_string(body, "corrected_answer", &f.corrected_answer));
  f.user = req.user;
  return f;
}

}  // namespace

void add_monitor_routes(Router& router, store::Db& db) {
  router.get("/api/traces", [&db](const HttpRequest& req) {
    auto filter = trace_filter(req);
    if (!filter.ok()) return HttpResponse::from_status(filter.status());
    auto page = monitor::TraceStore(db).list(*filter);
    if (!page.ok()) return HttpResponse::from_status(page.status());
    Json traces = Json::array();
    for (const auto& t : page->traces) traces.push_back(monitor::to_json(t));
    return HttpResponse::json(200, {{"traces", traces}, {"next_page_token", token_json(page->next_page_token)}});
  });
  router.get("/api/traces/{id}", [&db](const HttpRequest& req) {
    auto trace = monitor::TraceStore(db).get(req.path_params.at("id"));
    if (!trace.ok()) return HttpResponse::from_status(trace.status());
    monitor::FeedbackFilter filter;
    filter.trace_id = trace->id;
    filter.limit = 1000;
    auto feedback = monitor::FeedbackStore(db).list(filter);
    if (!feedback.ok()) return HttpResponse::from_status(feedback.status());
    Json out = monitor::to_json(*trace);
    out["feedback"] = Json::array();
    for (const auto& f : feedback->feedback) out["feedback"].push_back(monitor::to_json(f));
    return HttpResponse::json(200, out);
  });
  router.post("/api/feedback", [&db](const HttpRequest& req) {
    auto spec = new_feedback(req);
    if (!spec.ok()) return HttpResponse::from_status(spec.status());
    auto added = monitor::FeedbackStore(db).add(*spec);
    if (!added.ok()) return HttpResponse::from_status(added.status());
    return HttpResponse::json(201, monitor::to_json(*added));
  });
  router.get("/api/feedback", [&db](const HttpRequest& req) {
    auto filter = feedback_filter(req);
    if (!filter.ok()) return HttpResponse::from_status(filter.status());
    auto page = monitor::FeedbackStore(db).list(*filter);
    if (!page.ok()) return HttpResponse::from_status(page.status());
    Json feedback = Json::array();
    for (const auto& f : page->feedback) feedback.push_back(monitor::to_json(f));
    return HttpResponse::json(200, {{"feedback", feedback}, {"next_page_token", token_json(page->next_page_token)}});
  });
  router.get("/api/monitor/summary", [&db](const HttpRequest& req) {
    monitor::SummaryRequest request;
    request.model = query(req, "model");
    auto version = int_param(req, "version");
    if (!version.ok()) return HttpResponse::from_status(version.status());
    request.version = *version;
    std::string window = query(req, "window");
    if (window.empty()) window = "1h";
    auto window_ms = monitor::parse_window_ms(window);
    if (!window_ms.ok()) return HttpResponse::from_status(window_ms.status());
    request.window_ms = *window_ms;
    auto summary = monitor::summarize(db, request);
    if (!summary.ok()) return HttpResponse::from_status(summary.status());
    Json out = monitor::to_json(*summary);
    out["window"] = window;
    return HttpResponse::json(200, out);
  });
}

}  // namespace keel::server
