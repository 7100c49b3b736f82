// HttpServer on Boost.Beast: one accept coroutine and one coroutine per connection, on
// options.io_threads io_contexts of one thread each. A connection stays on the context
// it was accepted onto (round robin), so a request and its response - and the upstream
// call a gateway makes for it - never pass between I/O threads: each such hand-off is a
// wake-up of another thread, tens of microseconds on a virtual machine. Each connection
// lives on its own strand, so its coroutine and the shutdown code that pokes it never
// run at the same time. Beast and Asio signal failures as error_codes here (as_tuple),
// never exceptions.
//
// A deferred response (HttpResponse::deferred) parks the connection's coroutine on a
// steady_timer used as a wake-up: the producer's notify posts a cancel of that timer
// onto the connection's strand, the coroutine wakes, takes the news from the
// ResponseChannel and sends it. The timer's expiry is the producer's stall limit
// (idle_timeout_seconds since its last call). Meanwhile a wait for readability on the
// socket notices a client that closed its end. The channel is detached on every way
// out of the response, and by stop() after the I/O threads are joined, so that no
// producer ever posts onto an io_context that is gone.
#include "keel/server/beast_pch.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

#include "keel/server/http.h"
#include "keel/server/io_executor.h"
#include "keel/server/response_channel.h"
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
// Once the connections are gone, what they started on their I/O threads (an upstream
// call a closed connection cancelled) may still have handlers to run; the threads get
// this long to run out of work before their io_contexts are stopped.
constexpr auto kDrainWait = std::chrono::seconds(1);
constexpr size_t kMaxRequestIdLength = 128;

struct Connection {
  Connection(tcp::socket socket, std::string remote)
      : stream(std::move(socket)),
        wakeup(stream.get_executor()),
        io(std::make_shared<const IoExecutor>(IoExecutor{stream.get_executor()})),
        remote_address(std::move(remote)) {}
  beast::tcp_stream stream;  // its executor is this connection's strand
  // A deferred response waits on this timer; a producer's news cancels the wait.
  asio::steady_timer wakeup;
  // The strand again, for the handlers of this connection's requests (HttpRequest::io).
  const std::shared_ptr<const IoExecutor> io;
  const std::string remote_address;
  // The fields below are read and written only on the stream's strand (or by stop()
  // once no I/O thread runs).
  // True while the coroutine waits for the first byte of the next request.
  bool idle = false;
  // The deferred response being sent, if any.
  std::shared_ptr<ResponseChannel> deferred;
  // Set by the disconnect watch: the peer closed its end while a deferred response was under way.
  bool peer_gone = false;
  // Set by stop() once the grace period is over.
  bool force_closed = false;
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

// Writes the header of a streamed response (chunked unless the client speaks HTTP/1.0,
// whose body then ends when the connection closes) or, when bodyless, the whole of one.
asio::awaitable<error_code> write_stream_header(beast::tcp_stream& stream, const ResponseChannel::Head& head,
                                                const std::string& request_id, unsigned version, bool keep_alive,
                                                bool chunked, int timeout_seconds) {
  http::response<http::empty_body> message;
  message.version(version);
  message.result(static_cast<unsigned>(head.status));
  for (const auto& [name, value] : head.headers) {
    if (is_safe_header(name) && is_safe_header(value)) message.set(name, value);
  }
  if (!head.content_type.empty() && is_safe_header(head.content_type)) {
    message.set(http::field::content_type, head.content_type);
  }
  message.set("x-request-id", request_id);
  message.keep_alive(keep_alive);
  if (chunked) message.chunked(true);
  http::response_serializer<http::empty_body> serializer(message);
  set_deadline(stream, timeout_seconds);
  auto [ec, bytes] = co_await http::async_write_header(stream, serializer, kUseTuple);
  co_return ec;
}

// Sends what a streamed response has gathered: `data` as one chunk (raw without
// chunked encoding), then the last chunk when `last`. One write for both.
asio::awaitable<error_code> write_stream_data(beast::tcp_stream& stream, const std::string& data, bool last,
                                              bool chunked, int timeout_seconds) {
  static constexpr std::string_view kCrlf = "\r\n";
  static constexpr std::string_view kLastChunk = "0\r\n\r\n";
  char size_line[24];
  std::vector<asio::const_buffer> buffers;
  if (!data.empty()) {
    if (chunked) {
      int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
      buffers.emplace_back(size_line, static_cast<size_t>(n));
    }
    buffers.emplace_back(data.data(), data.size());
    if (chunked) buffers.emplace_back(kCrlf.data(), kCrlf.size());
  }
  if (last && chunked) buffers.emplace_back(kLastChunk.data(), kLastChunk.size());
  if (buffers.empty()) co_return error_code{};
  set_deadline(stream, timeout_seconds);
  auto [ec, bytes] = co_await asio::async_write(stream, buffers, kUseTuple);
  co_return ec;
}

// Watches the socket while a deferred response is under way: when it turns readable
// and a peek finds EOF (or an error), the peer has closed its end, so the response is
// cancelled and the coroutine woken. Bytes instead of EOF are a client still talking
// (a pipelined request): the watch ends there, and they are read as the next request.
// A client that only keeps the connection open is never taken for gone.
void watch_for_disconnect(const std::shared_ptr<Connection>& connection,
                          const std::shared_ptr<ResponseChannel>& channel) {
  connection->stream.socket().async_wait(tcp::socket::wait_read, [connection, channel](const error_code& ec) {
    if (connection->deferred != channel) return;  // that response is over
    if (!ec) {
      char byte;
      ssize_t n = ::recv(connection->stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) return;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        watch_for_disconnect(connection, channel);  // a spurious wake-up
        return;
      }
    }
    connection->peer_gone = true;
    channel->cancel();
    connection->wakeup.cancel();
  });
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
        contexts(static_cast<size_t>(std::max(1, options.io_threads))) {
    for (auto& context : contexts) context = std::make_unique<asio::io_context>(1);
  }

