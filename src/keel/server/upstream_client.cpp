// A call is a coroutine on its executor: the client's one I/O thread, or a server
// connection's strand. Idle plain connections wait in a pool as bare descriptors, which
// any io_context can take up; idle TLS connections and the set of live calls belong to
// the client's thread alone. Beast and Asio report failures as error_codes here
// (as_tuple), never exceptions.
#include "keel/server/upstream_client.h"

#include <unistd.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "keel/server/io_executor.h"

namespace keel::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxHeaderBytes = 64 * 1024;
// What one read from an upstream may take in. Beast reads as much as the buffer has room
// for, at least 512 bytes: a buffer left at its initial size would take an embedding's
// answer in two dozen reads, each a system call and a wake-up of the coroutine.
constexpr size_t kReadBufferBytes = 64 * 1024;

// One connection to one upstream, in use by one call.
struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool v6 = false;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  void close() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }
};

std::string host_key(const registry::ParsedUrl& url) {
  return (url.tls ? "https://" : "http://") + url.host + ":" + std::to_string(url.port);
}

Status network_error(const std::string& what, const registry::ParsedUrl& url, const error_code& ec) {
  const std::string where = host_key(url);
  if (ec == beast::error::timeout) return deadline_exceeded("the upstream " + where + " did not answer in time (" + what + ")");
  return unavailable(what + " " + where + ": " + ec.message());
}

// Idle plain connections as bare descriptors, by host. Thread-safe.
class IdleSockets {
 public:
  explicit IdleSockets(size_t per_host) : per_host_(per_host) {}
  ~IdleSockets() {
    for (auto& [key, sockets] : idle_) {
      for (const Socket& s : sockets) ::close(s.fd);
    }
  }
  IdleSockets(const IdleSockets&) = delete;
  IdleSockets& operator=(const IdleSockets&) = delete;

  // A kept connection to `key`, taken up by `executor`; null when there is none.
  std::unique_ptr<Connection> take(const std::string& key, const asio::any_io_executor& executor) {
    for (;;) {
      Socket s;
      {
        std::lock_guard lock(mutex_);
        auto it = idle_.find(key);
        if (it == idle_.end() || it->second.empty()) return nullptr;
        s = it->second.back();
        it->second.pop_back();
      }
      tcp::socket socket(executor);
      error_code ec;
      socket.assign(s.v6 ? tcp::v6() : tcp::v4(), s.fd, ec);
      if (ec) {
        ::close(s.fd);
        continue;
      }
      auto c = std::make_unique<Connection>();
      c->buffer.reserve(kReadBufferBytes);
      c->v6 = s.v6;
      c->plain = std::make_unique<beast::tcp_stream>(std::move(socket));
      return c;
    }
  }

  // Keeps a plain connection whose exchange ended cleanly (nothing left unread).
  void put(const std::string& key, Connection& c) {
    tcp::socket socket = c.plain->release_socket();
    error_code ec;
    const int fd = socket.release(ec);
    if (ec) return;  // `socket` closes it
    std::lock_guard lock(mutex_);
    auto& sockets = idle_[key];
    if (sockets.size() >= per_host_) {
      ::close(fd);
      return;
    }
    sockets.push_back({fd, c.v6});
  }

 private:
  struct Socket {
    int fd = -1;
    bool v6 = false;
  };
  const size_t per_host_;
  std::mutex mutex_;
  std::map<std::string, std::vector<Socket>> idle_;  // guarded by mutex_
};

// What every call holds: it may outlive the client (a call on a server's executor).
struct Shared {
  explicit Shared(UpstreamClientOptions o) : options(std::move(o)), plain(options.max_idle_connections_per_host) {}
  const UpstreamClientOptions options;
  IdleSockets plain;
};

}  // namespace

// What cancel() may reach from any thread: the client's I/O context while it runs.
struct UpstreamGate {
  std::mutex mutex;
  asio::io_context* io = nullptr;  // guarded by mutex; null once the client is gone
};

