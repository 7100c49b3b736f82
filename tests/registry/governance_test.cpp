#include "keel/registry/governance.h"

#include <thread>

#include "store/store_test_base.h"

namespace keel::registry {
namespace {

class GovernanceTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    registry_ = std::make_unique<ModelRegistry>(*db_, *blobs_);
    governance_ = std::make_unique<Governance>(*db_, *blobs_);
    users_ = std::make_unique<auth::UserDirectory>(*db_);
    ASSERT_TRUE(registry_->create_model("chat", "", {}, "alice").ok());
    NewVersion spec;
    spec.source = "s";
    ASSERT_TRUE(registry_->create_version("chat", spec, "alice").ok());  // authored by alice
    ASSERT_TRUE(registry_->create_version("chat", spec, "alice").ok());
    for (auto [name, role] : std::vector<std::pair<std::string, auth::Role>>{
             {"alice", auth::Role::kReviewer}, {"bob", auth::Role::kReviewer}, {"carol", auth::Role::kReviewer},
             {"dave", auth::Role::kEditor}}) {
      auto u = users_->create_user(name, role, "admin");
      ASSERT_TRUE(u.ok()) << u.status().to_string();
      people_[name] = *u;
    }
  }

  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<Governance> governance_;
  std::unique_ptr<auth::UserDirectory> users_;
  std::map<std::string, auth::User> people_;
};
INSTANTIATE_STORE_TEST(GovernanceTest);

TEST_P(GovernanceTest, ProductionNeedsAnApprovalBySomeoneOtherThanTheAuthor) {
  Status direct = registry_->set_alias("chat", "production", 1, "alice");
  EXPECT_EQ(direct.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(direct.message().find("promotion request"), std::string::npos) << direct.message();
  EXPECT_TRUE(registry_->set_alias("chat", "staging", 1, "alice").ok()) << "unprotected aliases move freely";

  auto request = governance_->request_promotion("chat", 1, "production", "ready", "alice");
  ASSERT_TRUE(request.ok()) << request.status().to_string();
  EXPECT_EQ(request->status, "pending");
  ASSERT_EQ(request->missing.size(), 1u);
  EXPECT_NE(request->missing[0].find("1 more approval"), std::string::npos) << request->missing[0];
  EXPECT_EQ(governance_->request_promotion("chat", 1, "production", "", "alice").status().code(),
            ErrorCode::kAlreadyExists);

  auto self = governance_->review("chat", 1, "production", true, "lgtm", people_["alice"]);
  EXPECT_EQ(self.status().code(), ErrorCode::kPermissionDenied) << "the author cannot approve";
  auto editor = governance_->review("chat", 1, "production", true, "lgtm", people_["dave"]);
  EXPECT_EQ(editor.status().code(), ErrorCode::kPermissionDenied) << "an editor is no reviewer";
  EXPECT_EQ(registry_->set_alias("chat", "production", 1, "alice").code(), ErrorCode::kFailedPrecondition);

  auto approved = governance_->review("chat", 1, "production", true, "lgtm", people_["bob"]);
  ASSERT_TRUE(approved.ok()) << approved.status().to_string();
  EXPECT_EQ(approved->status, "promoted");
  EXPECT_EQ(registry_->get("chat@production")->version, 1);
  EXPECT_EQ(governance_->review("chat", 1, "production", true, "", people_["carol"]).status().code(),
            ErrorCode::kFailedPrecondition)
      << "the request is closed";
}

TEST_P(GovernanceTest, RequiredChecksAndApprovalCountsAndRejection) {
  Policy policy;
  policy.required_checks = {"eval.bleu", "safety"};
  policy.required_approvals = 2;
  ASSERT_TRUE(governance_->set_policy("chat", policy, "admin").ok());
  auto read = governance_->policy("chat");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->required_approvals, 2);

  ASSERT_TRUE(governance_->request_promotion("chat", 2, "production", "", "alice").ok());
  ASSERT_TRUE(governance_->review("chat", 2, "production", true, "", people_["bob"]).ok());
  ASSERT_TRUE(governance_->record_check("chat", 2, {"eval.bleu", true, 31.5, "", 0, ""}, "ci").ok());
  ASSERT_TRUE(governance_->record_check("chat", 2, {"safety", false, std::nullopt, "2 refusals missing", 0, ""}, "ci").ok());
  auto missing = governance_->missing("chat", 2, "production");
  ASSERT_TRUE(missing.ok());
  ASSERT_EQ(missing->size(), 2u);
  EXPECT_NE((*missing)[0].find("1 more approval"), std::string::npos);
  EXPECT_NE((*missing)[1].find("check 'safety' to pass"), std::string::npos);
  Status refused = registry_->set_alias("chat", "production", 2, "bob");
  EXPECT_NE(refused.message().find("check 'safety'"), std::string::npos) << refused.message();

  auto second = governance_->review("chat", 2, "production", true, "", people_["carol"]);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, "pending") << "the failed check still blocks";
  ASSERT_TRUE(governance_->record_check("chat", 2, {"safety", true, std::nullopt, "", 0, ""}, "ci").ok());
  EXPECT_TRUE(governance_->missing("chat", 2, "production")->empty());
  ASSERT_TRUE(governance_->promote("chat", 2, "production", "bob").ok());
  EXPECT_EQ(registry_->get("chat@production")->version, 2);

  // A rejection closes the request; a new request starts the count again.
  ASSERT_TRUE(governance_->request_promotion("chat", 1, "production", "", "alice").ok());
  auto rejected = governance_->review("chat", 1, "production", false, "regressions", people_["bob"]);
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(rejected->status, "rejected");
  EXPECT_FALSE(governance_->missing("chat", 1, "production")->empty());
  EXPECT_FALSE(parse_policy(Json{{"required_approvals", "two"}}).ok());
  EXPECT_FALSE(parse_policy(Json{{"nonsense", 1}}).ok());
}

