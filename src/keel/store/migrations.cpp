#include "keel/store/migrations.h"

#include "keel/util/id.h"

namespace keel::store {
namespace {

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS keel_schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at BIGINT NOT NULL)";

// Any arbitrary constant that identifies "Keel migrations" among advisory locks.
constexpr int64_t kPostgresMigrationLock = 0x6b65656c;  // "keel"

Result<bool> has_migration_table(SqlExecutor& db) {
  if (db.dialect() == DbDialect::kSqlite) {
    KEEL_ASSIGN_OR_RETURN(DbRows rows, db.query("SELECT name FROM sqlite_master WHERE type='table' AND name=?",
                                                {std::string("keel_schema_migrations")}));
    return !rows.empty();
  }
  // A scan of the catalog, not to_regclass(): a name lookup that found nothing is cached
  // by the connection and may still say "absent" after another migrator committed.
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db.query("SELECT count(*) FROM information_schema.tables WHERE "
                                              "table_schema = current_schema() AND table_name = ?",
                                              {std::string("keel_schema_migrations")}));
  return rows.rows[0].get_int(0) > 0;
}

Result<int64_t> count_user_tables(SqlExecutor& db) {
  if (db.dialect() == DbDialect::kSqlite) {
    KEEL_ASSIGN_OR_RETURN(DbRows rows,
                          db.query("SELECT count(*) FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"));
    return rows.rows[0].get_int(0);
  }
  KEEL_ASSIGN_OR_RETURN(DbRows rows,
                        db.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"));
  return rows.rows[0].get_int(0);
}

Result<int> current_version(SqlExecutor& db) {
  KEEL_ASSIGN_OR_RETURN(bool has_table, has_migration_table(db));
  if (!has_table) {
    KEEL_ASSIGN_OR_RETURN(int64_t tables, count_user_tables(db));
    if (tables > 0) {
      return failed_precondition("the database holds " + std::to_string(tables) +
                                 " tables but no Keel schema: it belongs to something else; "
                                 "point --db at a new or a Keel database");
    }
    return 0;
  }
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db.query("SELECT COALESCE(MAX(version), 0) FROM keel_schema_migrations"));
  return static_cast<int>(rows.rows[0].get_int(0));
}

Status newer_schema(int version, int newest) {
  return failed_precondition("the database schema is at version " + std::to_string(version) +
                             " but this keel knows only up to " + std::to_string(newest) +
                             ": upgrade keel before using this database");
}

}  // namespace

Result<int> schema_version(Db& db) { return current_version(db); }

Status migrate(Db& db, const std::vector<Migration>& migrations, int target) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return internal_error("migration " + migrations[i].name + " has version " +
                            std::to_string(migrations[i].version) + ", expected " + std::to_string(i + 1));
    }
  }
  int newest = static_cast<int>(migrations.size());
  if (target < 0 || target > newest) target = newest;
  // Most opens find the schema current: a plain read says so without taking the write
  // lock, so a command never waits on another process's transaction just to start.
  // Anything else - an older schema, or a read that raced another migrator between its
  // statements - is settled under the lock below.
  if (auto found = current_version(db); found.ok() && *found >= target) {
    return *found > newest ? newer_schema(*found, newest) : Status::Ok();
  }
  for (int next = 1; next <= target; ++next) {
    const Migration& m = migrations[static_cast<size_t>(next - 1)];
    Status st = db.transaction([&](SqlExecutor& tx) -> Status {
      if (tx.dialect() == DbDialect::kPostgres) {
        // Serialises concurrent migrators; released at COMMIT / ROLLBACK.
        KEEL_RETURN_IF_ERROR(tx.query("SELECT pg_advisory_xact_lock(?)", {kPostgresMigrationLock}).status());
      }
      KEEL_ASSIGN_OR_RETURN(int version, current_version(tx));
      if (version > newest) return newer_schema(version, newest);
      if (version >= next) return Status::Ok();  // another process got here first
      KEEL_RETURN_IF_ERROR(tx.exec(kCreateTable).status());
      for (const std::string& sql : m.statements) {
        KEEL_RETURN_IF_ERROR(tx.exec(sql).status().with_context("migration " + std::to_string(m.version) + " (" + m.name + ")"));
      }
      return tx.exec("INSERT INTO keel_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                     {static_cast<int64_t>(m.version), m.name, now_millis()})
          .status();
    });
    KEEL_RETURN_IF_ERROR(st);
  }
  return Status::Ok();
}

Status migrate_to_latest(Db& db) { return migrate(db, keel_migrations()); }

}  // namespace keel::store
