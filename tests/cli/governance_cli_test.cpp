// Review and approval end to end through the binary: users, keys, a promotion that the
// author cannot approve and a reviewer can, protected aliases, archiving, the audit log.
#include <gtest/gtest.h>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "cli/backend_cli_test.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;

class GovernanceCliTest : public BackendCliTest {
 protected:
  void expect_error(const ProcessResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
  }
};
INSTANTIATE_BACKEND_CLI_TEST(GovernanceCliTest);

TEST_P(GovernanceCliTest, PromotionNeedsAnotherReviewer) {
  ASSERT_TRUE(keel::testing::write_test_gguf(dir_.file("m.gguf"), "llama", 64).ok());
  for (auto [user, role] : std::vector<std::pair<std::string, std::string>>{
           {"alice", "reviewer"}, {"bob", "reviewer"}, {"vic", "viewer"}}) {
    Json u = json_as("root", {"users", "create", user, "--role", role});
    EXPECT_EQ(u["role"], role);
  }
  expect_error(keel_as("root", {"users", "create", "alice"}), "already exists");
  expect_error(keel_as("root", {"users", "create", "eve", "--role", "god"}), "unknown role");
  Json key = json_as("root", {"keys", "create", "--user", "bob"});
  EXPECT_EQ(key["secret"].get<std::string>().rfind("keel_", 0), 0u);

  ASSERT_EQ(keel_as("alice", {"models", "import", dir_.file("m.gguf"), "--name", "chat"}).exit_code, 0);
  expect_error(keel_as("alice", {"models", "alias", "chat@1", "production"}), "promotion request");
  Json request = json_as("alice", {"models", "request-promotion", "chat@1", "--alias", "production", "--comment", "ok"});
  EXPECT_EQ(request["status"], "pending");
  ASSERT_EQ(request["missing"].size(), 1u);
  expect_error(keel_as("alice", {"models", "approve", "chat@1"}), "author");
  expect_error(keel_as("vic", {"models", "approve", "chat@1"}), "reviewer role");
  expect_error(keel_as("mallory", {"models", "approve", "chat@1"}), "not a Keel user");
  Json approved = json_as("bob", {"models", "approve", "chat@1", "--comment", "evals look fine"});
  EXPECT_EQ(approved["status"], "promoted");
  Json shown = json_as("bob", {"models", "show", "chat@production"});
  EXPECT_EQ(shown["version"], 1);

  ASSERT_EQ(keel_as("alice", {"models", "alias", "chat@1", "staging"}).exit_code, 0);
  expect_error(keel_as("alice", {"models", "archive", "chat@1"}), "holds the alias");
  expect_error(keel_as("alice", {"models", "request-promotion", "chat"}), "NAME@VERSION");

  auto card = keel_as("bob", {"models", "card", "chat@1"});
  EXPECT_EQ(card.exit_code, 0) << card.err;
  EXPECT_NE(card.out.find("approve by bob: evals look fine"), std::string::npos) << card.out;
  Json lineage = json_as("bob", {"models", "lineage", "chat@1"});
  EXPECT_EQ(lineage["format"], "gguf");
  EXPECT_TRUE(lineage["run"].is_null());

  Json audit = json_as("root", {"audit", "list", "--target", "model:chat"});
  std::vector<std::string> actions;
  for (const auto& e : audit["events"]) actions.push_back(e["action"]);
  for (const char* want : {"model.import", "model.promotion.request", "model.promotion.approve", "model.alias.set"}) {
    EXPECT_NE(std::find(actions.begin(), actions.end(), want), actions.end()) << want;
  }
  Json by_bob = json_as("root", {"audit", "list", "--actor", "bob", "--action", "model.promotion"});
  ASSERT_EQ(by_bob["events"].size(), 1u);
  EXPECT_EQ(by_bob["events"][0]["details"]["comment"], "evals look fine");
}

}  // namespace
}  // namespace keel::cli
