// UpstreamClient against a real HttpServer on loopback: bodies piece by piece as they
// arrive, kept-alive connections reused and replaced when the server went away,
// cancellation, timeouts and unreachable servers as error values; and calls that run on
// a gateway server's own I/O thread, as the OpenAI gateway makes them.
#include "keel/server/upstream_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "keel/server/http.h"

namespace keel::server {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::shared_ptr<Router> upstream_router() {
  auto router = std::make_shared<Router>();
  router->post("/v1/echo", [](const HttpRequest& r) {
    return HttpResponse::json(200, Json{{"body", r.body},
                                        {"authorization", r.header("Authorization").value_or("")},
                                        {"peer", r.remote_address}});
  });
  // Three events 150 ms apart, from a producer thread.
  router->get("/v1/stream", [](const HttpRequest&) {
    auto writer = std::make_shared<ResponseWriter>();
    std::thread([writer] {
      writer->begin(200, "text/event-stream");
      for (int i = 0; i < 3 && !writer->cancelled(); ++i) {
        writer->write("data: " + std::to_string(i) + "\n\n");
        std::this_thread::sleep_for(150ms);
      }
      writer->end();
    }).detach();
    return HttpResponse::deferred(writer);
  });
  router->get("/v1/forever", [](const HttpRequest&) {
    auto writer = std::make_shared<ResponseWriter>();
    std::thread([writer] {
      writer->begin(200, "text/event-stream");
      while (!writer->cancelled()) {
        writer->write("data: more\n\n");
        std::this_thread::sleep_for(20ms);
      }
      writer->end();
    }).detach();
    return HttpResponse::deferred(writer);
  });
  router->get("/v1/slow", [](const HttpRequest&) {
    std::this_thread::sleep_for(600ms);
    return HttpResponse::json(200, Json{{"slow", true}});
  });
  return router;
}

std::unique_ptr<HttpServer> start_upstream(uint16_t port = 0) {
  ServerOptions options;
  options.port = port;
  options.access_log = false;
  options.shutdown_grace_seconds = 1;
  auto server = std::make_unique<HttpServer>(options, upstream_router());
  Status s = server->start();
  EXPECT_TRUE(s.ok()) << s.to_string();
  return server;
}

registry::ParsedUrl url_of(uint16_t port) { return {.tls = false, .host = "127.0.0.1", .port = port, .path = ""}; }

UpstreamRequest post_echo(std::string body) {
  UpstreamRequest r;
  r.target = "/v1/echo";
  r.headers["Content-Type"] = "application/json";
  r.headers["Authorization"] = "Bearer secret";
  r.body = std::move(body);
  return r;
}

UpstreamRequest post_proxy(std::string body) {
  UpstreamRequest r = post_echo(std::move(body));
  r.target = "/proxy";
  return r;
}

UpstreamRequest get(std::string target) {
  UpstreamRequest r;
  r.method = "GET";
  r.target = std::move(target);
  return r;
}

TEST(UpstreamClient, SendsTheRequestAndReusesTheConnection) {
  auto server = start_upstream();
  UpstreamClient client;
  auto first = client.send(url_of(server->port()), post_echo("{\"a\":1}"));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->headers["content-type"], "application/json");
  auto a = parse_json(first->body);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["body"], "{\"a\":1}");
  EXPECT_EQ((*a)["authorization"], "Bearer secret");
  auto second = client.send(url_of(server->port()), post_echo("{}"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*parse_json(second->body))["peer"], (*a)["peer"]) << "a second connection was opened";
}

TEST(UpstreamClient, PassesTheBodyOnAsItArrives) {
  auto server = start_upstream();
  UpstreamClient client;
  std::promise<Status> done;
  std::vector<std::pair<std::string, Clock::time_point>> pieces;  // the client's thread only, until done
  int status = 0;
  const auto started = Clock::now();
  client.start(url_of(server->port()), get("/v1/stream"),
               {.on_head = [&](int s, const Headers&) { status = s; },
                .on_data = [&](std::string_view d) { pieces.emplace_back(std::string(d), Clock::now()); },
                .on_done = [&](Status s) { done.set_value(s); }});
  Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(status, 200);
  std::string all;
  for (const auto& [text, at] : pieces) all += text;
  EXPECT_EQ(all, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  ASSERT_GE(pieces.size(), 3u);
  // The first event came long before the last was written (300 ms later).
  EXPECT_LT(pieces.front().second - started, 250ms);
  EXPECT_GE(pieces.back().second - pieces.front().second, 250ms);
}

TEST(UpstreamClient, AConnectionTheServerClosedIsReplacedTransparently) {
  auto server = start_upstream();
  const uint16_t port = server->port();
  UpstreamClient client;
  ASSERT_TRUE(client.send(url_of(port), post_echo("1")).ok());
  server->stop();
  server.reset();
  server = start_upstream(port);  // the same port: the kept connection is stale now
  auto again = client.send(url_of(port), post_echo("2"));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->status, 200);
}

