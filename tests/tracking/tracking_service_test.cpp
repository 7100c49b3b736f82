#include "keel/tracking/tracking_service.h"

#include <cmath>
#include <limits>
#include <thread>

#include "store/store_test_base.h"

namespace keel::tracking {
namespace {

class TrackingServiceTest : public store::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    db_ = open_db();
    ASSERT_TRUE(db_);
    tracking_ = std::make_unique<TrackingService>(*db_);
  }
  std::string new_experiment(const std::string& name) {
    auto e = tracking_->create_experiment(name, "", {});
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return e.ok() ? e->id : "";
  }
  tracking::Run new_run(const std::string& experiment, const std::string& name = "") {
    auto r = tracking_->create_run(experiment, "alice", 0, name, {});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : tracking::Run{};
  }

  std::unique_ptr<store::Db> db_;
  std::unique_ptr<TrackingService> tracking_;
};
INSTANTIATE_STORE_TEST(TrackingServiceTest);

TEST_P(TrackingServiceTest, DefaultExperimentExistsAndNewOnesAreNumbered) {
  auto def = tracking_->get_experiment("0");
  ASSERT_TRUE(def.ok()) << def.status().to_string();
  EXPECT_EQ(def->name, "Default");
  EXPECT_EQ(new_experiment("a"), "1");
  EXPECT_EQ(new_experiment("b"), "2");
  auto dup = tracking_->create_experiment("a", "", {});
  EXPECT_EQ(dup.status().code(), ErrorCode::kAlreadyExists);
  auto by_name = tracking_->get_experiment_by_name("b");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->id, "2");
  EXPECT_EQ(by_name->artifact_location, "mlflow-artifacts:/2");
  EXPECT_EQ(tracking_->get_experiment("77").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(tracking_->set_experiment_lifecycle("0", true).code(), ErrorCode::kInvalidArgument);
}

TEST_P(TrackingServiceTest, RunCarriesNameUserTagsAndParent) {
  std::string e = new_experiment("exp");
  tracking::Run parent = new_run(e, "parent");
  EXPECT_EQ(parent.name, "parent");
  EXPECT_EQ(parent.status, RunStatus::kRunning);
  EXPECT_EQ(parent.artifact_uri, "mlflow-artifacts:/" + e + "/" + parent.id + "/artifacts");
  EXPECT_EQ(parent.id.size(), 32u);
  auto child = tracking_->create_run(e, "bob", 1234, "", {{kParentRunTag, parent.id}, {"k", "v"}});
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  EXPECT_EQ(child->parent_run_id, parent.id);
  EXPECT_EQ(child->start_time, 1234);
  EXPECT_FALSE(child->name.empty()) << "a run without a name gets a generated one";
  bool has_name_tag = false;
  for (const auto& t : child->tags) has_name_tag |= t.key == kRunNameTag && t.value == child->name;
  EXPECT_TRUE(has_name_tag);
  auto orphan = tracking_->create_run(e, "bob", 0, "", {{kParentRunTag, "nope"}});
  EXPECT_EQ(orphan.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(tracking_->create_run("404", "bob", 0, "", {}).status().code(), ErrorCode::kNotFound);

  auto done = tracking_->update_run(parent.id, RunStatus::kFinished, 99, std::string("renamed"));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, RunStatus::kFinished);
  EXPECT_EQ(done->end_time, 99);
  EXPECT_EQ(done->name, "renamed");
}

TEST_P(TrackingServiceTest, ParamsAreImmutable) {
  tracking::Run run = new_run(new_experiment("exp"));
  ASSERT_TRUE(tracking_->log_batch(run.id, {}, {{"lr", "0.1"}}, {}).ok());
  ASSERT_TRUE(tracking_->log_batch(run.id, {}, {{"lr", "0.1"}}, {}).ok()) << "the same value again is fine";
  Status changed = tracking_->log_batch(run.id, {}, {{"lr", "0.2"}}, {});
  EXPECT_EQ(changed.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(changed.message().find("Changing param values is not allowed"), std::string::npos);
  // A rejected batch changes nothing, not even its valid parts.
  Status mixed = tracking_->log_batch(run.id, {{"m", 1.0, 1, 0}}, {{"lr", "0.3"}}, {{"t", "x"}});
  EXPECT_FALSE(mixed.ok());
  auto got = tracking_->get_run(run.id);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->latest_metrics.empty());
  ASSERT_EQ(got->params.size(), 1u);
  EXPECT_EQ(got->params[0].value, "0.1");
  EXPECT_FALSE(tracking_->log_batch(run.id, {}, {{"a", "1"}, {"a", "2"}}, {}).ok());
}

