// Keel's HTTP core: a router with path parameters and a server on Boost.Beast / Asio
// (C++20 coroutines, a few I/O threads, no thread per connection). Every HTTP feature
// of Keel (OpenAI API, platform API, MLflow API, UI) registers handlers on a Router.
// This header carries no Beast or Asio types: include it freely. Handlers run on the
// server's I/O threads, so a handler must not block for long: work that takes longer
// (an LLM completion) returns HttpResponse::deferred(writer) at once and answers
// through the ResponseWriter from another thread, whole or streamed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::server {

// Header names compare case-insensitively, as HTTP says they do.
struct CaseInsensitiveLess {
  using is_transparent = void;  // lets Headers::find take a string_view
  bool operator()(std::string_view a, std::string_view b) const;
};
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

struct IoExecutor;  // where the request's connection runs (io_executor.h)

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/api/models/x?limit=3"
  std::string path;    // percent-decoded path without the query: "/api/models/x"
  std::map<std::string, std::string> query;        // decoded query parameters (last one wins)
  std::map<std::string, std::string> path_params;  // filled by the router: {"name": "x"}
  Headers headers;
  std::string body;
  std::string request_id;  // from x-request-id, or a new id when the client sent none
  std::string remote_address;
  std::string user;  // who is acting, set by the router's guard ("" when no guard ran)
  std::string role;  // that user's role: viewer, user, editor, reviewer or admin
  std::string key_id;  // the API key that authenticated the request ("" with auth off)
  // That key's own rate limits (unset: the server's).
  std::optional<int64_t> key_requests_per_minute;
  std::optional<int64_t> key_tokens_per_minute;
  // Set by the server: its connection's executor, on which a handler may start I/O of
  // its own (an upstream call) without a thread hand-off. Null when a handler is called
  // without a server (tests).
  std::shared_ptr<const IoExecutor> io;

  // The value of a header, or std::nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // Parses the body as JSON; malformed or missing body gives kInvalidArgument.
  Result<Json> json_body() const;
  // Sets target and fills path and query from it (the server and tests use this).
  void set_target(std::string raw_target);
};

// Decodes %XX escapes (and '+' as a space when plus_is_space, as in query strings).
// A malformed escape ("%4", "%zz") is kept as written rather than rejected.
std::string percent_decode(std::string_view text, bool plus_is_space = false);
// Parses "a=1&b=x%20y&flag" into {"a": "1", "b": "x y", "flag": ""}; the last repeat wins.
std::map<std::string, std::string> parse_query(std::string_view query);

class ResponseWriter;
class ResponseChannel;  // the server's side of a ResponseWriter (response_channel.h)

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers; content-type, content-length and x-request-id are set by the server
  // Set by deferred(): the response comes later through this writer, and the fields
  // above are not used. The server keeps only the writer's channel, so that the
  // producer's references are the writer's only owners (see ~ResponseWriter).
  std::shared_ptr<ResponseWriter> later;

  // A response that a producer gives later through `writer` (see ResponseWriter).
  // Return the writer from one handler call only. A null writer gives a 500.
  static HttpResponse deferred(std::shared_ptr<ResponseWriter> writer);

  static HttpResponse json(int status, const Json& body);
  static HttpResponse text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  // {"error": {"code": code, "message": message}} with the given HTTP status.
  static HttpResponse error(int status, std::string_view code, std::string_view message);
  // Maps a Status to the HTTP status that fits its code (kNotFound -> 404, kInvalidArgument -> 400,
  // kAlreadyExists -> 409, kPermissionDenied -> 403, kResourceExhausted -> 429 ... kInternal -> 500).
  static HttpResponse from_status(const Status& status);
};

// The producer side of a response that comes later, from any thread. A handler makes
// one (std::make_shared<ResponseWriter>()), hands it to whoever produces the answer
// (a model scheduler thread), and returns HttpResponse::deferred(writer) at once; the
// connection then waits for the producer without holding an I/O thread.
//
// The producer either calls respond() once with a whole response (sent with a
// content-length, e.g. a JSON completion or an error), or begin() once, then write()
// any number of times, then end() (a streamed body: HTTP/1.1 chunked transfer encoding,
// e.g. Server-Sent Events). Chunks are sent in order as soon as the connection can; chunks
// written while a send is under way go out together in the next one. Nothing bounds how
// much the producer may buffer ahead of a slow client; a stream of tokens is small.
// Calls out of this order (write() before begin(), anything after end()) are ignored
// with an error in the log. An empty write() sends nothing. All methods are thread-safe.
//
// The response is no longer wanted, and cancelled() turns true, when the client went
// away (a send failed, or the peer closed its socket while the producer was still at
// work), when the server's shutdown grace period ran out, when the producer was silent
// (no call at all) for longer than ServerOptions::idle_timeout_seconds (the client then
// gets 504 if nothing was sent yet, or a cut stream), or for a HEAD request once the
// streamed headers went out. From then on every call is a cheap no-op; a producer polls
// cancelled() between steps (between tokens) and frees what it holds at once.
// A stream that keeps writing is never cut by the idle timeout (each send resets it).
//
// Dropping the last reference to the writer without respond() or end() abandons the
// response: the client gets a 500 if nothing was sent yet, and a stream that has begun
// is cut off (the connection closes without the last chunk, which HTTP clients report as
// an incomplete body). So keep no reference to the writer in its own on_cancel callback.
class ResponseWriter {
 public:
  ResponseWriter();
  ~ResponseWriter();
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;