TEST(UpstreamClient, CancelEndsAStreamAtOnce) {
  auto server = start_upstream();
  UpstreamClient client;
  std::promise<Status> done;
  std::promise<void> first;
  bool told = false;
  auto call = client.start(url_of(server->port()), get("/v1/forever"),
                           {.on_data =
                                [&](std::string_view) {
                                  if (!told) first.set_value();
                                  told = true;
                                },
                            .on_done = [&](Status s) { done.set_value(s); }});
  first.get_future().wait();
  const auto cancelled_at = Clock::now();
  call->cancel();
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(result.get().code(), ErrorCode::kCancelled);
  EXPECT_LT(Clock::now() - cancelled_at, 500ms);
}

TEST(UpstreamClient, ASilentServerTimesOutAndAClosedPortIsUnavailable) {
  auto server = start_upstream();
  UpstreamClient client({.read_timeout = 200ms});
  auto slow = client.send(url_of(server->port()), get("/v1/slow"));
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), ErrorCode::kDeadlineExceeded) << slow.status().to_string();
  auto closed = client.send(url_of(9), get("/v1/x"));  // the discard port: nothing listens
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.status().code(), ErrorCode::kUnavailable) << closed.status().to_string();
  auto nowhere = client.send({.tls = false, .host = "no-such-host.invalid", .port = 80, .path = ""}, get("/"));
  ASSERT_FALSE(nowhere.ok());
  EXPECT_EQ(nowhere.status().code(), ErrorCode::kUnavailable);
}

