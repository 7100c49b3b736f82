// `keel eval run` end to end on the default model, on both store back ends: the run, its
// parameters, metrics, artifacts and the link to the model version read back; a run
// killed with SIGKILL and resumed without redoing finished examples, ending where an
// uninterrupted run ends; the same task through a running Keel server's OpenAI API;
// and bad input (tasks, datasets, references) as one-line errors. Tasks are small
// (a few examples, a few tokens) so the whole file runs in seconds.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "cli/backend_cli_test.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"
#include "keel/tracking/artifact_files.h"
#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;

const char* kReadingTask = R"yaml(task: reading
dataset:
  path: {DATA}
  split: test
output_type: generate_until
prompt: "Passage: {{passage}}\nQuestion: {{question}}\nAnswer:"
target: "{{answer}}"
fewshot: {num: 1, split: train}
generation: {max_tokens: 6, stop: ["\n"]}
filters: [strip]
metrics: [exact_match, f1, bleu]
)yaml";

std::string with_data(std::string text, const std::string& data) {
  text.replace(text.find("{DATA}"), 6, data);
  return text;
}

int count_lines(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) return 0;
  return static_cast<int>(std::count(text->begin(), text->end(), '\n'));
}

class EvalRunCliTest : public BackendCliTest {
 protected:
  void SetUp() override {
    BackendCliTest::SetUp();
    if (IsSkipped()) return;
    import_default_model("smollm2");
    if (IsSkipped() || HasFatalFailure()) return;
    data_ = keel::testing::source_dir() + "/examples/eval/reading.jsonl";
    task_ = dir_.file("reading.yaml");
    ASSERT_TRUE(write_file_atomic(task_, with_data(kReadingTask, data_)).ok());
  }
  std::string data_;
  std::string task_;
};
INSTANTIATE_BACKEND_CLI_TEST(EvalRunCliTest);

TEST_P(EvalRunCliTest, StoresTheRunItsRowsAndTheLinkToTheModelVersion) {
  Json s = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task_, "--limit", "3", "--batch-size", "2"});
  ASSERT_TRUE(s.contains("run_id")) << s.dump();
  EXPECT_EQ(s["model"], "smollm2@1");
  EXPECT_EQ(s["examples"], 3);
  EXPECT_EQ(s["generated_examples"], 3);
  const std::string id = s["run_id"];
  const double f1 = s["metrics"]["f1"].get<double>();
  EXPECT_GE(f1, 0.0);
  EXPECT_LE(f1, 1.0);

  // The tracking run: parameters, aggregate metrics, the dataset input, the version link.
  Json run = keel_json({"runs", "show", id});
  EXPECT_EQ(run["status"], "FINISHED") << run.dump();
  EXPECT_EQ(run["params"]["task"], "reading");
  EXPECT_EQ(run["params"]["model"], "smollm2@1");
  EXPECT_EQ(run["params"]["examples"], "3");
  EXPECT_EQ(run["params"]["dataset"], data_);
  EXPECT_EQ(run["tags"]["keel.model.name"], "smollm2");
  EXPECT_EQ(run["tags"]["keel.model.version"], "1");
  EXPECT_DOUBLE_EQ(run["metrics"]["f1"]["value"].get<double>(), f1);
  ASSERT_EQ(run["inputs"].size(), 1u) << run.dump();
  EXPECT_EQ(run["inputs"][0]["source"], data_);

  // The version names the run back.
  Json version = keel_json({"models", "show", "smollm2@1"});
  EXPECT_EQ(version["tags"]["keel.eval.reading"], id) << version.dump();
  EXPECT_EQ(run["tags"]["keel.model.version_id"], version["id"]);

  // Per-example rows: input (with the few-shot example), output, reference, scores.
  Json shown = keel_json({"eval", "show", id, "--examples"});
  EXPECT_EQ(shown["model_version"]["name"], "smollm2");
  ASSERT_EQ(shown["examples"].size(), 3u);
  double sum = 0;
  for (const auto& row : shown["examples"]) {
    EXPECT_NE(row["input"].get<std::string>().find("Passage: "), std::string::npos);
    EXPECT_EQ(row["input"].get<std::string>().find("Passage: "), 0u);
    EXPECT_NE(row["input"].get<std::string>().find("\n\nPassage: "), std::string::npos) << "no few-shot example";
    EXPECT_FALSE(row["reference"].get<std::string>().empty());
    sum += row["scores"]["f1"].get<double>();
  }
  EXPECT_NEAR(sum / 3, f1, 1e-12);
  EXPECT_EQ(shown["examples"][0]["reference"], "red");

  // The artifacts of the run, as the tracking API lists them.
  {
    auto db = store::Db::open(url_);
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    auto blobs = store::LocalArtifactStore::open_at(dir_.file("home") + "/artifacts");
    ASSERT_TRUE(blobs.ok());
    const std::string root = run["artifact_uri"].get<std::string>().substr(std::string("mlflow-artifacts:/").size());
    auto files = tracking::ArtifactFiles(**db, **blobs).list(root, root);
    ASSERT_TRUE(files.ok()) << files.status().to_string();
    std::vector<std::string> names;
    for (const auto& f : *files) names.push_back(f.path);
    EXPECT_EQ(names, (std::vector<std::string>{"examples.jsonl", "summary.json", "task.yaml"}));
  }
  auto listing = keel({"eval", "show", id});
  EXPECT_EQ(listing.exit_code, 0) << listing.err;
  EXPECT_NE(listing.out.find("smollm2@1"), std::string::npos) << listing.out;

  // Batching does not change the results (greedy).
  Json one = keel_json({"eval", "run", "-m", "smollm2", "-t", task_, "--limit", "3", "--batch-size", "1"});
  EXPECT_EQ(one["metrics"], s["metrics"]);
  expect_error(keel({"eval", "run", "--resume", id}), "already finished");
}

