// HttpServer over real loopback sockets (127.0.0.1, port 0). The client is plain POSIX
// sockets so that these tests check the bytes on the wire, not a second HTTP library.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "keel/server/http.h"
#include "keel/util/id.h"

namespace keel::server {
namespace {

using namespace std::chrono_literals;

struct RawResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

// One client connection. Every read gives up after 5 s so that a broken server fails
// the test instead of hanging it.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      connect_errno_ = errno;
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }
  int connect_errno() const { return connect_errno_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads one response; head_only for the answer to a HEAD request (no body follows).
  // A chunked body is read to its end and decoded.
  std::optional<RawResponse> read_response(bool head_only = false) {
    std::optional<RawResponse> response = read_head();
    if (!response || head_only || response->status / 100 == 1) return response;
    if (response->headers["transfer-encoding"] == "chunked") {
      for (;;) {
        std::optional<std::string> chunk = read_chunk();
        if (!chunk) return std::nullopt;
        if (chunk->empty()) return response;
        response->body += *chunk;
      }
    }
    size_t length = std::stoul(response->headers.count("content-length") ? response->headers["content-length"] : "0");
    while (buffer_.size() < length) {
      if (!fill()) return std::nullopt;
    }
    response->body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  // Reads the status line and headers of a response, and nothing of its body.
  std::optional<RawResponse> read_head() {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    RawResponse response;
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) return std::nullopt;
    response.status = std::stoi(status_line.substr(9, 3));
    while (line_end != std::string::npos) {
      size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      std::string line = head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t value_start = line.find_first_not_of(' ', colon + 1);
      response.headers[line.substr(0, colon)] = value_start == std::string::npos ? "" : line.substr(value_start);
    }
    return response;
  }

  // Reads one chunk of a chunked body: its data, "" for the last chunk, or std::nullopt
  // when the connection ends first or the framing is broken.
  std::optional<std::string> read_chunk() {
    size_t line_end;
    while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
    buffer_.erase(0, line_end + 2);
    while (buffer_.size() < size + 2) {
      if (!fill()) return std::nullopt;
    }
    if (buffer_.compare(size, 2, "\r\n") != 0) return std::nullopt;
    std::string data = buffer_.substr(0, size);
    buffer_.erase(0, size + 2);
    return data;
  }

  // Reads whatever arrives until the server closes the connection (or the read timeout).
  std::string read_rest() {
    while (fill()) {
    }
    return std::exchange(buffer_, std::string());
  }

  // True when nothing arrives within `wait` (the connection stays open and silent).
  bool silent_for(std::chrono::milliseconds wait) {
    if (!buffer_.empty()) return false;
    timeval timeout{0, static_cast<suseconds_t>(wait.count() * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char byte;
    ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK);
    timeval normal{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &normal, sizeof normal);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  // Closes this end now, as a client that gives up does.
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // True when the server closed the connection (EOF or reset) within the read timeout.
  bool closed_by_server() {
    char byte;
    ssize_t n = ::recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  // Reads and drops whatever arrives; true once the server closes within the timeout.
  bool read_until_closed() {
    for (;;) {
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;
    }
  }

 private:
  bool fill() {
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  int connect_errno_ = 0;
  std::string buffer_;
};

std::string get(std::string_view path, std::string_view extra_headers = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra_headers) + "\r\n";
}

std::string post(std::string_view path, std::string_view body, std::string_view extra_headers = "") {
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n" +
         std::string(body);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::shared_ptr<Router> test_router() {
  auto router = std::make_shared<Router>();
  add_core_routes(*router);
  router->post("/echo", [](const HttpRequest& request) {
    auto body = request.json_body();
    if (!body.ok()) return HttpResponse::from_status(body.status());
    return HttpResponse::json(200, Json{{"received", *body}, {"request_id", request.request_id}});
  });
  router->get("/slow", [](const HttpRequest&) {
    std::this_thread::sleep_for(300ms);
    return HttpResponse::json(200, Json{{"slow", true}});
  });
  router->get("/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("kaput"); });
  return router;
}

ServerOptions test_options() {
  ServerOptions options;
  options.port = 0;
  options.access_log = false;
  options.shutdown_grace_seconds = 5;
  return options;
}

std::unique_ptr<HttpServer> start_server(ServerOptions options = test_options(),
                                         std::shared_ptr<Router> router = test_router()) {
  auto server = std::make_unique<HttpServer>(std::move(options), std::move(router));
  Status status = server->start();
  EXPECT_TRUE(status.ok()) << status.to_string();
  EXPECT_NE(server->port(), 0);
  return server;
}

TEST(HttpServer, ServesHealthAndVersion) {
  ServerOptions options = test_options();
  options.access_log = true;  // exercise the log line once
  auto server = start_server(options);
  Client client(server->port());
  ASSERT_TRUE(client.connected());

  ASSERT_TRUE(client.send(get("/health")));
  auto health = client.read_response();
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->headers["Content-Type"], "application/json");
  EXPECT_EQ(parse_json(health->body).value(), (Json{{"status", "ok"}}));

  ASSERT_TRUE(client.send(get("/version")));
  auto version = client.read_response();
  ASSERT_TRUE(version);
  EXPECT_EQ(version->status, 200);
  EXPECT_EQ(parse_json(version->body).value(), (Json{{"name", "keel"}, {"version", KEEL_VERSION}}));
}

TEST(HttpServer, EchoesJsonBody) {
  auto server = start_server();
  Client client(server->port());
  Json payload = {{"model", "llama"}, {"messages", {{{"role", "user"}, {"content", "héllo"}}}}};
  ASSERT_TRUE(client.send(post("/echo", dump_json(payload))));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(parse_json(response->body).value()["received"], payload);

  ASSERT_TRUE(client.send(post("/echo", "{broken")));
  auto bad = client.read_response();
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(parse_json(bad->body).value()["error"]["code"], "invalid_argument");
}

TEST(HttpServer, HandlerExceptionGives500AndConnectionSurvives) {
  auto server = start_server();
  Client client(server->port());
  ASSERT_TRUE(client.send(get("/boom")));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(parse_json(response->body).value()["error"]["code"], "internal");
  ASSERT_TRUE(client.send(get("/health")));
  auto after = client.read_response();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST(HttpServer, UnknownRouteGives404AndWrongMethod405) {
  auto server = start_server();
  Client client(server->port());
  ASSERT_TRUE(client.send(get("/nope")));
  auto missing = client.read_response();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(parse_json(missing->body).value()["error"]["code"], "not_found");
  ASSERT_TRUE(client.send(post("/health", "{}")));
  auto wrong = client.read_response();
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->headers["allow"], "GET, HEAD");
}

TEST(HttpServer, EchoesOrGeneratesRequestId) {
  auto server = start_server();
  Client client(server->port());
  ASSERT_TRUE(client.send(post("/echo", "{}", "X-Request-Id: trace-abc-123\r\n")));
  auto echoed = client.read_response();
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->headers["x-request-id"], "trace-abc-123");
  EXPECT_EQ(parse_json(echoed->body).value()["request_id"], "trace-abc-123");

  ASSERT_TRUE(client.send(get("/health")));
  auto first = client.read_response();
  ASSERT_TRUE(client.send(get("/health")));
  auto second = client.read_response();
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(is_uuid(first->headers["x-request-id"])) << first->headers["x-request-id"];
  EXPECT_TRUE(is_uuid(second->headers["x-request-id"]));
  EXPECT_NE(first->headers["x-request-id"], second->headers["x-request-id"]);

  // An id that is unsafe to log or to echo is replaced.
  ASSERT_TRUE(client.send(get("/health", "X-Request-Id: " + std::string(300, 'a') + "\r\n")));
  auto replaced = client.read_response();
  ASSERT_TRUE(replaced);
  EXPECT_TRUE(is_uuid(replaced->headers["x-request-id"]));
}

TEST(HttpServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  auto server = start_server();
  Client client(server->port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.send(get("/health")));
    auto response = client.read_response();
    ASSERT_TRUE(response) << "request " << i;
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->headers["connection"], "close");
  }
  EXPECT_EQ(server->open_connections(), 1u);

  // Pipelined: two requests in one write, two responses in order.
  ASSERT_TRUE(client.send(get("/version") + get("/health")));
  auto version = client.read_response();
  auto health = client.read_response();
  ASSERT_TRUE(version && health);
  EXPECT_EQ(parse_json(version->body).value()["name"], "keel");
  EXPECT_EQ(parse_json(health->body).value()["status"], "ok");

  // "Connection: close" is honoured.
  ASSERT_TRUE(client.send(get("/health", "Connection: close\r\n")));
  auto last = client.read_response();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->headers["connection"], "close");
  EXPECT_TRUE(client.closed_by_server());
  EXPECT_TRUE(wait_until([&] { return server->open_connections() == 0; }));
}

TEST(HttpServer, EachConnectionStaysOnOneIoThreadAndConnectionsTakeTurns) {
  // Which thread ran each request, by the connection that sent it.
  auto threads = std::make_shared<std::mutex>();
  auto seen = std::make_shared<std::map<std::string, std::set<std::thread::id>>>();
  auto router = test_router();
  router->get("/whoami", [threads, seen](const HttpRequest& request) {
    std::lock_guard lock(*threads);
    (*seen)[request.remote_address].insert(std::this_thread::get_id());
    return HttpResponse::json(200, Json::object());
  });
  ServerOptions options = test_options();
  options.io_threads = 2;
  auto server = start_server(options, router);
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < 4; ++c) clients.push_back(std::make_unique<Client>(server->port()));
  for (int round = 0; round < 5; ++round) {
    for (auto& client : clients) {
      ASSERT_TRUE(client->send(get("/whoami")));
      auto response = client->read_response();
      ASSERT_TRUE(response && response->status == 200);
    }
  }
  std::lock_guard lock(*threads);
  ASSERT_EQ(seen->size(), 4u);
  std::set<std::thread::id> all;
  for (const auto& [remote, ids] : *seen) {
    EXPECT_EQ(ids.size(), 1u) << remote << "'s requests ran on " << ids.size() << " threads";
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), 2u) << "the connections did not take turns over both I/O threads";
}

