// UpstreamClient: the HTTP/1.1 client the gateway sends requests upstream with (an
// OpenAI-compatible server: vLLM, llama.cpp's server, another Keel, a hosted API over
// https). A call reports as it goes: the status and headers, then the body piece by
// piece as it arrives (so streamed answers pass through at once), then the end.
// Connections are kept alive and reused per host; a reused connection the upstream has
// closed meanwhile is replaced transparently.
//
// A call runs on the client's own I/O thread, or, for a plain-http upstream, on the
// executor it is given: a server's connection (HttpRequest::io), so that a gateway's
// request goes out and its answer comes back on the server's own I/O threads, with no
// thread hand-off either way. Callbacks run where the call runs and must not block.
// The client's destructor cancels the calls on its own thread and waits for them; calls
// on a server's executor belong to that server's io_context and may outlive the client
// (they end when their server stops).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "keel/registry/remote_models.h"
#include "keel/server/http.h"
#include "keel/util/status.h"

namespace keel::server {

struct UpstreamClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  // The longest wait for the next byte of an answer (a model may think a while before
  // its first token, so this is generous).
  std::chrono::milliseconds read_timeout{300000};
  size_t max_idle_connections_per_host = 32;
  // PEM file of trusted CAs for https; "" uses the system's (and SSL_CERT_FILE).
  std::string ca_file;
};

struct UpstreamRequest {
  std::string method = "POST";
  std::string target;  // the full path and query, e.g. "/v1/chat/completions"
  Headers headers;     // besides Host, Content-Length and Connection, which the client sets
  std::string body;
};

struct UpstreamHandlers {
  std::function<void(int status, const Headers& headers)> on_head;  // once, before any data
  std::function<void(std::string_view data)> on_data;              // the body, in pieces
  // Exactly once, last: OK when the whole body arrived; kUnavailable when the upstream
  // could not be reached or broke the connection, kDeadlineExceeded on a timeout,
  // kCancelled after cancel(). on_head may or may not have run before an error.
  std::function<void(Status)> on_done;
};

// A call in flight; cancel() from any thread ends it soon with kCancelled.
class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  virtual void cancel() = 0;
};

class UpstreamClient {
 public:
  explicit UpstreamClient(UpstreamClientOptions options = {});
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // `on`: where the call runs (see above); null, or an https upstream, runs it on the
  // client's own thread. Cancel a call on a server's executor only while that server runs.
  std::shared_ptr<UpstreamCall> start(const registry::ParsedUrl& server, UpstreamRequest request,
                                      UpstreamHandlers handlers, std::shared_ptr<const IoExecutor> on = nullptr);

  // Sends one request and waits for the whole answer (for tools and tests; the gateway
  // uses start()).
  struct Answer {
    int status = 0;
    Headers headers;
    std::string body;
  };
  Result<Answer> send(const registry::ParsedUrl& server, UpstreamRequest request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::server
