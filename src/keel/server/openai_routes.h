// The OpenAI-compatible API under /v1/: chat completions, completions, embeddings and
// the models list, with OpenAI's request, response, streaming (Server-Sent Events,
// "data: [DONE]") and error shapes, so stock clients work unchanged. Handlers parse
// and check the request on the I/O thread, hand the work to the model's
// BatchScheduler and answer through a ResponseWriter when it is done (or stream it as
// it comes); a client that goes away frees its slot at once. Every request is counted
// in `metrics`, which GET /metrics shows, and admitted by `limiter` (per-key requests and
// tokens per minute: 429 with Retry-After past them). `models`, `metrics` and `limiter`
// must outlive the router; `metrics` and `limiter` must also outlive `models` (its
// schedulers end their last requests when it goes).
#pragma once

#include <string_view>

#include "keel/monitor/trace_writer.h"
#include "keel/server/http.h"
#include "keel/server/served_models.h"
#include "keel/server/rate_limiter.h"
#include "keel/server/serving_metrics.h"

namespace keel::server {

// `traces` (optional) records every request, refused ones included.
void add_openai_routes(Router& router, ServedModels& models, ServingMetrics& metrics, RateLimiter& limiter,
                       monitor::TraceWriter* traces);

// {"error": {"message", "type", "param": null, "code"}} with the given HTTP status; an
// empty code is null.
HttpResponse openai_error(int status, std::string_view message, std::string_view type = "invalid_request_error",
                          std::string_view code = "");

}  // namespace keel::server