class CallState : public UpstreamCall, public std::enable_shared_from_this<CallState> {
 public:
  CallState(std::shared_ptr<UpstreamGate> gate, std::shared_ptr<Shared> shared, asio::any_io_executor executor,
            bool foreign, registry::ParsedUrl server, UpstreamRequest request, UpstreamHandlers handlers)
      : gate_(std::move(gate)),
        shared(std::move(shared)),
        executor(std::move(executor)),
        foreign(foreign),
        server(std::move(server)),
        request(std::move(request)),
        handlers(std::move(handlers)) {}

  void cancel() override {
    cancelled.store(true, std::memory_order_release);
    auto interrupt_there = [self = shared_from_this()] { self->interrupt(); };
    if (foreign) {
      asio::post(executor, std::move(interrupt_there));
      return;
    }
    std::lock_guard lock(gate_->mutex);
    if (gate_->io != nullptr) asio::post(*gate_->io, std::move(interrupt_there));
  }

  // On the call's executor: makes the pending operation, if any, complete at once.
  void interrupt() {
    if (resolver) resolver->cancel();
    if (connection) connection->close();
  }

  bool is_cancelled() const { return cancelled.load(std::memory_order_acquire); }

  std::shared_ptr<UpstreamGate> gate_;
  const std::shared_ptr<Shared> shared;
  const asio::any_io_executor executor;  // where the call runs
  const bool foreign;                    // on a server's executor, not the client's thread
  const registry::ParsedUrl server;
  const UpstreamRequest request;
  UpstreamHandlers handlers;
  std::atomic<bool> cancelled{false};
  // The executor's own: what interrupt() closes.
  tcp::resolver* resolver = nullptr;
  Connection* connection = nullptr;
};

namespace {

asio::awaitable<Result<std::unique_ptr<Connection>>> connect(CallState& call, ssl::context* tls) {
  const registry::ParsedUrl& url = call.server;
  const UpstreamClientOptions& options = call.shared->options;
  auto c = std::make_unique<Connection>();
  c->buffer.reserve(kReadBufferBytes);
  if (url.tls) {
    c->secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(call.executor, *tls);
  } else {
    c->plain = std::make_unique<beast::tcp_stream>(call.executor);
  }
  error_code cec;
  tcp::endpoint endpoint;
  // An address needs no resolver (whose lookups run on a thread of their own).
  error_code not_an_address;
  const asio::ip::address address = asio::ip::make_address(url.host, not_an_address);
  if (!not_an_address) {
    endpoint = tcp::endpoint(address, url.port);
    call.connection = c.get();
    c->lowest().expires_after(options.connect_timeout);
    std::tie(cec) = co_await c->lowest().async_connect(endpoint, kUseTuple);
  } else {
    tcp::resolver resolver(call.executor);
    call.resolver = &resolver;
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, std::to_string(url.port), kUseTuple);
    call.resolver = nullptr;
    if (call.is_cancelled()) co_return cancelled("the request was cancelled");
    if (rec) co_return unavailable("cannot resolve the upstream host '" + url.host + "': " + rec.message());
    call.connection = c.get();
    c->lowest().expires_after(options.connect_timeout);
    std::tie(cec, endpoint) = co_await c->lowest().async_connect(endpoints, kUseTuple);
  }
  if (call.is_cancelled()) co_return cancelled("the request was cancelled");
  if (cec) co_return network_error("cannot connect to", url, cec);
  c->v6 = endpoint.address().is_v6();
  error_code ignored;
  c->lowest().socket().set_option(tcp::no_delay(true), ignored);
  if (url.tls) {
    if (!SSL_set_tlsext_host_name(c->secure->native_handle(), url.host.c_str())) {
      co_return unavailable("cannot set the TLS server name for " + url.host);
    }
    c->secure->set_verify_callback(ssl::host_name_verification(url.host));
    auto [hec] = co_await c->secure->async_handshake(ssl::stream_base::client, kUseTuple);
    if (call.is_cancelled()) co_return cancelled("the request was cancelled");
    if (hec) co_return network_error("TLS handshake with", url, hec);
  }
  co_return c;
}

