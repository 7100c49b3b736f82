// End-to-end tests of the keel binary: real processes, real files, the real default
// model, both store back ends. Every bad input must give exit code 1 and one line on
// stderr that starts with "keel: error:" — never a crash or a stack trace.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;
using keel::testing::TempDir;

ProcessResult keel(const std::vector<std::string>& args) { return keel::testing::run_keel(args); }

// A clean failure: exit 1, one line on stderr naming the problem.
void expect_clean_error(const ProcessResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << "stdout: " << r.out << "\nstderr: " << r.err;
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

class CliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto url = keel::testing::fresh_store_url(GetParam(), dir_);
    if (!url) GTEST_SKIP() << keel::testing::postgres_skip_reason();
    home_ = dir_.file("home");
    base_ = {"--home", home_, "--db", *url};
  }
  std::vector<std::string> with_base(std::vector<std::string> args) {
    args.insert(args.end(), base_.begin(), base_.end());
    return args;
  }

  TempDir dir_;
  std::string home_;
  std::vector<std::string> base_;
};
INSTANTIATE_TEST_SUITE_P(Backends, CliTest, ::testing::ValuesIn(keel::testing::store_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(Cli, HelpListsTheCommandGroupsAndEveryCommandHasHelp) {
  auto help = keel({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* group : {"version", "up", "models", "artifacts", "db"}) {
    EXPECT_NE(help.out.find(group), std::string::npos) << group << " missing from --help";
  }
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"version"}, {"up"}, {"models"}, {"models", "import"}, {"models", "list"}, {"models", "show"},
           {"artifacts"}, {"artifacts", "verify"}, {"artifacts", "list"}, {"db"}, {"db", "migrate"}, {"db", "status"}}) {
    cmd.push_back("--help");
    auto r = keel(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd[0];
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd[0];
  }
}

TEST(Cli, VersionPrintsTextAndJson) {
  auto text = keel({"version"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_EQ(text.out.rfind("keel 0.", 0), 0u) << text.out;
  auto json = keel({"version", "--json"});
  ASSERT_EQ(json.exit_code, 0);
  auto parsed = parse_json(json.out);
  ASSERT_TRUE(parsed.ok()) << json.out;
  EXPECT_EQ((*parsed)["name"], "keel");
  EXPECT_TRUE((*parsed)["version"].is_string());
}

TEST(Cli, UsageErrorsExitWithTwoAndOneLine) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"models", "import"}, {"version", "--log-level", "loud"}, {"up", "--port", "http"}}) {
    auto r = keel(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_NE(keel({"version", "--log-level", "loud"}).err.find("log level"), std::string::npos);
}

TEST_P(CliTest, ImportsListsAndShowsTheRealDefaultModel) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  auto imported = keel(with_base({"models", "import", *model, "--name", "smollm2-135m-instruct"}));
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("imported smollm2-135m-instruct version 1"), std::string::npos) << imported.out;
  auto again = keel(with_base({"models", "import", *model, "--name", "smollm2-135m-instruct"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("already holds this file"), std::string::npos) << again.out;

  auto list = keel(with_base({"models", "list"}));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("smollm2-135m-instruct"), std::string::npos);
  EXPECT_NE(list.out.find("llama"), std::string::npos);
  EXPECT_NE(list.out.find("Q4_1"), std::string::npos);

  auto show = keel(with_base({"models", "show", "smollm2-135m-instruct", "--json"}));
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = parse_json(show.out);
  ASSERT_TRUE(j.ok()) << show.out;
  EXPECT_EQ((*j)["name"], "smollm2-135m-instruct");
  EXPECT_EQ((*j)["version"], 1);
  EXPECT_EQ((*j)["format"], "gguf");
  EXPECT_EQ((*j)["architecture"], "llama");
  EXPECT_EQ((*j)["parameter_count"], 134515008);
  EXPECT_EQ((*j)["sha256"], "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53");
  EXPECT_EQ((*j)["size_bytes"], std::filesystem::file_size(*model));

  auto show_text = keel(with_base({"models", "show", "smollm2-135m-instruct@1"}));
  ASSERT_EQ(show_text.exit_code, 0) << show_text.err;
  EXPECT_NE(show_text.out.find("parameters:    134515008"), std::string::npos) << show_text.out;

  auto verify = keel(with_base({"artifacts", "verify", "--json"}));
  ASSERT_EQ(verify.exit_code, 0) << verify.err;
  auto v = parse_json(verify.out);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["ok"], true);
  EXPECT_EQ((*v)["checked"], 1);
}

