// ServedModels' kept resolutions: a change made through the registry in this process is
// seen by the next request; one made elsewhere (written straight to the store, as
// another process would) within resolution_ttl. Remote versions, so nothing is loaded.
#include "keel/server/served_models.h"

#include <thread>

#include "keel/registry/deployments.h"
#include "keel/registry/remote_models.h"
#include "store/store_test_base.h"

namespace keel::server {
namespace {

using Clock = std::chrono::steady_clock;

class ServedModelsTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    registry::ModelRegistry models(*db_, *blobs_);
    for (const char* upstream : {"http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"}) {
      auto v = registry::register_remote_model(models, "m", {upstream, "up", ""}, "", "alice");
      ASSERT_TRUE(v.ok()) << v.status().to_string();
    }
    ASSERT_TRUE(models.set_alias("m", "prod", 1, "alice").ok());
  }

  std::unique_ptr<ServedModels> served(std::chrono::milliseconds ttl) {
    ServingOptions options;
    options.resolution_ttl = ttl;
    return std::make_unique<ServedModels>(*db_, *blobs_, options);
  }

  int64_t version_of(ServedModels& models, const std::string& reference) {
    auto m = models.get(reference);
    EXPECT_TRUE(m.ok()) << reference << ": " << m.status().to_string();
    return m.ok() ? (*m)->version : -1;
  }

  // As another process would: straight to the store, past the registry.
  void move_alias_behind_the_registrys_back(int64_t version) {
    auto other = open_db();
    ASSERT_TRUE(other);
    auto n = other->exec("UPDATE model_aliases SET version = ? WHERE alias = 'prod'", {version});
    ASSERT_TRUE(n.ok() && *n == 1) << n.status().to_string();
  }
};
INSTANTIATE_STORE_TEST(ServedModelsTest);

TEST_P(ServedModelsTest, ChangesMadeThroughTheRegistryApplyToTheNextRequest) {
  auto models = served(std::chrono::hours(1));
  EXPECT_EQ(version_of(*models, "m@prod"), 1);
  EXPECT_EQ(version_of(*models, "m"), 2);  // the latest
  registry::ModelRegistry registry(*db_, *blobs_);
  ASSERT_TRUE(registry.set_alias("m", "prod", 2, "alice").ok());
  EXPECT_EQ(version_of(*models, "m@prod"), 2);
  ASSERT_TRUE(registry.delete_alias("m", "prod", "alice").ok());
  EXPECT_FALSE(models->get("m@prod").ok()) << "a deleted alias still resolves";

  // A deployment's name, its switch and its removal.
  EXPECT_EQ(models->get("blue").status().code(), ErrorCode::kNotFound);
  registry::DeploymentRegistry deployments(*db_, *blobs_);
  ASSERT_TRUE(deployments.set_target("blue", "m", 1, 100, "alice").ok());
  EXPECT_EQ(version_of(*models, "blue"), 1);
  ASSERT_TRUE(deployments.set_target("blue", "m", 2, 100, "alice").ok());
  ASSERT_TRUE(deployments.set_target("blue", "m", 1, 0, "alice").ok());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(version_of(*models, "blue"), 2);
  ASSERT_TRUE(deployments.remove("blue", "alice").ok());
  EXPECT_EQ(models->get("blue").status().code(), ErrorCode::kNotFound);

  // A version added later, and a model registered after a request for it failed.
  ASSERT_TRUE(registry::register_remote_model(registry, "m", {"http://127.0.0.1:11/v1", "up", ""}, "", "a").ok());
  EXPECT_EQ(version_of(*models, "m"), 3);
  EXPECT_EQ(models->get("late").status().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(registry::register_remote_model(registry, "late", {"http://127.0.0.1:12/v1", "up", ""}, "", "a").ok());
  EXPECT_EQ(version_of(*models, "late"), 1);
}

TEST_P(ServedModelsTest, AChangeMadeElsewhereIsSeenWithinTheResolutionTtl) {
  const auto ttl = std::chrono::milliseconds(1500);
  auto models = served(ttl);
  const auto kept_at = Clock::now();
  EXPECT_EQ(version_of(*models, "m@prod"), 1);
  move_alias_behind_the_registrys_back(2);
  const int64_t soon = version_of(*models, "m@prod");
  if (Clock::now() - kept_at < ttl) {
    EXPECT_EQ(soon, 1) << "the kept resolution was not used";
  }
  std::this_thread::sleep_until(kept_at + ttl + std::chrono::milliseconds(50));
  EXPECT_EQ(version_of(*models, "m@prod"), 2);
  // The version the request got is the one it keeps: both stay served.
  EXPECT_EQ(models->loaded().size(), 2u);
}

TEST_P(ServedModelsTest, AZeroTtlResolvesEveryRequest) {
  auto models = served(std::chrono::milliseconds(0));
  EXPECT_EQ(version_of(*models, "m@prod"), 1);
  move_alias_behind_the_registrys_back(2);
  EXPECT_EQ(version_of(*models, "m@prod"), 2);
}

TEST_P(ServedModelsTest, AFloodOfUnknownNamesLeavesTheKnownOnesServed) {
  auto models = served(std::chrono::hours(1));
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(models->get("nothing-" + std::to_string(i)).status().code(), ErrorCode::kNotFound);
  }
  EXPECT_EQ(version_of(*models, "m@prod"), 1);
}

}  // namespace
}  // namespace keel::server
