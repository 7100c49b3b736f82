// `keel train sft` end to end on the default model: one short step writes an adapter
// that reads back as llama.cpp's GGUF LoRA layout, and bad data is a one-line error
// naming its line.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <fstream>

#include "keel/engine/gguf.h"
#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::TempDir;

TEST(TrainCli, SftWritesAnAdapterAndReportsItsSteps) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  {
    std::ofstream data(dir.file("data.jsonl"));
    data
        << R"({"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]})"
        << "\n\n"
        << R"({"prompt": "2+2=", "completion": "4"})"
        << "\n";
  }
  const std::string adapter = dir.file("adapter.gguf");
  auto r = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("data.jsonl"), "-o", adapter, "--rank",
                                    "2", "--modules", "q,v", "--max-steps", "1", "--max-len", "16", "--json", "--home",
                                    dir.file("home")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  // The chat record's prompt (SmolLM2's template adds its default system message) is
  // longer than --max-len 16: it is skipped, and the prompt/completion one trains.
  EXPECT_EQ((*j)["examples"], 1);
  EXPECT_EQ((*j)["skipped"], 1);
  ASSERT_EQ((*j)["steps"].size(), 1u);
  const double loss = (*j)["steps"][0]["loss"];
  EXPECT_GT(loss, 0.0);
  EXPECT_LT(loss, 20.0);
  EXPECT_EQ((*j)["lora_parameters"], 30 * 2 * (576 + 576 + 576 + 192));  // rank 2: A of q, v; B of q, v

  auto file = engine::GgufFile::open(adapter);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ((*file)->get_string("general.type"), "adapter");
  EXPECT_EQ((*file)->tensors().size(), 30u * 2 * 2);
  EXPECT_EQ((*file)->tensors()[0].name, "blk.0.attn_q.weight.lora_a");

  {
    std::ofstream bad(dir.file("bad.jsonl"));
    bad << R"({"prompt": "a", "completion": "b"})"
        << "\n"
        << "not json\n";
  }
  auto e = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("bad.jsonl"), "-o", dir.file("x.gguf"),
                                    "--home", dir.file("home")});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.err.find("bad.jsonl:2: not JSON"), std::string::npos) << e.err;
}

// Three prompt/completion records of capitals, and a sum when with_sum.
void write_capitals(const std::string& path, bool with_sum) {
  std::ofstream data(path);
  data << R"({"prompt": "Capital of France?", "completion": " Paris."})" << "\n"
       << R"({"prompt": "Capital of Italy?", "completion": " Rome."})" << "\n"
       << R"({"prompt": "Capital of Spain?", "completion": " Madrid."})" << "\n";
  if (with_sum) data << R"({"prompt": "2+2=", "completion": "4"})" << "\n";
}

std::vector<double> losses_by_step(const Json& report, int64_t steps) {
  std::vector<double> out(static_cast<size_t>(steps) + 1, -1);
  for (const Json& s : report["steps"]) out[s["step"].get<size_t>()] = s["loss"].get<double>();
  return out;
}

