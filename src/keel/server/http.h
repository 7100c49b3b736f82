// Keel's HTTP core: a router with path parameters and a server on Boost.Beast / Asio
// (C++20 coroutines, a few I/O threads, no thread per connection). Every HTTP feature
// of Keel (OpenAI API, platform API, MLflow API, UI) registers handlers on a Router.
// This header carries no Beast or Asio types: include it freely. Handlers run on the
// server's I/O threads, so a handler must not block for long.
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

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers; content-type, content-length and x-request-id are set by the server

  static HttpResponse json(int status, const Json& body);
  static HttpResponse text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  // {"error": {"code": code, "message": message}} with the given HTTP status.
  static HttpResponse error(int status, std::string_view code, std::string_view message);
  // Maps a Status to the HTTP status that fits its code (kNotFound -> 404, kInvalidArgument -> 400,
  // kAlreadyExists -> 409, kPermissionDenied -> 403, kResourceExhausted -> 429 ... kInternal -> 500).
  static HttpResponse from_status(const Status& status);
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
  int io_threads = 2;
  size_t max_body_bytes = 16u << 20;      // larger bodies get 413
  size_t max_header_bytes = 64u << 10;    // larger header blocks get 431
  int idle_timeout_seconds = 300;         // keep-alive connections idle this long are closed; also
                                          // bounds reading one request and writing one response
  int shutdown_grace_seconds = 30;        // in-flight requests get this long to finish
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
