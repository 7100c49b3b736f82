// Authentication and coarse authorisation for every HTTP request. A request names its
// user with an API key: "Authorization: Bearer KEY" (what the openai client and
// MLFLOW_TRACKING_TOKEN send), HTTP Basic with the key as password (MLFLOW_TRACKING_USERNAME /
// MLFLOW_TRACKING_PASSWORD), or "x-api-key: KEY". Reads need the viewer role, writes the
// editor role; finer rules (reviewers approve, admins set policies) are checked where
// they apply. /health and /version stay open. With auth off, every request acts as
// "anonymous" with the admin role (a single-user machine).
#pragma once

#include "keel/server/http.h"
#include "keel/store/db.h"

namespace keel::server {

enum class AuthMode { kOff, kRequired };

// db must outlive the router the guard is installed on.
Router::Guard make_auth_guard(store::Db& db, AuthMode mode);

// For handlers: nullopt when request.role grants `role`, else a 403 response (MLflow's
// error shape under /api/2.0/mlflow/). role is "viewer", "editor", "reviewer" or "admin".
std::optional<HttpResponse> require_role(const HttpRequest& request, std::string_view role);

}  // namespace keel::server
