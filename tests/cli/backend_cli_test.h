// End-to-end CLI tests that run once per store back end: each test gets a fresh store
// and home, and runs the keel binary against them as a given user ($KEEL_USER).
#pragma once

#include <algorithm>

#include <gtest/gtest.h>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {

class BackendCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto url = keel::testing::fresh_store_url(GetParam(), dir_);
    if (!url) GTEST_SKIP() << keel::testing::postgres_skip_reason();
    url_ = *url;
    base_ = {"--home", dir_.file("home"), "--db", url_};
  }
  // keel with --home and --db first, acting as `user`.
  keel::testing::ProcessResult keel_as(const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), base_.begin(), base_.end());
    return keel::testing::run_keel(args, {{"KEEL_USER", user}});
  }
  keel::testing::ProcessResult keel(std::vector<std::string> args) { return keel_as("root", std::move(args)); }
  // keel --json ...; expects success and JSON on stdout.
  Json json_as(const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = keel_as(user, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = parse_json(r.out);
    EXPECT_TRUE(j.ok()) << r.out;
    return j.ok() ? *j : Json();
  }
  Json keel_json(std::vector<std::string> args) { return json_as("root", std::move(args)); }
  // A failure that is one "keel: error: ..." line naming needle, with exit code 1.
  static void expect_one_line_error(const keel::testing::ProcessResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
  }

  // Imports the default model as `name`; skips the test when the model is not fetched.
  // A caller's SetUp returns when IsSkipped() || HasFatalFailure() after this.
  void import_default_model(const std::string& name) {
    auto m = keel::testing::default_model_path();
    if (!m) GTEST_SKIP() << "default model not fetched (make test fetches it)";
    auto imported = keel({"models", "import", *m, "--name", name});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }
  // Writes `text` to a file of the test's folder and returns its path.
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_.file(name);
    EXPECT_TRUE(write_file_atomic(path, text).ok());
    return path;
  }
  void expect_error(const keel::testing::ProcessResult& r, const std::string& needle) { expect_one_line_error(r, needle); }

  keel::testing::TempDir dir_;
  std::string url_;
  std::vector<std::string> base_;
};

#define INSTANTIATE_BACKEND_CLI_TEST(Suite)                                                             \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::ValuesIn(keel::testing::store_backends()), \
                           [](const ::testing::TestParamInfo<std::string>& info) { return info.param; })

}  // namespace keel::cli