TEST(UpstreamClient, ItsEndCancelsCallsInFlight) {
  auto server = start_upstream();
  std::promise<Status> done;
  {
    UpstreamClient client;
    std::promise<void> first;
    bool told = false;
    client.start(url_of(server->port()), get("/v1/forever"),
                 {.on_data =
                      [&](std::string_view) {
                        if (!told) first.set_value();
                        told = true;
                      },
                  .on_done = [&](Status s) { done.set_value(s); }});
    first.get_future().wait();
  }
  auto result = done.get_future();
  ASSERT_EQ(result.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(result.get().code(), ErrorCode::kCancelled);
}

// A gateway: POST /proxy sends the body to the upstream's /v1/echo, GET /stream relays the
// upstream's endless stream, each through `client` on the request's own connection.
// `threads` records where the handler and the call's callbacks ran.
struct Gateway {
  UpstreamClient* client = nullptr;
  registry::ParsedUrl upstream;
  std::mutex mutex;
  std::vector<std::thread::id> handler_threads;
  std::vector<std::thread::id> callback_threads;
  std::promise<Status> stream_done;

  void note(std::vector<std::thread::id>& where) {
    std::lock_guard lock(mutex);
    where.push_back(std::this_thread::get_id());
  }

  std::unique_ptr<HttpServer> start() {
    auto router = std::make_shared<Router>();
    router->post("/proxy", [this](const HttpRequest& r) {
      note(handler_threads);
      auto writer = std::make_shared<ResponseWriter>();
      auto body = std::make_shared<std::string>();
      client->start(upstream, post_echo(r.body),
                    {.on_head = [this](int, const Headers&) { note(callback_threads); },
                     .on_data = [body](std::string_view d) { body->append(d); },
                     .on_done =
                         [this, writer, body](Status s) {
                           note(callback_threads);
                           writer->respond(s.ok() ? HttpResponse::text(200, *body, "application/json")
                                                  : HttpResponse::from_status(s));
                         }},
                    r.io);
      return HttpResponse::deferred(writer);
    });
    router->get("/stream", [this](const HttpRequest& r) {
      auto writer = std::make_shared<ResponseWriter>();
      writer->begin(200, "text/event-stream");
      auto call = client->start(upstream, get("/v1/forever"),
                                {.on_data = [writer](std::string_view d) { writer->write(std::string(d)); },
                                 .on_done =
                                     [this, writer](Status s) {
                                       writer->end();
                                       stream_done.set_value(s);
                                     }},
                                r.io);
      writer->on_cancel([weak = std::weak_ptr<UpstreamCall>(call)] {
        if (auto c = weak.lock()) c->cancel();
      });
      return HttpResponse::deferred(writer);
    });
    ServerOptions options;
    options.port = 0;  // a free one
    options.access_log = false;
    options.io_threads = 1;
    options.shutdown_grace_seconds = 1;
    auto server = std::make_unique<HttpServer>(options, router);
    Status s = server->start();
    EXPECT_TRUE(s.ok()) << s.to_string();
    return server;
  }
};

TEST(UpstreamClient, ACallOnAServersConnectionRunsOnThatServersThread) {
  auto upstream = start_upstream();
  UpstreamClient client;
  Gateway gateway{.client = &client, .upstream = url_of(upstream->port())};
  auto server = gateway.start();
  UpstreamClient caller;
  for (int i = 0; i < 3; ++i) {
    auto answer = caller.send(url_of(server->port()), post_proxy("{\"n\":" + std::to_string(i) + "}"));
    ASSERT_TRUE(answer.ok()) << answer.status().to_string();
    ASSERT_EQ(answer->status, 200) << answer->body;
    EXPECT_EQ((*parse_json(answer->body))["body"], "{\"n\":" + std::to_string(i) + "}");
  }
  std::lock_guard lock(gateway.mutex);
  ASSERT_EQ(gateway.handler_threads.size(), 3u);
  ASSERT_EQ(gateway.callback_threads.size(), 6u);
  // One server thread did it all: the handler, the call and its callbacks.
  for (const auto& id : gateway.callback_threads) EXPECT_EQ(id, gateway.handler_threads.front());
  for (const auto& id : gateway.handler_threads) EXPECT_EQ(id, gateway.handler_threads.front());
}

TEST(UpstreamClient, CallsOnAServersConnectionAndOnItsOwnThreadShareKeptConnections) {
  auto upstream = start_upstream();
  UpstreamClient client;
  Gateway gateway{.client = &client, .upstream = url_of(upstream->port())};
  auto server = gateway.start();
  auto direct = client.send(url_of(upstream->port()), post_echo("{}"));
  ASSERT_TRUE(direct.ok()) << direct.status().to_string();
  UpstreamClient caller;
  auto proxied = caller.send(url_of(server->port()), post_proxy("{}"));
  ASSERT_TRUE(proxied.ok()) << proxied.status().to_string();
  auto again = client.send(url_of(upstream->port()), post_echo("{}"));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  const Json peer = (*parse_json(direct->body))["peer"];
  EXPECT_EQ((*parse_json(proxied->body))["peer"], peer) << "the server's call opened a connection of its own";
  EXPECT_EQ((*parse_json(again->body))["peer"], peer);
}

TEST(UpstreamClient, ACallOnAServersConnectionOutlivesTheClientAndEndsWithTheServer) {
  auto upstream = start_upstream();
  auto client = std::make_unique<UpstreamClient>();
  Gateway gateway{.client = client.get(), .upstream = url_of(upstream->port())};
  auto server = gateway.start();
  UpstreamClient caller;
  std::promise<void> first;
  std::promise<Status> caller_done;
  bool told = false;
  caller.start(url_of(server->port()), get("/stream"),
               {.on_data =
                    [&](std::string_view) {
                      if (!told) first.set_value();
                      told = true;
                    },
                .on_done = [&](Status s) { caller_done.set_value(s); }});
  ASSERT_EQ(first.get_future().wait_for(5s), std::future_status::ready);
  client.reset();  // the gateway's call goes on without its client
  std::this_thread::sleep_for(100ms);
  auto stream_done = gateway.stream_done.get_future();
  EXPECT_EQ(stream_done.wait_for(0s), std::future_status::timeout) << "the call ended with its client";
  server->stop();  // past its grace period the stream is cut, which cancels the call
  ASSERT_EQ(stream_done.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(stream_done.get().code(), ErrorCode::kCancelled);
  auto outcome = caller_done.get_future();
  ASSERT_EQ(outcome.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(outcome.get().ok()) << "the caller's stream was cut, not ended";
}

}  // namespace
}  // namespace keel::server