TEST(HttpServer, HeadSendsHeadersWithoutBody) {
  auto server = start_server();
  Client client(server->port());
  ASSERT_TRUE(client.send("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = client.read_response(/*head_only=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-length"], std::to_string(dump_json(Json{{"status", "ok"}}).size()));
  // Had a body been sent, it would be read here as a malformed status line.
  ASSERT_TRUE(client.send(get("/version")));
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST(HttpServer, ExpectContinueGetsInterimResponse) {
  auto server = start_server();
  Client client(server->port());
  std::string body = R"({"a":1})";
  ASSERT_TRUE(client.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n"));
  auto interim = client.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.send(body));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(parse_json(response->body).value()["received"]["a"], 1);
}

TEST(HttpServer, OversizeBodyGets413ThenClose) {
  ServerOptions options = test_options();
  options.max_body_bytes = 1024;
  auto server = start_server(options);
  {
    Client client(server->port());
    ASSERT_TRUE(client.send(post("/echo", R"({"fits": true})")));
    auto fits = client.read_response();
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->status, 200);
  }
  Client client(server->port());
  std::string big = "\"" + std::string(4096, 'x') + "\"";
  ASSERT_TRUE(client.send(post("/echo", big, "X-Request-Id: big-1\r\n")));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->headers["x-request-id"], "big-1");
  EXPECT_EQ(parse_json(response->body).value()["error"]["code"], "payload_too_large");
  EXPECT_TRUE(client.closed_by_server());

  // Chunked bodies have no Content-Length up front; the limit applies as they arrive.
  Client chunked(server->port());
  std::string chunk(800, 'y');
  char size_line[16];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
  std::string request = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 2; ++i) request += size_line + chunk + "\r\n";
  request += "0\r\n\r\n";
  ASSERT_TRUE(chunked.send(request));
  auto chunked_response = chunked.read_response();
  ASSERT_TRUE(chunked_response);
  EXPECT_EQ(chunked_response->status, 413);
}

