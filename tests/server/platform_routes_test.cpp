// Keel's REST API for tracking through the router (no sockets): runs, their artifacts
// and outputs, thinned metric histories and comparison, on both store back ends.
#include "keel/server/platform_routes.h"

#include "keel/registry/model_registry.h"
#include "keel/tracking/artifact_files.h"
#include "keel/tracking/tracking_service.h"
#include "store/store_test_base.h"

namespace keel::server {
namespace {

class PlatformRoutesTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    add_platform_routes(router_, *db_, *blobs_);
  }
  std::pair<int, Json> call(const std::string& method, const std::string& target, const std::string& body = "") {
    HttpRequest req;
    req.method = method;
    req.set_target(target);
    req.body = body;
    req.user = "tester";
    req.role = "admin";
    HttpResponse r = router_.dispatch(req);
    auto j = parse_json(r.body);
    return {r.status, j.ok() ? *j : Json(r.body)};
  }

  Router router_;
};
INSTANTIATE_STORE_TEST(PlatformRoutesTest);

TEST_P(PlatformRoutesTest, RunsArtifactsOutputsHistoriesAndComparison) {
  auto [created, experiment] = call("POST", "/api/experiments", R"({"name": "sweep"})");
  ASSERT_EQ(created, 201) << experiment.dump();
  tracking::TrackingService tracking(*db_);
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto run = tracking.create_run(experiment["id"], "ana", 0, "r" + std::to_string(i), {});
    ASSERT_TRUE(run.ok());
    ids.push_back(run->id);
    std::vector<tracking::Metric> points;
    for (int s = 0; s < 1000; ++s) points.push_back({"loss", 1.0 / (1 + s + i), s, s});
    ASSERT_TRUE(tracking.log_batch(run->id, points, {{"lr", i == 0 ? "0.1" : "0.2"}}, {}).ok());
  }
  std::string root = "1/" + ids[0] + "/artifacts";
  ASSERT_TRUE(tracking::ArtifactFiles(*db_, *blobs_).put(root + "/adapter/weights.gguf", "w").ok());
  registry::ModelRegistry models(*db_, *blobs_);
  ASSERT_TRUE(models.create_model("tuned", "", {}, "ana").ok());
  registry::NewVersion spec;
  spec.source = "runs:/" + ids[0] + "/adapter";
  spec.run_id = ids[0];
  ASSERT_TRUE(models.create_version("tuned", spec, "ana").ok());

  auto [listed, runs] = call("GET", "/api/runs?experiment=sweep&order_by=metrics.loss%20ASC");
  ASSERT_EQ(listed, 200) << runs.dump();
  ASSERT_EQ(runs["runs"].size(), 2u);
  EXPECT_EQ(runs["runs"][0]["id"], ids[1]);
  auto [got, run] = call("GET", "/api/runs/" + ids[0]);
  ASSERT_EQ(got, 200);
  ASSERT_EQ(run["model_versions"].size(), 1u);
  EXPECT_EQ(run["model_versions"][0]["name"], "tuned");
  auto [art, files] = call("GET", "/api/runs/" + ids[0] + "/artifacts?path=adapter");
  ASSERT_EQ(art, 200) << files.dump();
  ASSERT_EQ(files["files"].size(), 1u);
  EXPECT_EQ(files["files"][0]["path"], "adapter/weights.gguf");
  EXPECT_EQ(call("GET", "/api/runs/" + ids[0] + "/artifacts?path=../x").first, 400);
  auto [hist, thin] = call("GET", "/api/runs/" + ids[0] + "/metrics/loss?max_points=50");
  ASSERT_EQ(hist, 200);
  EXPECT_LE(thin["points"].size(), 50u);
  EXPECT_EQ(thin["points"][0]["step"], 0);
  EXPECT_EQ(thin["points"].back()["step"], 999);
  EXPECT_EQ(call("GET", "/api/runs/" + ids[0] + "/metrics/loss").second["points"].size(), 1000u);
  auto [cmp, table] = call("GET", "/api/runs/compare?ids=" + ids[0] + "," + ids[1]);
  ASSERT_EQ(cmp, 200);
  EXPECT_EQ(table["differing_params"], Json::array({"lr"}));
  EXPECT_EQ(call("GET", "/api/runs/compare?ids=" + ids[0]).first, 400);
  EXPECT_EQ(call("GET", "/api/runs/nope").first, 404);
  EXPECT_EQ(call("GET", "/api/runs?filter=metrics.loss%20%3E").first, 400);
}

}  // namespace
}  // namespace keel::server
