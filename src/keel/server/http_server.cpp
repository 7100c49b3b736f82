// HttpServer on Boost.Beast: one accept coroutine and one coroutine per connection, all
// on an io_context run by options.io_threads threads. Each connection lives on its own
// strand, so its coroutine and the shutdown code that pokes it never run at the same
// time. Beast and Asio signal failures as error_codes here (as_tuple), never exceptions.
#include "keel/server/beast_pch.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "keel/server/http.h"
#include "keel/util/id.h"

namespace keel::server {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// The first read of a request is a plain read_some so that "waiting for a request"
// (closable at shutdown) is a distinct state from "reading one" (allowed to finish).
constexpr size_t kFirstReadBytes = 4096;
// After an error response the client may still be sending a body. Closing with unread
// data makes the kernel send RST, which can destroy our response before the client
// reads it, so the error path drains (bounded) before it closes.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 1u << 20;
// After the grace period, connections are closed forcibly; this is how long stop()
// then waits for their coroutines to notice before it stops the io_context.
constexpr auto kForcedCloseWait = std::chrono::seconds(1);
constexpr size_t kMaxRequestIdLength = 128;

struct Connection {
  Connection(tcp::socket socket, std::string remote) : stream(std::move(socket)), remote_address(std::move(remote)) {}
  beast::tcp_stream stream;  // its executor is this connection's strand
  const std::string remote_address;
  // True while the coroutine waits for the first byte of the next request.
  // REQUIRES: read and written only on the stream's strand.
  bool idle = false;
};

// Errors that mean the peer went away or we closed the socket: nothing to answer.
bool is_disconnect(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::broken_pipe || ec == asio::error::not_connected || ec == asio::error::bad_descriptor ||
         ec == beast::error::timeout || ec == http::error::end_of_stream || ec == http::error::partial_message;
}

// The response for a request that could not be read, or nullopt when the connection
// should just close.
std::optional<HttpResponse> response_for_read_error(const error_code& ec, const ServerOptions& options) {
  if (ec == http::error::body_limit) {
    return HttpResponse::error(413, "payload_too_large",
                               "request body exceeds the limit of " + std::to_string(options.max_body_bytes) +
                                   " bytes");
  }
  if (ec == http::error::header_limit) {
    return HttpResponse::error(431, "headers_too_large",
                               "request headers exceed the limit of " + std::to_string(options.max_header_bytes) +
                                   " bytes");
  }
  if (is_disconnect(ec)) return std::nullopt;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return HttpResponse::error(400, "bad_request", "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;
}

// A client's x-request-id is echoed when it is printable and short; anything else is
// replaced, so that ids stay safe to log and to put in a header.
std::string request_id_from(const http::fields& fields) {
  auto it = fields.find("x-request-id");
  if (it != fields.end()) {
    std::string_view value = it->value();
    bool printable = std::all_of(value.begin(), value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (!value.empty() && value.size() <= kMaxRequestIdLength && printable) return std::string(value);
  }
  return new_id();
}

bool is_safe_header(std::string_view text) { return text.find_first_of("\r\n") == std::string_view::npos; }

void log_exception(std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("HTTP server coroutine failed: {}", e.what());
  } catch (...) {
    spdlog::error("HTTP server coroutine failed with an unknown exception");
  }
}

void set_deadline(beast::tcp_stream& stream, int seconds) {
  if (seconds > 0) {
    stream.expires_after(std::chrono::seconds(seconds));
  } else {
    stream.expires_never();
  }
}

std::string endpoint_text(const std::string& host, uint16_t port) {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Status listen_error(const std::string& where, const error_code& ec) {
  std::string message = "cannot listen on " + where + ": " + ec.message();
  if (ec == asio::error::address_in_use) return unavailable(std::move(message));
  if (ec == asio::error::access_denied) return permission_denied(std::move(message));
  if (ec == boost::system::errc::address_not_available) return invalid_argument(std::move(message));
  return Status(ErrorCode::kIo, std::move(message));
}

// Writes one response. head_only sends the headers of the GET response (its
// content-length included) without the body, as HEAD requires.
asio::awaitable<error_code> write_response(beast::tcp_stream& stream, HttpResponse& response,
                                           const std::string& request_id, unsigned version, bool keep_alive,
                                           bool head_only, int timeout_seconds) {
  if (response.status < 200 || response.status > 599) {
    spdlog::error("handler returned HTTP status {}; sending 500", response.status);
    response = HttpResponse::error(500, "internal", "handler returned an invalid HTTP status");
  }
  http::response<http::string_body> message;
  message.version(version);
  message.result(static_cast<unsigned>(response.status));
  for (const auto& [name, value] : response.headers) {
    if (is_safe_header(name) && is_safe_header(value)) message.set(name, value);
  }
  if (!response.content_type.empty() && is_safe_header(response.content_type)) {
    message.set(http::field::content_type, response.content_type);
  }
  message.set("x-request-id", request_id);
  message.keep_alive(keep_alive);
  // 204 and 304 must not carry a body; prepare_payload() rejects one.
  const bool no_body = response.status == 204 || response.status == 304;
  set_deadline(stream, timeout_seconds);
  if (head_only || no_body) {
    http::response<http::empty_body> headers_only{std::move(message.base())};
    if (!no_body) headers_only.content_length(response.body.size());
    auto [ec, bytes] = co_await http::async_write(stream, headers_only, kUseTuple);
    co_return ec;
  }
  message.body() = std::move(response.body);
  message.prepare_payload();
  auto [ec, bytes] = co_await http::async_write(stream, message, kUseTuple);
  response.body = std::move(message.body());  // kept for the access log's byte count
  co_return ec;
}

// Sends FIN, then reads and drops what the client is still sending (bounded), so the
// close does not turn into a RST that could destroy the response in flight.
asio::awaitable<void> linger_before_close(beast::tcp_stream& stream) {
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(kLingerTime);
  std::array<char, 8192> sink;
  size_t drained = 0;
  while (drained < kLingerBytes) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kUseTuple);
    if (ec) break;
    drained += n;
  }
}

// Counts a request as in flight for as long as it lives.
class InFlight {
 public:
  explicit InFlight(std::atomic<size_t>& counter) : counter_(counter) { counter_.fetch_add(1); }
  ~InFlight() { counter_.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<size_t>& counter_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions server_options, std::shared_ptr<const Router> server_router)
      : options(std::move(server_options)),
        router(std::move(server_router)),
        ioc(std::max(1, options.io_threads)) {}

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> connection);
  void unregister(const std::shared_ptr<Connection>& connection);
  void log_access(std::string_view method, std::string_view target, int status, size_t bytes,
                  Clock::time_point started, std::string_view request_id, std::string_view remote) const;

