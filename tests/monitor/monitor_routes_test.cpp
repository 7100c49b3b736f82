// The monitoring REST API through the router (no sockets), on both store back ends:
// trace lists with filters and pages, one trace with its feedback, giving and listing
// feedback as the request's user, summaries, and errors in Keel's shape.
#include "keel/server/monitor_routes.h"

#include "keel/util/id.h"
#include "monitor/monitor_test_base.h"

namespace keel::server {
namespace {

using monitor::Trace;

class MonitorRoutesTest : public monitor::MonitorTest {
 protected:
  void SetUp() override {
    MonitorTest::SetUp();
    if (IsSkipped()) return;
    add_monitor_routes(router_, *db_);
  }
  std::pair<int, Json> call(const std::string& method, const std::string& target, const std::string& body = "",
                            const std::string& user = "tester") {
    HttpRequest req;
    req.method = method;
    req.set_target(target);
    req.body = body;
    req.user = user;
    req.role = "admin";
    HttpResponse r = router_.dispatch(req);
    auto j = parse_json(r.body);
    return {r.status, j.ok() ? *j : Json(r.body)};
  }
  static void expect_error(const std::pair<int, Json>& r, int status, const std::string& code) {
    EXPECT_EQ(r.first, status) << r.second.dump();
    EXPECT_EQ(r.second["error"]["code"], code) << r.second.dump();
    EXPECT_TRUE(r.second["error"]["message"].is_string()) << r.second.dump();
  }

