// Keel's REST API for the prompt registry under /api/prompts: create versions, read
// them by number or alias, render with variables, diff two versions, move aliases.
// JSON in and out; errors use the {"error": {"code", "message"}} shape.
#pragma once

#include "keel/server/http.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"

namespace keel::server {

// GET /api/prompts, GET /api/prompts/{name}, POST /api/prompts/{name}/versions,
// GET /api/prompts/{name}/versions/{ref}, POST /api/prompts/{name}/render,
// GET /api/prompts/{name}/diff?from=&to=, PUT and DELETE /api/prompts/{name}/aliases/{alias}.
// db and blobs must outlive the router.
void add_prompt_routes(Router& router, store::Db& db, store::ArtifactStore& blobs);

}  // namespace keel::server
