// DeploymentRegistry: weighted targets per served name, on both store back ends.
#include "keel/registry/deployments.h"

#include <map>

#include "keel/store/audit_log.h"
#include "store/store_test_base.h"

namespace keel::registry {
namespace {

class DeploymentsTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    models_ = std::make_unique<ModelRegistry>(*db_, *blobs_);
    deployments_ = std::make_unique<DeploymentRegistry>(*db_, *blobs_);
    for (const char* name : {"chat", "other"}) {
      ASSERT_TRUE(models_->create_model(name, "", {}, "alice").ok());
      NewVersion spec;
      spec.source = "s";
      for (int i = 0; i < 3; ++i) ASSERT_TRUE(models_->create_version(name, spec, "alice").ok());
    }
  }
  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<DeploymentRegistry> deployments_;
};
INSTANTIATE_STORE_TEST(DeploymentsTest);

TEST_P(DeploymentsTest, ACanaryIsTwoWeightedTargetsAndZeroRemovesOne) {
  ASSERT_TRUE(deployments_->set_target("chat-prod", "chat", 1, 90, "alice").ok());
  auto d = deployments_->set_target("chat-prod", "chat", 2, 10, "alice");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->model, "chat");
  ASSERT_EQ(d->targets.size(), 2u);
  EXPECT_EQ(d->targets[0].version, 1);
  EXPECT_EQ(d->targets[0].weight, 90);
  EXPECT_EQ(d->targets[1].weight, 10);
  EXPECT_EQ(to_json(*d)["targets"][1]["share"], 0.1);

  // Promote the canary: the new version takes all, the old one leaves.
  ASSERT_TRUE(deployments_->set_target("chat-prod", "chat", 2, 100, "bob").ok());
  d = deployments_->set_target("chat-prod", "chat", 1, 0, "bob");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->targets.size(), 1u);
  EXPECT_EQ(d->targets[0].version, 2);
  EXPECT_EQ(d->targets[0].weight, 100);

  d = deployments_->set_target("chat-prod", "chat", 2, 0, "bob");  // the last target
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->targets.empty());
  EXPECT_EQ(deployments_->get("chat-prod").status().code(), ErrorCode::kNotFound);
}

TEST_P(DeploymentsTest, BadTargetsAreRefusedAndNothingChanges) {
  ASSERT_TRUE(deployments_->set_target("d", "chat", 1, 50, "alice").ok());
  EXPECT_EQ(deployments_->set_target("d", "chat", 9, 50, "alice").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(deployments_->set_target("d", "nope", 1, 50, "alice").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(deployments_->set_target("d", "other", 1, 50, "alice").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(deployments_->set_target("d", "chat", 1, -1, "alice").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(deployments_->set_target("d", "chat", 1, kMaxDeploymentWeight + 1, "alice").status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(deployments_->set_target("bad name!", "chat", 1, 5, "alice").status().code(), ErrorCode::kInvalidArgument);
  auto d = deployments_->get("d");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->targets.size(), 1u);
  EXPECT_EQ(d->targets[0].weight, 50);
  EXPECT_EQ(deployments_->remove("missing", "alice").code(), ErrorCode::kNotFound);
  ASSERT_TRUE(deployments_->remove("d", "alice").ok());
  auto all = deployments_->list();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_P(DeploymentsTest, EveryChangeIsAudited) {
  ASSERT_TRUE(deployments_->set_target("d", "chat", 3, 7, "carol").ok());
  ASSERT_TRUE(deployments_->remove("d", "carol").ok());
  auto events = store::list_audit_events(*db_, {});
  ASSERT_TRUE(events.ok());
  std::map<std::string, int> actions;
  for (const auto& e : *events) {
    if (e.target == "deployment:d") ++actions[e.action];
  }
  EXPECT_EQ(actions["deployment.set"], 1);
  EXPECT_EQ(actions["deployment.remove"], 1);
}

TEST(PickVersion, SplitsTheUnitIntervalByWeight) {
  const Deployment d{.name = "d", .model = "m", .targets = {{.version = 1, .weight = 90}, {.version = 4, .weight = 10}}};
  EXPECT_EQ(pick_version(d, 0.0), 1);
  EXPECT_EQ(pick_version(d, 0.8999), 1);
  EXPECT_EQ(pick_version(d, 0.9), 4);
  EXPECT_EQ(pick_version(d, 0.99999), 4);
  int canary = 0;
  for (int i = 0; i < 10000; ++i) canary += pick_version(d, (i + 0.5) / 10000.0) == 4;
  EXPECT_EQ(canary, 1000);
}

}  // namespace
}  // namespace keel::registry