TEST_P(EvalRunCliTest, ResumesAKilledRunWithoutRedoingFinishedExamples) {
  constexpr int kExamples = 4;
  std::vector<std::string> args = base_;
  args.insert(args.begin(), keel::testing::keel_binary());
  for (const char* a : {"eval", "run", "-m", "smollm2", "--limit", "4", "--batch-size", "1"}) args.push_back(a);
  args.push_back("-t");
  args.push_back(task_);
  keel::testing::ChildProcess child(args, {{"KEEL_USER", "root"}});
  auto line = child.wait_for_line("run ", 60);
  ASSERT_TRUE(line.has_value()) << child.stderr_text();
  const std::string id = line->substr(line->find("run ") + 4, 32);
  const std::string checkpoint = dir_.file("home") + "/eval-runs/" + id + "/examples.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_lines(checkpoint) < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  child.send_signal(SIGSTOP);  // paused, not dead: it still holds the run
  expect_error(keel({"eval", "run", "--resume", id}), "is being evaluated by another keel process");
  child.send_signal(SIGKILL);
  child.wait(30);
  const int done = count_lines(checkpoint);
  ASSERT_GE(done, 2);
  ASSERT_LT(done, kExamples) << "the run finished before it was killed";
  Json before = keel_json({"runs", "show", id});
  EXPECT_EQ(before["status"], "RUNNING");
  auto kept = read_file(checkpoint);
  ASSERT_TRUE(kept.ok());

  Json resumed = keel_json({"eval", "run", "--resume", id});
  EXPECT_EQ(resumed["run_id"], id);
  EXPECT_EQ(resumed["examples"], kExamples);
  EXPECT_GE(resumed["reused_examples"].get<int>(), done);  // a torn last line may be dropped, never more
  EXPECT_EQ(resumed["reused_examples"].get<int>() + resumed["generated_examples"].get<int>(), kExamples);

  // The finished rows are the very rows written before the kill (same finish times).
  Json rows = keel_json({"eval", "show", id, "--examples"})["examples"];
  ASSERT_EQ(rows.size(), static_cast<size_t>(kExamples));
  std::vector<Json> old_rows;
  for (size_t begin = 0; begin < kept->size();) {
    size_t end = kept->find('\n', begin);
    if (end == std::string::npos) break;
    old_rows.push_back(*parse_json(kept->substr(begin, end - begin)));
    begin = end + 1;
  }
  for (const auto& old : old_rows) {
    EXPECT_EQ(rows[old["index"].get<size_t>()]["finished_at"], old["finished_at"]) << "example redone";
  }
  EXPECT_FALSE(path_exists(checkpoint)) << "the checkpoint outlived the finished run";

  // The same as an uninterrupted run.
  Json whole = keel_json({"eval", "run", "-m", "smollm2", "-t", task_, "--limit", "4"});
  EXPECT_EQ(whole["metrics"], resumed["metrics"]);
  Json whole_rows = keel_json({"eval", "show", whole["run_id"], "--examples"})["examples"];
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(whole_rows[i]["output"], rows[i]["output"]) << i;

  EXPECT_EQ(keel_json({"runs", "show", id})["status"], "FINISHED");
}

