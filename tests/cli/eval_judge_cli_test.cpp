// LLM-as-judge end to end with the real default model as the judge, on both store back
// ends: a task whose answers a score judge rates (verdicts, raw text and parse status in
// the rows, the mean and parse failures in the metrics), every judge call traced and
// cached so that a second run calls nothing; a judge whose answers never parse,
// recorded as such; pairwise judging of two runs in both orders; and bad judge input
// as one-line errors. Small: three examples, a few tokens.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <set>
#include <thread>

#include "cli/backend_cli_test.h"
#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;

const char* kTask = R"yaml(task: judged
dataset:
  path: {DATA}
  split: test
output_type: generate_until
prompt: "Passage: {{passage}}\nQuestion: {{question}}\nAnswer:"
target: "{{answer}}"
fewshot: {num: 1, split: train}
generation: {max_tokens: 6, stop: ["\n"]}
filters: [strip]
metrics: [exact_match]
judge: {JUDGE}
)yaml";

// The rubric of examples/eval/judge-agreement.yaml, over the task's own field too.
const char* kScoreJudge = R"yaml(judge: agreement
model: smollm2
rubric: "Question: {{question}}\nExpected answer: {{reference}}\nGiven answer: {{filtered}}\nDo the two answers say the same thing? Rate from 1 (different) to 5 (the same). Rating:"
generation: {max_tokens: 3, stop: ["\n"]}
verdict: {type: score, min: 1, max: 5}
)yaml";

// A judge whose answers can never parse: the model never writes this marker.
const char* kUnparseableJudge = R"yaml(judge: strict
model: smollm2
rubric: "Given answer: {{filtered}}\nRate it:"
generation: {max_tokens: 3}
verdict: {type: score, min: 1, max: 5, regex: "VERDICT=([0-9]+)"}
)yaml";

const char* kPairwiseJudge = R"yaml(judge: closer
model: smollm2
rubric: "Question: {{input}}\nCorrect answer: {{reference}}\n\nAnswer A: {{output_a}}\nAnswer B: {{output_b}}\n\nWhich answer is closer to the correct answer, A or B? Reply with one letter."
generation: {max_tokens: 3, chat: true}
verdict: {type: pairwise}
)yaml";

std::string replaced(std::string text, const std::string& key, const std::string& value) {
  text.replace(text.find(key), key.size(), value);
  return text;
}

class EvalJudgeCliTest : public BackendCliTest {
 protected:
  void SetUp() override {
    BackendCliTest::SetUp();
    if (IsSkipped()) return;
    import_default_model("smollm2");
    if (IsSkipped() || HasFatalFailure()) return;
    data_ = keel::testing::source_dir() + "/examples/eval/reading.jsonl";
  }
  std::string task_with(const std::string& name, const std::string& judge_file) {
    return write(name, replaced(replaced(kTask, "{DATA}", data_), "{JUDGE}", judge_file));
  }
  Json judge_traces() { return keel_json({"traces", "list", "--endpoint", "eval.judge", "--limit", "100"})["traces"]; }
  std::string data_;
};
INSTANTIATE_BACKEND_CLI_TEST(EvalJudgeCliTest);