  // The context the next connection goes to.
  asio::io_context& next_context() { return *contexts[next_connection++ % contexts.size()]; }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> connection);
  // Sends the response a producer gives through `channel`; true when the connection
  // may serve another request.
  asio::awaitable<bool> send_deferred(std::shared_ptr<Connection> connection, std::shared_ptr<ResponseChannel> channel,
                                      const HttpRequest& request, unsigned version, bool client_keep_alive,
                                      bool head_only, Clock::time_point started);
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
  std::condition_variable connection_closed;  // notified whenever connections shrinks or a thread ends
  size_t threads_done = 0;                    // I/O threads whose io_context ran out of work
  std::unordered_set<std::shared_ptr<Connection>> connections;
  bool stop_requested = false;
  asio::io_context* signal_waiter = nullptr;  // the io_context wait_for_shutdown_signal() runs

  // Declared last so they are destroyed first: coroutine frames still queued in them own
  // connections whose destructors use the members above.
  std::vector<std::unique_ptr<asio::io_context>> contexts;  // one thread each
  size_t next_connection = 0;                               // accept_loop's own
  std::optional<tcp::acceptor> acceptor;  // on a strand of the first context, shared with accept_loop
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
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
    auto [ec, socket] = co_await acceptor->async_accept(asio::make_strand(next_context()), kUseTuple);
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
      request.io = connection->io;
      response = router->dispatch(request);
      if (response.later) {
        // Only the producer keeps the writer: its last reference going away is news.
        std::shared_ptr<ResponseChannel> channel = response.later->channel();
        response.later.reset();
        bool keep_alive = co_await send_deferred(connection, std::move(channel), request, message.version(),
                                                 message.keep_alive(), head_only, started);
        if (!keep_alive) break;
        error_code ignored;
        stream.socket().cancel(ignored);  // ends the disconnect watch before the next read
        if (stopping.load()) break;
        continue;
      }
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