TEST_P(CliTest, BadInputToModelCommandsIsAOneLineError) {
  expect_clean_error(keel(with_base({"models", "import", dir_.file("missing.gguf"), "--name", "m"})), "missing.gguf");
  ASSERT_TRUE(write_file_atomic(dir_.file("notes.txt"), "these are not the weights you are looking for").ok());
  expect_clean_error(keel(with_base({"models", "import", dir_.file("notes.txt"), "--name", "m"})), "not a GGUF file");
  expect_clean_error(keel(with_base({"models", "import", dir_.path(), "--name", "m"})), "is a folder");
  ASSERT_TRUE(keel::testing::write_test_gguf(dir_.file("ok.gguf"), "llama", 64).ok());
  expect_clean_error(keel(with_base({"models", "import", dir_.file("ok.gguf"), "--name", "bad name!"})), "model name");
  expect_clean_error(keel(with_base({"models", "show", "nobody"})), "no model named 'nobody'");
  expect_clean_error(keel(with_base({"models", "show", "nobody@x"})), "no model named 'nobody'");
  expect_clean_error(keel(with_base({"models", "show", "nobody@"})), "NAME@VERSION");
  // A truncated GGUF file (header says more data than there is).
  std::string truncated = keel::testing::make_test_gguf("llama", 1024);
  truncated.resize(truncated.size() - 100);
  ASSERT_TRUE(write_file_atomic(dir_.file("cut.gguf"), truncated).ok());
  expect_clean_error(keel(with_base({"models", "import", dir_.file("cut.gguf"), "--name", "m"})), "truncated");
  auto list = keel(with_base({"models", "list", "--json"}));
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_EQ(list.out, "[]\n") << "failed imports must leave nothing behind";
}

TEST_P(CliTest, VerifyReportsACorruptBlob) {
  ASSERT_TRUE(keel::testing::write_test_gguf(dir_.file("m.gguf"), "llama", 4096).ok());
  ASSERT_EQ(keel(with_base({"models", "import", dir_.file("m.gguf"), "--name", "m"})).exit_code, 0);
  auto show = parse_json(keel(with_base({"models", "show", "m", "--json"})).out);
  ASSERT_TRUE(show.ok());
  std::string sha = (*show)["sha256"];
  std::string blob = home_ + "/artifacts/sha256/" + sha.substr(0, 2) + "/" + sha;
  ::chmod(blob.c_str(), 0644);
  ASSERT_TRUE(write_file_atomic(blob, "tampered").ok());
  auto verify = keel(with_base({"artifacts", "verify"}));
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.out.find("CORRUPT  " + sha), std::string::npos) << verify.out;
  EXPECT_NE(verify.err.find("1 corrupt"), std::string::npos) << verify.err;
}

TEST_P(CliTest, ImportKilledMidWriteLeavesNoRecordAndNoPartialBlob) {
  // 512 MiB: large enough that the import is still streaming when it is killed.
  std::string big = dir_.file("big.gguf");
  ASSERT_TRUE(keel::testing::write_test_gguf(big, "llama", 128ull << 20).ok());
  std::vector<std::string> argv{keel::testing::keel_binary(), "models", "import", big, "--name", "big"};
  argv.insert(argv.end(), base_.begin(), base_.end());
  keel::testing::ChildProcess child(argv);
  std::string tmp = home_ + "/artifacts/tmp";
  bool writing = false;
  for (int i = 0; i < 2000 && !writing; ++i) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(tmp, ec)) {
      if (e.file_size(ec) > (1u << 20)) writing = true;
    }
    if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(writing) << "the import never started writing";
  child.send_signal(SIGKILL);
  child.wait();
  auto list = keel(with_base({"models", "list", "--json"}));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out, "[]\n");
  auto verify = keel(with_base({"artifacts", "verify", "--json"}));
  ASSERT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  auto v = parse_json(verify.out);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["checked"], 0) << "no partial blob may be visible";
  EXPECT_TRUE(std::filesystem::is_empty(tmp)) << "the dead import's work file is cleaned up";
}

