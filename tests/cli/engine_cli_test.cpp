// `keel tokenize` and `keel generate` end to end on the real default model: the JSON
// shapes scripts rely on, registry names as MODEL, and bad input as one-line errors.
#include <gtest/gtest.h>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;
using keel::testing::TempDir;

ProcessResult keel(const std::vector<std::string>& args) {
  return keel::testing::run_keel(args);
}

class EngineCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = keel::testing::default_model_path();
    if (!m) GTEST_SKIP() << "default model not fetched (make test fetches it)";
    model_ = *m;
  }
  std::string model_;
};

TEST_F(EngineCli, TokenizeJsonGivesTheIds) {
  auto r = keel({"tokenize", "-m", model_, "Hello world", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  // SmolLM2's tokenizer (as llama.cpp tokenizes it): "Hello" 19556, " world" 905.
  EXPECT_EQ((*j)["tokens"], Json::array({19556, 905}));
}

TEST_F(EngineCli, GenerateIsGreedyAndReportsTimings) {
  auto r = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["text"].get<std::string>().rfind(" Paris", 0), 0u) << r.out;
  EXPECT_EQ((*j)["tokens"].size(), 4u);
  EXPECT_GT((*j)["timings"]["prompt_tokens_per_s"].get<double>(), 0.0);
  EXPECT_GT((*j)["timings"]["generated_tokens_per_s"].get<double>(), 0.0);
  auto again = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "4", "--json", "-t", "2"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ((*parse_json(again.out))["tokens"], (*j)["tokens"]) << "greedy output must not depend on threads";
}

TEST_F(EngineCli, ModelMayBeARegistryName) {
  TempDir dir;
  std::string home = dir.file("home");
  ASSERT_EQ(keel({"models", "import", model_, "--name", "smol", "--home", home}).exit_code, 0);
  auto r = keel({"tokenize", "-m", "smol@1", "Hello", "--json", "--home", home});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ((*parse_json(r.out))["tokens"], Json::array({19556}));
}

TEST_F(EngineCli, BadInputIsAOneLineError) {
  TempDir dir;
  std::string long_prompt;  // ~5000 tokens: more than the 4096-token context
  for (int i = 0; i < 5000; ++i) long_prompt += " hi";
  ASSERT_TRUE(write_file_atomic(dir.file("notes.txt"), "not a model").ok());
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"tokenize", "-m", dir.file("notes.txt"), "hi", "--home", dir.file("h")},
                                             {"tokenize", "-m", "no-such-model", "hi", "--home", dir.file("h")},
                                             {"generate", "-m", model_, "-p", long_prompt, "--home", dir.file("h")},
                                             {"tokenize", "-m", model_, "bad \xff utf-8"}}) {
    auto r = keel(args);
    EXPECT_EQ(r.exit_code, 1) << args[2] << ": " << r.err;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(EngineCli, GenerateJsonReportsFinishReasonAndTokenCounts) {
  auto r = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["finish_reason"], "length");
  EXPECT_EQ((*j)["prompt_tokens"], 5);
  EXPECT_EQ((*j)["generated_tokens"], 4);
  EXPECT_FALSE(j->contains("logprobs"));
}

TEST_F(EngineCli, SeededSamplingRepeatsAndOtherSeedsDiffer) {
  auto run = [&](const std::string& seed) {
    std::vector<std::string> args = {"generate", "-m", model_, "-p", "Once upon a time", "-n", "12", "--json"};
    for (const char* flag : {"--temp 1.5", "--top-k 100", "--top-p 0.98", "--min-p 0.01", "--repeat-penalty 1.1",
                             "--repeat-last-n 32", "--presence-penalty 0.1", "--frequency-penalty 0.1"}) {
      const std::string f = flag;
      args.push_back(f.substr(0, f.find(' ')));
      args.push_back(f.substr(f.find(' ') + 1));
    }
    args.insert(args.end(), {"--seed", seed});
    auto r = keel(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = parse_json(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  };
  const Json a = run("7");
  EXPECT_EQ(a["seed"], 7);
  EXPECT_EQ(run("7")["tokens"], a["tokens"]);
  EXPECT_NE(run("8")["tokens"], a["tokens"]);
}

TEST_F(EngineCli, StopStringsCutTheText) {
  auto full = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "12", "--json"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::string text = (*parse_json(full.out))["text"].get<std::string>();
  ASSERT_GT(text.size(), 10u) << text;
  const std::string stop = text.substr(6, 3);
  auto r = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "12", "--json", "--stop",
                 "never in the text", "--stop", stop});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  EXPECT_EQ((*j)["text"], text.substr(0, text.find(stop))) << "stop " << stop;
  EXPECT_EQ((*j)["finish_reason"], "stop");
  // Plain text output stops there too.
  auto plain = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "12", "--stop", stop});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, text.substr(0, text.find(stop)) + "\n");
  EXPECT_NE(plain.err.find("finish: stop"), std::string::npos) << plain.err;
}

