// Monitor tests run once per store back end on a fresh, migrated store (db_), with a
// helper that makes a complete trace.
#pragma once

#include <gtest/gtest.h>

#include "keel/monitor/traces.h"
#include "store/store_test_base.h"

namespace keel::monitor {

class MonitorTest : public store::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    db_ = open_db();
    ASSERT_TRUE(db_);
  }

  // A successful chat trace of model@version by user, started at started_at.
  static Trace make_trace(const std::string& id, int64_t started_at, const std::string& model = "smollm2",
                          int64_t version = 1, const std::string& user = "ana") {
    Trace t;
    t.id = id;
    t.started_at = started_at;
    t.user = user;
    t.endpoint = "chat.completions";
    t.served_name = model + "@production";
    t.model = model;
    t.version = version;
    t.prompt = R"([{"role":"user","content":"hi"}])";
    t.response = "Hello!";
    t.prompt_tokens = 9;
    t.completion_tokens = 3;
    t.latency_ms = 120.5;
    t.tokens_per_second = 42.0;
    t.finish_reason = "stop";
    return t;
  }

  // prefix + i, built by appending (GCC 12's -Wrestrict misfires on "x" + to_string(i)).
  static std::string numbered(const std::string& prefix, int i) {
    std::string s = prefix;
    s += std::to_string(i);
    return s;
  }

  void append(const std::vector<Trace>& traces) {
    Status st = TraceStore(*db_).append(traces);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }

  int64_t count_traces() {
    auto rows = db_->query("SELECT COUNT(*) FROM traces");
    EXPECT_TRUE(rows.ok()) << rows.status().to_string();
    return rows.ok() ? rows->rows[0].get_int(0) : -1;
  }

  std::unique_ptr<store::Db> db_;
};

#define INSTANTIATE_MONITOR_TEST(Suite) INSTANTIATE_STORE_TEST(Suite)

}  // namespace keel::monitor
