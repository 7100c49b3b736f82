// Store tests run once per back end (SQLite and PostgreSQL): derive from StoreTest
// and instantiate with INSTANTIATE_STORE_TEST(Suite). Each test gets a fresh store.
#pragma once

#include <gtest/gtest.h>

#include "keel/store/artifact_store.h"
#include "keel/store/db.h"
#include "keel/store/migrations.h"
#include "support/test_support.h"

namespace keel::store {

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto url = keel::testing::fresh_store_url(GetParam(), dir_);
    if (!url) GTEST_SKIP() << keel::testing::postgres_skip_reason();
    url_ = *url;
  }
  std::unique_ptr<Db> open_db(bool migrated = true) {
    auto db = Db::open(url_);
    EXPECT_TRUE(db.ok()) << db.status().to_string();
    if (!db.ok()) return nullptr;
    if (migrated) {
      Status st = migrate_to_latest(**db);
      EXPECT_TRUE(st.ok()) << st.to_string();
    }
    return std::move(db).value();
  }

  keel::testing::TempDir dir_;
  std::string url_;
};

// A StoreTest whose fixture opens the migrated store (db_) and an artifact folder
// (blobs_) before the test; derived fixtures call StoreWithBlobsTest::SetUp() first and
// return when IsSkipped().
class StoreWithBlobsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped()) return;
    db_ = open_db();
    ASSERT_TRUE(db_);
    auto blobs = LocalArtifactStore::open_at(dir_.file("artifacts"));
    ASSERT_TRUE(blobs.ok()) << blobs.status().to_string();
    blobs_ = std::move(blobs).value();
  }

  std::unique_ptr<Db> db_;
  std::unique_ptr<LocalArtifactStore> blobs_;
};

#define INSTANTIATE_STORE_TEST(Suite)                                                                      \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::ValuesIn(keel::testing::store_backends()), \
                           [](const ::testing::TestParamInfo<std::string>& info) { return info.param; })

}  // namespace keel::store
