// Keel's own REST API under /api/: the model registry and experiment tracking.
// Later issues add their routes beside these. JSON in and out; errors use the
// {"error": {"code", "message"}} shape with the matching HTTP status.
#pragma once

#include "keel/server/http.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"

namespace keel::server {

// GET /api/models, GET /api/models/{name} (latest version, or {name}@{version}),
// GET /api/models/{name}/versions. db and blobs must outlive the router.
void add_platform_routes(Router& router, store::Db& db, store::ArtifactStore& blobs);

// Review and approval (policies, checks, promotion requests, reviews, aliases, archive)
// and GET /api/audit; called by add_platform_routes. Defined in registry_routes.cpp.
void add_registry_routes(Router& router, store::Db& db, store::ArtifactStore& blobs);
// GET /api/deployments, GET and DELETE /api/deployments/{name}, PUT
// /api/deployments/{name}/targets: the serving deployments (registry/deployments.h).
// Both `keel up` and `keel serve` mount them. Defined in registry_routes.cpp.
void add_deployment_routes(Router& router, store::Db& db, store::ArtifactStore& blobs);

}  // namespace keel::server