  Router router_;
};
INSTANTIATE_MONITOR_TEST(MonitorRoutesTest);

TEST_P(MonitorRoutesTest, ListsTracesWithFiltersAndPages) {
  // 2025-01-02T00:00:00Z plus i minutes.
  const int64_t base = 1735776000000;
  std::vector<Trace> traces;
  for (int i = 0; i < 6; ++i) {
    Trace t = make_trace(numbered("r", i), base + i * 60000, i < 4 ? "smollm2" : "gemma", 1, i % 2 ? "bob" : "ana");
    if (i == 3) t.status = 500;
    traces.push_back(t);
  }
  append(traces);
  auto [status, all] = call("GET", "/api/traces");
  ASSERT_EQ(status, 200) << all.dump();
  ASSERT_EQ(all["traces"].size(), 6u);
  EXPECT_EQ(all["traces"][0]["id"], "r5");
  EXPECT_EQ(all["traces"][0]["prompt"], R"([{"role":"user","content":"hi"}])");
  EXPECT_EQ(all["next_page_token"], nullptr);

  auto ids = [](const Json& page) {
    std::vector<std::string> out;
    for (const auto& t : page["traces"]) out.push_back(t["id"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(call("GET", "/api/traces?model=smollm2&user=bob").second), (V{"r3", "r1"}));
  EXPECT_EQ(ids(call("GET", "/api/traces?status=500").second), (V{"r3"}));
  EXPECT_EQ(ids(call("GET", "/api/traces?model=gemma&version=1").second), (V{"r5", "r4"}));
  EXPECT_EQ(ids(call("GET", "/api/traces?since=2025-01-02T00:02:00Z&until=" + std::to_string(base + 4 * 60000)).second),
            (V{"r3", "r2"}));
  EXPECT_EQ(ids(call("GET", "/api/traces?since=2025-01-02T01:02:00%2B01:00").second), (V{"r5", "r4", "r3", "r2"}));
  auto lean = call("GET", "/api/traces?include_text=false&limit=1").second;
  EXPECT_EQ(lean["traces"][0]["prompt"], "");
  EXPECT_TRUE(lean["next_page_token"].is_string());

  V paged;
  std::string target = "/api/traces?limit=4";
  for (int guard = 0; guard < 5; ++guard) {
    auto [s, page] = call("GET", target);
    ASSERT_EQ(s, 200) << page.dump();
    for (const auto& id : ids(page)) paged.push_back(id);
    if (page["next_page_token"].is_null()) break;
    target = "/api/traces?limit=4&page_token=" + page["next_page_token"].get<std::string>();
  }
  EXPECT_EQ(paged, (V{"r5", "r4", "r3", "r2", "r1", "r0"}));

  expect_error(call("GET", "/api/traces?since=last-tuesday"), 400, "invalid_argument");
  expect_error(call("GET", "/api/traces?limit=lots"), 400, "invalid_argument");
  expect_error(call("GET", "/api/traces?limit=5000"), 400, "invalid_argument");
  expect_error(call("GET", "/api/traces?page_token=zzz"), 400, "invalid_argument");
  expect_error(call("GET", "/api/traces?include_text=maybe"), 400, "invalid_argument");
}

TEST_P(MonitorRoutesTest, FeedbackIsGivenAsTheRequestsUserAndShownWithItsTrace) {
  append({make_trace("req-1", 1, "smollm2", 2)});
  auto [created, f] = call("POST", "/api/feedback",
                           R"({"trace_id": "req-1", "score": 4, "kind": "rating", "comment": "ok",
                               "corrected_answer": "Hello."})",
                           "ana");
  ASSERT_EQ(created, 201) << f.dump();
  EXPECT_EQ(f["user"], "ana");
  EXPECT_EQ(f["model"], "smollm2");
  EXPECT_EQ(f["version"], 2);
  EXPECT_EQ(f["corrected_answer"], "Hello.");
  auto [thumbs, t] = call("POST", "/api/feedback", R"({"trace_id": "req-1", "score": -1})", "bob");
  ASSERT_EQ(thumbs, 201) << t.dump();
  EXPECT_EQ(t["kind"], "thumbs");

  auto [got, trace] = call("GET", "/api/traces/req-1");
  ASSERT_EQ(got, 200) << trace.dump();
  EXPECT_EQ(trace["id"], "req-1");
  EXPECT_EQ(trace["response"], "Hello!");
  ASSERT_EQ(trace["feedback"].size(), 2u);
  EXPECT_EQ(trace["feedback"][0]["user"], "bob");  // newest first

  auto [listed, list] = call("GET", "/api/feedback?user=ana");
  ASSERT_EQ(listed, 200) << list.dump();
  ASSERT_EQ(list["feedback"].size(), 1u);
  EXPECT_EQ(list["feedback"][0]["id"], f["id"]);
  EXPECT_EQ(list["next_page_token"], nullptr);
  EXPECT_EQ(call("GET", "/api/feedback?trace_id=req-1&kind=thumbs").second["feedback"].size(), 1u);
  EXPECT_EQ(call("GET", "/api/feedback?model=gemma").second["feedback"].size(), 0u);

  expect_error(call("GET", "/api/traces/nope"), 404, "not_found");
  expect_error(call("POST", "/api/feedback", R"({"trace_id": "nope", "score": 1})"), 404, "not_found");
  expect_error(call("POST", "/api/feedback", R"({"trace_id": "req-1", "score": 7})"), 400, "invalid_argument");
  expect_error(call("POST", "/api/feedback", R"({"trace_id": "req-1", "score": 1.5})"), 400, "invalid_argument");
  expect_error(call("POST", "/api/feedback", R"({"trace_id": "req-1"})"), 400, "invalid_argument");
  expect_error(call("POST", "/api/feedback", R"({"score": 1})"), 400, "invalid_argument");
  expect_error(call("POST", "/api/feedback", R"({"trace_id": "req-1", "score": 1, "comment": 3})"), 400,
               "invalid_argument");
  expect_error(call("POST", "/api/feedback", R"([1, 2])"), 400, "invalid_argument");
  expect_error(call("POST", "/api/feedback", "{not json"), 400, "invalid_argument");
  expect_error(call("GET", "/api/feedback?version=x"), 400, "invalid_argument");
}

TEST_P(MonitorRoutesTest, SummaryPerVersionOverAWindow) {
  const int64_t now = now_millis();
  std::vector<Trace> traces;
  for (int i = 1; i <= 4; ++i) {
    Trace t = make_trace(numbered("s", i), now - i * 60000);  // 1..4 minutes ago
    t.latency_ms = i * 100;
    traces.push_back(t);
  }
  append(traces);
  auto [status, s] = call("GET", "/api/monitor/summary?model=smollm2");
  ASSERT_EQ(status, 200) << s.dump();
  EXPECT_EQ(s["window"], "1h");
  ASSERT_EQ(s["versions"].size(), 1u);
  EXPECT_EQ(s["versions"][0]["requests"], 4);
  EXPECT_EQ(s["versions"][0]["latency_ms"]["p50"], 250.0);
  auto [narrow, n] = call("GET", "/api/monitor/summary?window=150s");
  ASSERT_EQ(narrow, 200) << n.dump();
  EXPECT_EQ(n["window"], "150s");
  EXPECT_EQ(n["versions"][0]["requests"], 2);
  EXPECT_EQ(call("GET", "/api/monitor/summary?model=gemma").second["versions"].size(), 0u);
  expect_error(call("GET", "/api/monitor/summary?window=soon"), 400, "invalid_argument");
}

}  // namespace
}  // namespace keel::server
