#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "keel/store/artifact_catalog.h"
#include "keel/store/artifact_store.h"
#include "keel/util/file.h"
#include "keel/util/sha256.h"
#include "store/store_test_base.h"

namespace keel::store {
namespace {

using keel::testing::TempDir;

size_t count_files(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

void corrupt_blob(const std::string& path) {
  ::chmod(path.c_str(), 0644);
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "X", 1, 0), 1);
  ::close(fd);
}

TEST(LocalArtifactStore, StoresByContentAndDeduplicates) {
  TempDir dir;
  auto store = LocalArtifactStore::open_at(dir.file("artifacts"));
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto a = (*store)->put_bytes("hello");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->sha256, Sha256::of("hello"));
  EXPECT_EQ(a->size_bytes, 5u);
  auto again = (*store)->put_bytes("hello");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sha256, a->sha256);
  EXPECT_EQ(count_files(dir.file("artifacts/sha256")), 1u);
  EXPECT_EQ(count_files(dir.file("artifacts/tmp")), 0u);
  auto bytes = (*store)->get_bytes(a->sha256);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, "hello");
  auto list = (*store)->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].sha256, a->sha256);
  EXPECT_EQ((*store)->open(std::string(64, 'a')).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ((*store)->open("../../etc/passwd").status().code(), ErrorCode::kInvalidArgument);
}

TEST(LocalArtifactStore, StreamsLargeFilesInConstantMemory) {
  TempDir dir;
  auto store = LocalArtifactStore::open_at(dir.file("artifacts"));
  ASSERT_TRUE(store.ok());
  std::string big = dir.file("big.bin");
  constexpr uint64_t kSize = 256ull << 20;
  ASSERT_TRUE(keel::testing::write_test_gguf(big, "llama", kSize / 4).ok());
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  uint64_t last_progress = 0;
  auto info = (*store)->put_file(big, [&](uint64_t done) { last_progress = done; });
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  std::string out = dir.file("out.bin");
  ASSERT_TRUE((*store)->get_to_file(info->sha256, out).ok());
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  auto expected = Sha256::of_file(big);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(info->sha256, *expected);
  EXPECT_EQ(last_progress, info->size_bytes);
  auto copied = Sha256::of_file(out);
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(*copied, *expected);
  // ru_maxrss is in KiB: a 256 MiB round trip must not raise the peak by more than 32 MiB.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 32 * 1024) << "the artifact store buffered the file in memory";
}

TEST(LocalArtifactStore, CorruptBlobIsDetectedOnReadAndByCheck) {
  TempDir dir;
  auto store = LocalArtifactStore::open_at(dir.file("artifacts"));
  ASSERT_TRUE(store.ok());
  auto info = (*store)->put_bytes(std::string(100000, 'k'));
  ASSERT_TRUE(info.ok());
  corrupt_blob((*store)->blob_path(info->sha256));
  auto read = (*store)->get_bytes(info->sha256);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), ErrorCode::kCorrupt);
  std::string dest = dir.file("restored");
  EXPECT_EQ((*store)->get_to_file(info->sha256, dest).code(), ErrorCode::kCorrupt);
  EXPECT_FALSE(path_exists(dest)) << "a corrupt blob must not be written out";
  auto check = (*store)->check(info->sha256);
  ASSERT_TRUE(check.ok());
  EXPECT_FALSE(check->ok);
  EXPECT_NE(check->problem.find("hashes to"), std::string::npos);
}

TEST(LocalArtifactStore, WriterKilledMidWriteLeavesNoPartialBlob) {
  TempDir dir;
  std::string root = dir.file("artifacts");
  ASSERT_TRUE(LocalArtifactStore::open_at(root).ok());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto store = LocalArtifactStore::open_at(root);
    if (!store.ok()) ::_exit(10);
    auto w = (*store)->writer();
    if (!w.ok()) ::_exit(11);
    std::string chunk(1 << 20, 'z');
    (void)(*w)->write(chunk);
    (void)!::write(ready[1], "r", 1);
    for (;;) {  // keep writing until killed
      (void)(*w)->write(chunk);
      ::usleep(1000);
    }
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_EQ(count_files(root + "/tmp"), 1u) << "the killed writer's work file is still there";
  auto reopened = LocalArtifactStore::open_at(root);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(count_files(root + "/tmp"), 0u) << "opening the store removes dead writers' work files";
  auto list = (*reopened)->list();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST(LocalArtifactStore, FullDiskIsAnErrorAndLeavesNothingBehind) {
  TempDir dir;
  std::string root = dir.file("artifacts");
  ASSERT_TRUE(LocalArtifactStore::open_at(root).ok());
  auto codes = keel::testing::run_in_children(1, [&](int) {
    // A file-size limit makes write() fail with EFBIG, as a full disk fails with ENOSPC.
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{1 << 20, 1 << 20};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    auto store = LocalArtifactStore::open_at(root);
    if (!store.ok()) return 10;
    auto put = (*store)->put_bytes(std::string(4 << 20, 'f'));
    if (put.ok()) return 11;
    return put.status().code() == ErrorCode::kResourceExhausted ? 0 : 12;
  });
  EXPECT_EQ(codes, std::vector<int>{0});
  EXPECT_EQ(count_files(root + "/tmp"), 0u);
  EXPECT_EQ(count_files(root + "/sha256"), 0u);
}

class ArtifactCatalogTest : public StoreTest {};
INSTANTIATE_STORE_TEST(ArtifactCatalogTest);

TEST_P(ArtifactCatalogTest, VerifyReportsCorruptMissingAndUnreferencedBlobs) {
  auto db = open_db();
  ASSERT_TRUE(db);
  auto blobs = LocalArtifactStore::open_at(dir_.file("artifacts"));
  ASSERT_TRUE(blobs.ok());
  ArtifactCatalog catalog(*db, **blobs);
  auto good = catalog.add_bytes("good");
  auto bad = catalog.add_bytes("will be corrupted");
  auto gone = catalog.add_bytes("will be deleted");
  auto stray = (*blobs)->put_bytes("never recorded");
  ASSERT_TRUE(good.ok() && bad.ok() && gone.ok() && stray.ok());
  auto clean = catalog.verify();
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok());
  EXPECT_EQ(clean->checked, 4u);
  corrupt_blob((*blobs)->blob_path(bad->sha256));
  ASSERT_EQ(::unlink((*blobs)->blob_path(gone->sha256).c_str()), 0);
  auto report = catalog.verify();
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  ASSERT_EQ(report->corrupt.size(), 1u);
  EXPECT_EQ(report->corrupt[0].sha256, bad->sha256);
  ASSERT_EQ(report->missing.size(), 1u);
  EXPECT_EQ(report->missing[0], gone->sha256);
  ASSERT_EQ(report->unreferenced.size(), 1u);
  EXPECT_EQ(report->unreferenced[0], stray->sha256);
}

}  // namespace
}  // namespace keel::store