TEST_P(EvalJudgeCliTest, JudgesEveryAnswerTracesEachCallAndCachesItsAnswers) {
  const std::string task = task_with("judged.yaml", write("agreement.yaml", kScoreJudge));
  Json first = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task, "--limit", "3"});
  ASSERT_TRUE(first.contains("judge")) << first.dump();
  const Json& j = first["judge"];
  EXPECT_EQ(j["model"], "smollm2@1");
  EXPECT_EQ(j["verdict"], "score");
  EXPECT_EQ(j["judged"], 3);
  EXPECT_EQ(j["calls"], 3);
  EXPECT_EQ(j["cache_hits"], 0);
  EXPECT_EQ(j["parsed"].get<int64_t>() + j["parse_failures"].get<int64_t>(), 3);
  EXPECT_EQ(first["metrics"]["judge_parse_failures"], j["parse_failures"]);

  // Rows: each verdict with the judge's raw text, its status and its trace.
  Json rows = keel_json({"eval", "show", first["run_id"], "--examples"})["examples"];
  ASSERT_EQ(rows.size(), 3u);
  double sum = 0;
  int parsed = 0;
  std::set<std::string> trace_ids;
  for (const auto& row : rows) {
    const Json& v = row["judge"];
    ASSERT_TRUE(v.is_object()) << row.dump();
    EXPECT_FALSE(v["cached"].get<bool>());
    EXPECT_TRUE(v["raw"].is_string());
    trace_ids.insert(v["trace_id"].get<std::string>());
    if (v["status"] == "parsed") {
      ++parsed;
      sum += v["value"].get<double>();
      EXPECT_GE(v["value"].get<double>(), 0.0);
      EXPECT_LE(v["value"].get<double>(), 1.0);
    } else {
      EXPECT_EQ(v["status"], "unparsed");
      EXPECT_TRUE(v["value"].is_null());
      EXPECT_FALSE(v["error"].get<std::string>().empty());
    }
  }
  EXPECT_EQ(parsed, j["parsed"].get<int>());
  if (parsed > 0) {
    EXPECT_NEAR(first["metrics"]["judge"].get<double>(), sum / parsed, 1e-12);
  }
  Json run = keel_json({"runs", "show", first["run_id"]});
  EXPECT_EQ(run["params"]["judge"], "agreement");
  EXPECT_EQ(run["params"]["judge_model"], "smollm2@1");
  EXPECT_EQ(run["params"]["judge_verdict"], "score");
  EXPECT_EQ(run["params"]["judge_temperature"], "0.000000");
  EXPECT_EQ(run["params"]["judge_sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(run["metrics"].contains("judge_parse_failures")) << run.dump();

  // One trace per call, with the judge model, prompt, response, latency and tokens.
  Json traces = judge_traces();
  ASSERT_EQ(traces.size(), 3u) << traces.dump();
  for (const auto& t : traces) {
    EXPECT_TRUE(trace_ids.count(t["id"].get<std::string>())) << t.dump();
    EXPECT_EQ(t["endpoint"], "eval.judge");
    EXPECT_EQ(t["model"], "smollm2");
    EXPECT_EQ(t["version"], 1);
    EXPECT_EQ(t["served_name"], "smollm2");
    EXPECT_EQ(t["status"], 200);
    EXPECT_GT(t["latency_ms"].get<double>(), 0);
    EXPECT_GT(t["prompt_tokens"].get<int64_t>(), 10);
    EXPECT_GT(t["completion_tokens"].get<int64_t>(), 0);
    EXPECT_LE(t["completion_tokens"].get<int64_t>(), 3);
  }
  Json shown = keel_json({"traces", "show", *trace_ids.begin()});
  EXPECT_NE(shown.dump().find("Expected answer: "), std::string::npos) << shown.dump();
  Json summary = keel_json({"monitor", "summary", "--model", "smollm2"});
  EXPECT_NE(summary.dump().find("\"requests\":3"), std::string::npos) << summary.dump();

  // Again: every verdict from the cache, no call, no new trace, the same verdicts.
  Json second = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task, "--limit", "3"});
  EXPECT_EQ(second["judge"]["cache_hits"], 3) << second.dump();
  EXPECT_EQ(second["judge"]["calls"], 0);
  EXPECT_EQ(second["metrics"], first["metrics"]);
  EXPECT_EQ(judge_traces().size(), 3u);
  Json again = keel_json({"eval", "show", second["run_id"], "--examples"})["examples"];
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_TRUE(again[i]["judge"]["cached"].get<bool>());
    EXPECT_EQ(again[i]["judge"]["raw"], rows[i]["judge"]["raw"]);
    EXPECT_EQ(again[i]["judge"]["trace_id"], rows[i]["judge"]["trace_id"]) << "a cached answer names its call";
  }

  // Other parameters are another question: called afresh.
  const std::string longer = write("longer.yaml", replaced(kScoreJudge, "max_tokens: 3", "max_tokens: 4"));
  Json third =
      keel_json({"eval", "run", "-m", "smollm2@1", "-t", task_with("longer-task.yaml", longer), "--limit", "1"});
  EXPECT_EQ(third["judge"]["calls"], 1) << third.dump();
  EXPECT_EQ(judge_traces().size(), 4u);
}

int count_lines(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) return 0;
  return static_cast<int>(std::count(text->begin(), text->end(), '\n'));
}