TEST(HttpServer, OversizeHeadersGet431) {
  ServerOptions options = test_options();
  options.max_header_bytes = 1024;
  auto server = start_server(options);
  Client client(server->port());
  ASSERT_TRUE(client.send(get("/health", "X-Big: " + std::string(4000, 'h') + "\r\n")));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(parse_json(response->body).value()["error"]["code"], "headers_too_large");
  EXPECT_TRUE(is_uuid(response->headers["x-request-id"]));
  EXPECT_TRUE(client.closed_by_server());
}

TEST(HttpServer, GarbageRequestGets400ThenClose) {
  auto server = start_server();
  Client client(server->port());
  ASSERT_TRUE(client.send("this is not http\r\n\r\n"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(parse_json(response->body).value()["error"]["code"], "bad_request");
  EXPECT_FALSE(response->headers["x-request-id"].empty());
  EXPECT_TRUE(client.closed_by_server());

  Client binary(server->port());
  ASSERT_TRUE(binary.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)));
  auto tls = binary.read_response();
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->status, 400);
}

TEST(HttpServer, IdleKeepAliveConnectionTimesOut) {
  ServerOptions options = test_options();
  options.idle_timeout_seconds = 1;
  auto server = start_server(options);
  Client client(server->port());
  ASSERT_TRUE(client.send(get("/health")));
  ASSERT_TRUE(client.read_response());
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.closed_by_server());
  auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, 800ms);
  EXPECT_LT(waited, 4s);
  EXPECT_TRUE(wait_until([&] { return server->open_connections() == 0; }));
}

