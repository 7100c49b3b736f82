#include "keel/server/auth_guard.h"

#include <cstdint>

#include "keel/auth/users.h"
#include "keel/server/openai_routes.h"

namespace keel::server {
namespace {

bool is_mlflow_path(const std::string& path) {
  return path.rfind("/api/2.0/mlflow", 0) == 0 || path.rfind("/ajax-api/2.0/mlflow", 0) == 0 ||
         path.rfind("/api/3.0/mlflow", 0) == 0;
}

// The OpenAI-compatible API: stock clients read its own error shape.
bool is_openai_path(const std::string& path) { return path == "/v1" || path.rfind("/v1/", 0) == 0; }

HttpResponse refuse(const HttpRequest& request, int status, std::string_view message) {
  HttpResponse r;
  if (is_openai_path(request.path)) {
    r = openai_error(status, message, status == 401 ? "invalid_request_error" : "permission_error",
                     status == 401 ? "invalid_api_key" : "insufficient_permissions");
  } else if (is_mlflow_path(request.path)) {
    r = HttpResponse::json(status, Json{{"error_code", status == 401 ? "UNAUTHENTICATED" : "PERMISSION_DENIED"},
                                        {"message", message}});
  } else {
    r = HttpResponse::error(status, status == 401 ? "unauthenticated" : "permission_denied", message);
  }
  if (status == 401) r.headers["WWW-Authenticate"] = "Bearer realm=\"keel\"";
  return r;
}

std::string decode_base64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) continue;  // padding and whitespace
    buffer = ((buffer << 6) | static_cast<uint32_t>(v)) & 0xFFFFFFu;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

// The API key a request carries, or "".
std::string presented_key(const HttpRequest& request) {
  if (auto auth = request.header("authorization")) {
    std::string_view v(*auth);
    auto starts = [&](std::string_view prefix) {
      if (v.size() < prefix.size()) return false;
      for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(v[i])) != prefix[i]) return false;
      }
      return true;
    };
    if (starts("bearer ")) return std::string(v.substr(7));
    if (starts("basic ")) {
      std::string pair = decode_base64(v.substr(6));
      size_t colon = pair.find(':');
      return colon == std::string::npos ? pair : pair.substr(colon + 1);
    }
  }
  if (auto key = request.header("x-api-key")) return *key;
  return "";
}

}  // namespace

std::optional<HttpResponse> require_role(const HttpRequest& request, std::string_view role) {
  auto need = auth::parse_role(role);
  auto have = auth::parse_role(request.role);
  if (need.ok() && have.ok() && auth::role_at_least(*have, *need)) return std::nullopt;
  std::string who = request.user.empty() ? "this request" : "user '" + request.user + "'";
  return refuse(request, 403, who + " needs the " + std::string(role) + " role for " + request.method + " " +
                                  request.path + " (has: " + (request.role.empty() ? "none" : request.role) + ")");
}

Result<AuthMode> resolve_auth_mode(store::Db& db, const std::string& setting, const std::string& host) {
  if (setting == "required") return AuthMode::kRequired;
  if (setting == "off") return AuthMode::kOff;
  if (setting != "auto") return invalid_argument("--auth must be auto, required or off, not '" + setting + "'");
  const bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  if (!loopback) return AuthMode::kRequired;
  KEEL_ASSIGN_OR_RETURN(bool has_users, auth::UserDirectory(db).has_users());
  return has_users ? AuthMode::kRequired : AuthMode::kOff;
}

Router::Guard make_auth_guard(store::Db& db, AuthMode mode) {
  return [&db, mode](HttpRequest& request) -> std::optional<HttpResponse> {
    if (request.path == "/health" || request.path == "/version") return std::nullopt;
    if (mode == AuthMode::kOff) {
      request.user = "anonymous";
      request.role = "admin";
      return std::nullopt;
    }
    std::string key = presented_key(request);
    if (key.empty()) {
      return refuse(request, 401,
                    "this Keel server requires an API key: send 'Authorization: Bearer KEY' (create one with `keel keys "
                    "create --user NAME`)");
    }
    auth::UserDirectory users(db);
    auto owner = users.authenticate_key(key);
    if (!owner.ok()) return refuse(request, 401, owner.status().message());
    request.user = owner->user.name;
    request.role = std::string(auth::role_name(owner->user.role));
    request.key_id = owner->key_id;
    request.key_requests_per_minute = owner->limits.requests_per_minute;
    request.key_tokens_per_minute = owner->limits.tokens_per_minute;
    bool read = request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS";
    // MLflow's search endpoints are POSTs that only read.
    bool mlflow_read = request.method == "POST" && is_mlflow_path(request.path) &&
                       (request.path.ends_with("/search") || request.path.ends_with("/get-latest-versions"));
    // Calling a model (and rating its answers) is what the user role is for.
    bool use = request.method == "POST" && (is_openai_path(request.path) || request.path == "/api/feedback");
    return require_role(request, read || mlflow_read ? "viewer" : use ? "user" : "editor");
  };
}

}  // namespace keel::server
