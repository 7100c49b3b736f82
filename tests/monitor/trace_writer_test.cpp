// TraceWriter: submit() never waits on the store (even a locked one), a full queue
// drops and counts, failed writes are retried, counted and survived, and the text
// policy is applied before anything is stored.
#include "keel/monitor/trace_writer.h"

#include <chrono>
#include <future>
#include <thread>

#include "keel/store/migrations.h"
#include "monitor/monitor_test_base.h"

namespace keel::monitor {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class TraceWriterTest : public MonitorTest {
 protected:
  static void expect_balanced(const TraceWriterStats& s) {
    EXPECT_EQ(s.submitted, s.queued + s.written + s.dropped + s.failed_traces)
        << "submitted " << s.submitted << " queued " << s.queued << " written " << s.written << " dropped " << s.dropped
        << " failed " << s.failed_traces;
  }

  // Holds the store's write lock on another connection until release is set (or 10 s
  // pass, so that a writer that wrongly waits fails the test instead of hanging it):
  // SQLite's BEGIN IMMEDIATE takes it; on PostgreSQL an EXCLUSIVE table lock blocks
  // every INSERT into traces.
  std::thread hold_write_lock(std::promise<void>& locked, std::shared_future<void> release) {
    return std::thread([this, &locked, release] {
      Status st = db_->transaction([&](store::SqlExecutor& sql) -> Status {
        if (sql.dialect() == store::DbDialect::kPostgres) {
          KEEL_RETURN_IF_ERROR(sql.exec("LOCK TABLE traces IN EXCLUSIVE MODE").status());
        }
        locked.set_value();
        release.wait_for(std::chrono::seconds(10));
        return Status::Ok();
      });
      EXPECT_TRUE(st.ok()) << st.to_string();
    });
  }

  Status drop_trace_tables() {
    KEEL_RETURN_IF_ERROR(db_->exec("DROP TABLE IF EXISTS feedback").status());
    return db_->exec("DROP TABLE traces").status();
  }
  // The traces table as migration 6 creates it and the later "traces: ..." ones extend it.
  void recreate_traces_table() {
    for (const auto& m : store::keel_migrations()) {
      if (m.name != "request traces" && !m.name.starts_with("traces: ")) continue;
      for (const auto& sql : m.statements) ASSERT_TRUE(db_->exec(sql).ok()) << sql;
    }
  }
};
INSTANTIATE_MONITOR_TEST(TraceWriterTest);

TEST_P(TraceWriterTest, WritesEverySubmittedTraceByFlush) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.batch_size = 64;
  options.flush_interval = milliseconds(5000);  // flush() must not wait for the timer
  TraceWriter writer(store, options);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(writer.submit(make_trace(numbered("r", i), i)));
  auto start = Clock::now();
  writer.flush();
  EXPECT_LT(Clock::now() - start, milliseconds(4000));
  TraceWriterStats s = writer.stats();
  EXPECT_EQ(s.submitted, 1000u);
  EXPECT_EQ(s.written, 1000u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.failed_batches, 0u);
  EXPECT_EQ(count_traces(), 1000);
  writer.flush();  // nothing pending: returns at once
}

TEST_P(TraceWriterTest, APartialBatchIsWrittenAfterTheFlushInterval) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.flush_interval = milliseconds(20);
  TraceWriter writer(store, options);
  ASSERT_TRUE(writer.submit(make_trace("lonely", 1)));
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (writer.stats().written == 0 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(writer.stats().written, 1u);
  EXPECT_EQ(count_traces(), 1);
}

TEST_P(TraceWriterTest, TheDestructorWritesWhatIsQueued) {
  TraceStore store(*db_);
  {
    TraceWriterOptions options;
    options.flush_interval = milliseconds(60000);
    TraceWriter writer(store, options);
    for (int i = 0; i < 10; ++i) writer.submit(make_trace(numbered("d", i), i));
  }
  EXPECT_EQ(count_traces(), 10);
}