TEST(HttpServer, HoldsAThousandConcurrentConnections) {
  constexpr size_t kConnections = 1000;
  // Client and server ends both live in this process: two descriptors per connection.
  if (raise_open_file_limit() < 2 * kConnections + 100) GTEST_SKIP() << "open-file limit too low";
  auto server = start_server();
  std::vector<std::unique_ptr<Client>> clients;
  clients.reserve(kConnections);
  for (size_t i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(clients.back()->connected())
        << "connection " << i << ": " << std::strerror(clients.back()->connect_errno());
  }
  ASSERT_TRUE(wait_until([&] { return server->open_connections() == kConnections; }))
      << server->open_connections();

  for (auto& client : clients) ASSERT_TRUE(client->send(get("/health")));
  size_t ok = 0;
  for (auto& client : clients) {
    auto response = client->read_response();
    if (response && response->status == 200) ++ok;
  }
  EXPECT_EQ(ok, kConnections);
  EXPECT_EQ(server->open_connections(), kConnections);  // keep-alive: all still open

  clients.clear();
  EXPECT_TRUE(wait_until([&] { return server->open_connections() == 0; })) << server->open_connections();
}

TEST(HttpServer, StopFinishesInFlightRequestAndClosesIdleOnes) {
  auto server = start_server();
  Client busy(server->port());
  Client idle_after_request(server->port());
  Client never_sent(server->port());
  ASSERT_TRUE(idle_after_request.send(get("/health")));
  ASSERT_TRUE(idle_after_request.read_response());
  // The first request counts as in flight until its write completes, which can be after
  // the client has read it; wait for it to end so the count below means `/slow`.
  ASSERT_TRUE(wait_until([&] { return server->in_flight_requests() == 0; }));
  ASSERT_TRUE(busy.send(get("/slow")));
  ASSERT_TRUE(wait_until([&] { return server->in_flight_requests() == 1 && server->open_connections() == 3; }));

  auto started = std::chrono::steady_clock::now();
  server->stop();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, 3s) << "stop() should not wait out the grace period once connections are done";

  auto response = busy.read_response();
  ASSERT_TRUE(response) << "the in-flight request must get its full response";
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(parse_json(response->body).value(), (Json{{"slow", true}}));
  EXPECT_EQ(response->headers["connection"], "close");
  EXPECT_TRUE(busy.closed_by_server());
  EXPECT_TRUE(idle_after_request.closed_by_server());
  EXPECT_TRUE(never_sent.closed_by_server());
  EXPECT_EQ(server->open_connections(), 0u);
  EXPECT_EQ(server->in_flight_requests(), 0u);

  Client late(server->port());
  EXPECT_FALSE(late.connected());
  EXPECT_EQ(late.connect_errno(), ECONNREFUSED);

  server->stop();  // idempotent
}

TEST(HttpServer, StopClosesConnectionsStillBusyAfterTheGracePeriod) {
  ServerOptions options = test_options();
  options.shutdown_grace_seconds = 0;
  auto server = start_server(options);
  Client busy(server->port());
  ASSERT_TRUE(busy.send(get("/slow")));
  ASSERT_TRUE(wait_until([&] { return server->in_flight_requests() == 1; }));
  auto started = std::chrono::steady_clock::now();
  server->stop();
  // The handler cannot be interrupted, so whether its response got out is a race; what
  // must hold is that stop() returns promptly and leaves nothing open.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_TRUE(busy.read_until_closed());
  EXPECT_EQ(server->open_connections(), 0u);
  EXPECT_EQ(server->in_flight_requests(), 0u);
}