// A training is a run; killed with SIGKILL after a checkpoint, `keel train resume` goes
// on from it and takes the same steps: the same losses and the same adapter bytes as an
// uninterrupted training with the same seed.
TEST(TrainCli, AKilledTrainingResumesOnTheSameCourse) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  write_capitals(dir.file("data.jsonl"), /*with_sum=*/true);
  const std::string home = dir.file("home");
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"train", "sft", "-m", *model, "-d", dir.file("data.jsonl"), "-o", out, "--rank", "2",
                                    "--modules", "q,v", "--epochs", "3", "--checkpoint-every", "3", "--max-len", "24",
                                    "--seed", "3", "--home", home};
  };
  auto whole_args = args(dir.file("whole.gguf"));
  whole_args.push_back("--json");
  auto whole = keel::testing::run_keel(whole_args);
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  auto expected = parse_json(whole.out);
  ASSERT_TRUE(expected.ok()) << whole.out;
  ASSERT_EQ((*expected)["steps"].size(), 12u);

  // The same training, killed once step 4 has begun (the checkpoint of step 3 is in).
  std::string command = "exec '" + keel::testing::keel_binary() + "'";
  for (const std::string& a : args(dir.file("resumed.gguf"))) command += " '" + a + "'";
  keel::testing::ChildProcess child({"/bin/sh", "-c", command + " 2>&1"});
  auto started = child.wait_for_line("train sft: run ", 120);
  ASSERT_TRUE(started.has_value());
  const size_t at = started->find("run ") + 4;
  const std::string run_id = started->substr(at, started->find(';', at) - at);
  ASSERT_TRUE(child.wait_for_line("step 4/12", 120).has_value());
  child.send_signal(SIGKILL);
  EXPECT_EQ(child.wait(), -1);
  auto shown = keel::testing::run_keel({"runs", "show", run_id, "--json", "--home", home});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto killed = parse_json(shown.out);
  ASSERT_TRUE(killed.ok()) << shown.out;
  EXPECT_EQ((*killed)["status"], "RUNNING");
  EXPECT_EQ((*killed)["params"]["seed"], "3");
  EXPECT_EQ((*killed)["inputs"].size(), 1u);

  auto resumed = keel::testing::run_keel({"train", "resume", run_id, "--json", "--home", home});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto report = parse_json(resumed.out);
  ASSERT_TRUE(report.ok()) << resumed.out;
  const int64_t start = (*report)["start_step"];
  EXPECT_TRUE(start == 3 || start == 6) << start;  // the kill may have come after the second checkpoint
  EXPECT_EQ((*report)["steps"].size(), static_cast<size_t>(12 - start));
  const auto want = losses_by_step(*expected, 12), got = losses_by_step(*report, 12);
  for (int64_t step = start + 1; step <= 12; ++step) EXPECT_EQ(got[step], want[step]) << "step " << step;
  auto a = read_file(dir.file("whole.gguf"), 1 << 26), b = read_file(dir.file("resumed.gguf"), 1 << 26);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b) << "the resumed training's adapter differs";

  // The run is finished now, with the last step's metrics.
  auto done = parse_json(keel::testing::run_keel({"runs", "show", run_id, "--json", "--home", home}).out);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ((*done)["status"], "FINISHED");
  EXPECT_EQ((*done)["metrics"]["loss"]["step"], 12);
  auto finished = keel::testing::run_keel({"train", "resume", run_id, "--home", home});
  EXPECT_EQ(finished.exit_code, 1);
  EXPECT_NE(finished.err.find("has finished"), std::string::npos) << finished.err;
  auto unknown = keel::testing::run_keel({"train", "resume", "0123456789abcdef", "--home", home});
  EXPECT_EQ(unknown.exit_code, 1);
}

