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

ProcessResult keel(const std::vector<std::string>& args) { return keel::testing::run_keel(args); }

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
  ASSERT_TRUE(write_file_atomic(dir.file("notes.txt"), "not a model").ok());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"tokenize", "-m", dir.file("notes.txt"), "hi", "--home", dir.file("h")},
           {"tokenize", "-m", "no-such-model", "hi", "--home", dir.file("h")},
           {"generate", "-m", model_, "-p", "hi", "-n", "1000000", "--home", dir.file("h")},
           {"tokenize", "-m", model_, "bad \xff utf-8"}}) {
    auto r = keel(args);
    EXPECT_EQ(r.exit_code, 1) << args[2] << ": " << r.err;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace keel::cli
