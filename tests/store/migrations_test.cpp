#include <chrono>
#include <future>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "keel/util/id.h"
#include "store/store_test_base.h"

namespace keel::store {
namespace {

class MigrationsTest : public StoreTest {};
INSTANTIATE_STORE_TEST(MigrationsTest);

int latest() { return static_cast<int>(keel_migrations().size()); }

TEST_P(MigrationsTest, EmptyDatabaseMigratesToLatestAndRecordsEachStep) {
  auto db = open_db(false);
  ASSERT_TRUE(db);
  auto v0 = schema_version(*db);
  ASSERT_TRUE(v0.ok()) << v0.status().to_string();
  EXPECT_EQ(*v0, 0);
  ASSERT_TRUE(migrate_to_latest(*db).ok());
  auto v = schema_version(*db);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, latest());
  auto rows = db->query("SELECT version, name FROM keel_schema_migrations ORDER BY version");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), static_cast<size_t>(latest()));
  for (int i = 0; i < latest(); ++i) EXPECT_EQ(rows->rows[static_cast<size_t>(i)].get_int(0), i + 1);
  // Running again applies nothing and changes nothing.
  ASSERT_TRUE(migrate_to_latest(*db).ok());
  auto again = db->query("SELECT COUNT(*) FROM keel_schema_migrations");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rows[0].get_int(0), latest());
}

TEST_P(MigrationsTest, OlderDatabaseIsUpgradedAndKeepsItsData) {
  auto db = open_db(false);
  ASSERT_TRUE(db);
  ASSERT_TRUE(migrate(*db, keel_migrations(), 1).ok());
  auto v1 = schema_version(*db);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(*v1, 1);
  // Data written by a keel that knew only migration 1.
  ASSERT_TRUE(db->exec("INSERT INTO models (id, name, description, created_at, updated_at) VALUES (?, ?, '', 1, 1)",
                       {new_id(), std::string("old-model")})
                  .ok());
  auto audit_before = db->query("SELECT COUNT(*) FROM audit_events");
  EXPECT_FALSE(audit_before.ok()) << "migration 2 must not have been applied yet";
  ASSERT_TRUE(migrate_to_latest(*db).ok());
  auto v = schema_version(*db);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, latest());
  auto models = db->query("SELECT name FROM models");
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(models->rows[0].get_text(0), "old-model");
  EXPECT_TRUE(db->query("SELECT COUNT(*) FROM audit_events").ok());
}

TEST_P(MigrationsTest, NewerSchemaThanThisBinaryIsRefused) {
  auto db = open_db(true);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("INSERT INTO keel_schema_migrations (version, name, applied_at) VALUES (?, 'from the future', 0)",
                       {int64_t{latest() + 5}})
                  .ok());
  Status st = migrate_to_latest(*db);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("upgrade keel"), std::string::npos) << st.message();
}

TEST_P(MigrationsTest, ForeignDatabaseIsRefusedAndLeftAlone) {
  auto db = open_db(false);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE customers (id BIGINT)").ok());
  Status st = migrate_to_latest(*db);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("belongs to something else"), std::string::npos) << st.message();
  EXPECT_FALSE(db->query("SELECT COUNT(*) FROM models").ok()) << "no Keel table may be created in a foreign database";
}

TEST_P(MigrationsTest, ConcurrentProcessesApplyEachMigrationOnce) {
  constexpr int kProcesses = 4;
  auto codes = keel::testing::run_in_children(kProcesses, [&](int) {
    auto db = Db::open(url_, 1);
    if (!db.ok()) return 10;
    return migrate_to_latest(**db).ok() ? 0 : 11;
  });
  EXPECT_EQ(codes, std::vector<int>(kProcesses, 0));
  auto db = open_db(false);
  ASSERT_TRUE(db);
  auto rows = db->query("SELECT COUNT(*), MAX(version) FROM keel_schema_migrations");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->rows[0].get_int(0), latest());
  EXPECT_EQ(rows->rows[0].get_int(1), latest());
}

TEST_P(MigrationsTest, ACurrentSchemaOpensWhileAnotherConnectionIsWriting) {
  auto writer = open_db();
  ASSERT_TRUE(writer);
  std::promise<void> writing, release;
  std::shared_future<void> released = release.get_future().share();
  std::thread holder([&] {
    Status st = writer->transaction([&](SqlExecutor& tx) -> Status {
      KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO models (id, name, description, created_at, updated_at) "
                                   "VALUES (?, 'held', '', 1, 1)",
                                   {new_id()})
                               .status());
      writing.set_value();
      released.wait();
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.to_string();
  });
  writing.get_future().wait();
  // A second opener finds the schema current by reading; it must not queue behind the
  // writer (on SQLite that wait would last the whole busy timeout).
  auto reader = Db::open(url_, 1);
  ASSERT_TRUE(reader.ok());
  const auto started = std::chrono::steady_clock::now();
  Status migrated = migrate_to_latest(**reader);
  const auto waited = std::chrono::steady_clock::now() - started;
  release.set_value();
  holder.join();
  EXPECT_TRUE(migrated.ok()) << migrated.to_string();
  EXPECT_LT(waited, std::chrono::seconds(2));
}

TEST(Migrations, VersionsMustBeContiguous) {
  keel::testing::TempDir dir;
  auto db = Db::open("sqlite://" + dir.file("k.db"));
  ASSERT_TRUE(db.ok());
  std::vector<Migration> broken = {{1, "one", {"CREATE TABLE a (x TEXT)"}}, {3, "three", {"CREATE TABLE b (x TEXT)"}}};
  EXPECT_EQ(migrate(**db, broken).code(), ErrorCode::kInternal);
}

TEST(Migrations, AFailingMigrationLeavesTheSchemaAtThePreviousVersion) {
  keel::testing::TempDir dir;
  auto db = Db::open("sqlite://" + dir.file("k.db"));
  ASSERT_TRUE(db.ok());
  std::vector<Migration> steps = {{1, "one", {"CREATE TABLE a (x TEXT)"}},
                                  {2, "two", {"CREATE TABLE b (x TEXT)", "THIS IS NOT SQL"}}};
  EXPECT_FALSE(migrate(**db, steps).ok());
  auto v = schema_version(**db);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 1);
  EXPECT_FALSE((*db)->query("SELECT * FROM b").ok()) << "the half-applied step must be rolled back";
}

}  // namespace
}  // namespace keel::store
