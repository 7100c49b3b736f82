// Router matching, request/response helpers and URL decoding. Nothing here touches
// the network: the server (http_server.cpp) and the tests both go through these.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>

#include <spdlog/spdlog.h>

#include "keel/server/http.h"

namespace keel::server {

namespace {

// The path part of a request target, still percent-encoded. Handles origin-form
// ("/a?b") and absolute-form ("http://host/a?b", which a proxy-style client may send).
std::string_view raw_path_of(std::string_view target) {
  size_t end = target.find_first_of("?#");
  std::string_view path = target.substr(0, end);
  size_t scheme = path.find("://");
  if (!path.starts_with("/") && scheme != std::string_view::npos) {
    size_t slash = path.find('/', scheme + 3);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  return path;
}

std::string_view raw_query_of(std::string_view target) {
  size_t question = target.find('?');
  if (question == std::string_view::npos) return {};
  std::string_view query = target.substr(question + 1);
  return query.substr(0, query.find('#'));
}

// "/a/b/" -> {"a", "b", ""}; "/" and "" -> {}. Empty segments are kept so that
// "/models/" does not silently match "/models".
std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.starts_with("/")) path.remove_prefix(1);
  if (path.empty()) return segments;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      segments.push_back(path.substr(start));
      return segments;
    }
    segments.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

bool is_param(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}
bool is_rest_param(std::string_view segment) { return is_param(segment) && segment.ends_with("...}"); }
std::string param_name(std::string_view segment) {
  segment = segment.substr(1, segment.size() - 2);
  if (segment.ends_with("...")) segment.remove_suffix(3);
  return std::string(segment);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// How well a route fits: one rank per pattern segment (literal 0, parameter 1, rest 2),
// compared lexicographically, so the first place where two patterns differ decides and
// a literal there wins.
using Specificity = std::vector<int>;

}  // namespace

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int high = hex_value(text[i + 1]);
      int low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> result;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
    result[std::move(key)] = std::move(value);
  }
  return result;
}

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  auto it = headers.find(name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

Result<Json> HttpRequest::json_body() const {
  if (body.empty()) return invalid_argument("request body is empty; expected a JSON document");
  return parse_json(body);
}

void HttpRequest::set_target(std::string raw_target) {
  target = std::move(raw_target);
  path = percent_decode(raw_path_of(target));
  query = parse_query(raw_query_of(target));
}

HttpResponse HttpResponse::json(int status, const Json& body) {
  HttpResponse response;
  response.status = status;
  response.body = dump_json(body);
  return response;
}

HttpResponse HttpResponse::text(int status, std::string body, std::string content_type) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.content_type = std::move(content_type);
  return response;
}

HttpResponse HttpResponse::error(int status, std::string_view code, std::string_view message) {
  return json(status, Json{{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}});
}

HttpResponse HttpResponse::from_status(const Status& status) {
  int http_status = 500;
  switch (status.code()) {
    case ErrorCode::kOk: return json(200, Json{{"status", "ok"}});
    case ErrorCode::kInvalidArgument: http_status = 400; break;
    case ErrorCode::kNotFound: http_status = 404; break;
    case ErrorCode::kAlreadyExists: http_status = 409; break;
    case ErrorCode::kFailedPrecondition: http_status = 409; break;
    case ErrorCode::kPermissionDenied: http_status = 403; break;
    case ErrorCode::kResourceExhausted: http_status = 429; break;
    case ErrorCode::kUnavailable: http_status = 503; break;
    case ErrorCode::kDeadlineExceeded: http_status = 504; break;
    case ErrorCode::kCancelled: http_status = 499; break;
    case ErrorCode::kCorrupt:
    case ErrorCode::kIo:
    case ErrorCode::kInternal: http_status = 500; break;
  }
  return error(http_status, error_code_name(status.code()), status.message());
}

