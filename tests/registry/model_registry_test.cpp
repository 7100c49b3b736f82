#include "keel/registry/model_registry.h"

#include <thread>

#include "keel/store/artifact_catalog.h"
#include "keel/util/file.h"
#include "store/store_test_base.h"

namespace keel::registry {
namespace {

class ModelRegistryTest : public store::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    db_ = open_db();
    ASSERT_TRUE(db_);
    auto blobs = store::LocalArtifactStore::open_at(dir_.file("artifacts"));
    ASSERT_TRUE(blobs.ok());
    blobs_ = std::move(blobs).value();
  }
  std::string write_model(const std::string& name, const std::string& contents) {
    std::string p = dir_.file(name);
    EXPECT_TRUE(write_file_atomic(p, contents).ok());
    return p;
  }
  ModelFileFacts facts() {
    ModelFileFacts f;
    f.format = "gguf";
    f.architecture = "llama";
    f.parameter_count = 1234;
    f.metadata = {{"quantization", "Q4_1"}};
    return f;
  }

  std::unique_ptr<store::Db> db_;
  std::unique_ptr<store::LocalArtifactStore> blobs_;
};
INSTANTIATE_STORE_TEST(ModelRegistryTest);

TEST_P(ModelRegistryTest, ImportCreatesVersionsAndIsIdempotentForSameBytes) {
  ModelRegistry models(*db_, *blobs_);
  std::string a = write_model("a.gguf", "model bytes v1");
  auto first = models.import_file(a, "tiny", facts(), "tester");
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->version.version, 1);
  EXPECT_EQ(first->version.size_bytes, 14u);
  auto same = models.import_file(a, "tiny", facts(), "tester");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->version.version, 1);
  std::string b = write_model("b.gguf", "model bytes v2");
  auto second = models.import_file(b, "tiny", facts(), "tester");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version.version, 2);
  auto latest = models.get("tiny");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 2);
  auto v1 = models.get("tiny@1");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->artifact_sha256, first->version.artifact_sha256);
  EXPECT_EQ(v1->metadata["quantization"], "Q4_1");
  auto list = models.list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].version_count, 2);
  auto versions = models.versions("tiny");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 2u);
  auto audit = db_->query("SELECT actor, action, target FROM audit_events ORDER BY at");
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);  // the no-op import is not an event
  EXPECT_EQ(audit->rows[0].get_text(0), "tester");
  EXPECT_EQ(audit->rows[0].get_text(1), "model.import");
  EXPECT_EQ(audit->rows[0].get_text(2), "model:tiny");
}

TEST_P(ModelRegistryTest, ErrorsNameWhatIsWrong) {
  ModelRegistry models(*db_, *blobs_);
  EXPECT_EQ(models.get("nope").status().code(), ErrorCode::kNotFound);
  std::string a = write_model("a.gguf", "x");
  ASSERT_TRUE(models.import_file(a, "m", facts(), "t").ok());
  auto missing_version = models.get("m@7");
  EXPECT_EQ(missing_version.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing_version.status().message().find("no version 7"), std::string::npos);
  EXPECT_EQ(models.get("m@x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.import_file(a, "../etc", facts(), "t").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.import_file(a, "", facts(), "t").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(models.import_file(dir_.file("absent.gguf"), "m2", facts(), "t").status().code(), ErrorCode::kNotFound);
  auto list = models.list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u) << "failed imports must not leave models behind";
}

TEST_P(ModelRegistryTest, ConcurrentImportsGetDistinctVersions) {
  ModelRegistry models(*db_, *blobs_);
  constexpr int kThreads = 4;
  std::vector<std::string> paths;
  for (int i = 0; i < kThreads; ++i) paths.push_back(write_model("m" + std::to_string(i), "bytes " + std::to_string(i)));
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[static_cast<size_t>(i)] = models.import_file(paths[static_cast<size_t>(i)], "shared", facts(), "t").status(); });
  }
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const auto& st : results) ok += st.ok();
  EXPECT_EQ(ok, kThreads);
  auto versions = models.versions("shared");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(static_cast<int>(versions->size()), ok);
  for (size_t i = 0; i < versions->size(); ++i) EXPECT_EQ((*versions)[i].version, static_cast<int64_t>(i + 1));
  store::ArtifactCatalog catalog(*db_, *blobs_);
  auto report = catalog.verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());
}

}  // namespace
}  // namespace keel::registry
