// The traces table through TraceStore: every field round-trips, lists filter and page
// newest first, duplicates and unstorable text cannot break a batch.
#include "keel/monitor/traces.h"

#include <cmath>
#include <set>

#include "monitor/monitor_test_base.h"

namespace keel::monitor {
namespace {

class TraceStoreTest : public MonitorTest {};
INSTANTIATE_MONITOR_TEST(TraceStoreTest);

TEST_P(TraceStoreTest, EveryFieldRoundTrips) {
  Trace t = make_trace("req-1", 1735787045123);
  t.time_to_first_token_ms = 15.25;
  t.upstream_ms = 12.5;  // a remote model's
  t.prompt = R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Ünïcode ✓"}])";
  t.response = "first\nsecond";
  t.status = 200;
  Trace failed = make_trace("req-2", 1735787045200);
  failed.status = 503;
  failed.error = "the model is loading";
  failed.response.clear();
  failed.finish_reason.clear();
  append({t, failed});

  auto got = TraceStore(*db_).get("req-1");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(to_json(*got), to_json(t));
  EXPECT_EQ(got->time_to_first_token_ms, 15.25);
  auto got_failed = TraceStore(*db_).get("req-2");
  ASSERT_TRUE(got_failed.ok());
  EXPECT_EQ(to_json(*got_failed), to_json(failed));
  EXPECT_FALSE(got_failed->time_to_first_token_ms.has_value());
  EXPECT_EQ(to_json(*got_failed)["time_to_first_token_ms"], nullptr);
  EXPECT_EQ(got->upstream_ms, 12.5);
  EXPECT_EQ(to_json(*got_failed)["upstream_ms"], nullptr);

  auto missing = TraceStore(*db_).get("req-3");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
}

TEST_P(TraceStoreTest, ListsNewestFirstAndFilters) {
  std::vector<Trace> traces;
  for (int i = 0; i < 12; ++i) {
    Trace t = make_trace(numbered("t", i), 1000 + i * 10, i % 3 == 0 ? "gemma" : "smollm2", 1 + i % 2,
                         i % 4 == 0 ? "bob" : "ana");
    if (i == 5 || i == 7) t.status = 500;
    if (i == 11) t.endpoint = "completions";
    traces.push_back(t);
  }
  append(traces);
  TraceStore store(*db_);
  auto ids = [&](TraceFilter f) {
    auto page = store.list(f);
    EXPECT_TRUE(page.ok()) << page.status().to_string();
    std::vector<std::string> out;
    if (page.ok()) {
      for (const auto& t : page->traces) out.push_back(t.id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"t11", "t10", "t9", "t8", "t7", "t6", "t5", "t4", "t3", "t2", "t1", "t0"}));
  TraceFilter f;
  f.model = "gemma";
  EXPECT_EQ(ids(f), (V{"t9", "t6", "t3", "t0"}));
  f.version = 2;
  EXPECT_EQ(ids(f), (V{"t9", "t3"}));
  f = {};
  f.user = "bob";
  EXPECT_EQ(ids(f), (V{"t8", "t4", "t0"}));
  f = {};
  f.status = 500;
  EXPECT_EQ(ids(f), (V{"t7", "t5"}));
  f = {};
  f.endpoint = "completions";
  EXPECT_EQ(ids(f), (V{"t11"}));
  f = {};
  f.since_ms = 1030;
  f.until_ms = 1060;  // exclusive
  EXPECT_EQ(ids(f), (V{"t5", "t4", "t3"}));

  f = {};
  f.include_text = false;
  auto lean = store.list(f);
  ASSERT_TRUE(lean.ok());
  EXPECT_EQ(lean->traces[0].prompt, "");
  EXPECT_EQ(lean->traces[0].response, "");
  EXPECT_EQ(lean->traces[0].model, "smollm2");
  EXPECT_EQ(lean->traces[0].prompt_tokens, 9);
}

TEST_P(TraceStoreTest, PagesVisitEveryTraceOnceEvenWithEqualTimes) {
  std::vector<Trace> traces;
  for (int i = 0; i < 23; ++i) traces.push_back(make_trace("id-" + std::to_string(100 + i), 5000 + i / 4));
  append(traces);
  TraceStore store(*db_);
  TraceFilter f;
  f.limit = 5;
  std::vector<std::string> seen;
  int pages = 0;
  for (;;) {
    auto page = store.list(f);
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    ++pages;
    for (const auto& t : page->traces) seen.push_back(t.id);
    // A trace written while a client pages (newer than everything) does not shift pages.
    if (pages == 1) append({make_trace("late", 9999)});
    if (page->next_page_token.empty()) break;
    f.page_token = page->next_page_token;
  }
  EXPECT_EQ(pages, 5);
  ASSERT_EQ(seen.size(), 23u);
  for (int i = 0; i < 23; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], "id-" + std::to_string(122 - i));