// Validation through the CLI: a held-out file gives val_loss every --eval-every steps
// (in the report and as the run's metric, with the file as a "validation" input), the
// adapter written is the best one's; --val-fraction holds records out of --data; and
// the mistakes say what is wrong.
TEST(TrainCli, ValidationLossIsReportedAndTheBestAdapterKept) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  write_capitals(dir.file("data.jsonl"), /*with_sum=*/true);
  {
    std::ofstream held_out(dir.file("val.jsonl"));
    held_out << R"({"prompt": "Capital of Germany?", "completion": " Berlin."})" << "\n"
             << R"({"prompt": "Capital of Japan?", "completion": " Tokyo."})" << "\n";
  }
  const std::string home = dir.file("home");
  auto r = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("data.jsonl"), "--val-data",
                                    dir.file("val.jsonl"), "-o", dir.file("a.gguf"), "--rank", "2", "--modules", "q,v",
                                    "--max-steps", "4", "--batch", "1", "--grad-accum", "2", "--eval-every", "2",
                                    "--patience", "5", "--lr", "1e-3", "--max-len", "24", "--json", "--home", home});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["examples"], 4);
  EXPECT_EQ((*j)["validation_examples"], 2);
  EXPECT_EQ((*j)["steps"].size(), 2u) << "4 examples, 2 per step (1 per micro-batch, 2 micro-batches)";
  ASSERT_EQ((*j)["validation"].size(), 1u);  // after step 2, the last
  EXPECT_EQ((*j)["validation"][0]["step"], 2);
  EXPECT_EQ((*j)["best_step"], 2);
  EXPECT_FALSE((*j)["stopped_early"].get<bool>());
  const double val_loss = (*j)["validation"][0]["val_loss"];
  EXPECT_GT(val_loss, 0.0);
  EXPECT_LT(val_loss, 20.0);
  auto shown = parse_json(
      keel::testing::run_keel({"runs", "show", (*j)["run_id"].get<std::string>(), "--json", "--home", home}).out);
  ASSERT_TRUE(shown.ok());
  EXPECT_NEAR((*shown)["metrics"]["val_loss"]["value"].get<double>(), val_loss, 1e-9 * val_loss);
  EXPECT_EQ((*shown)["params"]["grad_accum"], "2");
  ASSERT_EQ((*shown)["inputs"].size(), 2u);
  bool validation_input = false;
  for (const Json& input : (*shown)["inputs"]) {
    for (const Json& tag : input["tags"]) validation_input |= tag.dump().find("validation") != std::string::npos;
  }
  EXPECT_TRUE(validation_input) << (*shown)["inputs"].dump();
  // `keel train loss` measures the written (best) adapter on the held-out file as the
  // training's validation did: one example at a time, as --batch 1 had it (products of
  // another shape may round differently, and the activations' 8-bit rounding carries a
  // last bit into a whole step now and then).
  auto measured = keel::testing::run_keel({"train", "loss", "-m", *model, "--lora", dir.file("a.gguf"), "-d",
                                           dir.file("val.jsonl"), "--max-len", "24", "--batch", "1", "--tokens",
                                           "--json", "--home", home});
  ASSERT_EQ(measured.exit_code, 0) << measured.err;
  auto l = parse_json(measured.out);
  ASSERT_TRUE(l.ok()) << measured.out;
  EXPECT_NEAR((*l)["loss"].get<double>(), (*j)["best_val_loss"].get<double>(), 1e-3 * val_loss);
  EXPECT_NEAR((*l)["perplexity"].get<double>(), std::exp((*l)["loss"].get<double>()), 1e-9);
  ASSERT_EQ((*l)["example_tokens"].size(), 2u);
  int64_t targets = 0;
  for (const Json& e : (*l)["example_tokens"]) {
    EXPECT_EQ(e["tokens"].size(), e["targets"].size());
    for (const Json& t : e["targets"]) targets += t.get<int>() >= 0 ? 1 : 0;
  }
  EXPECT_EQ((*l)["target_tokens"], targets);
  auto no_adapter = keel::testing::run_keel({"train", "loss", "-m", *model, "-d", dir.file("val.jsonl"), "--max-len",
                                             "24", "--json", "--home", home});
  ASSERT_EQ(no_adapter.exit_code, 0) << no_adapter.err;
  EXPECT_NE((*parse_json(no_adapter.out))["loss"].get<double>(), (*l)["loss"].get<double>());
  auto wrong = keel::testing::run_keel({"train", "loss", "-m", *model, "--lora", dir.file("val.jsonl"), "-d",
                                        dir.file("val.jsonl"), "--home", home});
  EXPECT_EQ(wrong.exit_code, 1) << "a JSONL file is no adapter";

  // A share of the records held out of --data, decided by each record's text.
  {
    std::ofstream many(dir.file("many.jsonl"));
    for (int i = 0; i < 20; ++i) many << R"({"prompt": "Count )" << i << R"(:", "completion": " )" << i + 1 << R"("})" << "\n";
  }
  auto split = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("many.jsonl"), "--val-fraction",
                                        "0.3", "-o", dir.file("b.gguf"), "--rank", "2", "--modules", "q", "--max-steps",
                                        "1", "--max-len", "24", "--json", "--home", home});
  ASSERT_EQ(split.exit_code, 0) << split.err;
  auto s = parse_json(split.out);
  ASSERT_TRUE(s.ok()) << split.out;
  const int64_t held = (*s)["validation_examples"];
  EXPECT_EQ((*s)["examples"].get<int64_t>() + held, 20);
  EXPECT_GT(held, 0);
  EXPECT_LT(held, 14);

  auto mistake = [&](std::vector<std::string> extra, const std::string& message) {
    std::vector<std::string> args{"train", "sft", "-m", *model, "-d", dir.file("data.jsonl"), "-o", dir.file("x.gguf"),
                                  "--home", home};
    args.insert(args.end(), extra.begin(), extra.end());
    auto e = keel::testing::run_keel(args);
    EXPECT_EQ(e.exit_code, 1);
    EXPECT_NE(e.err.find(message), std::string::npos) << e.err;
  };
  mistake({"--patience", "2"}, "needs validation data");
  mistake({"--val-fraction", "0.2", "--val-data", dir.file("val.jsonl")}, "not both");
  mistake({"--val-fraction", "0.01"}, "holds out none");
}

