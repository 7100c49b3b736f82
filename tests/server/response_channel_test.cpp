// ResponseWriter and its ResponseChannel without a network: the consumer's side is
// driven by hand (attach, take, cancel, detach) as the server's connection drives it.
#include "keel/server/response_channel.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace keel::server {
namespace {

TEST(ResponseChannel, WholeResponseIsTakenOnce) {
  auto writer = std::make_shared<ResponseWriter>();
  auto channel = writer->channel();
  int notified = 0;
  channel->attach([&notified] { ++notified; });
  EXPECT_TRUE(channel->take().empty());
  writer->respond(HttpResponse::json(201, Json{{"a", 1}}));
  EXPECT_EQ(notified, 1);
  auto news = channel->take();
  ASSERT_TRUE(news.whole);
  EXPECT_EQ(news.whole->status, 201);
  EXPECT_TRUE(channel->take().empty());
  writer.reset();  // finished: dropping it now abandons nothing
  EXPECT_FALSE(channel->take().abandoned);
  EXPECT_FALSE(channel->cancelled());
}

TEST(ResponseChannel, StreamGathersWritesInOrderAndNotifiesOncePerTake) {
  ResponseWriter writer;
  auto channel = writer.channel();
  int notified = 0;
  channel->attach([&notified] { ++notified; });
  writer.begin(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  writer.write("a");
  writer.write("");
  writer.write("b");
  EXPECT_EQ(notified, 1);  // one wake-up until the consumer takes
  auto first = channel->take();
  ASSERT_TRUE(first.head);
  EXPECT_EQ(first.head->status, 200);
  EXPECT_EQ(first.head->content_type, "text/event-stream");
  EXPECT_EQ(first.head->headers.at("cache-control"), "no-cache");
  EXPECT_EQ(first.data, "ab");
  EXPECT_FALSE(first.ended);
  writer.write("c");
  writer.end();
  EXPECT_EQ(notified, 2);
  auto second = channel->take();
  EXPECT_FALSE(second.head);
  EXPECT_EQ(second.data, "c");
  EXPECT_TRUE(second.ended);
}

TEST(ResponseChannel, CallsOutOfOrderAreIgnored) {
  ResponseWriter writer;
  auto channel = writer.channel();
  writer.write("before begin");
  writer.end();
  EXPECT_TRUE(channel->take().empty());
  writer.begin(200, "text/plain");
  writer.respond(HttpResponse::text(200, "not now"));
  writer.begin(500, "text/plain");
  auto news = channel->take();
  EXPECT_FALSE(news.whole);
  ASSERT_TRUE(news.head);
  EXPECT_EQ(news.head->status, 200);
  writer.end();
  writer.write("after end");
  EXPECT_EQ(channel->take().data, "");
}

TEST(ResponseChannel, DroppingAnUnfinishedWriterAbandonsIt) {
  auto writer = std::make_shared<ResponseWriter>();
  auto channel = writer->channel();
  int notified = 0;
  channel->attach([&notified] { ++notified; });
  bool called = false;
  writer->on_cancel([&called] { called = true; });
  writer->begin(200, "text/plain");
  writer->write("x");
  (void)channel->take();
  writer.reset();
  EXPECT_EQ(notified, 2);
  auto news = channel->take();
  EXPECT_TRUE(news.abandoned);
  EXPECT_FALSE(news.ended);
  channel->detach();
  EXPECT_FALSE(called) << "the producer's own drop is not a cancellation it must hear of";
}

TEST(ResponseChannel, CancelRunsTheCallbackOnceAndSilencesTheWriter) {
  ResponseWriter writer;
  auto channel = writer.channel();
  int called = 0;
  writer.on_cancel([&called] { ++called; });
  writer.begin(200, "text/plain");
  writer.write("buffered");
  channel->cancel();
  channel->cancel();
  EXPECT_TRUE(writer.cancelled());
  EXPECT_EQ(called, 1);
  writer.write("more");
  EXPECT_EQ(channel->take().data, "");  // buffered data is dropped too
  int late = 0;
  writer.on_cancel([&late] { ++late; });
  EXPECT_EQ(late, 1);
}

TEST(ResponseChannel, CallbackMayCallTheWriter) {
  ResponseWriter writer;
  auto channel = writer.channel();
  writer.on_cancel([&writer] { writer.write("no deadlock"); });
  writer.begin(200, "text/plain");
  channel->cancel();
  EXPECT_TRUE(writer.cancelled());
}

TEST(ResponseChannel, DetachCancelsOnlyAnUnfinishedResponse) {
  ResponseWriter finished;
  int called = 0;
  finished.on_cancel([&called] { ++called; });
  finished.respond(HttpResponse::text(200, "done"));
  finished.channel()->detach();
  EXPECT_FALSE(finished.cancelled());
  EXPECT_EQ(called, 0);

  ResponseWriter unfinished;
  unfinished.on_cancel([&called] { ++called; });
  int notified = 0;
  unfinished.channel()->attach([&notified] { ++notified; });
  unfinished.channel()->detach();
  EXPECT_TRUE(unfinished.cancelled());
  EXPECT_EQ(called, 1);
  unfinished.respond(HttpResponse::text(200, "late"));
  EXPECT_EQ(notified, 0);
}

TEST(ResponseChannel, DeferredResponseCarriesTheWriter) {
  auto writer = std::make_shared<ResponseWriter>();
  HttpResponse response = HttpResponse::deferred(writer);
  EXPECT_EQ(response.later, writer);
  EXPECT_FALSE(HttpResponse::json(200, Json{}).later);
  HttpResponse nowhere = HttpResponse::deferred(nullptr);
  EXPECT_FALSE(nowhere.later);
  EXPECT_EQ(nowhere.status, 500);
}

}  // namespace
}  // namespace keel::server