void Router::add(std::string method, std::string pattern, Handler handler) {
  // A bad pattern is a programming error found at start-up, not an input error.
  if (!pattern.starts_with("/")) {
    std::fprintf(stderr, "keel: route pattern must start with '/': %s\n", pattern.c_str());
    std::abort();
  }
  Route route;
  route.method = std::move(method);
  for (std::string_view segment : split_segments(pattern)) route.segments.emplace_back(segment);
  for (size_t i = 0; i + 1 < route.segments.size(); ++i) {
    if (is_rest_param(route.segments[i])) {
      std::fprintf(stderr, "keel: a {rest...} parameter must be the last segment: %s\n", pattern.c_str());
      std::abort();
    }
  }
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
}

HttpResponse Router::dispatch(HttpRequest& request) const {
  if (guard_) {
    if (std::optional<HttpResponse> refused = guard_(request)) return std::move(*refused);
  }
  // Match on the still-encoded path so that "%2F" inside a parameter stays inside it;
  // each segment is decoded on its own. Requests built without a target use path.
  const bool encoded = !request.target.empty();
  std::string_view raw_path = encoded ? raw_path_of(request.target) : std::string_view(request.path);
  std::vector<std::string_view> segments = split_segments(raw_path);
  auto decode = [&](std::string_view s) { return encoded ? percent_decode(s) : std::string(s); };
  std::vector<std::string> decoded;
  decoded.reserve(segments.size());
  for (std::string_view s : segments) decoded.push_back(decode(s));

  auto matches = [&](const Route& route, Specificity* specificity) {
    specificity->clear();
    for (size_t i = 0; i < route.segments.size(); ++i) {
      const std::string& pattern = route.segments[i];
      if (is_rest_param(pattern)) {
        if (i >= segments.size()) return false;  // the rest holds at least one (maybe empty) segment
        specificity->push_back(2);
        return true;
      }
      if (i >= segments.size()) return false;
      if (is_param(pattern)) {
        specificity->push_back(1);
      } else if (pattern == decoded[i]) {
        specificity->push_back(0);
      } else {
        return false;
      }
    }
    return route.segments.size() == segments.size();
  };

  // HEAD is served by the GET handler when no HEAD route exists; the server drops the body.
  auto find_best = [&](std::string_view method) -> const Route* {
    const Route* best = nullptr;
    Specificity best_specificity, specificity;
    for (const Route& route : routes_) {
      if (route.method != method || !matches(route, &specificity)) continue;
      if (best == nullptr || specificity < best_specificity) {
        best = &route;
        best_specificity = specificity;
      }
    }
    return best;
  };
  const Route* route = find_best(request.method);
  if (route == nullptr && request.method == "HEAD") route = find_best("GET");

  if (route == nullptr) {
    std::set<std::string> allowed;
    Specificity ignored;
    for (const Route& candidate : routes_) {
      if (matches(candidate, &ignored)) allowed.insert(candidate.method);
    }
    if (allowed.empty()) return HttpResponse::error(404, "not_found", "no route for " + request.path);
    if (allowed.count("GET")) allowed.insert("HEAD");
    std::string allow;
    for (const std::string& method : allowed) allow += (allow.empty() ? "" : ", ") + method;
    HttpResponse response =
        HttpResponse::error(405, "method_not_allowed", request.method + " is not allowed on " + request.path);
    response.headers["Allow"] = allow;
    return response;
  }

  request.path_params.clear();
  for (size_t i = 0; i < route->segments.size(); ++i) {
    const std::string& pattern = route->segments[i];
    if (is_rest_param(pattern)) {
      std::string rest;
      for (size_t j = i; j < segments.size(); ++j) rest += (j == i ? "" : "/") + decoded[j];
      request.path_params[param_name(pattern)] = std::move(rest);
    } else if (is_param(pattern)) {
      request.path_params[param_name(pattern)] = decoded[i];
    }
  }

  // Handlers are ours, but an escaping exception must not take down an I/O thread.
  try {
    return route->handler(request);
  } catch (const std::exception& e) {
    spdlog::error("handler for {} {} threw: {}", request.method, request.path, e.what());
    return HttpResponse::error(500, "internal", std::string("handler failed: ") + e.what());
  } catch (...) {
    spdlog::error("handler for {} {} threw a non-standard exception", request.method, request.path);
    return HttpResponse::error(500, "internal", "handler failed with an unknown exception");
  }
}

}  // namespace keel::server