asio::awaitable<bool> HttpServer::Impl::send_deferred(std::shared_ptr<Connection> connection,
                                                      std::shared_ptr<ResponseChannel> channel,
                                                      const HttpRequest& request, unsigned version,
                                                      bool client_keep_alive, bool head_only,
                                                      Clock::time_point started) {
  Connection& c = *connection;
  beast::tcp_stream& stream = c.stream;
  // Detaches on every way out, including the frame being destroyed unfinished. No Asio
  // call here: at io_context destruction the socket's reactor may be gone already.
  struct Detach {
    Connection& c;
    ~Detach() {
      if (c.deferred) c.deferred->detach();
      c.deferred.reset();
    }
  } detach{c};
  c.deferred = channel;
  c.peer_gone = false;
  channel->attach([weak = std::weak_ptr<Connection>(connection), executor = stream.get_executor()] {
    asio::post(executor, [weak] {
      if (auto alive = weak.lock()) alive->wakeup.cancel();
    });
  });
  watch_for_disconnect(connection, channel);

  const int timeout = options.idle_timeout_seconds;
  auto stall_deadline = [timeout](Clock::time_point from) {
    return timeout > 0 ? from + std::chrono::seconds(timeout) : Clock::time_point::max();
  };
  Clock::time_point deadline = stall_deadline(Clock::now());
  bool streaming = false;  // the header of a streamed response is out
  bool chunked = false;
  bool keep_alive = false;
  int status = 0;
  size_t bytes = 0;
  auto log = [&](int logged_status) {
    log_access(request.method, request.target, logged_status, bytes, started, request.request_id, c.remote_address);
  };
  // 499 (as nginx logs it): the client went away before a status was sent.
  constexpr int kClientClosed = 499;

  for (;;) {
    if (c.force_closed || c.peer_gone) {
      channel->cancel();
      log(streaming ? status : kClientClosed);
      co_return false;
    }
    ResponseChannel::News news = channel->take();
    const Clock::time_point now = Clock::now();
    if (!news.empty()) deadline = stall_deadline(now);

    std::optional<HttpResponse> whole;
    if (!streaming) {
      if (news.whole) {
        whole = std::move(*news.whole);
      } else if (news.head && (news.head->status < 200 || news.head->status > 599)) {
        spdlog::error("ResponseWriter::begin() with HTTP status {}; sending 500", news.head->status);
        channel->cancel();
        whole = HttpResponse::error(500, "internal", "handler returned an invalid HTTP status");
      } else if (news.abandoned && !news.head) {
        whole = HttpResponse::error(500, "internal", "the response was abandoned before it was complete");
      } else if (news.empty() && now >= deadline) {
        channel->cancel();
        whole =
            HttpResponse::error(504, "timeout", "no response was produced within " + std::to_string(timeout) + " s");
      }
    }
    if (whole) {
      keep_alive = client_keep_alive && !stopping.load();
      error_code ec =
          co_await write_response(stream, *whole, request.request_id, version, keep_alive, head_only, timeout);
      if (ec) channel->cancel();
      bytes = head_only ? 0 : whole->body.size();
      log(whole->status);
      co_return !ec && keep_alive;
    }

    if (news.head) {
      status = news.head->status;
      chunked = version >= 11;
      keep_alive = client_keep_alive && chunked && !stopping.load();
      // A HEAD response carries the headers a GET would get, transfer-encoding included;
      // 204 and 304 carry no body, so no transfer-encoding either.
      const bool body_forbidden = status == 204 || status == 304;
      const bool bodyless = head_only || body_forbidden;
      error_code ec = co_await write_stream_header(stream, *news.head, request.request_id, version, keep_alive,
                                                   chunked && !body_forbidden, timeout);
      if (ec || bodyless) {
        channel->cancel();  // nobody will read what the producer would write
        log(status);
        co_return !ec && keep_alive;
      }
      streaming = true;
      // News may have come while the header was sent, and its wake-up found no wait to
      // end: take again before waiting (the wait below is reached only right after a take).
      if (news.data.empty() && !news.ended) continue;
    }

    if (streaming) {
      if (!news.data.empty() || news.ended) {
        error_code ec = co_await write_stream_data(stream, news.data, news.ended, chunked, timeout);
        if (ec) {
          channel->cancel();
          log(status);
          co_return false;
        }
        bytes += news.data.size();
        if (news.ended) {
          log(status);
          co_return keep_alive;
        }
        continue;  // more may have come while this was sent
      }
      if (news.abandoned || now >= deadline) {
        // Closing without the last chunk tells the client that the body is incomplete.
        if (!news.abandoned) channel->cancel();
        log(status);
        co_return false;
      }
    }

    // Nothing new since the take above, with no suspension in between: wait for a wake-up
    // (news, a closed peer, stop()) or the stall limit.
    c.wakeup.expires_at(deadline);
    co_await c.wakeup.async_wait(kUseTuple);
  }
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
    tcp::resolver resolver(*s.contexts.front());
    auto results = resolver.resolve(s.options.host, std::to_string(s.options.port), ec);
    if (ec || results.empty()) {
      return invalid_argument("cannot listen on " + where + ": cannot resolve host '" + s.options.host + "'" +
                              (ec ? ": " + ec.message() : std::string()));
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, s.options.port);

  s.acceptor.emplace(asio::make_strand(*s.contexts.front()));
  if (s.acceptor->open(endpoint.protocol(), ec); ec) return listen_error(where, ec);
  // Lets a restarted server bind while old connections sit in TIME_WAIT; two
  // listeners on one port are still refused on Linux.
  if (s.acceptor->set_option(tcp::acceptor::reuse_address(true), ec); ec) return listen_error(where, ec);
  if (s.acceptor->bind(endpoint, ec); ec) return listen_error(where, ec);
  if (s.acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) return listen_error(where, ec);
  tcp::endpoint bound = s.acceptor->local_endpoint(ec);
  if (ec) return listen_error(where, ec);
  s.bound_port = bound.port();

  for (auto& context : s.contexts) s.work.push_back(asio::make_work_guard(*context));
  asio::co_spawn(s.acceptor->get_executor(), s.accept_loop(), log_exception);
  for (auto& context : s.contexts) {
    s.threads.emplace_back([&s, &context] {
      context->run();
      std::lock_guard lock(s.mutex);
      ++s.threads_done;
      s.connection_closed.notify_all();
    });
  }
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
  // refused from here on (only a handler blocking the first I/O thread could delay this).
  auto acceptor_closed = std::make_shared<std::promise<void>>();
  std::future<void> acceptor_closed_future = acceptor_closed->get_future();
  asio::post(s.acceptor->get_executor(), [&s, acceptor_closed] {
    error_code ignored;
    s.acceptor->close(ignored);
    acceptor_closed->set_value();
  });
  acceptor_closed_future.wait_until(deadline);
  s.work.clear();

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
        asio::post(connection->stream.get_executor(), [connection] {
          connection->force_closed = true;
          if (connection->deferred) connection->deferred->cancel();
          connection->wakeup.cancel();
          connection->stream.close();
        });
      }
      s.connection_closed.wait_for(lock, kForcedCloseWait, [&] { return s.connections.empty(); });
    }
    // Without work guards a thread's run() returns once its context has nothing left.
    s.connection_closed.wait_for(lock, kDrainWait, [&] { return s.threads_done == s.threads.size(); });
  }

  for (auto& context : s.contexts) context->stop();
  for (std::thread& thread : s.threads) thread.join();
  s.threads.clear();
  // Coroutines that did not finish keep their frames until the io_context goes; detach
  // their producers now, while the io_context they would post to still exists.
  std::vector<std::shared_ptr<ResponseChannel>> unfinished;
  {
    std::lock_guard lock(s.mutex);
    for (const auto& connection : s.connections) {
      if (connection->deferred) unfinished.push_back(connection->deferred);
    }
  }
  for (const auto& channel : unfinished) channel->detach();
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
