// Authentication and coarse authorisation for every HTTP request. A request names its
// user with an API key: "Authorization: Bearer KEY" (what the openai client and
// MLFLOW_TRACKING_TOKEN send), HTTP Basic with the key as password (MLFLOW_TRACKING_USERNAME /
// MLFLOW_TRACKING_PASSWORD), or "x-api-key: KEY". Reads need the viewer role, calls to
// models (POST /v1/..., /api/feedback) the user role, other writes the editor role (under
// /v1/ refusals come in OpenAI's error shape); finer rules (reviewers approve, admins set policies) are checked where
// they apply. /health and /version stay open. With auth off, every request acts as
// "anonymous" with the admin role (a single-user machine).
#pragma once

#include "keel/server/http.h"
#include "keel/store/db.h"

namespace keel::server {

enum class AuthMode { kOff, kRequired };

// The --auth setting: "required" and "off" say so; "auto" requires API keys once the
// store has users, and always when the server listens on anything but loopback (a
// server reachable from other machines never answers strangers).
Result<AuthMode> resolve_auth_mode(store::Db& db, const std::string& setting, const std::string& host);

// db must outlive the router the guard is installed on.
Router::Guard make_auth_guard(store::Db& db, AuthMode mode);

// For handlers: nullopt when request.role grants `role`, else a 403 response (MLflow's
// error shape under /api/2.0/mlflow/). role is "viewer", "editor", "reviewer" or "admin".
std::optional<HttpResponse> require_role(const HttpRequest& request, std::string_view role);

}  // namespace keel::server