template <typename Stream>
asio::awaitable<Status> exchange(Stream& stream, Connection& c, CallState& call, bool reused, bool& retry) {
  const registry::ParsedUrl& url = call.server;
  const UpstreamRequest& r = call.request;
  const UpstreamClientOptions& options = call.shared->options;
  http::request<http::string_body> req{http::string_to_verb(r.method), r.target, 11};
  req.set(http::field::host, url.host);
  for (const auto& [name, value] : r.headers) req.set(name, value);
  req.body() = r.body;
  req.keep_alive(true);
  req.prepare_payload();
  c.lowest().expires_after(options.read_timeout);
  auto [wec, written] = co_await http::async_write(stream, req, kUseTuple);
  if (call.is_cancelled()) co_return cancelled("the request was cancelled");
  if (wec) {
    retry = reused;  // a kept-alive connection the upstream closed meanwhile
    co_return network_error("sending to", url, wec);
  }
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  parser.header_limit(kMaxHeaderBytes);
  auto [hec, header_bytes] = co_await http::async_read_header(stream, c.buffer, parser, kUseTuple);
  if (call.is_cancelled()) co_return cancelled("the request was cancelled");
  if (hec) {
    retry = reused && c.buffer.size() == 0 && (hec == http::error::end_of_stream || hec == asio::error::eof ||
                                               hec == asio::error::connection_reset);
    co_return network_error("reading the answer of", url, hec);
  }
  Headers headers;
  for (const auto& field : parser.get()) headers[std::string(field.name_string())] = std::string(field.value());
  if (call.handlers.on_head) call.handlers.on_head(static_cast<int>(parser.get().result_int()), headers);
  char chunk[16384];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    c.lowest().expires_after(options.read_timeout);
    auto [bec, got_bytes] = co_await http::async_read_some(stream, c.buffer, parser, kUseTuple);
    if (bec == http::error::need_buffer) bec = {};
    const size_t got = sizeof chunk - parser.get().body().size;
    if (call.is_cancelled()) co_return cancelled("the request was cancelled");
    if (got > 0 && call.handlers.on_data) call.handlers.on_data(std::string_view(chunk, got));
    if (bec) co_return network_error("the answer broke off from", url, bec);
  }
  // Bytes past the answer would be read as the next one's: such a connection is not kept.
  if (!parser.keep_alive() || c.buffer.size() > 0) c.close();
  co_return Status::Ok();
}

}  // namespace

struct UpstreamClient::Impl {
  explicit Impl(UpstreamClientOptions o)
      : shared(std::make_shared<Shared>(std::move(o))), work(asio::make_work_guard(io)) {
    tls.set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (shared->options.ca_file.empty()) {
      tls.set_default_verify_paths(ec);
    } else {
      tls.load_verify_file(shared->options.ca_file, ec);
    }
    if (ec) spdlog::warn("upstream client: trusted certificates not loaded ({}); https upstreams will fail", ec.message());
    gate->io = &io;
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    asio::post(io, [this] {
      for (const auto& call : live) {
        call->cancelled.store(true, std::memory_order_release);
        call->interrupt();
      }
      secure_idle.clear();
    });
    work.reset();
    thread.join();
    std::lock_guard lock(gate->mutex);
    gate->io = nullptr;
  }

  // On the client's thread: a kept TLS connection to `key`, or null.
  std::unique_ptr<Connection> take_secure(const std::string& key) {
    auto it = secure_idle.find(key);
    if (it == secure_idle.end() || it->second.empty()) return nullptr;
    auto c = std::move(it->second.back());
    it->second.pop_back();
    return c;
  }

  void put_secure(const std::string& key, std::unique_ptr<Connection> c) {
    auto& pool = secure_idle[key];
    if (pool.size() < shared->options.max_idle_connections_per_host) pool.push_back(std::move(c));
  }

