// The MLflow-compatible REST API: the endpoints and JSON shapes that the stock
// `mlflow` Python client (3.x) calls, under /api/2.0/mlflow/ (tracking, model
// registry, logged models), /api/2.0/mlflow-artifacts/ (proxied artifact upload,
// download and listing) and /api/3.0/mlflow/server-info. Every handler calls the
// same services as Keel's own API, so runs and models are one set of objects.
// What MLflow does and Keel does not yet answers with a clear NOT_IMPLEMENTED error.
#pragma once

#include "keel/server/http.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"

namespace keel::server {

// db and blobs must outlive the router.
void add_mlflow_routes(Router& router, store::Db& db, store::ArtifactStore& blobs);

// The model registry and logged-model part (mlflow_registry_routes.cpp); called by
// add_mlflow_routes.
void add_mlflow_registry_routes(Router& router, store::Db& db, store::ArtifactStore& blobs);

}  // namespace keel::server