TEST_P(EvalRunCliTest, BadInputIsAOneLineError) {
  auto write = [&](const std::string& name, const std::string& text) {
    EXPECT_TRUE(write_file_atomic(dir_.file(name), text).ok());
    return dir_.file(name);
  };
  auto run = [&](const std::string& task, const std::string& dataset) {
    std::vector<std::string> args = {"eval", "run", "-m", "smollm2", "-t", task};
    if (!dataset.empty()) {
      args.push_back("-d");
      args.push_back(dataset);
    }
    return keel(args);
  };
  expect_error(run(write("unknown.yaml", std::string(with_data(kReadingTask, data_)) + "metric: [f1]\n"), ""),
               "unknown key \"metric\"");
  expect_error(run(write("missing.yaml", "task: x\noutput_type: generate_until\nprompt: x\nmetrics: [f1]\n"), data_),
               "missing \"target\"");
  expect_error(run(dir_.file("absent.yaml"), data_), "absent.yaml");
  expect_error(run(task_, write("empty.jsonl", "")), "holds no examples");
  expect_error(run(task_, write("utf8.jsonl", "{\"split\": \"test\", \"passage\": \"\xc3\x28\"}\n")),
               "line 1 is not valid UTF-8");
  const std::string shot = "{\"split\": \"train\", \"passage\": \"p\", \"question\": \"q\", \"answer\": \"a\"}\n";
  expect_error(run(task_, write("types.jsonl", shot + "{\"split\": \"test\", \"passage\": [1], \"question\": \"q\", \"answer\": \"a\"}\n")),
               "line 2: field \"passage\" is a list");
  expect_error(run(task_, write("notobject.jsonl", "\"just a string\"\n")), "line 1 is a string, not a JSON object");
  expect_error(run(task_, "qa-data@3"), "qa-data@3");
  expect_error(run(task_, dir_.file("nothing.jsonl")), "nothing.jsonl: no such file, and not a dataset reference");
  expect_error(run(task_, dir_.path()), "is a folder");
  expect_error(keel({"eval", "run", "-m", "nosuchmodel@2", "-t", task_}), "nosuchmodel");
  expect_error(keel({"eval", "run", "--resume", "0123456789abcdef0123456789abcdef"}), "--resume");
  expect_error(keel({"eval", "run", "-t", task_}), "give --model and --task");
  std::string sentences = keel::testing::source_dir() + "/examples/eval/sentences.yaml";
  expect_error(keel({"eval", "run", "-m", "m", "--endpoint", "http://127.0.0.1:9/v1", "-t", sentences}),
               "log-probabilities");
  auto unreachable = keel({"eval", "run", "-m", "m", "--endpoint", "http://127.0.0.1:9/v1", "-t", task_, "--limit", "1"});
  expect_error(unreachable, "http://127.0.0.1:9/v1");
  EXPECT_NE(unreachable.err.find("continue with `keel eval run --resume "), std::string::npos) << unreachable.err;
  expect_error(keel({"eval", "run", "-m", "m", "--endpoint", "ftp://x/v1", "-t", task_}), "ftp://x/v1");
}