TEST_P(EvalJudgeCliTest, AResumedRunKeepsItsVerdictsAndAsksNothingTwice) {
  const std::string task = task_with("judged.yaml", write("agreement.yaml", kScoreJudge));
  std::vector<std::string> args = base_;
  args.insert(args.begin(), keel::testing::keel_binary());
  for (const char* a : {"eval", "run", "-m", "smollm2", "--limit", "3", "--batch-size", "1", "-t"}) args.push_back(a);
  args.push_back(task);
  keel::testing::ChildProcess child(args, {{"KEEL_USER", "root"}});
  auto line = child.wait_for_line("run ", 60);
  ASSERT_TRUE(line.has_value()) << child.stderr_text();
  const std::string id = line->substr(line->find("run ") + 4, 32);
  const std::string checkpoint = dir_.file("home") + "/eval-runs/" + id + "/examples.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_lines(checkpoint) < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  child.send_signal(SIGKILL);
  child.wait(30);
  const int done = count_lines(checkpoint);
  ASSERT_GE(done, 1);
  ASSERT_LT(done, 3) << "the run finished before it was killed";
  auto kept = read_file(checkpoint);
  ASSERT_TRUE(kept.ok());
  Json first_row = *parse_json(kept->substr(0, kept->find('\n')));

  Json resumed = keel_json({"eval", "run", "--resume", id});
  EXPECT_EQ(resumed["judge"]["judged"], 3) << resumed.dump();
  EXPECT_LE(resumed["judge"]["calls"].get<int>(), 3 - done) << "a finished example's verdict was asked again";
  Json rows = keel_json({"eval", "show", id, "--examples"})["examples"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[first_row["index"].get<size_t>()]["judge"], first_row["judge"]);
  for (const auto& row : rows) EXPECT_TRUE(row["judge"].is_object()) << row.dump();
  EXPECT_EQ(judge_traces().size(), 3u) << "one call per answer, however the run was cut";
}

