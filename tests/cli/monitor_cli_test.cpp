// keel traces / feedback / monitor end to end: traces recorded through the monitor
// module are listed and shown by the binary, feedback is given from the terminal and
// exported as datasets, and the summary reads them, on both store back ends.
#include <gtest/gtest.h>

#include "cli/backend_cli_test.h"
#include "keel/monitor/traces.h"
#include "keel/store/db.h"
#include "keel/store/migrations.h"
#include "keel/util/file.h"
#include "keel/util/id.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using MonitorCliTest = BackendCliTest;
INSTANTIATE_BACKEND_CLI_TEST(MonitorCliTest);

TEST_P(MonitorCliTest, TracesFeedbackExportAndSummary) {
  auto empty = keel({"traces", "list"});
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_NE(empty.out.find("no traces"), std::string::npos) << empty.out;

  // Record two requests the way the server does, through the monitor on the same store.
  auto db = store::Db::open(url_);
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  ASSERT_TRUE(store::migrate_to_latest(**db).ok());
  const int64_t now = now_millis();
  monitor::Trace chat;
  chat.id = "req-chat";
  chat.started_at = now - 2000;
  chat.user = "ana";
  chat.endpoint = "chat.completions";
  chat.served_name = "smollm2@production";
  chat.model = "smollm2";
  chat.version = 1;
  chat.prompt = R"([{"role":"user","content":"Capital of France?"}])";
  chat.response = "Lyon.";
  chat.prompt_tokens = 12;
  chat.completion_tokens = 3;
  chat.latency_ms = 80;
  chat.finish_reason = "stop";
  monitor::Trace failed = chat;
  failed.id = "req-failed";
  failed.started_at = now - 1000;
  failed.status = 503;
  failed.error = "overloaded";
  failed.response.clear();
  ASSERT_TRUE(monitor::TraceStore(**db).append(std::vector<monitor::Trace>{chat, failed}).ok());

  Json listed = keel_json({"traces", "list"});
  ASSERT_EQ(listed["traces"].size(), 2u) << listed.dump();
  EXPECT_EQ(listed["traces"][0]["id"], "req-failed");
  EXPECT_EQ(keel_json({"traces", "list", "--status", "503"})["traces"].size(), 1u);
  EXPECT_EQ(keel_json({"traces", "list", "--model", "gemma"})["traces"].size(), 0u);
  EXPECT_EQ(keel_json({"traces", "list", "--user", "ana", "--limit", "1"})["traces"].size(), 1u);
  auto table = keel({"traces", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("req-chat"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("smollm2@1"), std::string::npos) << table.out;

  Json shown = keel_json({"traces", "show", "req-chat"});
  EXPECT_EQ(shown["prompt"], chat.prompt);
  EXPECT_EQ(shown["feedback"].size(), 0u);

  std::string corrected = dir_.file("corrected.txt");
  ASSERT_TRUE(write_file_atomic(corrected, "Paris.").ok());
  Json added =
      keel_json({"feedback", "add", "req-chat", "--score", "-1", "--corrected", corrected, "--comment", "wrong city"});
  EXPECT_EQ(added["user"], "root");
  EXPECT_EQ(added["kind"], "thumbs");
  EXPECT_EQ(added["score"], -1);
  EXPECT_EQ(added["corrected_answer"], "Paris.");
  auto text = keel({"traces", "show", "req-chat"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("feedback:   thumbs -1 by root"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Lyon."), std::string::npos) << text.out;
  EXPECT_EQ(keel_json({"feedback", "list", "--trace", "req-chat"})["feedback"].size(), 1u);

  std::string sft = dir_.file("sft.jsonl");
  Json exported = keel_json({"feedback", "export", "--format", "sft", "--out", sft, "--model", "smollm2"});
  EXPECT_EQ(exported["examples"], 1);
  auto sft_text = read_file(sft);
  ASSERT_TRUE(sft_text.ok());
  EXPECT_EQ(*sft_text,
            R"({"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris."}]})"
            "\n");
  auto dpo = keel({"feedback", "export", "--format", "dpo"});
  ASSERT_EQ(dpo.exit_code, 0) << dpo.err;
  EXPECT_EQ(dpo.out,
            R"({"prompt":[{"role":"user","content":"Capital of France?"}],"chosen":[{"role":"assistant","content":)"
            R"("Paris."}],"rejected":[{"role":"assistant","content":"Lyon."}]})"
            "\n");

  Json summary = keel_json({"monitor", "summary", "--window", "24h"});
  ASSERT_EQ(summary["versions"].size(), 1u) << summary.dump();
  EXPECT_EQ(summary["window"], "24h");
  EXPECT_EQ(summary["versions"][0]["requests"], 2);
  EXPECT_EQ(summary["versions"][0]["errors"], 1);
  EXPECT_EQ(summary["versions"][0]["feedback"]["thumbs_down"], 1);
  auto summary_text = keel({"monitor", "summary"});
  ASSERT_EQ(summary_text.exit_code, 0) << summary_text.err;
  EXPECT_NE(summary_text.out.find("smollm2@1"), std::string::npos) << summary_text.out;
  EXPECT_NE(summary_text.out.find("50.0%"), std::string::npos) << summary_text.out;

  auto unknown = keel({"feedback", "add", "req-nope", "--score", "1"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no trace with id 'req-nope'"), std::string::npos) << unknown.err;
  auto bad_score = keel({"feedback", "add", "req-chat", "--score", "9"});
  EXPECT_EQ(bad_score.exit_code, 1);
  EXPECT_NE(bad_score.err.find("thumbs score is -1 or 1"), std::string::npos) << bad_score.err;
  EXPECT_EQ(keel({"monitor", "summary", "--window", "soon"}).exit_code, 1);
  EXPECT_EQ(keel({"feedback", "export", "--format", "kto"}).exit_code, 2);
  auto missing = keel({"traces", "show", "req-nope"});
  EXPECT_EQ(missing.exit_code, 1);
}

}  // namespace
}  // namespace keel::cli
