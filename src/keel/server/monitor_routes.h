// Keel's REST API for monitoring under /api/: request traces, human feedback on them,
// and per-version summaries. JSON in and out; errors use the {"error": {"code",
// "message"}} shape. Feedback is given as the request's user (request.user).
#pragma once

#include "keel/server/http.h"
#include "keel/store/db.h"

namespace keel::server {

// GET /api/traces (model, version, user, endpoint, status, since, until, limit,
// page_token, include_text; since/until as epoch ms or ISO-8601) -> {"traces": [...],
// "next_page_token": TOKEN or null}; GET /api/traces/{id} -> the trace with its
// "feedback"; POST /api/feedback {trace_id, score, kind?, comment?, corrected_answer?}
// -> 201 and the feedback; GET /api/feedback (trace_id, model, version, user, kind,
// limit, page_token) -> {"feedback": [...], "next_page_token"}; GET /api/monitor/summary
// (model, version, window like "15m", "1h" (default), "24h") -> the summary.
// db must outlive the router.
void add_monitor_routes(Router& router, store::Db& db);

}  // namespace keel::server