TEST_P(EvalJudgeCliTest, AVerdictThatCannotBeParsedIsRecordedNotCountedAsZero) {
  const std::string task = task_with("strict.yaml", write("strict-judge.yaml", kUnparseableJudge));
  auto r = keel({"--json", "eval", "run", "-m", "smollm2@1", "-t", task, "--limit", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = *parse_json(r.out);
  EXPECT_EQ(s["judge"]["parsed"], 0);
  EXPECT_EQ(s["judge"]["parse_failures"], 2);
  EXPECT_TRUE(s["judge"]["mean"].is_null());
  EXPECT_FALSE(s["metrics"].contains("judge")) << "no parsed verdict: no judge score at all, not 0";
  EXPECT_EQ(s["metrics"]["judge_parse_failures"], 2);
  Json rows = keel_json({"eval", "show", s["run_id"], "--examples"})["examples"];
  for (const auto& row : rows) {
    EXPECT_EQ(row["judge"]["status"], "unparsed");
    EXPECT_TRUE(row["judge"]["value"].is_null());
    EXPECT_FALSE(row["judge"]["raw"].get<std::string>().empty()) << "the judge's answer is kept";
    EXPECT_NE(row["judge"]["error"].get<std::string>().find("VERDICT="), std::string::npos);
  }
  // A threshold on a judge score that does not exist fails rather than passes.
  const std::string gated =
      write("gated.yaml", replaced(replaced(kTask, "{DATA}", data_), "{JUDGE}", dir_.file("strict-judge.yaml")) +
                              "thresholds: {judge: \">= 0\"}\n");
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t", gated, "--limit", "1"}), "below its thresholds");
}

TEST_P(EvalJudgeCliTest, PairwiseJudgingOfTwoRunsAsksBothOrders) {
  const std::string task = write("plain.yaml", replaced(replaced(kTask, "{DATA}", data_), "judge: {JUDGE}\n", ""));
  const std::string a = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task, "--limit", "3"})["run_id"];
  const std::string b = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task, "--limit", "3"})["run_id"];
  const std::string judge = write("pairwise.yaml", kPairwiseJudge);
  Json c = keel_json({"eval", "compare", a, b, "--judge", judge});
  ASSERT_TRUE(c.contains("judge")) << c.dump();
  const Json& j = c["judge"];
  EXPECT_EQ(j["pairs"], 3);
  EXPECT_EQ(
      j["a_wins"].get<int64_t>() + j["b_wins"].get<int64_t>() + j["ties"].get<int64_t>() + j["unparsed"].get<int64_t>(),
      3);
  ASSERT_EQ(j["examples"].size(), 3u);
  for (const auto& e : j["examples"]) {
    EXPECT_EQ(e["first"]["order"], "a,b");
    EXPECT_EQ(e["second"]["order"], "b,a");
    EXPECT_TRUE(e["first"]["raw"].is_string());
    EXPECT_TRUE(e["second"]["raw"].is_string());
    // The runs gave the same answers, so both orders are the same prompt: asked once.
    EXPECT_EQ(e["first"]["raw"], e["second"]["raw"]);
    EXPECT_EQ(e["first"]["trace_id"], e["second"]["trace_id"]);
    if (e["first"]["status"] == "parsed" && e["first"]["raw"].get<std::string>().find("tie") == std::string::npos) {
      // One letter for the same prompt names a different run in each order.
      EXPECT_FALSE(e["consistent"].get<bool>());
      EXPECT_EQ(e["winner"], "tie");
    }
  }
  EXPECT_EQ(j["calls"], 3);
  EXPECT_EQ(judge_traces().size(), 3u);
  Json again = keel_json({"eval", "compare", a, b, "--judge", judge});
  EXPECT_EQ(again["judge"]["calls"], 0);
  EXPECT_EQ(again["judge"]["cache_hits"], 6);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(again["judge"]["examples"][i]["winner"], j["examples"][i]["winner"]);
  auto text = keel({"eval", "compare", a, b, "--judge", judge});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("each asked in both orders"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("A,B: "), std::string::npos) << text.out;

  // A score judge is not a pairwise one; bad judge files are one-line errors.
  expect_error(keel({"eval", "compare", a, b, "--judge", write("score.yaml", kScoreJudge)}),
               "--judge takes a judge with verdict type pairwise");
  expect_error(
      keel({"eval", "compare", a, b, "--judge", write("bad.yaml", std::string(kPairwiseJudge) + "rubrik: x\n")}),
      "unknown key \"rubrik\" (line 6)");
  expect_error(keel({"eval", "compare", a, b, "--judge", dir_.file("absent.yaml")}), "absent.yaml");
  expect_error(keel({"eval", "compare", a, b, "--judge",
                     write("nomodel.yaml", replaced(kPairwiseJudge, "model: smollm2", "model: nosuchjudge@3"))}),
               "nosuchjudge");
}

TEST_P(EvalJudgeCliTest, RubricFromThePromptRegistry) {
  const std::string rubric =
      "Question: {{question}}\nExpected answer: {{reference}}\nGiven answer: {{filtered}}\nDo the two answers say the "
      "same thing? Rate from 1 (different) to 5 (the same). Rating:";
  ASSERT_EQ(keel({"prompts", "create", "agreement-rubric", "-t", rubric}).exit_code, 0);
  ASSERT_EQ(keel({"prompts", "create", "no-answer", "-t", "Is {{question}} a good question?"}).exit_code, 0);
  std::string judge = kScoreJudge;
  const size_t at = judge.find("rubric: ");
  judge.replace(at, judge.find('\n', at) - at, "rubric: {registry: agreement-rubric@1}");
  Json from_registry = keel_json(
      {"eval", "run", "-m", "smollm2@1", "-t", task_with("r.yaml", write("r-judge.yaml", judge)), "--limit", "2"});
  Json inline_rubric = keel_json({"eval", "run", "-m", "smollm2@1", "-t",
                                  task_with("i.yaml", write("i-judge.yaml", kScoreJudge)), "--limit", "2"});
  EXPECT_EQ(from_registry["metrics"], inline_rubric["metrics"]);
  EXPECT_EQ(inline_rubric["judge"]["cache_hits"], 2) << "the same rendered prompt, wherever the rubric came from";
  Json run = keel_json({"runs", "show", from_registry["run_id"]});
  EXPECT_EQ(run["params"]["judge_rubric"], "agreement-rubric@1");

  auto with_rubric = [&](const std::string& name, const std::string& reference) {
    std::string text = judge;
    text.replace(text.find("agreement-rubric@1"), 18, reference);
    return task_with(name + ".yaml", write(name + "-judge.yaml", text));
  };
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t", with_rubric("missing", "agreement-rubric@9")}),
               "the judge's rubric agreement-rubric@9");
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t", with_rubric("blind", "no-answer@1")}),
               "the rubric never shows the answer to judge");
}

