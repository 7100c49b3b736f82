// SQLite connection: WAL journal (readers never block the writer), a busy timeout
// so that several processes can share one file, foreign keys on. Prepared statements
// are kept per connection and reused (preparing is most of a small query's cost: the
// server resolves models and keys with a few of them per request).
#include <sqlite3.h>

#include <chrono>
#include <string>
#include <thread>
#include <unordered_map>

#include "keel/store/connection.h"

namespace keel::store {
namespace {

constexpr int kBusyTimeoutMs = 15000;

class SqliteConnection : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  std::string_view begin_sql() const override { return "BEGIN IMMEDIATE"; }
  bool healthy() const override { return true; }

  Result<DbRows> run(std::string_view sql, const std::vector<DbValue>& params) override {
    sqlite3_stmt* stmt = nullptr;
    int rc = SQLITE_OK;
    std::string key(sql);
    if (auto it = statements_.find(key); it != statements_.end()) {
      stmt = it->second;
    } else {
      rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
      if (rc != SQLITE_OK) return error(rc, "prepare");
      if (statements_.size() >= kMaxStatements) {
        for (auto& [old_sql, old] : statements_) sqlite3_finalize(old);
        statements_.clear();
      }
      statements_.emplace(std::move(key), stmt);
    }
    // Ready for the next use, whatever happens here; the bound text is released too.
    struct Resetter {
      sqlite3_stmt* s;
      ~Resetter() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
      }
    } resetter{stmt};
    if (static_cast<size_t>(sqlite3_bind_parameter_count(stmt)) != params.size()) {
      return internal_error("statement has " + std::to_string(sqlite3_bind_parameter_count(stmt)) +
                            " placeholders but " + std::to_string(params.size()) + " values were given");
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      const DbValue& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) {
        rc = sqlite3_bind_null(stmt, idx);
      } else if (auto p = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, idx, *p);
      } else if (auto p = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(stmt, idx, *p);
      } else {
        const std::string& s = std::get<std::string>(v);
        rc = sqlite3_bind_text64(stmt, idx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) return error(rc, "bind");
    }
    DbRows out;
    int ncols = sqlite3_column_count(stmt);
    for (int c = 0; c < ncols; ++c) out.columns.emplace_back(sqlite3_column_name(stmt, c));
    for (;;) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return error(rc, "step");
      DbRow row;
      row.values.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_NULL: row.values.emplace_back(nullptr); break;
          case SQLITE_INTEGER: row.values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c))); break;
          case SQLITE_FLOAT: row.values.emplace_back(sqlite3_column_double(stmt, c)); break;
          default: {
            const auto* text = reinterpret_cast<const char*>(sqlite3_column_blob(stmt, c));
            int n = sqlite3_column_bytes(stmt, c);
            row.values.emplace_back(std::string(text ? text : "", static_cast<size_t>(n)));
          }
        }
      }
      out.rows.push_back(std::move(row));
    }
    out.affected_rows = sqlite3_changes64(db_);
    return out;
  }

 private:
  Status error(int rc, std::string_view stage) const {
    std::string msg = std::string(sqlite3_errmsg(db_));
    int primary = rc & 0xff;
    std::string where = "SQLite " + path_;
    switch (primary) {
      case SQLITE_NOTADB:
      case SQLITE_CORRUPT:
        return corrupt(where + " is not a valid database file (" + msg + ")");
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return unavailable(where + " stayed locked by another process for " +
                           std::to_string(kBusyTimeoutMs / 1000) + " s (" + msg + ")");
      case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) return already_exists(msg);
        return failed_precondition(msg);
      case SQLITE_FULL:
        return resource_exhausted(where + ": disk full (" + msg + ")");
      case SQLITE_READONLY:
      case SQLITE_PERM:
      case SQLITE_CANTOPEN:
        return permission_denied(where + ": " + msg);
      default:
        return Status(ErrorCode::kIo, where + ": " + std::string(stage) + ": " + msg);
    }
  }

  static constexpr size_t kMaxStatements = 256;

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;  // SQL text -> its prepared statement
};

}  // namespace

Result<std::unique_ptr<Connection>> open_sqlite(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return permission_denied("cannot open SQLite database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  auto conn = std::make_unique<SqliteConnection>(db, path);
  // The first statement reads the header: a foreign or corrupt file fails here.
  // Switching a new file to WAL takes an exclusive lock, and SQLite answers a second
  // process doing the same at that moment with SQLITE_BUSY at once, without the busy
  // handler (waiting could deadlock both): such a refusal is retried for as long as the
  // busy timeout.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON"}) {
    for (;;) {
      auto r = conn->run(pragma, {});
      if (r.ok()) break;
      const int code = sqlite3_errcode(db) & 0xff;
      if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || std::chrono::steady_clock::now() > give_up) {
        return r.status();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace keel::store