  const std::shared_ptr<Shared> shared;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  ssl::context tls{ssl::context::tls_client};
  std::shared_ptr<UpstreamGate> gate = std::make_shared<UpstreamGate>();
  std::thread thread;
  // The client's thread's own (see the file comment).
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> secure_idle;
  std::set<std::shared_ptr<CallState>> live;

  // One call, start to end. `own` is the client for a call on its thread, null for one
  // on a server's executor (which may outlive the client, so touches only call.shared).
  static asio::awaitable<void> run(std::shared_ptr<CallState> call, Impl* own);
};

asio::awaitable<void> UpstreamClient::Impl::run(std::shared_ptr<CallState> call, Impl* own) {
  if (own != nullptr) own->live.insert(call);
  const std::string key = host_key(call->server);
  IdleSockets& plain_idle = call->shared->plain;
  Status status;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> c;
    if (call->server.tls) {
      c = own->take_secure(key);
    } else {
      c = plain_idle.take(key, call->executor);
    }
    const bool reused = c != nullptr;
    if (!c) {
      auto fresh = co_await connect(*call, own != nullptr ? &own->tls : nullptr);
      if (!fresh.ok()) {
        status = fresh.status();
        break;
      }
      c = std::move(*fresh);
    }
    call->connection = c.get();
    bool retry = false;
    // (An if, not ?: - GCC 12 miscompiles co_await inside a conditional expression.)
    if (c->secure) {
      status = co_await exchange(*c->secure, *c, *call, reused, retry);
    } else {
      status = co_await exchange(*c->plain, *c, *call, reused, retry);
    }
    call->connection = nullptr;
    if (status.ok()) {
      if (c->lowest().socket().is_open()) {
        if (c->secure) {
          own->put_secure(key, std::move(c));
        } else {
          plain_idle.put(key, *c);
        }
      }
      break;
    }
    if (!retry || call->is_cancelled()) break;
  }
  call->connection = nullptr;
  if (call->is_cancelled()) status = cancelled("the request was cancelled");
  if (own != nullptr) own->live.erase(call);
  // The handlers go with the call's end: what they hold (a response, its writer) must
  // not live on through a reference someone keeps to the call.
  UpstreamHandlers handlers = std::move(call->handlers);
  call->handlers = {};
  if (handlers.on_done) handlers.on_done(status);
}

UpstreamClient::UpstreamClient(UpstreamClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

UpstreamClient::~UpstreamClient() = default;

std::shared_ptr<UpstreamCall> UpstreamClient::start(const registry::ParsedUrl& server, UpstreamRequest request,
                                                    UpstreamHandlers handlers, std::shared_ptr<const IoExecutor> on) {
  const bool foreign = on != nullptr && !server.tls;  // TLS needs the client's context and pool: its thread
  asio::any_io_executor executor = foreign ? on->executor : asio::any_io_executor(impl_->io.get_executor());
  auto call = std::make_shared<CallState>(impl_->gate, impl_->shared, executor, foreign, server, std::move(request),
                                          std::move(handlers));
  // On the caller's own strand this runs at once, up to the first wait (the request's send).
  asio::co_spawn(executor, Impl::run(call, foreign ? nullptr : impl_.get()), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("upstream call failed unexpectedly: {}", ex.what());
    }
  });
  return call;
}

Result<UpstreamClient::Answer> UpstreamClient::send(const registry::ParsedUrl& server, UpstreamRequest request) {
  auto answer = std::make_shared<Answer>();
  std::promise<Status> done;
  auto finished = done.get_future();
  start(server, std::move(request),
        {.on_head = [answer](int status, const Headers& headers) {
           answer->status = status;
           answer->headers = headers;
         },
         .on_data = [answer](std::string_view data) { answer->body.append(data); },
         .on_done = [&done](Status s) { done.set_value(std::move(s)); }});
  Status s = finished.get();
  if (!s.ok()) return s;
  return std::move(*answer);
}

}  // namespace keel::server