TEST(HttpServer, StartReportsAddressInUse) {
  auto first = start_server();
  ServerOptions options = test_options();
  options.port = first->port();
  HttpServer second(options, test_router());
  Status status = second.start();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "cannot listen on 127.0.0.1:" + std::to_string(first->port()) + ": Address already in use");
}

TEST(HttpServer, StartReportsAddressThatIsNotLocal) {
  ServerOptions options = test_options();
  options.host = "192.0.2.1";  // TEST-NET-1: never an address of this machine; bind fails locally
  HttpServer server(options, test_router());
  Status status = server.start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot listen on 192.0.2.1:0"), std::string::npos) << status.message();

  options.host = "::1::2";
  HttpServer malformed(options, test_router());
  Status bad = malformed.start();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("cannot listen on [::1::2]:0"), std::string::npos) << bad.message();
}

TEST(HttpServer, StartTwiceFailsAndStopWithoutStartIsHarmless) {
  auto server = start_server();
  EXPECT_EQ(server->start().code(), ErrorCode::kFailedPrecondition);
  HttpServer never_started(test_options(), test_router());
  never_started.stop();
}

TEST(HttpServer, StopEndsWaitForShutdownSignal) {
  auto server = start_server();
  std::thread waiter([&] { server->wait_for_shutdown_signal(); });
  std::this_thread::sleep_for(20ms);  // usually inside the wait by now; either order must work
  server->stop();
  waiter.join();
  Client late(server->port());
  EXPECT_FALSE(late.connected());
}

// --- Deferred and streamed responses. The test thread plays the producer (a model
// scheduler): the handler only queues its writer and returns at once.

class WriterQueue {
 public:
  void push(std::shared_ptr<ResponseWriter> writer) {
    std::lock_guard lock(mutex_);
    writers_.push_back(std::move(writer));
    ready_.notify_all();
  }
  // The next writer a handler queued, or nullptr after 5 s.
  std::shared_ptr<ResponseWriter> pop() {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, 5s, [&] { return !writers_.empty(); })) return nullptr;
    auto writer = std::move(writers_.front());
    writers_.pop_front();
    return writer;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<ResponseWriter>> writers_;
};

std::shared_ptr<Router> deferred_router(const std::shared_ptr<WriterQueue>& queue) {
  auto router = test_router();
  router->get("/deferred", [queue](const HttpRequest&) {
    auto writer = std::make_shared<ResponseWriter>();
    queue->push(writer);
    return HttpResponse::deferred(writer);
  });
  // Answers through the writer before the handler returns: the writer is gone by the
  // time the server looks at it, yet finished, so this is no abandonment.
  router->get("/inline", [](const HttpRequest&) {
    auto writer = std::make_shared<ResponseWriter>();
    writer->begin(200, "text/event-stream");
    writer->write("data: now\n\n");
    writer->end();
    return HttpResponse::deferred(writer);
  });
  return router;
}

struct DeferredServer {
  explicit DeferredServer(ServerOptions options = test_options())
      : queue(std::make_shared<WriterQueue>()), server(start_server(options, deferred_router(queue))) {}
  std::shared_ptr<WriterQueue> queue;
  std::unique_ptr<HttpServer> server;
};

TEST(HttpServerDeferred, WholeResponseComesLaterFromAnotherThread) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred", "X-Request-Id: later-1\r\n")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  EXPECT_EQ(s.server->in_flight_requests(), 1u);

  std::thread producer([writer] {
    std::this_thread::sleep_for(200ms);
    writer->respond(HttpResponse::json(201, Json{{"answer", 42}}));
  });
  // A client that just waits is not taken for gone.
  EXPECT_TRUE(client.silent_for(100ms));
  EXPECT_FALSE(writer->cancelled());
  auto response = client.read_response();
  producer.join();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(parse_json(response->body).value(), (Json{{"answer", 42}}));
  EXPECT_EQ(response->headers["content-length"], std::to_string(response->body.size()));
  EXPECT_EQ(response->headers["x-request-id"], "later-1");
  EXPECT_FALSE(writer->cancelled());

  // The connection stays open for the next request, and the writer's later calls do nothing.
  writer->respond(HttpResponse::json(500, Json{}));
  ASSERT_TRUE(client.send(get("/health")));
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_TRUE(wait_until([&] { return s.server->in_flight_requests() == 0; }));
}