TEST_P(GovernanceTest, ArchivedVersionsCannotBePromoted) {
  ASSERT_TRUE(registry_->set_alias("chat", "staging", 2, "alice").ok());
  EXPECT_EQ(governance_->archive("chat", 2, "alice").code(), ErrorCode::kFailedPrecondition) << "holds an alias";
  ASSERT_TRUE(governance_->archive("chat", 1, "alice").ok());
  EXPECT_EQ(registry_->set_alias("chat", "staging", 1, "alice").code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(governance_->request_promotion("chat", 1, "production", "", "alice").status().code(),
            ErrorCode::kFailedPrecondition);
}

TEST_P(GovernanceTest, ConcurrentPromotionsLeaveOneProductionVersion) {
  Policy open;
  open.required_approvals = 0;
  ASSERT_TRUE(governance_->set_policy("chat", open, "admin").ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Governance local(*db_, *blobs_);
      for (int i = 0; i < 10; ++i) EXPECT_TRUE(local.promote("chat", 1 + (t + i) % 2, "production", "ops").ok());
    });
  }
  for (auto& th : threads) th.join();
  auto holders = db_->query("SELECT COUNT(*) FROM model_aliases WHERE alias = 'production'");
  ASSERT_TRUE(holders.ok());
  EXPECT_EQ(holders->rows[0].get_int(0), 1);
}

}  // namespace
}  // namespace keel::registry

#include "keel/registry/lineage.h"
#include "keel/tracking/tracking_service.h"

namespace keel::registry {
namespace {

TEST_P(GovernanceTest, LineageWalksRunDatasetsAndBaseModelAndTheCardSaysSo) {
  tracking::TrackingService tracking(*db_);
  auto experiment = tracking.create_experiment("sft", "", {});
  ASSERT_TRUE(experiment.ok());
  auto run = tracking.create_run(experiment->id, "alice", 0, "lora-r8", {});
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(tracking.log_batch(run->id, {{"loss", 0.42, 0, 100}}, {{"rank", "8"}, {"base_model", "chat@1"}}, {}).ok());
  ASSERT_TRUE(tracking.log_inputs(run->id, {{"support-tickets", "d1g3st", "local", "/data/t.jsonl", "", "",
                                             {{"mlflow.data.context", "training"}}}})
                  .ok());
  ASSERT_TRUE(registry_->create_model("chat-tuned", "Support assistant", {}, "alice").ok());
  NewVersion spec;
  spec.source = "runs:/" + run->id + "/adapter";
  spec.run_id = run->id;
  ASSERT_TRUE(registry_->create_version("chat-tuned", spec, "alice").ok());
  ASSERT_TRUE(governance_->record_check("chat-tuned", 1, {"eval.rougeL", true, 0.61, "", 0, ""}, "ci").ok());
  ASSERT_TRUE(governance_->request_promotion("chat-tuned", 1, "production", "", "alice").ok());
  ASSERT_TRUE(governance_->review("chat-tuned", 1, "production", true, "good", people_["bob"]).ok());

  Lineage lineage(*db_, *blobs_);
  auto trace = lineage.trace("chat-tuned", 1);
  ASSERT_TRUE(trace.ok()) << trace.status().to_string();
  EXPECT_EQ((*trace)["run"]["name"], "lora-r8");
  EXPECT_EQ((*trace)["run"]["params"]["rank"], "8");
  ASSERT_EQ((*trace)["datasets"].size(), 1u);
  EXPECT_EQ((*trace)["datasets"][0]["digest"], "d1g3st");
  EXPECT_EQ((*trace)["base_model"]["model"], "chat");
  EXPECT_EQ((*trace)["base_model"]["version"], 1);

  auto card = lineage.model_card("chat-tuned", 1);
  ASSERT_TRUE(card.ok()) << card.status().to_string();
  for (const char* needle : {"# chat-tuned — version 1", "Support assistant", "lora-r8", "| rank | 8 |", "| loss | 0.42 |",
                             "support-tickets (digest `d1g3st`, training)", "chat@1", "| eval.rougeL | passed | 0.61 |",
                             "approve by bob: good", "**promoted**"}) {
    EXPECT_NE(card->find(needle), std::string::npos) << needle << "\n" << *card;
  }
  EXPECT_EQ(lineage.trace("chat-tuned", 9).status().code(), ErrorCode::kNotFound);
}

TEST_P(GovernanceTest, LineageCyclesEnd) {
  ASSERT_TRUE(registry_->set_version_tag("chat", 1, {"base_model", "chat@2"}, "alice").ok());
  ASSERT_TRUE(registry_->set_version_tag("chat", 2, {"base_model", "chat@1"}, "alice").ok());
  auto trace = Lineage(*db_, *blobs_).trace("chat", 1);
  ASSERT_TRUE(trace.ok());
  int depth = 0;
  for (const Json* node = &*trace; !(*node)["base_model"].is_null() && (*node)["base_model"].contains("base_model");
       node = &(*node)["base_model"]) {
    ++depth;
  }
  EXPECT_LE(depth, 8);
}

}  // namespace
}  // namespace keel::registry
