#include "keel/tracking/artifact_files.h"

#include "store/store_test_base.h"

namespace keel::tracking {
namespace {

class ArtifactFilesTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    files_ = std::make_unique<ArtifactFiles>(*db_, *blobs_);
  }
  std::unique_ptr<ArtifactFiles> files_;
};
INSTANTIATE_STORE_TEST(ArtifactFilesTest);

TEST_P(ArtifactFilesTest, PutStatListRemove) {
  const std::string run = "1/abc/artifacts";
  ASSERT_TRUE(files_->put(run + "/a.txt", "hello").ok());
  ASSERT_TRUE(files_->put(run + "/dir/b.json", "{}").ok());
  ASSERT_TRUE(files_->put(run + "/dir/sub/c.bin", std::string(1000, '\0')).ok());
  ASSERT_TRUE(files_->put(run + "/a.txt", "hello again").ok()) << "replacing a file is allowed";
  ASSERT_TRUE(files_->put("1/abd/artifacts/other.txt", "x").ok());
  auto stat = files_->stat(run + "/a.txt");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size_bytes, 11u);
  auto bytes = blobs_->get_bytes(stat->sha256);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "hello again");

  auto root = files_->list(run, run);
  ASSERT_TRUE(root.ok());
  ASSERT_EQ(root->size(), 2u);
  EXPECT_EQ((*root)[0].path, "a.txt");
  EXPECT_FALSE((*root)[0].is_dir);
  EXPECT_EQ((*root)[1].path, "dir");
  EXPECT_TRUE((*root)[1].is_dir);
  auto dir = files_->list(run + "/dir", run);
  ASSERT_TRUE(dir.ok());
  ASSERT_EQ(dir->size(), 2u);
  EXPECT_EQ((*dir)[0].path, "dir/b.json");
  EXPECT_EQ((*dir)[1].path, "dir/sub");

  auto removed = files_->remove(run + "/dir");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(files_->stat(run + "/dir/b.json").status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(files_->stat("1/abd/artifacts/other.txt").ok());
}

TEST_P(ArtifactFilesTest, WildcardsInFolderNamesMatchLiterally) {
  ASSERT_TRUE(files_->put("r/a_b/x.txt", "1").ok());
  ASSERT_TRUE(files_->put("r/aXb/y.txt", "2").ok());
  ASSERT_TRUE(files_->put("r/a%b/z.txt", "3").ok());
  auto list = files_->list("r/a_b", "r/a_b");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].path, "x.txt");
}

TEST(ArtifactPath, TraversalAndOddPathsAreRefused) {
  for (const char* bad : {"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "..", "a/.."}) {
    EXPECT_EQ(validate_artifact_path(bad).code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(validate_artifact_path("").ok());
  EXPECT_TRUE(validate_artifact_path("", true).ok());
  EXPECT_TRUE(validate_artifact_path("a/b..c/d.txt").ok());
  EXPECT_TRUE(validate_artifact_path("1/abc/artifacts/plots/loss curve.png").ok());
}

}  // namespace
}  // namespace keel::tracking