  const ServerOptions options;
  const std::shared_ptr<const Router> router;

  std::atomic<size_t> open_connections{0};
  std::atomic<size_t> in_flight{0};
  // Set once by stop(): the acceptor closes, idle connections close, busy ones close
  // after their current response.
  std::atomic<bool> stopping{false};

  std::mutex lifecycle_mutex;  // serialises start() and stop(); guards state, threads
  enum class State { kNew, kRunning, kStopped };
  State state = State::kNew;
  std::vector<std::thread> threads;
  uint16_t bound_port = 0;  // written by start() before any thread runs

  std::mutex mutex;                          // guards connections, stop_requested, signal_waiter
  std::condition_variable connection_closed;  // notified whenever connections shrinks
  std::unordered_set<std::shared_ptr<Connection>> connections;
  bool stop_requested = false;
  asio::io_context* signal_waiter = nullptr;  // the io_context wait_for_shutdown_signal() runs

  // Declared last so it is destroyed first: coroutine frames still queued in it own
  // connections whose destructors use the members above.
  asio::io_context ioc;
  std::optional<tcp::acceptor> acceptor;  // on its own strand, shared with accept_loop
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
};

void HttpServer::Impl::unregister(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex);
  connections.erase(connection);
  open_connections.fetch_sub(1);
  connection_closed.notify_all();
}

void HttpServer::Impl::log_access(std::string_view method, std::string_view target, int status, size_t bytes,
                                  Clock::time_point started, std::string_view request_id,
                                  std::string_view remote) const {
  if (!options.access_log) return;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  spdlog::info("http {} {} {} {}B {:.1f}ms id={} remote={}", method.empty() ? "-" : method,
               target.empty() ? "-" : target, status, bytes, ms, request_id, remote);
}

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::make_strand(ioc), kUseTuple);
    if (stopping.load() || ec == asio::error::operation_aborted) co_return;  // a just-accepted socket closes here
    if (ec) {
      // Typically EMFILE: the connection stays queued in the kernel; back off instead of spinning.
      spdlog::warn("HTTP accept failed: {}", ec.message());
      asio::steady_timer backoff(acceptor->get_executor(), std::chrono::milliseconds(100));
      co_await backoff.async_wait(kUseTuple);
      continue;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    tcp::endpoint peer = socket.remote_endpoint(ignored);
    auto connection = std::make_shared<Connection>(tcp::socket(std::move(socket)),
                                                   peer.address().to_string() + ":" + std::to_string(peer.port()));
    {
      std::lock_guard lock(mutex);
      connections.insert(connection);
      open_connections.fetch_add(1);
    }
    asio::co_spawn(connection->stream.get_executor(), serve(connection), log_exception);
  }
}