TEST(Cli, UnusableHomeAndBadDbUrlAreOneLineErrors) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("plain"), "x").ok());
  expect_clean_error(keel({"models", "list", "--home", dir.file("plain") + "/home"}), "Keel home folder");
  expect_clean_error(keel({"models", "list", "--home", dir.file("h"), "--db", "mysql://root@db/keel"}),
                     "unsupported database URL");
  expect_clean_error(keel({"models", "list", "--home", dir.file("h"), "--db", "postgresql://keel@/keel?host=" + dir.path()}),
                     "cannot connect to PostgreSQL");
  // A corrupt database file is reported, and left exactly as it was.
  std::string dbfile = dir.file("corrupt.db");
  ASSERT_TRUE(write_file_atomic(dbfile, std::string(4096, 'z')).ok());
  expect_clean_error(keel({"models", "list", "--home", dir.file("h"), "--db", "sqlite://" + dbfile}),
                     "not a valid database file");
  EXPECT_EQ(*read_file(dbfile), std::string(4096, 'z'));
}

TEST(Cli, UnwritableHomeIsAOneLineError) {
  TempDir dir;
  std::string home = dir.file("ro");
  ASSERT_TRUE(make_dirs(home).ok());
  ::chmod(dir.path().c_str(), 0755);
  ::chmod(home.c_str(), 0555);
  std::vector<std::string> argv{keel::testing::keel_binary(), "models", "list", "--home", home};
  if (::geteuid() == 0) {
    // Root writes anywhere: run keel as an unprivileged user, as a real user would.
    argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", "nobody", "--"});
  }
  auto r = keel::testing::run_process(argv);
  expect_clean_error(r, "cannot use " + home + " as the Keel home folder");
}

TEST(Cli, UpServesHealthAndModelsThenStopsOnSigterm) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  keel::testing::ChildProcess up(
      {keel::testing::keel_binary(), "up", "--port", "0", "--home", dir.file("home"), "--default-model", *model});
  auto line = up.wait_for_line("Keel is up at", 60);
  ASSERT_TRUE(line.has_value()) << up.stderr_text();
  auto colon = line->find("127.0.0.1:");
  ASSERT_NE(colon, std::string::npos);
  int port = std::atoi(line->c_str() + colon + 10);
  ASSERT_GT(port, 0);
  auto health = keel::testing::http_request(port, "GET", "/health");
  ASSERT_TRUE(health.ok()) << health.status().to_string();
  EXPECT_EQ(health->status, 200);
  auto h = parse_json(health->body);
  ASSERT_TRUE(h.ok()) << health->body;
  EXPECT_EQ((*h)["status"], "ok");
  auto models = keel::testing::http_request(port, "GET", "/api/models/smollm2-135m-instruct");
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->status, 200) << models->body;
  EXPECT_NE(models->body.find("\"architecture\":\"llama\""), std::string::npos) << models->body;
  auto missing = keel::testing::http_request(port, "GET", "/api/models/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("\"code\":\"not_found\""), std::string::npos) << missing->body;
  up.send_signal(SIGTERM);
  EXPECT_EQ(up.wait(30), 0) << up.stderr_text();
}

TEST(Cli, UpWithoutTheDefaultModelSaysHowToGetIt) {
  TempDir dir;
  expect_clean_error(keel({"up", "--port", "0", "--home", dir.file("home"), "--default-model", dir.file("none.gguf")}),
                     "make run");
}

TEST(Cli, UpOnABusyPortIsAOneLineError) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  keel::testing::ChildProcess first(
      {keel::testing::keel_binary(), "up", "--port", "0", "--home", dir.file("home"), "--default-model", *model});
  auto line = first.wait_for_line("Keel is up at", 60);
  ASSERT_TRUE(line.has_value()) << first.stderr_text();
  std::string port = std::to_string(std::atoi(line->c_str() + line->find("127.0.0.1:") + 10));
  expect_clean_error(keel({"up", "--port", port, "--home", dir.file("home"), "--default-model", *model}), port);
}

}  // namespace
}  // namespace keel::cli