TEST(HttpServerDeferred, StreamedChunksArriveAsTheyAreWritten) {
  ServerOptions options = test_options();
  options.access_log = true;  // exercise the log line of a stream once
  DeferredServer s(options);
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred", "X-Request-Id: stream-1\r\n")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  writer->write("data: {\"n\":1}\n\n");

  auto head = client.read_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-type"], "text/event-stream");
  EXPECT_EQ(head->headers["cache-control"], "no-cache");
  EXPECT_EQ(head->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(head->headers["x-request-id"], "stream-1");
  EXPECT_EQ(head->headers.count("content-length"), 0u);
  // Each chunk is read before the next one is written: streamed, not buffered.
  EXPECT_EQ(client.read_chunk(), "data: {\"n\":1}\n\n");
  writer->write("");  // nothing to send; must not end the body
  writer->write("data: {\"n\":2}\n\n");
  EXPECT_EQ(client.read_chunk(), "data: {\"n\":2}\n\n");
  EXPECT_TRUE(client.silent_for(50ms));
  writer->write("data: [DONE]\n\n");
  EXPECT_EQ(client.read_chunk(), "data: [DONE]\n\n");
  writer->end();
  EXPECT_EQ(client.read_chunk(), "");
  EXPECT_FALSE(writer->cancelled());

  // Keep-alive: the same connection serves the next request, another stream included.
  ASSERT_TRUE(client.send(get("/health")));
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  ASSERT_TRUE(client.send(get("/inline")));
  auto inline_stream = client.read_response();
  ASSERT_TRUE(inline_stream);
  EXPECT_EQ(inline_stream->body, "data: now\n\n");
  EXPECT_EQ(s.server->open_connections(), 1u);
}

TEST(HttpServerDeferred, PipelinedRequestWaitsForTheStreamToEnd) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred") + get("/version")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/plain");
  writer->write("one ");
  std::this_thread::sleep_for(50ms);
  writer->write("two");
  writer->end();
  auto stream = client.read_response();
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->body, "one two");
  auto version = client.read_response();
  ASSERT_TRUE(version);
  EXPECT_EQ(parse_json(version->body).value()["name"], "keel");
}

TEST(HttpServerDeferred, ClientClosingMidStreamCancelsTheWriter) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  std::atomic<int> callbacks{0};
  writer->on_cancel([&callbacks] { callbacks.fetch_add(1); });
  writer->begin(200, "text/event-stream");
  writer->write("data: 1\n\n");
  ASSERT_TRUE(client.read_head());
  ASSERT_EQ(client.read_chunk(), "data: 1\n\n");

  client.close();
  auto closed_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_until([&] { return writer->cancelled(); }, 2000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, 1s);
  EXPECT_EQ(callbacks.load(), 1);
  writer->write("data: 2\n\n");  // a cheap no-op now
  writer->end();
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_TRUE(wait_until([&] { return s.server->open_connections() == 0; }));
  EXPECT_EQ(s.server->in_flight_requests(), 0u);

  // A callback set after the fact runs at once.
  bool late = false;
  writer->on_cancel([&late] { late = true; });
  EXPECT_TRUE(late);
}

TEST(HttpServerDeferred, FailedWriteCancelsTheWriter) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/event-stream");
  writer->write("data: 1\n\n");
  ASSERT_TRUE(client.read_head());
  ASSERT_EQ(client.read_chunk(), "data: 1\n\n");
  // Bytes of a next request end the disconnect watch (the client is talking), so only a
  // failed send can tell the server that this client then went away.
  ASSERT_TRUE(client.send(get("/health")));
  std::this_thread::sleep_for(50ms);
  client.close();
  EXPECT_TRUE(wait_until([&] {
    writer->write("data: more\n\n");
    return writer->cancelled();
  }, 2000ms));
  EXPECT_TRUE(wait_until([&] { return s.server->open_connections() == 0; }));
}

TEST(HttpServerDeferred, ClientClosingBeforeTheProducerBeganCancelsTheWriter) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  std::atomic<bool> called{false};
  writer->on_cancel([&called] { called = true; });
  EXPECT_TRUE(client.silent_for(100ms));
  EXPECT_FALSE(writer->cancelled());
  client.close();
  EXPECT_TRUE(wait_until([&] { return writer->cancelled(); }, 2000ms));
  EXPECT_TRUE(called.load());
  EXPECT_TRUE(wait_until([&] { return s.server->open_connections() == 0; }));
}