asio::awaitable<void> HttpServer::Impl::serve(std::shared_ptr<Connection> connection) {
  // Unregisters on every way out, including the frame being destroyed unfinished.
  struct Registration {
    Impl* impl;
    std::shared_ptr<Connection> connection;
    ~Registration() { impl->unregister(connection); }
  } registration{this, connection};

  beast::tcp_stream& stream = connection->stream;
  beast::flat_buffer buffer;
  bool linger = false;
  for (;;) {
    if (buffer.size() == 0) {
      // Idle: stop() may cancel this wait (see stop()); check its flag first so a
      // connection accepted during shutdown does not start waiting.
      if (stopping.load()) break;
      connection->idle = true;
      set_deadline(stream, options.idle_timeout_seconds);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kFirstReadBytes), kUseTuple);
      connection->idle = false;
      if (ec) break;  // client closed, idle timeout, or shutdown
      buffer.commit(n);
    }

    const Clock::time_point started = Clock::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<size_t>(options.max_header_bytes, UINT32_MAX)));
    parser.body_limit(options.max_body_bytes);
    set_deadline(stream, options.idle_timeout_seconds);
    auto [header_ec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    error_code ec = header_ec;
    if (!ec && !parser.is_done()) {
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
        auto [continue_ec, continue_bytes] = co_await http::async_write(stream, go_on, kUseTuple);
        ec = continue_ec;
      }
      if (!ec) {
        set_deadline(stream, options.idle_timeout_seconds);
        auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, kUseTuple);
        ec = body_ec;
      }
    }
    if (ec) {
      std::optional<HttpResponse> error = response_for_read_error(ec, options);
      if (error) {
        // The rest of the stream cannot be trusted: answer, then close.
        const http::request_header<>& partial = parser.get();
        std::string request_id = request_id_from(partial);
        unsigned version = partial.version() == 10 ? 10 : 11;
        auto write_ec = co_await write_response(stream, *error, request_id, version, false, false,
                                                options.idle_timeout_seconds);
        log_access(partial.method_string(), partial.target(), error->status, error->body.size(), started, request_id,
                   connection->remote_address);
        linger = !write_ec;
      }
      break;
    }

    http::request<http::string_body> message = parser.release();
    const bool head_only = message.method() == http::verb::head;
    HttpRequest request;
    HttpResponse response;
    {
      InFlight in_flight_request(in_flight);
      request.method = std::string(message.method_string());
      request.set_target(std::string(message.target()));
      for (const auto& field : message) {
        std::string& value = request.headers[std::string(field.name_string())];
        value += (value.empty() ? "" : ", ") + std::string(field.value());  // repeated headers join, per RFC 9110
      }
      request.body = std::move(message.body());
      request.request_id = request_id_from(message);
      request.remote_address = connection->remote_address;
      response = router->dispatch(request);
      const bool keep_alive = message.keep_alive() && !stopping.load();
      ec = co_await write_response(stream, response, request.request_id, message.version(), keep_alive, head_only,
                                   options.idle_timeout_seconds);
      log_access(request.method, request.target, response.status, head_only ? 0 : response.body.size(), started,
                 request.request_id, connection->remote_address);
      if (ec || !keep_alive) break;
    }
    if (stopping.load()) break;  // the response that was in flight is out; close now
  }

  if (linger) co_await linger_before_close(stream);
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
}