TEST_P(TrackingServiceTest, BadInputIsRefusedWithAClearError) {
  tracking::Run run = new_run(new_experiment("exp"));
  EXPECT_EQ(tracking_->log_batch(run.id, {}, {}, {{"big", std::string(10u << 20, 'x')}}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracking_->log_batch(run.id, {}, {{"p", std::string(6001, 'x')}}, {}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracking_->log_batch(run.id, {{"../up", 1, 0, 0}}, {}, {}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracking_->log_batch(run.id, {{"", 1, 0, 0}}, {}, {}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracking_->log_batch(run.id, {{"a;b", 1, 0, 0}}, {}, {}).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracking_->log_batch("unknown", {{"m", 1, 0, 0}}, {}, {}).code(), ErrorCode::kNotFound);
  std::vector<Metric> too_many(1001, Metric{"m", 1, 0, 0});
  EXPECT_EQ(tracking_->log_batch(run.id, too_many, {}, {}).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(tracking_->set_run_lifecycle(run.id, true).ok());
  EXPECT_EQ(tracking_->log_batch(run.id, {{"m", 1, 0, 0}}, {}, {}).code(), ErrorCode::kFailedPrecondition);
}

TEST_P(TrackingServiceTest, MetricHistoryKeepsNanAndInfinityAndLatestFollowsStep) {
  tracking::Run run = new_run(new_experiment("exp"));
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Metric> batch = {{"loss", 3.0, 100, 0}, {"loss", 2.0, 101, 1}, {"loss", 9.0, 50, 5},
                               {"loss", 1.0, 102, 2}, {"odd", std::nan(""), 1, 0}, {"odd", inf, 2, 1},
                               {"odd", -inf, 3, 2}};
  ASSERT_TRUE(tracking_->log_batch(run.id, batch, {}, {}).ok());
  auto history = tracking_->metric_history(run.id, "loss", 100, "");
  ASSERT_TRUE(history.ok()) << history.status().to_string();
  ASSERT_EQ(history->metrics.size(), 4u);
  EXPECT_EQ(history->metrics[0].value, 3.0);
  EXPECT_EQ(history->metrics[3].step, 5);
  auto odd = tracking_->metric_history(run.id, "odd", 100, "");
  ASSERT_TRUE(odd.ok());
  ASSERT_EQ(odd->metrics.size(), 3u);
  EXPECT_TRUE(std::isnan(odd->metrics[0].value));
  EXPECT_EQ(odd->metrics[1].value, inf);
  EXPECT_EQ(odd->metrics[2].value, -inf);
  // Latest: highest step wins even when logged earlier in time.
  ASSERT_TRUE(tracking_->log_batch(run.id, {{"loss", 0.5, 200, 4}}, {}, {}).ok());
  auto got = tracking_->get_run(run.id);
  ASSERT_TRUE(got.ok());
  for (const auto& m : got->latest_metrics) {
    if (m.key == "loss") {
      EXPECT_EQ(m.value, 9.0);
    }
    if (m.key == "odd") {
      EXPECT_EQ(m.value, -inf);
    }
  }
  // Pages.
  auto first = tracking_->metric_history(run.id, "loss", 2, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->metrics.size(), 2u);
  ASSERT_FALSE(first->next_page_token.empty());
  auto rest = tracking_->metric_history(run.id, "loss", 10, first->next_page_token);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->metrics.size(), 3u);
  EXPECT_TRUE(rest->next_page_token.empty());
  EXPECT_EQ(tracking_->metric_history(run.id, "loss", 10, "x1").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracking_->metric_history("nope", "loss", 10, "").status().code(), ErrorCode::kNotFound);
}

TEST_P(TrackingServiceTest, HundredThousandPointsDownsampleKeepingEndsAndSpikes) {
  tracking::Run run = new_run(new_experiment("exp"));
  const int kPoints = 100000;
  for (int start = 0; start < kPoints; start += 1000) {
    std::vector<Metric> batch;
    for (int i = start; i < start + 1000; ++i) batch.push_back({"loss", i == 54321 ? 1000.0 : 1.0 / (1 + i), i, i});
    ASSERT_TRUE(tracking_->log_batch(run.id, batch, {}, {}).ok());
  }
  auto all = tracking_->metric_history(run.id, "loss", 200000, "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->metrics.size(), static_cast<size_t>(kPoints));
  auto thin = tracking_->metric_history_downsampled(run.id, "loss", 500);
  ASSERT_TRUE(thin.ok());
  EXPECT_LE(thin->size(), 500u);
  EXPECT_GE(thin->size(), 400u);
  EXPECT_EQ(thin->front().step, 0);
  EXPECT_EQ(thin->back().step, kPoints - 1);
  bool spike = false;
  for (size_t i = 0; i < thin->size(); ++i) {
    spike |= (*thin)[i].value == 1000.0;
    if (i > 0) {
      EXPECT_LT((*thin)[i - 1].step, (*thin)[i].step);
    }
  }
  EXPECT_TRUE(spike) << "the outlier survives thinning";
}

TEST_P(TrackingServiceTest, SearchFiltersOrdersAndPages) {
  std::string e = new_experiment("exp");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto r = tracking_->create_run(e, "u", 1000 + i, "run" + std::to_string(i), {});
    ASSERT_TRUE(r.ok());
    ids.push_back(r->id);
    ASSERT_TRUE(tracking_->log_batch(r->id, {{"acc", 0.5 + 0.1 * i, 0, 0}},
                                     {{"opt", i % 2 == 0 ? "adam" : "sgd"}}, {{"team", "a"}})
                    .ok());
  }
  SearchRunsRequest request;
  request.experiment_ids = {e};
  request.filter = "metrics.acc > 0.65 and params.opt = 'adam'";
  request.order_by = {"metrics.acc DESC"};
  auto page = tracking_->search_runs(request);
  ASSERT_TRUE(page.ok()) << page.status().to_string();
  ASSERT_EQ(page->runs.size(), 2u);
  EXPECT_EQ(page->runs[0].id, ids[4]);
  EXPECT_EQ(page->runs[1].id, ids[2]);

  request.filter = "";
  request.order_by = {};
  request.max_results = 2;
  std::vector<std::string> seen;
  for (int guard = 0; guard < 10; ++guard) {
    auto p = tracking_->search_runs(request);
    ASSERT_TRUE(p.ok());
    for (const auto& r : p->runs) seen.push_back(r.id);
    if (p->next_page_token.empty()) break;
    request.page_token = p->next_page_token;
  }
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen.front(), ids[4]) << "default order is newest start first";

  request = {};
  request.experiment_ids = {e};
  request.filter = "metrics.acc >";
  EXPECT_EQ(tracking_->search_runs(request).status().code(), ErrorCode::kInvalidArgument);
  request.filter = "params.opt = adam";
  EXPECT_EQ(tracking_->search_runs(request).status().code(), ErrorCode::kInvalidArgument);
  request.filter = "attributes.run_name LIKE 'run%' and tags.team = 'a' and attributes.status = 'RUNNING'";
  auto like = tracking_->search_runs(request);
  ASSERT_TRUE(like.ok()) << like.status().to_string();
  EXPECT_EQ(like->runs.size(), 5u);
  ASSERT_TRUE(tracking_->set_run_lifecycle(ids[0], true).ok());
  like = tracking_->search_runs(request);
  ASSERT_TRUE(like.ok());
  EXPECT_EQ(like->runs.size(), 4u) << "deleted runs leave ACTIVE_ONLY searches";
}

TEST_P(TrackingServiceTest, DatasetInputsAreSharedPerExperiment) {
  std::string e = new_experiment("exp");
  tracking::Run a = new_run(e), b = new_run(e);
  DatasetInput d{"train", "abc", "local", "{\"uri\":\"x\"}", "", "", {{"mlflow.data.context", "training"}}};
  ASSERT_TRUE(tracking_->log_inputs(a.id, {d}).ok());
  ASSERT_TRUE(tracking_->log_inputs(b.id, {d}).ok());
  ASSERT_TRUE(tracking_->log_inputs(b.id, {d}).ok()) << "idempotent";
  auto got = tracking_->get_run(b.id);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->inputs.size(), 1u);
  EXPECT_EQ(got->inputs[0].digest, "abc");
  ASSERT_EQ(got->inputs[0].tags.size(), 1u);
  auto count = db_->query("SELECT COUNT(*) FROM datasets");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->rows[0].get_int(0), 1);
  SearchRunsRequest request;
  request.experiment_ids = {e};
  request.filter = "datasets.context = 'training'";
  auto found = tracking_->search_runs(request);
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  EXPECT_EQ(found->runs.size(), 2u);
  EXPECT_EQ(tracking_->log_inputs(a.id, {DatasetInput{"", "", "", "", "", "", {}}}).code(), ErrorCode::kInvalidArgument);
}

TEST_P(TrackingServiceTest, ConcurrentLoggersLoseNothing) {
  tracking::Run run = new_run(new_experiment("exp"));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string key = "m";
      key += std::to_string(t);
      for (int i = 0; i < 25; ++i) {
        if (!tracking_->log_batch(run.id, {{key, double(i), i, i}}, {}, {}).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < 4; ++t) {
    std::string key = "m";
    key += std::to_string(t);
    auto h = tracking_->metric_history(run.id, key, 1000, "");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->metrics.size(), 25u);
  }
}

}  // namespace
}  // namespace keel::tracking
