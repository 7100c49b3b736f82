// The gateway's half of the OpenAI-compatible API: a request for a remote model (a
// registered version that is an OpenAI-compatible endpoint elsewhere) is sent upstream
// as the client wrote it, with only `model` replaced by the upstream's name (and usage
// asked for, so that tokens are counted), and the answer comes back as it arrives:
// streamed events pass through one by one with Keel's response id and the served name,
// and the request is traced, metered and charged like a local one. Upstream failures
// become OpenAI-shaped errors that say they come from the upstream (502/504); a client
// that goes away cancels the upstream call.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "keel/server/http.h"
#include "keel/server/served_models.h"
#include "keel/server/serving_metrics.h"
#include "keel/util/json.h"

namespace keel::server {

struct ProxiedRequest {
  std::string path;  // under the upstream's base URL: "/chat/completions", "/completions", "/embeddings"
  std::string body;  // the client's request body (a JSON object), already checked
  std::string id;    // the response id to give ("chatcmpl-<request id>"); "" for embeddings
  bool stream = false;
  bool include_usage = false;  // the client asked for the usage chunk
  RequestRecord record;        // what is known when it arrived
  std::chrono::steady_clock::time_point received;
  // The request's connection (HttpRequest::io): the upstream call runs there, on the
  // server's I/O threads. Null: on the upstream client's own thread.
  std::shared_ptr<const IoExecutor> io;
};

// Answers (a deferred response) through `models`' upstream client; `finish` gets the
// request's record once, when it is over, where the call ran.
HttpResponse proxy_openai_request(ServedModels& models, const std::shared_ptr<ServedModel>& model,
                                  ProxiedRequest request, std::function<void(const RequestRecord&)> finish);

}  // namespace keel::server