HttpServer::HttpServer(ServerOptions options, std::shared_ptr<const Router> router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  Impl& s = *impl_;
  std::lock_guard lifecycle(s.lifecycle_mutex);
  if (s.state != Impl::State::kNew) return failed_precondition("the HTTP server can be started only once");
  if (!s.router) return invalid_argument("the HTTP server needs a router");
  const std::string where = endpoint_text(s.options.host, s.options.port);

  error_code ec;
  asio::ip::address address = asio::ip::make_address(s.options.host, ec);
  if (ec && s.options.host.find(':') != std::string::npos) {
    return invalid_argument("cannot listen on " + where + ": '" + s.options.host + "' is not a valid IPv6 address");
  }
  if (ec) {
    // Not a literal address: resolve a name such as "localhost".
    tcp::resolver resolver(s.ioc);
    auto results = resolver.resolve(s.options.host, std::to_string(s.options.port), ec);
    if (ec || results.empty()) {
      return invalid_argument("cannot listen on " + where + ": cannot resolve host '" + s.options.host + "'" +
                              (ec ? ": " + ec.message() : std::string()));
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, s.options.port);

  s.acceptor.emplace(asio::make_strand(s.ioc));
  if (s.acceptor->open(endpoint.protocol(), ec); ec) return listen_error(where, ec);
  // Lets a restarted server bind while old connections sit in TIME_WAIT; two
  // listeners on one port are still refused on Linux.
  if (s.acceptor->set_option(tcp::acceptor::reuse_address(true), ec); ec) return listen_error(where, ec);
  if (s.acceptor->bind(endpoint, ec); ec) return listen_error(where, ec);
  if (s.acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) return listen_error(where, ec);
  tcp::endpoint bound = s.acceptor->local_endpoint(ec);
  if (ec) return listen_error(where, ec);
  s.bound_port = bound.port();

  s.work.emplace(s.ioc.get_executor());
  asio::co_spawn(s.acceptor->get_executor(), s.accept_loop(), log_exception);
  const int threads = std::max(1, s.options.io_threads);
  for (int i = 0; i < threads; ++i) s.threads.emplace_back([&s] { s.ioc.run(); });
  s.state = Impl::State::kRunning;
  spdlog::debug("HTTP server listening on {}", endpoint_text(address.to_string(), s.bound_port));
  return Status::Ok();
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::stop() {
  Impl& s = *impl_;
  std::lock_guard lifecycle(s.lifecycle_mutex);
  {
    std::lock_guard lock(s.mutex);
    s.stop_requested = true;
    if (s.signal_waiter != nullptr) s.signal_waiter->stop();
  }
  if (s.state != Impl::State::kRunning) {
    s.state = Impl::State::kStopped;
    return;
  }

  s.stopping.store(true);
  const auto deadline = Clock::now() + std::chrono::seconds(std::max(0, s.options.shutdown_grace_seconds));
  // The acceptor belongs to its strand; close it there, and wait so that connects are
  // refused from here on (only handlers blocking every I/O thread could delay this).
  auto acceptor_closed = std::make_shared<std::promise<void>>();
  std::future<void> acceptor_closed_future = acceptor_closed->get_future();
  asio::post(s.acceptor->get_executor(), [&s, acceptor_closed] {
    error_code ignored;
    s.acceptor->close(ignored);
    acceptor_closed->set_value();
  });
  acceptor_closed_future.wait_until(deadline);
  s.work.reset();

  // Connections registered after this snapshot see `stopping` before they go idle.
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(s.mutex);
    open.assign(s.connections.begin(), s.connections.end());
  }
  for (const auto& connection : open) {
    // On the connection's strand, `idle` is exact: either the coroutine is parked in
    // its first read (cancel it) or it is handling a request (it will close itself).
    asio::post(connection->stream.get_executor(), [connection] {
      if (connection->idle) connection->stream.cancel();
    });
  }
  open.clear();

  {
    std::unique_lock lock(s.mutex);
    if (!s.connection_closed.wait_until(lock, deadline, [&] { return s.connections.empty(); })) {
      spdlog::warn("{} HTTP connection(s) still busy after the {}s grace period; closing them",
                   s.connections.size(), s.options.shutdown_grace_seconds);
      for (const auto& connection : s.connections) {
        asio::post(connection->stream.get_executor(), [connection] { connection->stream.close(); });
      }
      s.connection_closed.wait_for(lock, kForcedCloseWait, [&] { return s.connections.empty(); });
    }
  }

  s.ioc.stop();
  for (std::thread& thread : s.threads) thread.join();
  s.threads.clear();
  error_code ignored;
  s.acceptor->close(ignored);  // no thread runs the strand any more; covers a close that never ran
  s.state = Impl::State::kStopped;
}

void HttpServer::wait_for_shutdown_signal() {
  Impl& s = *impl_;
  asio::io_context signal_context;
  asio::signal_set signals(signal_context, SIGINT, SIGTERM);
  signals.async_wait([](const error_code& ec, int signal_number) {
    if (!ec) spdlog::info("received signal {}; shutting down", signal_number);
  });
  {
    std::lock_guard lock(s.mutex);
    // stop() from elsewhere also ends the wait: it stops signal_context.
    if (s.stop_requested) signal_context.stop();
    s.signal_waiter = &signal_context;
  }
  signal_context.run();
  {
    std::lock_guard lock(s.mutex);
    s.signal_waiter = nullptr;
  }
  stop();
}

size_t HttpServer::open_connections() const { return impl_->open_connections.load(); }

size_t HttpServer::in_flight_requests() const { return impl_->in_flight.load(); }

}  // namespace keel::server