// An adapter serves folded into its base: `keel generate --lora` and the merged model
// file (`keel train merge`) give the same text, which differs from the base's; the merged
// model registers with lineage to the base, the run and its data (a dataset version).
TEST(TrainCli, AnAdapterGeneratesAndMergesIntoARegisteredModel) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  const std::string home = dir.file("home");
  {
    std::ofstream data(dir.file("data.jsonl"));
    data << R"({"prompt": "The capital of Italy is", "completion": " Rome, on the Tiber."})" << "\n";
  }
  ASSERT_EQ(keel::testing::run_keel({"models", "import", *model, "--name", "base", "--home", home}).exit_code, 0);
  auto imported = keel::testing::run_keel({"data", "import", dir.file("data.jsonl"), "--name", "rome", "--home", home});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  auto trained = keel::testing::run_keel({"train", "sft", "-m", "base", "-d", "rome", "-o",
                                          dir.file("a.gguf"), "--rank", "4", "--modules", "q,v,down", "--epochs", "3",
                                          "--lr", "3e-3", "--max-len", "24", "--json", "--home", home});
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const std::string run_id = (*parse_json(trained.out))["run_id"];

  auto text = [&](std::vector<std::string> args) {
    for (const char* a : {"-p", "The capital of Italy is", "-n", "8", "--json", "--home"}) args.push_back(a);
    args.push_back(home);
    auto r = keel::testing::run_keel(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = parse_json(r.out);
    return j.ok() ? (*j)["text"].get<std::string>() : std::string("?");
  };
  const std::string base_text = text({"generate", "-m", "base"});
  const std::string lora_text = text({"generate", "-m", "base", "--lora", dir.file("a.gguf")});
  EXPECT_NE(lora_text, base_text);

  auto merged = keel::testing::run_keel({"train", "merge", "-m", "base", "--lora", dir.file("a.gguf"), "-o",
                                         dir.file("merged.gguf"), "--type", "f16", "--register", "tuned", "--run",
                                         run_id, "--json", "--home", home});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_EQ((*parse_json(merged.out))["registered"], "tuned@1");
  EXPECT_EQ(text({"generate", "-m", dir.file("merged.gguf")}), lora_text);
  EXPECT_EQ(text({"generate", "-m", "tuned"}), lora_text);

  auto lineage = keel::testing::run_keel({"models", "lineage", "tuned@1", "--json", "--home", home});
  ASSERT_EQ(lineage.exit_code, 0) << lineage.err;
  auto l = parse_json(lineage.out);
  ASSERT_TRUE(l.ok()) << lineage.out;
  EXPECT_EQ((*l)["run"]["id"], run_id);
  EXPECT_EQ((*l)["base_model"]["reference"], "base@1");
  ASSERT_EQ((*l)["datasets"].size(), 1u);
  EXPECT_EQ((*l)["datasets"][0]["name"], "rome");
  EXPECT_EQ((*l)["datasets"][0]["source"], "rome@1");

  // The adapter as a version of its own: it runs folded into its base, in the CLI and
  // behind the OpenAI API.
  auto no_base = keel::testing::run_keel({"models", "import", dir.file("a.gguf"), "--name", "tuned-lora", "--home", home});
  EXPECT_EQ(no_base.exit_code, 1);
  EXPECT_NE(no_base.err.find("give --base"), std::string::npos) << no_base.err;
  ASSERT_TRUE(keel::testing::write_test_gguf(dir.file("other.gguf"), "llama", 64).ok());
  auto misfit = keel::testing::run_keel({"models", "import", dir.file("a.gguf"), "--name", "tuned-lora", "--base",
                                         dir.file("other.gguf"), "--home", home});
  EXPECT_EQ(misfit.exit_code, 1) << "an adapter checked against a base it does not fit";
  EXPECT_NE(misfit.err.find("other.gguf"), std::string::npos) << misfit.err;
  auto adapter = keel::testing::run_keel({"models", "import", dir.file("a.gguf"), "--name", "tuned-lora", "--base",
                                          "base", "--json", "--home", home});
  ASSERT_EQ(adapter.exit_code, 0) << adapter.err;
  EXPECT_EQ(text({"generate", "-m", "tuned-lora"}), lora_text);
  {
    keel::testing::ChildProcess serve({keel::testing::keel_binary(), "serve", "--port", "0", "--auth", "off", "-m",
                                       "tuned-lora", "-m", "base", "--home", home});
    auto line = serve.wait_for_line("/v1", 60);
    ASSERT_TRUE(line.has_value()) << serve.stderr_text();
    const int port = std::atoi(line->c_str() + line->find("127.0.0.1:") + 10);
    auto complete = [&](const std::string& served) {
      auto r = keel::testing::http_request(
          port, "POST", "/v1/completions",
          R"({"model": ")" + served + R"(", "prompt": "The capital of Italy is", "max_tokens": 8, "temperature": 0})",
          {{"Content-Type", "application/json"}});
      EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().to_string());
      auto j = parse_json(r.ok() ? r->body : "");
      return j.ok() ? (*j)["choices"][0]["text"].get<std::string>() : std::string("?");
    };
    const std::string served_lora = complete("tuned-lora");
    EXPECT_EQ(served_lora, lora_text);
    EXPECT_EQ(complete("base"), base_text);
  }

  // The model file itself is not an adapter.
  auto wrong = keel::testing::run_keel({"generate", "-m", "base", "--lora", *model, "-p", "x", "--home", home});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("not a LoRA adapter"), std::string::npos) << wrong.err;
  auto bad_type = keel::testing::run_keel({"train", "merge", "-m", "base", "--lora", dir.file("a.gguf"), "-o",
                                           dir.file("x.gguf"), "--type", "q4_k", "--home", home});
  EXPECT_EQ(bad_type.exit_code, 1);
  EXPECT_NE(bad_type.err.find("unknown type"), std::string::npos) << bad_type.err;
}

// A learning rate that makes the loss infinite stops the training before the bad step,
// keeps the checkpoint before it, and fails the run.
TEST(TrainCli, ALossThatIsNotFiniteStopsTraining) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  write_capitals(dir.file("data.jsonl"), /*with_sum=*/false);
  auto r = keel::testing::run_keel({"train", "sft", "-m", *model, "-d", dir.file("data.jsonl"), "-o",
                                    dir.file("a.gguf"), "--rank", "2", "--modules", "q,v", "--checkpoint-every", "1",
                                    "--max-len", "24", "--lr", "1e30", "--home", dir.file("home")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("of step 2 is not finite"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("checkpoint of step 1 is kept"), std::string::npos) << r.err;
  std::ifstream adapter(dir.file("a.gguf"));
  EXPECT_FALSE(adapter.good()) << "no adapter is written for a training that failed";
}

}  // namespace
}  // namespace keel::cli
