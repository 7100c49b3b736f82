#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <thread>

#include "keel/util/file.h"
#include "store/store_test_base.h"

namespace keel::store {
namespace {

class DbTest : public StoreTest {};
INSTANTIATE_STORE_TEST(DbTest);

TEST_P(DbTest, RoundTripsEveryValueTypeThroughBoundParameters) {
  auto db = open_db(false);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (i BIGINT, d DOUBLE PRECISION, s TEXT, n TEXT)").ok());
  // Text that would break string-spliced SQL, and a '?' that must not become a placeholder.
  std::string hostile = "it's a \"quote\" ? ; DROP TABLE t; -- ünïcødé 模型 \xF0\x9F\x9A\x80";
  int64_t big = std::numeric_limits<int64_t>::max();
  auto inserted = db->exec("INSERT INTO t (i, d, s, n) VALUES (?, ?, ?, ?)", {big, 3.25, hostile, nullptr});
  ASSERT_TRUE(inserted.ok()) << inserted.status().to_string();
  EXPECT_EQ(*inserted, 1);
  auto rows = db->query("SELECT i, d, s, n FROM t WHERE s = ? AND i = ?", {hostile, big});
  ASSERT_TRUE(rows.ok()) << rows.status().to_string();
  ASSERT_EQ(rows->size(), 1u);
  const DbRow& r = rows->rows[0];
  EXPECT_EQ(r.get_int(0), big);
  EXPECT_DOUBLE_EQ(r.get_double(1), 3.25);
  EXPECT_EQ(r.get_text(2), hostile);
  EXPECT_TRUE(r.is_null(3));
  EXPECT_EQ(rows->columns, (std::vector<std::string>{"i", "d", "s", "n"}));
  // A literal question mark inside quotes stays a literal.
  auto lit = db->query("SELECT 'why?' AS q, ? AS p", {std::string("x")});
  ASSERT_TRUE(lit.ok()) << lit.status().to_string();
  EXPECT_EQ(lit->rows[0].get_text(0), "why?");
  EXPECT_EQ(lit->rows[0].get_text(1), "x");
}

TEST_P(DbTest, TransactionCommitsOnOkAndRollsBackOnError) {
  auto db = open_db(false);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT)").ok());
  Status ok = db->transaction([](SqlExecutor& tx) -> Status {
    KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO t VALUES (?, ?)", {std::string("a"), int64_t{1}}).status());
    return tx.exec("INSERT INTO t VALUES (?, ?)", {std::string("b"), int64_t{2}}).status();
  });
  ASSERT_TRUE(ok.ok()) << ok.to_string();
  Status failed = db->transaction([](SqlExecutor& tx) -> Status {
    KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO t VALUES (?, ?)", {std::string("c"), int64_t{3}}).status());
    return invalid_argument("caller changed its mind");
  });
  EXPECT_EQ(failed.code(), ErrorCode::kInvalidArgument);
  Status conflict = db->transaction([](SqlExecutor& tx) -> Status {
    KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO t VALUES (?, ?)", {std::string("d"), int64_t{4}}).status());
    return tx.exec("INSERT INTO t VALUES (?, ?)", {std::string("a"), int64_t{5}}).status();  // duplicate key
  });
  EXPECT_EQ(conflict.code(), ErrorCode::kAlreadyExists) << conflict.to_string();
  auto rows = db->query("SELECT k FROM t ORDER BY k");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(rows->rows[0].get_text(0), "a");
  EXPECT_EQ(rows->rows[1].get_text(0), "b");
}

TEST_P(DbTest, ManyThreadsShareOneDb) {
  auto db = open_db(false);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE counter (id TEXT PRIMARY KEY, n BIGINT NOT NULL)").ok());
  ASSERT_TRUE(db->exec("INSERT INTO counter VALUES ('c', 0)").ok());
  ASSERT_TRUE(db->exec("CREATE TABLE log (thread BIGINT, i BIGINT)").ok());
  constexpr int kThreads = 8, kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Status st = db->transaction([&](SqlExecutor& tx) -> Status {
          KEEL_RETURN_IF_ERROR(tx.exec("UPDATE counter SET n = n + 1 WHERE id = 'c'").status());
          return tx.exec("INSERT INTO log VALUES (?, ?)", {int64_t{t}, int64_t{i}}).status();
        });
        if (!st.ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto n = db->query("SELECT n FROM counter");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->rows[0].get_int(0), kThreads * kPerThread);
  auto logged = db->query("SELECT COUNT(*) FROM log");
  ASSERT_TRUE(logged.ok());
  EXPECT_EQ(logged->rows[0].get_int(0), kThreads * kPerThread);
}

TEST_P(DbTest, TwoProcessesWriteOneStore) {
  {
    auto db = open_db(false);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE counter (id TEXT PRIMARY KEY, n BIGINT NOT NULL)").ok());
    ASSERT_TRUE(db->exec("INSERT INTO counter VALUES ('c', 0)").ok());
  }
  constexpr int kProcesses = 2, kPerProcess = 100;
  auto codes = keel::testing::run_in_children(kProcesses, [&](int) {
    // The child opens its own connection; nothing is shared with the parent.
    auto db = Db::open(url_, 1);
    if (!db.ok()) return 10;
    for (int i = 0; i < kPerProcess; ++i) {
      Status st = (*db)->transaction([](SqlExecutor& tx) -> Status {
        return tx.exec("UPDATE counter SET n = n + 1 WHERE id = 'c'").status();
      });
      if (!st.ok()) return 11;
    }
    return 0;
  });
  EXPECT_EQ(codes, std::vector<int>(kProcesses, 0));
  auto db = open_db(false);
  ASSERT_TRUE(db);
  auto n = db->query("SELECT n FROM counter");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->rows[0].get_int(0), kProcesses * kPerProcess);
}

