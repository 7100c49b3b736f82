#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "keel/util/file.h"
#include "keel/util/id.h"
#include "keel/util/json.h"
#include "keel/util/sha256.h"
#include "keel/util/status.h"
#include "keel/util/thread_pool.h"
#include "support/test_support.h"

namespace keel {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("not positive: " + std::to_string(x));
  return x;
}

Result<int> doubled(int x) {
  KEEL_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return v * 2;
}

TEST(Status, CarriesCodeAndMessageWithContext) {
  Status st = not_found("no model named x");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kNotFound);
  EXPECT_EQ(st.with_context("show").message(), "show: no model named x");
  EXPECT_EQ(st.to_string(), "not_found: no model named x");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(Status, OsErrorMapsErrnoToCodes) {
  EXPECT_EQ(os_error("open x", ENOENT).code(), ErrorCode::kNotFound);
  EXPECT_EQ(os_error("open x", EACCES).code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(os_error("write x", ENOSPC).code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(os_error("open x", ENOENT).message().find("No such file"), std::string::npos);
}

TEST(Result, PropagatesErrorsThroughAssignOrReturn) {
  auto ok = doubled(21);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 42);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "not positive: -1");
}

TEST(Sha256, MatchesKnownVectors) {
  EXPECT_EQ(Sha256::of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 pieces;
  pieces.update("a");
  pieces.update("bc");
  EXPECT_EQ(pieces.hex_digest(), Sha256::of("abc"));
  // One million 'a' (FIPS 180-2 test vector), fed in uneven pieces.
  Sha256 million;
  std::string chunk(999, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    million.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(million.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, HashesFilesAndReportsMissingOnes) {
  testing::TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("f"), "abc").ok());
  auto h = Sha256::of_file(dir.file("f"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, Sha256::of("abc"));
  EXPECT_EQ(Sha256::of_file(dir.file("nope")).status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(is_sha256_hex(*h));
  EXPECT_FALSE(is_sha256_hex("ABC"));
}

TEST(Id, IsUuidV7AndSortsByCreationAcrossThreads) {
  std::string a = new_id();
  EXPECT_TRUE(is_uuid(a));
  EXPECT_EQ(a[14], '7');  // version nibble
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');  // variant
  std::vector<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(new_id());
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]);
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
}

TEST(Json, ParseErrorIsAValueNotAnException) {
  auto bad = parse_json("{\"a\": ");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  auto good = parse_json("{\"a\": [1, 2]}");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*good)["a"][1], 2);
  // Invalid UTF-8 in a string is replaced on output instead of throwing.
  Json j = std::string("bad \xff byte");
  EXPECT_NE(dump_json(j).find("\xef\xbf\xbd"), std::string::npos);
}

TEST(ThreadPool, RunsEveryTaskAndJoinsOnDestruction) {
  std::atomic<int> count{0};
  {
    ThreadPool pool(4);
    std::vector<std::future<int>> results;
    for (int i = 0; i < 1000; ++i) {
      results.push_back(pool.submit([i, &count] {
        count.fetch_add(1);
        return i * i;
      }));
    }
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(results[static_cast<size_t>(i)].get(), i * i);
    pool.wait_idle();
    EXPECT_EQ(count.load(), 1000);
    for (int i = 0; i < 100; ++i) pool.post([&count] { count.fetch_add(1); });
  }
  EXPECT_EQ(count.load(), 1100);  // queued tasks ran before the destructor returned
}

TEST(File, WriteAtomicReplacesAndReadFileEnforcesLimit) {
  testing::TempDir dir;
  std::string p = dir.file("x.json");
  ASSERT_TRUE(write_file_atomic(p, "one").ok());
  ASSERT_TRUE(write_file_atomic(p, "two").ok());
  auto r = read_file(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "two");
  EXPECT_EQ(read_file(p, 2).status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(read_file(dir.path()).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parent_dir("/a/b/c"), "/a/b");
  EXPECT_EQ(parent_dir("c"), ".");
}

TEST(File, EnsureWritableDirRejectsAPathUnderAFile) {
  testing::TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("plain"), "x").ok());
  Status st = ensure_writable_dir(dir.file("plain") + "/home");
  EXPECT_FALSE(st.ok());
}

}  // namespace
}  // namespace keel