TEST_P(TraceWriterTest, SubmitNeverWaitsOnALockedStoreAndCountsWhatItDrops) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.max_queue = 1000;
  options.batch_size = 100;
  options.flush_interval = milliseconds(10);
  TraceWriter writer(store, options);

  std::promise<void> locked;
  std::promise<void> release;
  std::thread holder = hold_write_lock(locked, release.get_future().share());
  locked.get_future().wait();

  constexpr int kSubmitted = 100000;
  Trace base = make_trace("", 0);
  uint64_t accepted = 0;
  auto start = Clock::now();
  auto slowest = Clock::duration::zero();
  for (int i = 0; i < kSubmitted; ++i) {
    Trace t = base;
    t.id = numbered("n", i);
    t.started_at = i;
    auto before = Clock::now();
    accepted += writer.submit(std::move(t)) ? 1 : 0;
    slowest = std::max(slowest, Clock::now() - before);
  }
  auto elapsed = Clock::now() - start;
  // Typically ~30 ms in all (0.3 us a call) while every write is stuck behind the lock;
  // the bounds leave room for a loaded machine, yet a submit that waited on the store
  // (the lock is held until after this loop) could never meet them.
  EXPECT_LT(elapsed, milliseconds(3000));
  EXPECT_LT(slowest, milliseconds(500));
  TraceWriterStats during = writer.stats();
  // The queue holds 1000 and the writer took at most one batch before it blocked.
  EXPECT_LE(accepted, options.max_queue + options.batch_size);
  EXPECT_GE(during.dropped, kSubmitted - options.max_queue - options.batch_size);
  EXPECT_EQ(during.submitted, static_cast<uint64_t>(kSubmitted));
  EXPECT_EQ(during.written, 0u);
  expect_balanced(during);

  release.set_value();
  holder.join();
  writer.flush();
  TraceWriterStats after = writer.stats();
  EXPECT_EQ(after.queued, 0u);
  EXPECT_EQ(after.failed_batches, 0u);
  EXPECT_EQ(after.written, accepted);
  EXPECT_EQ(after.written + after.dropped, static_cast<uint64_t>(kSubmitted));
  expect_balanced(after);
  EXPECT_EQ(count_traces(), static_cast<int64_t>(accepted));
}

TEST_P(TraceWriterTest, TheQueueIsAlsoBoundedInBytes) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.max_queue_bytes = 1000;
  options.flush_interval = milliseconds(60000);
  TraceWriter writer(store, options);
  Trace big = make_trace("big", 1);
  big.prompt = std::string(2000, 'x');
  EXPECT_FALSE(writer.submit(big));
  EXPECT_TRUE(writer.submit(make_trace("small", 2)));
  writer.flush();
  EXPECT_EQ(writer.stats().dropped, 1u);
  EXPECT_EQ(writer.stats().written, 1u);
}

TEST_P(TraceWriterTest, FailedWritesAreRetriedCountedAndSurvived) {
  // The tables vanish under the writer (a schema dropped by an operator): every write
  // fails. The writer keeps going, and writes again once the table is back.
  ASSERT_TRUE(drop_trace_tables().ok());
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.batch_size = 4;
  options.max_attempts = 3;
  options.retry_backoff = milliseconds(1);
  TraceWriter writer(store, options);
  for (int i = 0; i < 10; ++i) writer.submit(make_trace(numbered("f", i), i));
  writer.flush();
  TraceWriterStats s = writer.stats();
  EXPECT_EQ(s.written, 0u);
  EXPECT_EQ(s.failed_batches, 3u);  // 4 + 4 + 2
  EXPECT_EQ(s.failed_traces, 10u);
  EXPECT_EQ(s.retries, 6u);  // two more attempts for each batch
  EXPECT_EQ(s.queued, 0u);
  expect_balanced(s);

  recreate_traces_table();
  EXPECT_TRUE(writer.submit(make_trace("back", 99)));
  writer.flush();
  EXPECT_EQ(writer.stats().written, 1u);
  EXPECT_EQ(count_traces(), 1);
}