// The dataset can be a dataset version (NAME@VERSION); the run records it as such and
// scores what the file gives.
TEST_P(EvalRunCliTest, DatasetVersionFromTheDatasetRegistry) {
  auto imported = keel({"data", "import", data_, "--name", "reading"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  Json from_version = keel_json({"eval", "run", "-m", "smollm2", "-t", task_, "-d", "reading@1", "--limit", "2"});
  Json from_file = keel_json({"eval", "run", "-m", "smollm2", "-t", task_, "--limit", "2"});
  EXPECT_EQ(from_version["dataset"], "reading@1");
  EXPECT_EQ(from_version["metrics"], from_file["metrics"]);
  Json run = keel_json({"runs", "show", from_version["run_id"]});
  EXPECT_EQ(run["params"]["dataset"], "reading@1");
  ASSERT_EQ(run["inputs"].size(), 1u);
  EXPECT_EQ(run["inputs"][0]["name"], "reading");
  EXPECT_EQ(run["inputs"][0]["source_type"], "keel-dataset");
  expect_error(keel({"eval", "run", "-m", "smollm2", "-t", task_, "-d", "reading@9"}), "reading@9");
}

// The prompt can come from the prompt registry (NAME@VERSION); the run is the same as
// with the template inline.
TEST_P(EvalRunCliTest, PromptFromThePromptRegistry) {
  ASSERT_EQ(keel({"prompts", "create", "reading-qa", "-t", "Passage: {{passage}}\nQuestion: {{question}}\nAnswer:"})
                .exit_code,
            0);
  std::string text = with_data(kReadingTask, data_);
  text.replace(text.find("prompt: \""), text.find("\n", text.find("prompt: \"")) - text.find("prompt: \""),
               "prompt: {registry: reading-qa@1}");
  ASSERT_TRUE(write_file_atomic(dir_.file("registry.yaml"), text).ok());
  Json from_registry = keel_json({"eval", "run", "-m", "smollm2", "-t", dir_.file("registry.yaml"), "--limit", "2"});
  Json inline_prompt = keel_json({"eval", "run", "-m", "smollm2", "-t", task_, "--limit", "2"});
  EXPECT_EQ(from_registry["metrics"], inline_prompt["metrics"]);
  Json rows = keel_json({"eval", "show", from_registry["run_id"], "--examples"})["examples"];
  Json inline_rows = keel_json({"eval", "show", inline_prompt["run_id"], "--examples"})["examples"];
  EXPECT_EQ(rows[1]["input"], inline_rows[1]["input"]);
  text.replace(text.find("reading-qa@1"), 12, "reading-qa@7");
  ASSERT_TRUE(write_file_atomic(dir_.file("missing-prompt.yaml"), text).ok());
  expect_error(keel({"eval", "run", "-m", "smollm2", "-t", dir_.file("missing-prompt.yaml")}), "prompt reading-qa@7");
}

// Ctrl-C ends the run after the current batch, marks it KILLED and says how to resume.
TEST_P(EvalRunCliTest, InterruptKeepsFinishedExamplesForResume) {
  std::vector<std::string> args = base_;
  args.insert(args.begin(), keel::testing::keel_binary());
  for (const char* a : {"eval", "run", "-m", "smollm2", "--limit", "5", "--batch-size", "1", "-t"}) args.push_back(a);
  args.push_back(task_);
  keel::testing::ChildProcess child(args, {{"KEEL_USER", "root"}});
  auto line = child.wait_for_line("run ", 60);
  ASSERT_TRUE(line.has_value()) << child.stderr_text();
  const std::string id = line->substr(line->find("run ") + 4, 32);
  const std::string checkpoint = dir_.file("home") + "/eval-runs/" + id + "/examples.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_lines(checkpoint) < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  child.send_signal(SIGINT);
  EXPECT_EQ(child.wait(60), 1);
  const std::string err = child.stderr_text();
  EXPECT_NE(err.find("interrupted; "), std::string::npos) << err;
  EXPECT_NE(err.find("keel eval run --resume " + id), std::string::npos) << err;
  EXPECT_EQ(keel_json({"runs", "show", id})["status"], "KILLED");
  // A task file changed since the run started is refused, and so is another model.
  auto original = read_file(task_);
  ASSERT_TRUE(original.ok());
  ASSERT_TRUE(write_file_atomic(task_, *original + "# edited\n").ok());
  expect_error(keel({"eval", "run", "--resume", id}), "changed since run " + id);
  ASSERT_TRUE(write_file_atomic(task_, *original).ok());
  expect_error(keel({"eval", "run", "--resume", id, "-m", keel::testing::default_model_path().value()}),
               "the model changed since run " + id);
  Json resumed = keel_json({"eval", "run", "--resume", id});
  EXPECT_GE(resumed["reused_examples"].get<int>(), 1);
  EXPECT_EQ(resumed["examples"], 5);
}

TEST_P(EvalRunCliTest, CompareAndGateReadTheStoredRuns) {
  Json a = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task_, "--limit", "2"});
  Json b = keel_json({"eval", "run", "-m", "smollm2@1", "-t", task_, "--limit", "2", "--batch-size", "1"});
  Json cmp = keel_json({"eval", "compare", a["run_id"], b["run_id"]});
  EXPECT_EQ(cmp["runs"][0]["id"], a["run_id"]);
  EXPECT_EQ(cmp["metrics"]["f1"]["a"], a["metrics"]["f1"]);
  EXPECT_EQ(cmp["metrics"]["f1"]["delta"], 0.0);
  EXPECT_EQ(cmp["metric"], "bleu");  // the first per-example score by default
  EXPECT_TRUE(cmp["examples"].empty()) << "greedy runs of one version differ: " << cmp.dump();
  EXPECT_FALSE(cmp.contains("note"));
  // Every per-example score paired, with its bootstrap interval: nothing moved here.
  for (const char* score : {"exact_match", "f1", "bleu"}) {
    const Json& p = cmp["paired"][score];
    ASSERT_TRUE(p.is_object()) << score << ": " << cmp["paired"].dump();
    EXPECT_EQ(p["mean_delta"], 0.0);
    EXPECT_EQ(p["low"], 0.0);
    EXPECT_EQ(p["high"], 0.0);
    EXPECT_EQ(p["examples"], 2);
    EXPECT_EQ(p["samples"], 1000);
  }
  Json other = keel_json({"eval", "run", "-m", "smollm2@1", "-t",
                          keel::testing::source_dir() + "/examples/eval/sentences.yaml", "--limit", "2"});
  Json cross = keel_json({"eval", "compare", a["run_id"], other["run_id"]});
  EXPECT_NE(cross["note"].get<std::string>().find("different tasks"), std::string::npos);
  EXPECT_TRUE(cross["metrics"]["f1"]["b"].is_null());
  EXPECT_TRUE(cross["paired"].empty()) << "no pairs across tasks";
  expect_error(keel({"eval", "compare", a["run_id"], b["run_id"], "--metric", "acc"}), "no per-example score acc");

  // Gates: absolute and relative to the version an alias names; the outcome is a check.
  ASSERT_EQ(keel({"models", "alias", "smollm2@1", "baseline"}).exit_code, 0);
  const std::string f1 = std::to_string(b["metrics"]["f1"].get<double>() - 0.001);
  ASSERT_TRUE(write_file_atomic(dir_.file("pass.yaml"), "check: reading-gate\ntasks:\n  reading: [\"f1 >= " + f1 +
                                                                "\", \"f1 >= baseline - 0.5\"]\n").ok());
  Json pass = keel_json({"eval", "gate", "smollm2@1", "--policy", dir_.file("pass.yaml")});
  EXPECT_EQ(pass["passed"], true) << pass.dump();
  EXPECT_EQ(pass["rules"][1]["baseline"], b["metrics"]["f1"]);  // the latest reading run of the version
  // Versions stand for their latest run of a task: a candidate against the aliased one.
  Json by_version = keel_json({"eval", "compare", "smollm2@baseline", "smollm2@1", "--task", "reading"});
  EXPECT_EQ(by_version["runs"][0]["id"], b["run_id"]) << by_version.dump();
  EXPECT_EQ(by_version["runs"][1]["id"], b["run_id"]);
  expect_error(keel({"eval", "compare", "smollm2@baseline", "smollm2@1"}), "needs --task");
  expect_error(keel({"eval", "compare", "smollm2@1", a["run_id"], "--task", "arithmetic"}), "no eval run of task");
  auto card = keel({"models", "card", "smollm2@1"});
  EXPECT_NE(card.out.find("| reading-gate | passed |"), std::string::npos) << card.out;

  ASSERT_TRUE(write_file_atomic(dir_.file("fail.yaml"), "check: strict-gate\ntasks:\n  reading: \"f1 >= baseline + 0.5\"\n"
                                                        "  capitals: \"acc >= 0.5\"\n").ok());
  auto failed = keel({"eval", "gate", "smollm2@1", "--policy", dir_.file("fail.yaml")});
  expect_error(failed, "gate strict-gate failed for smollm2@1");
  EXPECT_NE(failed.err.find("smollm2@1 has no eval run of task capitals"), std::string::npos) << failed.err;
  card = keel({"models", "card", "smollm2@1"});
  EXPECT_NE(card.out.find("| strict-gate | failed |"), std::string::npos) << card.out;

  ASSERT_TRUE(write_file_atomic(dir_.file("bad.yaml"), "tasks: {reading: \"f1 >= staging\"}\nextra: 1\n").ok());
  expect_error(keel({"eval", "gate", "smollm2@1", "--policy", dir_.file("bad.yaml")}), "unknown key \"extra\"");
  ASSERT_TRUE(write_file_atomic(dir_.file("alias.yaml"), "tasks: {reading: \"f1 >= staging\"}\n").ok());
  expect_error(keel({"eval", "gate", "smollm2@1", "--policy", dir_.file("alias.yaml")}), "has the alias staging");
}