TEST_P(EvalJudgeCliTest, BadJudgeInATaskIsAOneLineError) {
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t", task_with("t1.yaml", dir_.file("none.yaml"))}),
               "judge (line 12): reading the judge file");
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t",
                     task_with("t2.yaml", write("j2.yaml", std::string(kScoreJudge) + "temperature: 0\n"))}),
               "j2.yaml: unknown key \"temperature\" (line 6)");
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t",
                     task_with("t3.yaml", write("j3.yaml", replaced(kScoreJudge,
                                                                    "verdict: {type: score, min: 1, max: 5}\n", "")))}),
               "missing \"verdict\"");
  expect_error(
      keel({"eval", "run", "-m", "smollm2@1", "-t",
            task_with("t4.yaml", write("j4.yaml", replaced(kScoreJudge, "model: smollm2", "model: nosuchjudge@3")))}),
      "the judge's model: no model file or registered model nosuchjudge@3");
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t", task_with("t5.yaml", write("j5.yaml", kPairwiseJudge))}),
               "--judge FILE");
  expect_error(keel({"eval", "run", "-m", "smollm2@1", "-t",
                     task_with("t6.yaml", write("j6.yaml", replaced(kScoreJudge, "{{question}}", "{{nosuchfield}}"))),
                     "--limit", "1"}),
               "has no field \"nosuchfield\"");
}

// A judge at an OpenAI-compatible endpoint (a running Keel) answers as the same model run
// locally from its file, and its calls are traced with the server's token counts.
TEST(EvalJudgeRemote, AJudgeAtAnEndpointGivesTheLocalJudgesVerdicts) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  keel::testing::TempDir dir;
  keel::testing::KeelUp up(dir.file("server"), *model);
  ASSERT_GT(up.port(), 0);
  const std::string url = up.v1_url();
  const std::string data = keel::testing::source_dir() + "/examples/eval/reading.jsonl";
  auto task_for = [&](const std::string& name, const std::string& judge_model) {
    const std::string judge = replaced(kScoreJudge, "model: smollm2", "model: " + judge_model);
    const std::string path = dir.file(name);
    EXPECT_TRUE(write_file_atomic(dir.file(name + ".judge.yaml"), judge).ok());
    EXPECT_TRUE(
        write_file_atomic(path, replaced(replaced(kTask, "{DATA}", data), "{JUDGE}", dir.file(name + ".judge.yaml")))
            .ok());
    return path;
  };
  auto json = [&](std::vector<std::string> args) { return keel::testing::keel_json(dir.file("client"), std::move(args)); };
  Json remote =
      json({"eval", "run", "-m", *model, "-t",
            task_for("remote.yaml", "{name: smollm2-135m-instruct, endpoint: \"" + url + "\"}"), "--limit", "2"});
  Json local = json({"eval", "run", "-m", *model, "-t", task_for("local.yaml", *model), "--limit", "2"});
  EXPECT_EQ(remote["judge"]["calls"], 2) << remote.dump();
  EXPECT_EQ(local["judge"]["calls"], 2) << "another judge model is another cache entry";
  EXPECT_EQ(remote["metrics"], local["metrics"]);
  Json remote_rows = json({"eval", "show", remote["run_id"], "--examples"})["examples"];
  Json local_rows = json({"eval", "show", local["run_id"], "--examples"})["examples"];
  ASSERT_EQ(remote_rows.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(remote_rows[i]["judge"]["raw"], local_rows[i]["judge"]["raw"]) << i;
  Json traces = json({"traces", "list", "--endpoint", "eval.judge"})["traces"];
  ASSERT_EQ(traces.size(), 4u) << traces.dump();
  for (const auto& t : traces) {
    EXPECT_GT(t["prompt_tokens"].get<int64_t>(), 10) << t.dump();
    EXPECT_GT(t["completion_tokens"].get<int64_t>(), 0) << t.dump();
    EXPECT_GT(t["latency_ms"].get<double>(), 0) << t.dump();
  }
  EXPECT_EQ(up.stop(), 0);
}

}  // namespace
}  // namespace keel::cli