TEST_P(TraceWriterTest, ARetryWritesTheBatchOnceTheStoreRecovers) {
  ASSERT_TRUE(drop_trace_tables().ok());
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.flush_interval = milliseconds(5);
  options.max_attempts = 10;
  options.retry_backoff = milliseconds(200);
  TraceWriter writer(store, options);
  ASSERT_TRUE(writer.submit(make_trace("patient", 1)));
  // Wait for the first failed attempt, then bring the table back before the retry.
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (writer.stats().retries == 0 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_GE(writer.stats().retries, 1u);
  recreate_traces_table();
  writer.flush();
  TraceWriterStats s = writer.stats();
  EXPECT_EQ(s.written, 1u);
  EXPECT_EQ(s.failed_batches, 0u);
  EXPECT_EQ(count_traces(), 1);
}

TEST_P(TraceWriterTest, RedactPiiReplacesPersonalDataInPromptAndResponse) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.text = TextPolicy::kRedactPii;
  TraceWriter writer(store, options);
  Trace chat = make_trace("chat", 1);
  chat.prompt = R"([{"role":"user","content":"I am bob@example.com, call \"+1 (555) 123-4567\""}])";
  chat.response = "Your card 4111 1111 1111 1111 is on file, bob@example.com.";
  Trace text = make_trace("text", 2);
  text.endpoint = "completions";
  text.prompt = "Server 10.1.2.3 said hi to ann@example.org";
  text.response = "nothing personal";
  writer.submit(chat);
  writer.submit(text);
  writer.flush();
  auto got = store.get("chat");
  ASSERT_TRUE(got.ok());
  auto messages = parse_json(got->prompt);
  ASSERT_TRUE(messages.ok()) << got->prompt;  // still the messages array
  EXPECT_EQ((*messages)[0]["role"], "user");
  EXPECT_EQ((*messages)[0]["content"], "I am [EMAIL], call \"[PHONE]\"");
  EXPECT_EQ(got->response, "Your card [CREDIT_CARD] is on file, [EMAIL].");
  auto got_text = store.get("text");
  ASSERT_TRUE(got_text.ok());
  EXPECT_EQ(got_text->prompt, "Server [IPV4] said hi to [EMAIL]");
  EXPECT_EQ(got_text->response, "nothing personal");
}

TEST_P(TraceWriterTest, DropStoresNoTextButKeepsTheNumbers) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.text = TextPolicy::kDrop;
  TraceWriter writer(store, options);
  writer.submit(make_trace("quiet", 1));
  writer.flush();
  auto got = store.get("quiet");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->prompt, "");
  EXPECT_EQ(got->response, "");
  EXPECT_EQ(got->prompt_tokens, 9);
  EXPECT_EQ(got->latency_ms, 120.5);
}

TEST_P(TraceWriterTest, LongTextIsCutAtACharacterBoundaryAndMissingIdsAreMade) {
  TraceStore store(*db_);
  TraceWriterOptions options;
  options.max_text_bytes = 5;
  TraceWriter writer(store, options);
  Trace t = make_trace("", 1);
  t.prompt = "ab\xC3\xA9\xC3\xA9";  // "abéé": 6 bytes; 5 would split the second é
  t.response = "12345678";
  writer.submit(t);
  writer.flush();
  TraceFilter all;
  auto page = store.list(all);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->traces.size(), 1u);
  EXPECT_EQ(page->traces[0].id.size(), 36u);  // a fresh id
  EXPECT_EQ(page->traces[0].prompt, "ab\xC3\xA9");
  EXPECT_EQ(page->traces[0].response, "12345");
}

}  // namespace
}  // namespace keel::monitor