TEST_F(EngineCli, LogprobsListTheChosenTokenAndItsAlternatives) {
  auto r = keel({"generate", "-m", model_, "-p", "The capital of France is", "-n", "3", "--json", "--logprobs", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  const Json& lps = (*j)["logprobs"];
  ASSERT_EQ(lps.size(), 3u) << r.out;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(lps[i]["token"], (*j)["tokens"][i]);
    EXPECT_LE(lps[i]["logprob"].get<double>(), 0.0);
    ASSERT_EQ(lps[i]["top_logprobs"].size(), 4u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(lps[i]["top_logprobs"][0]["token"], lps[i]["token"]);
    EXPECT_EQ(lps[i]["top_logprobs"][0]["logprob"], lps[i]["logprob"]);
  }
  EXPECT_EQ(lps[0]["text"], " Paris");
}

// --chat sends the prompt through SmolLM2's ChatML template: the model answers as an
// assistant and stops at <|im_end|> instead of running on.
TEST_F(EngineCli, GenerateChatUsesTheChatTemplate) {
  auto r = keel({"generate", "-m", model_, "--chat", "--system", "Answer in one word.", "-p",
                 "What is the capital of France?", "-n", "32", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_NE((*j)["text"].get<std::string>().find("Paris"), std::string::npos) << r.out;
  EXPECT_EQ((*j)["finish_reason"], "stop") << r.out;
  EXPECT_GT((*j)["prompt_tokens"].get<int64_t>(), 20);  // the template's system turn and headers
  auto plain = keel({"generate", "-m", model_, "--system", "x", "-p", "hi"});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.err.find("--system needs --chat"), std::string::npos) << plain.err;
}

// `keel chat` keeps the conversation: the second answer sees the first exchange, so its
// prompt is longer than the first's by at least the first answer. (Whether a 135M model
// then remembers the name is not Keel's to test.)
TEST_F(EngineCli, ChatKeepsTheConversationAcrossLines) {
  const std::string script = "printf 'My name is Ada.\\n\\nWhat is my name?\\n/exit\\nignored\\n' | '" +
                             keel::testing::keel_binary() + "' chat -m '" + model_ + "' -n 24 --json";
  auto r = keel::testing::run_process({"/bin/sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<Json> answers;
  size_t start = 0;
  while (start < r.out.size()) {
    const size_t end = r.out.find('\n', start);
    auto j = parse_json(r.out.substr(start, end - start));
    ASSERT_TRUE(j.ok()) << r.out;
    answers.push_back(*j);
    start = end == std::string::npos ? r.out.size() : end + 1;
  }
  ASSERT_EQ(answers.size(), 2u) << r.out;  // the empty line is skipped, /exit ends the input
  EXPECT_EQ(answers[0]["role"], "assistant");
  EXPECT_GT(answers[1]["prompt_tokens"].get<int64_t>(),
            answers[0]["prompt_tokens"].get<int64_t>() + answers[0]["generated_tokens"].get<int64_t>());
}

TEST_F(EngineCli, ChatNeedsAChatTemplate) {
  // The random-weight fixtures have no tokenizer at all; a model without a template fails
  // before reading any input, naming what is missing.
  const std::string tiny = keel::testing::source_dir() + "/tests/fixtures/engine/forward/tiny_tied.gguf";
  auto r = keel({"chat", "-m", tiny});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
}

TEST(EngineCliUsage, BadSamplingValuesAreUsageErrorsNamingTheFlag) {
  // Checked while parsing, before the model is opened.
  for (const std::string bad :
       {"--temp -1", "--temp nan", "--temp inf", "--top-p 0", "--top-p 1.5", "--min-p 2", "--min-p -0.1", "--top-k -3",
        "--repeat-penalty 0", "--repeat-last-n -2", "--presence-penalty inf", "--frequency-penalty x", "--logprobs 21",
        "--logprobs -1", "--stop ", "--seed -1", "--seed abc"}) {
    const std::string flag = bad.substr(0, bad.find(' ')), value = bad.substr(bad.find(' ') + 1);
    auto r = keel({"generate", "-m", "no-such-model.gguf", "-p", "hi", flag, value});
    EXPECT_EQ(r.exit_code, 2) << flag << " " << value << ": " << r.err;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << flag << " " << value << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto help = keel({"generate", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("0 is greedy decoding (the default, deterministic)"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace keel::cli