TEST(HttpServerDeferred, DroppedWriterGives500) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer.reset();  // the producer lost it
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(parse_json(response->body).value()["error"]["code"], "internal");
  ASSERT_TRUE(client.send(get("/health")));  // nothing on the wire broke
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST(HttpServerDeferred, DroppedWriterCutsOffItsStream) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/event-stream");
  writer->write("data: partial\n\n");
  ASSERT_TRUE(client.read_head());
  ASSERT_EQ(client.read_chunk(), "data: partial\n\n");
  writer.reset();
  // No last chunk: the connection closes, so the client knows the body is incomplete.
  EXPECT_EQ(client.read_chunk(), std::nullopt);
  EXPECT_TRUE(wait_until([&] { return s.server->open_connections() == 0; }));
}

TEST(HttpServerDeferred, ProducerSilentPastTheIdleTimeoutGets504) {
  ServerOptions options = test_options();
  options.idle_timeout_seconds = 1;
  DeferredServer s(options);
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  auto started = std::chrono::steady_clock::now();
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 504);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 800ms);
  EXPECT_TRUE(writer->cancelled());
}

TEST(HttpServerDeferred, WaitsWithoutLimitWhenThereIsNoIdleTimeout) {
  ServerOptions options = test_options();
  options.idle_timeout_seconds = 0;
  DeferredServer s(options);
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  EXPECT_TRUE(client.silent_for(200ms));
  writer->respond(HttpResponse::text(200, "eventually"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "eventually");
}

TEST(HttpServerDeferred, StreamThatKeepsWritingOutlivesTheIdleTimeout) {
  ServerOptions options = test_options();
  options.idle_timeout_seconds = 1;
  DeferredServer s(options);
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  std::thread producer([writer] {
    writer->begin(200, "text/event-stream");
    for (int i = 0; i < 8; ++i) {  // 2 s in all, twice the idle timeout
      std::this_thread::sleep_for(250ms);
      writer->write("data: " + std::to_string(i) + "\n\n");
    }
    writer->end();
  });
  auto response = client.read_response();
  producer.join();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), 8 * std::string("data: 0\n\n").size());
  EXPECT_FALSE(writer->cancelled());
}

TEST(HttpServerDeferred, HeadGetsStreamHeadersWithoutBody) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send("HEAD /deferred HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/event-stream");
  auto head = client.read_response(/*head_only=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-type"], "text/event-stream");
  EXPECT_EQ(head->headers["transfer-encoding"], "chunked");  // as the GET would have it
  EXPECT_TRUE(wait_until([&] { return writer->cancelled(); }));  // no body wanted
  writer->write("data: ignored\n\n");

  // A deferred whole response to HEAD: its length, no body.
  ASSERT_TRUE(client.send("HEAD /deferred HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto whole_writer = s.queue->pop();
  ASSERT_TRUE(whole_writer);
  whole_writer->respond(HttpResponse::text(200, "twelve bytes"));
  auto whole_head = client.read_response(/*head_only=*/true);
  ASSERT_TRUE(whole_head);
  EXPECT_EQ(whole_head->headers["content-length"], "12");
  // Had a body been sent, it would be read here as a malformed status line.
  ASSERT_TRUE(client.send(get("/version")));
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST(HttpServerDeferred, Http10StreamEndsWithTheConnection) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send("GET /deferred HTTP/1.0\r\n\r\n"));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/plain");
  writer->write("no chunks ");
  writer->write("for 1.0");
  writer->end();
  auto head = client.read_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->headers.count("transfer-encoding"), 0u);
  EXPECT_EQ(client.read_rest(), "no chunks for 1.0");
}

TEST(HttpServerDeferred, InvalidStreamStatusGives500) {
  DeferredServer s;
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(42, "text/plain");
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_TRUE(writer->cancelled());
}

TEST(HttpServerDeferred, StopLetsADeferredResponseFinishWithinTheGracePeriod) {
  DeferredServer s;  // grace 5 s
  Client client(s.server->port());
  ASSERT_TRUE(client.send(get("/deferred")));
  auto writer = s.queue->pop();
  ASSERT_TRUE(writer);
  writer->begin(200, "text/event-stream");
  writer->write("data: 1\n\n");
  ASSERT_TRUE(client.read_head());
  ASSERT_EQ(client.read_chunk(), "data: 1\n\n");

  auto started = std::chrono::steady_clock::now();
  std::thread stopper([&] { s.server->stop(); });
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(s.server->in_flight_requests(), 1u);  // counted as in flight through the wait
  writer->write("data: 2\n\n");
  writer->end();
  EXPECT_EQ(client.read_chunk(), "data: 2\n\n");
  EXPECT_EQ(client.read_chunk(), "");
  EXPECT_TRUE(client.closed_by_server());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_FALSE(writer->cancelled());
}

