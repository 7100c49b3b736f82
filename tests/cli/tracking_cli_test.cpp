// keel experiments / keel runs end to end: runs logged through the tracking service are
// listed, filtered, shown and compared by the binary, on both store back ends.
#include <gtest/gtest.h>

#include "keel/store/db.h"
#include "keel/store/migrations.h"
#include "keel/tracking/tracking_service.h"
#include "keel/util/json.h"
#include "cli/backend_cli_test.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;

using TrackingCliTest = BackendCliTest;
INSTANTIATE_BACKEND_CLI_TEST(TrackingCliTest);

TEST_P(TrackingCliTest, ExperimentsAndRunsListShowCompare) {
  Json created = keel_json({"experiments", "create", "sweep"});
  ASSERT_EQ(created["name"], "sweep");
  auto dup = keel({"experiments", "create", "sweep"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;

  // Log two runs the way a training job does, through the service on the same store.
  auto db = store::Db::open(url_);
  ASSERT_TRUE(db.ok()) << db.status().to_string();
  tracking::TrackingService tracking(**db);
  std::string experiment = created["id"];
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto run = tracking.create_run(experiment, "ana", 1000 + i, i == 0 ? "lr-small" : "lr-big", {});
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    ids.push_back(run->id);
    ASSERT_TRUE(tracking.log_batch(run->id, {{"loss", 1.0 - 0.5 * i, 0, 10}},
                                   {{"lr", i == 0 ? "0.001" : "0.01"}, {"epochs", "3"}}, {})
                    .ok());
  }

  Json listed = keel_json({"runs", "list", "-e", "sweep", "--order-by", "metrics.loss ASC"});
  ASSERT_EQ(listed["runs"].size(), 2u);
  EXPECT_EQ(listed["runs"][0]["name"], "lr-big");
  EXPECT_EQ(listed["runs"][0]["metrics"]["loss"]["value"], 0.5);
  Json filtered = keel_json({"runs", "list", "--filter", "params.lr = '0.001'"});
  ASSERT_EQ(filtered["runs"].size(), 1u);
  EXPECT_EQ(filtered["runs"][0]["id"], ids[0]);

  Json shown = keel_json({"runs", "show", ids[1]});
  EXPECT_EQ(shown["params"]["lr"], "0.01");
  EXPECT_EQ(shown["user"], "ana");
  auto text = keel({"runs", "show", ids[1]});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("lr-big"), std::string::npos);

  Json compared = keel_json({"runs", "compare", ids[0], ids[1]});
  EXPECT_EQ(compared["differing_params"], Json::array({"lr"}));
  EXPECT_EQ(compared["params"]["epochs"], Json::array({"3", "3"}));
  EXPECT_EQ(compared["metrics"]["loss"], Json::array({1.0, 0.5}));

  for (auto bad : std::vector<std::vector<std::string>>{{"runs", "show", "nope"},
                                                        {"runs", "list", "-e", "nope"},
                                                        {"runs", "list", "--filter", "metrics.loss >"},
                                                        {"runs", "compare", ids[0]}}) {
    auto r = keel(bad);
    EXPECT_EQ(r.exit_code, 1) << bad[1] << " " << r.out;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
  }
}

}  // namespace
}  // namespace keel::cli