  // A whole response; content-length, x-request-id and keep-alive are the server's.
  void respond(HttpResponse response);
  // Starts a streamed response with this status, content type and extra headers.
  // A status outside 200..599 gives the client a 500 instead and cancels the writer.
  void begin(int status, std::string content_type, Headers headers = {});
  // One piece of the streamed body, e.g. "data: {...}\n\n".
  void write(std::string data);
  // The end of the streamed body; the connection stays open for the next request.
  void end();
  // True once the response is no longer wanted (see above). Lock-free: poll it freely.
  bool cancelled() const;
  // Runs `callback` once when the writer becomes cancelled: on a server thread (or the
  // thread calling HttpServer::stop()), so it must be quick and must not block; at once on
  // this thread if the writer is already cancelled. Never runs once respond() or end() was
  // called, nor when the producer drops the writer. A second call replaces the callback.
  void on_cancel(std::function<void()> callback);

  // The state shared with the connection that sends this response (the server's side).
  const std::shared_ptr<ResponseChannel>& channel() const { return channel_; }

 private:
  std::shared_ptr<ResponseChannel> channel_;
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;

// Maps (method, path pattern) to handlers. Patterns are literal segments and
// parameters: "/api/models/{name}/versions/{version}". A trailing "{rest...}" segment
// captures the remainder of the path, slashes included. Literal segments win over
// parameters. No match gives 404; a path that matches with another method gives 405
// with an Allow header. HEAD falls back to the GET route (the server sends no body).
// Register every route before the server starts.
class Router {
 public:
  void add(std::string method, std::string pattern, Handler handler);
  void get(std::string pattern, Handler h) { add("GET", std::move(pattern), std::move(h)); }
  void post(std::string pattern, Handler h) { add("POST", std::move(pattern), std::move(h)); }
  void put(std::string pattern, Handler h) { add("PUT", std::move(pattern), std::move(h)); }
  void del(std::string pattern, Handler h) { add("DELETE", std::move(pattern), std::move(h)); }

  // Finds the handler for the request, fills request.path_params and calls it.
  // An exception escaping a handler becomes a 500 with the error shape.
  HttpResponse dispatch(HttpRequest& request) const;

  // Runs before routing on every request: fills request.user and request.role, or
  // answers itself (401, 403) by returning a response. One guard per router.
  using Guard = std::function<std::optional<HttpResponse>(HttpRequest&)>;
  void set_guard(Guard guard) { guard_ = std::move(guard); }

 private:
  Guard guard_;
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" for a parameter, "{name...}" for the rest
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port; see HttpServer::port()
  int io_threads = 2;  // each runs the connections it was given, start to end
  size_t max_body_bytes = 16u << 20;      // larger bodies get 413
  size_t max_header_bytes = 64u << 10;    // larger header blocks get 431
  int idle_timeout_seconds = 300;         // keep-alive connections idle this long are closed; also
                                          // bounds reading one request, writing one response (or
                                          // one chunk of a stream) and a deferred response's
                                          // producer falling silent (see ResponseWriter)
  int shutdown_grace_seconds = 30;        // in-flight requests (deferred ones included) get this
                                          // long to finish; then they are cancelled and closed
  bool access_log = true;                 // one info line per request
};

// An HTTP/1.1 server. start() binds and begins accepting on background I/O threads;
// stop() stops accepting, lets in-flight requests finish (up to the grace period),
// closes idle connections and joins the threads. Always call stop() (the destructor
// does if you did not). Owns its threads.
class HttpServer {
 public:
  HttpServer(ServerOptions options, std::shared_ptr<const Router> router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port and starts the I/O threads. Fails with a clear message when the
  // address is in use or cannot be bound.
  Status start();
  // The bound port (useful with port 0).
  uint16_t port() const;
  // Graceful shutdown; idempotent; safe to call from any thread (not from a handler).
  void stop();
  // Blocks until SIGINT or SIGTERM arrives, then calls stop().
  void wait_for_shutdown_signal();

  // Counters for tests and /metrics later.
  size_t open_connections() const;
  size_t in_flight_requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Routes every Keel server has: GET /health and GET /version.
void add_core_routes(Router& router);

// Raises this process's open-file limit (soft) to the hard limit, so that a server
// can hold thousands of connections. Returns the new soft limit.
uint64_t raise_open_file_limit();

}  // namespace keel::server