TEST(HttpServerDeferred, StopCancelsAStalledProducerAfterTheGracePeriod) {
  ServerOptions options = test_options();
  options.shutdown_grace_seconds = 1;
  DeferredServer s(options);
  Client waiting(s.server->port());
  Client streaming(s.server->port());
  ASSERT_TRUE(waiting.send(get("/deferred")));
  auto never_begun = s.queue->pop();
  ASSERT_TRUE(streaming.send(get("/deferred")));
  auto stalled_stream = s.queue->pop();
  ASSERT_TRUE(never_begun && stalled_stream);
  std::atomic<int> callbacks{0};
  never_begun->on_cancel([&] { callbacks.fetch_add(1); });
  stalled_stream->on_cancel([&] { callbacks.fetch_add(1); });
  stalled_stream->begin(200, "text/event-stream");
  stalled_stream->write("data: 1\n\n");
  ASSERT_TRUE(streaming.read_head());
  ASSERT_EQ(streaming.read_chunk(), "data: 1\n\n");
  ASSERT_TRUE(wait_until([&] { return s.server->in_flight_requests() == 2; }));

  auto started = std::chrono::steady_clock::now();
  s.server->stop();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2500ms);
  EXPECT_TRUE(never_begun->cancelled());
  EXPECT_TRUE(stalled_stream->cancelled());
  EXPECT_EQ(callbacks.load(), 2);
  EXPECT_TRUE(waiting.read_until_closed());
  EXPECT_EQ(streaming.read_chunk(), std::nullopt);
  EXPECT_EQ(s.server->open_connections(), 0u);
  EXPECT_EQ(s.server->in_flight_requests(), 0u);
  stalled_stream->write("data: too late\n\n");  // the server has stopped; still harmless
  s.server.reset();
  stalled_stream->end();  // and it is destroyed: nothing may reach its io_context
  never_begun.reset();
}

TEST(HttpServerDeferred, TwoHundredConcurrentStreamsComplete) {
  constexpr int kStreams = 200;
  constexpr int kChunks = 5;
  if (raise_open_file_limit() < 2 * kStreams + 100) GTEST_SKIP() << "open-file limit too low";
  DeferredServer s;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::shared_ptr<ResponseWriter>> writers;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<Client>(s.server->port()));
    ASSERT_TRUE(clients.back()->connected());
    ASSERT_TRUE(clients.back()->send(get("/deferred")));
  }
  for (int i = 0; i < kStreams; ++i) {
    writers.push_back(s.queue->pop());
    ASSERT_TRUE(writers.back());
  }
  EXPECT_EQ(s.server->in_flight_requests(), static_cast<size_t>(kStreams));
  // Two producer threads interleave their writes across all streams, as a batch
  // scheduler emits one token per sequence per step.
  auto produce = [&](int first) {
    for (int i = first; i < kStreams; i += 2) writers[i]->begin(200, "text/event-stream");
    for (int chunk = 0; chunk < kChunks; ++chunk) {
      for (int i = first; i < kStreams; i += 2) writers[i]->write("data: " + std::to_string(chunk) + "\n\n");
    }
    for (int i = first; i < kStreams; i += 2) writers[i]->end();
  };
  std::thread even(produce, 0);
  std::thread odd(produce, 1);
  std::string expected;
  for (int chunk = 0; chunk < kChunks; ++chunk) expected += "data: " + std::to_string(chunk) + "\n\n";
  int complete = 0;
  for (auto& client : clients) {
    auto response = client->read_response();
    if (response && response->status == 200 && response->body == expected) ++complete;
  }
  even.join();
  odd.join();
  EXPECT_EQ(complete, kStreams);
  for (const auto& writer : writers) EXPECT_FALSE(writer->cancelled());
  EXPECT_TRUE(wait_until([&] { return s.server->in_flight_requests() == 0; }));
  EXPECT_EQ(s.server->open_connections(), static_cast<size_t>(kStreams));  // all kept alive
}

}  // namespace
}  // namespace keel::server