  f.page_token = "not-a-token";
  EXPECT_EQ(store.list(f).status().code(), ErrorCode::kInvalidArgument);
  f.page_token.clear();
  f.limit = 0;
  EXPECT_EQ(store.list(f).status().code(), ErrorCode::kInvalidArgument);
  f.limit = 1001;
  EXPECT_EQ(store.list(f).status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(TraceStoreTest, ARepeatedIdKeepsTheStoredTraceAndTheBatchCommits) {
  append({make_trace("same", 1)});
  Trace again = make_trace("same", 2);
  again.response = "another answer";
  append({make_trace("before", 3), again, again, make_trace("after", 4)});
  EXPECT_EQ(count_traces(), 3);
  EXPECT_EQ(TraceStore(*db_).get("same")->response, "Hello!");
}

TEST_P(TraceStoreTest, AnEmptyIdRejectsTheWholeBatch) {
  Trace no_id = make_trace("", 2);
  Status st = TraceStore(*db_).append(std::vector<Trace>{make_trace("fine", 1), no_id});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(count_traces(), 0);
}

TEST_P(TraceStoreTest, UnstorableTextAndNumbersAreRepaired) {
  // PostgreSQL refuses invalid UTF-8 and NUL bytes in TEXT; SQLite would turn a NaN into
  // NULL against a NOT NULL column. Either would fail the whole batch.
  Trace t = make_trace("odd", 1);
  t.prompt = std::string("bad \xff byte and a NUL \0 here", 27);
  t.response = "cut \xE2\x82";  // a truncated euro sign
  t.latency_ms = std::nan("");
  t.tokens_per_second = INFINITY;
  t.time_to_first_token_ms = std::nan("");
  t.upstream_ms = -INFINITY;
  append({t, make_trace("normal", 2)});
  auto got = TraceStore(*db_).get("odd");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->prompt, "bad \xEF\xBF\xBD byte and a NUL  here");
  EXPECT_EQ(got->response, "cut \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(got->latency_ms, 0);
  EXPECT_EQ(got->tokens_per_second, 0);
  EXPECT_FALSE(got->time_to_first_token_ms.has_value());
  EXPECT_FALSE(got->upstream_ms.has_value());
}

std::string fffd(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "\xEF\xBF\xBD";
  return out;
}

TEST(StorableText, KeepsValidTextAndReplacesEachBadByte) {
  EXPECT_EQ(storable_text(""), "");
  EXPECT_EQ(storable_text("plain ascii"), "plain ascii");
  EXPECT_EQ(storable_text("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(storable_text("\xC0\xAF"), fffd(2));          // overlong '/'
  EXPECT_EQ(storable_text("\xED\xA0\x80"), fffd(3));      // a surrogate
  EXPECT_EQ(storable_text("\xF4\x90\x80\x80"), fffd(4));  // above U+10FFFF
  EXPECT_EQ(storable_text(std::string("a\0b", 3)), "ab");
}

TEST(TextPolicyNames, ParseAndPrint) {
  EXPECT_EQ(*parse_text_policy("store"), TextPolicy::kStore);
  EXPECT_EQ(*parse_text_policy("redact_pii"), TextPolicy::kRedactPii);
  EXPECT_EQ(*parse_text_policy("redact"), TextPolicy::kRedactPii);
  EXPECT_EQ(*parse_text_policy("drop"), TextPolicy::kDrop);
  EXPECT_FALSE(parse_text_policy("keep").ok());
  EXPECT_EQ(text_policy_name(TextPolicy::kRedactPii), "redact_pii");
}

}  // namespace
}  // namespace keel::monitor