// A running Keel server behind --endpoint gives what the local engine gives.
TEST(EvalRunRemote, KeelServerEndpointMatchesTheLocalEngine) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  keel::testing::TempDir dir;
  keel::testing::KeelUp up(dir.file("server"), *model);
  ASSERT_GT(up.port(), 0);
  const std::string task = dir.file("reading.yaml");
  ASSERT_TRUE(write_file_atomic(task, with_data(kReadingTask, keel::testing::source_dir() + "/examples/eval/reading.jsonl")).ok());
  auto json = [&](std::vector<std::string> args) { return keel::testing::keel_json(dir.file("client"), std::move(args)); };
  Json remote = json({"eval", "run", "--endpoint", up.v1_url(), "-m",
                      "smollm2-135m-instruct", "-t", task, "--limit", "3"});
  Json local = json({"eval", "run", "-m", *model, "-t", task, "--limit", "3"});
  EXPECT_EQ(remote["metrics"], local["metrics"]);
  Json remote_rows = json({"eval", "show", remote["run_id"], "--examples"})["examples"];
  Json local_rows = json({"eval", "show", local["run_id"], "--examples"})["examples"];
  ASSERT_EQ(remote_rows.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(remote_rows[i]["output"], local_rows[i]["output"]) << i;
  Json run = json({"runs", "show", remote["run_id"]});
  EXPECT_EQ(run["params"]["endpoint"], up.v1_url());

  // A multiple-choice task scores its choices by log-likelihood at the endpoint too
  // (the prompt echoed with its tokens' log-probabilities): the local choices and scores.
  const std::string capitals = keel::testing::source_dir() + "/examples/eval/capitals.yaml";
  Json remote_mc = json({"eval", "run", "--endpoint", up.v1_url(), "-m",
                         "smollm2-135m-instruct", "-t", capitals, "--limit", "4"});
  Json local_mc = json({"eval", "run", "-m", *model, "-t", capitals, "--limit", "4"});
  EXPECT_EQ(remote_mc["metrics"], local_mc["metrics"]) << remote_mc.dump();
  Json remote_mc_rows = json({"eval", "show", remote_mc["run_id"], "--examples"})["examples"];
  Json local_mc_rows = json({"eval", "show", local_mc["run_id"], "--examples"})["examples"];
  ASSERT_EQ(remote_mc_rows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const Json& a = remote_mc_rows[i]["choice_logprobs"];
    const Json& b = local_mc_rows[i]["choice_logprobs"];
    ASSERT_EQ(a.size(), b.size()) << remote_mc_rows[i].dump();
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k].get<double>(), b[k].get<double>(), 2e-3) << i << " " << k;
  }
  EXPECT_EQ(up.stop(), 0);
}

}  // namespace
}  // namespace keel::cli