TEST(DbUrl, ParsesSupportedSchemesAndRejectsOthers) {
  auto s = parse_db_url("sqlite:///var/lib/keel.db");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dialect, DbDialect::kSqlite);
  EXPECT_EQ(s->target, "/var/lib/keel.db");
  auto p = parse_db_url("postgresql://keel@localhost:5432/keel");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->dialect, DbDialect::kPostgres);
  auto bad = parse_db_url("mysql://root:hunter2@db/keel");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("hunter2"), std::string::npos) << "password leaked into the message";
  EXPECT_FALSE(parse_db_url("sqlite://").ok());
  EXPECT_EQ(redact_db_url("postgresql://u:secret@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(redact_db_url("postgresql://u@h/db"), "postgresql://u@h/db");
}

TEST(SqliteDb, CorruptOrForeignFileIsAClearErrorAndIsLeftUntouched) {
  keel::testing::TempDir dir;
  std::string path = dir.file("keel.db");
  std::string garbage(8192, 'x');
  ASSERT_TRUE(write_file_atomic(path, garbage).ok());
  auto db = Db::open("sqlite://" + path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), ErrorCode::kCorrupt) << db.status().to_string();
  EXPECT_NE(db.status().message().find(path), std::string::npos);
  auto after = read_file(path);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, garbage);  // nothing was lost or overwritten
}

TEST(SqliteDb, UnwritableLocationIsAClearError) {
  keel::testing::TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("plain"), "x").ok());
  auto db = Db::open("sqlite://" + dir.file("plain") + "/keel.db");
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("cannot open SQLite database"), std::string::npos) << db.status().to_string();
}

TEST(PostgresDb, ServerThatIsDownIsUnavailableNotAHang) {
  keel::testing::TempDir dir;  // an empty folder: no server socket in it
  auto started = std::chrono::steady_clock::now();
  auto db = Db::open("postgresql://keel@/keel?host=" + dir.path());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(db.status().message().find("cannot connect to PostgreSQL"), std::string::npos) << db.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
}

}  // namespace
}  // namespace keel::store
