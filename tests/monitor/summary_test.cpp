// Per-version summaries: percentiles on known latencies, errors kept out of the speed
// numbers, feedback on one scale, the window and the row bound.
#include "keel/monitor/summary.h"

#include "keel/monitor/feedback.h"
#include "keel/util/id.h"
#include "monitor/monitor_test_base.h"

namespace keel::monitor {
namespace {

TEST(Percentile, InterpolatesBetweenClosestRanksLikeNumpy) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 50.5);
  EXPECT_DOUBLE_EQ(percentile(v, 95), 95.05);
  EXPECT_DOUBLE_EQ(percentile(v, 99), 99.01);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 100);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({10, 20}, 50), 15);
  EXPECT_DOUBLE_EQ(percentile({10, 20}, 95), 19.5);
}

class SummaryTest : public MonitorTest {};
INSTANTIATE_MONITOR_TEST(SummaryTest);

TEST_P(SummaryTest, AggregatesEachModelVersionOverTheWindow) {
  const int64_t now = now_millis();
  std::vector<Trace> traces;
  // smollm2 v1: latencies 1..100 ms (shuffled in time), TTFT on the even ones.
  for (int i = 1; i <= 100; ++i) {
    Trace t = make_trace(numbered("ok", i), now - 1000 - ((i * 37) % 100) * 10, "smollm2", 1);
    t.latency_ms = i;
    if (i % 2 == 0) t.time_to_first_token_ms = i / 2.0;
    t.tokens_per_second = i <= 50 ? 10 : 30;
    traces.push_back(t);
  }
  // Errors count as requests and tokens, not as latency or speed.
  for (int i = 0; i < 25; ++i) {
    Trace t = make_trace(numbered("err", i), now - 2000, "smollm2", 1);
    t.status = i < 20 ? 500 : 429;
    t.latency_ms = 100000;
    t.tokens_per_second = 0;
    t.completion_tokens = 0;
    traces.push_back(t);
  }
  traces.push_back(make_trace("v2", now - 500, "smollm2", 2));
  traces.push_back(make_trace("old", now - 2 * 3600 * 1000, "smollm2", 1));  // outside the hour
  traces.push_back(make_trace("gemma", now - 500, "gemma", 1));
  append(traces);
  FeedbackStore feedback(*db_);
  for (auto [trace, kind, score] : std::vector<std::tuple<std::string, std::string, int>>{
           {"ok1", "thumbs", 1},
           {"ok2", "thumbs", 1},
           {"ok3", "thumbs", -1},
           {"ok4", "rating", 5},
           {"ok5", "rating", 2},
           {"old", "thumbs", -1},  // given now on an old trace: counts in this window
           {"v2", "rating", 3}}) {
    ASSERT_TRUE(feedback.add({trace, kind, score, "", "", "ana"}).ok());
  }

  SummaryRequest request;
  request.model = "smollm2";
  auto s = summarize(*db_, request);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_FALSE(s->truncated);
  EXPECT_EQ(s->traces_scanned, 126);
  EXPECT_EQ(s->until_ms - s->since_ms, 3600 * 1000);
  ASSERT_EQ(s->versions.size(), 2u);
  const VersionSummary& v2 = s->versions[0];  // newest version first
  const VersionSummary& v1 = s->versions[1];
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.requests, 1);
  EXPECT_EQ(v2.mean_feedback_score, 0.0);
  EXPECT_EQ(v2.mean_rating, 3.0);

  EXPECT_EQ(v1.model, "smollm2");
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.requests, 125);
  EXPECT_EQ(v1.errors, 25);
  EXPECT_DOUBLE_EQ(v1.error_rate, 0.2);
  ASSERT_TRUE(v1.latency_ms);
  EXPECT_DOUBLE_EQ(v1.latency_ms->p50, 50.5);
  EXPECT_DOUBLE_EQ(v1.latency_ms->p95, 95.05);
  EXPECT_DOUBLE_EQ(v1.latency_ms->p99, 99.01);
  ASSERT_TRUE(v1.time_to_first_token_ms);  // 1, 2, ..., 50
  EXPECT_DOUBLE_EQ(v1.time_to_first_token_ms->p50, 25.5);
  EXPECT_DOUBLE_EQ(v1.time_to_first_token_ms->p95, 47.55);
  EXPECT_DOUBLE_EQ(v1.time_to_first_token_ms->p99, 49.51);
  EXPECT_EQ(v1.prompt_tokens, 125 * 9);
  EXPECT_EQ(v1.completion_tokens, 100 * 3);
  EXPECT_DOUBLE_EQ(*v1.mean_tokens_per_second, 20);
  EXPECT_EQ(v1.feedback_count, 6);
  EXPECT_EQ(v1.thumbs_up, 2);
  EXPECT_EQ(v1.thumbs_down, 2);
  EXPECT_EQ(v1.ratings, 2);
  EXPECT_DOUBLE_EQ(*v1.mean_rating, 3.5);
  // (1 + 1 - 1 - 1 + 1 - 0.5) / 6
  EXPECT_DOUBLE_EQ(*v1.mean_feedback_score, 0.5 / 6);

  Json j = to_json(*s);
  EXPECT_EQ(j["versions"][1]["latency_ms"]["p50"], 50.5);
  EXPECT_EQ(j["versions"][1]["feedback"]["thumbs_up"], 2);
  EXPECT_EQ(j["versions"][0]["time_to_first_token_ms"], nullptr);

  auto everything = summarize(*db_, {});
  ASSERT_TRUE(everything.ok());
  ASSERT_EQ(everything->versions.size(), 3u);
  EXPECT_EQ(everything->versions[0].model, "gemma");
  EXPECT_EQ(everything->versions[0].feedback_count, 0);
  EXPECT_FALSE(everything->versions[0].mean_feedback_score.has_value());

  SummaryRequest day = request;
  day.window_ms = 24 * 3600 * 1000;
  day.version = 1;
  auto wide = summarize(*db_, day);
  ASSERT_TRUE(wide.ok());
  ASSERT_EQ(wide->versions.size(), 1u);
  EXPECT_EQ(wide->versions[0].requests, 126);
}

TEST_P(SummaryTest, ReadsAtMostMaxRowsNewestFirst) {
  const int64_t now = now_millis();
  std::vector<Trace> traces;
  for (int i = 0; i < 20; ++i) {
    Trace t = make_trace(numbered("t", i), now - 1000 + i);
    t.latency_ms = i;
    traces.push_back(t);
  }
  append(traces);
  SummaryRequest request;
  request.max_rows = 10;
  auto s = summarize(*db_, request);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_TRUE(s->truncated);
  EXPECT_EQ(s->traces_scanned, 10);
  ASSERT_EQ(s->versions.size(), 1u);
  EXPECT_EQ(s->versions[0].requests, 10);
  EXPECT_DOUBLE_EQ(s->versions[0].latency_ms->p50, 14.5);  // the newest: 10..19
  request.max_rows = 20;
  EXPECT_FALSE(summarize(*db_, request)->truncated);
  request.window_ms = 0;
  EXPECT_EQ(summarize(*db_, request).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::monitor
