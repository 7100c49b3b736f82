// The metadata store: one small SQL interface over SQLite (embedded default) and
// PostgreSQL (server), chosen by URL. Services write portable SQL with `?`
// placeholders; values always travel as bound parameters, never spliced into text.
// A Db is safe to share between threads (it keeps a pool of connections); a
// transaction's SqlExecutor belongs to the one thread running the transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "keel/util/status.h"

namespace keel::store {

using DbValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

struct DbRow {
  std::vector<DbValue> values;

  bool is_null(size_t i) const { return std::holds_alternative<std::nullptr_t>(values.at(i)); }
  // Integers (and integral doubles) as int64; NULL as 0.
  int64_t get_int(size_t i) const;
  double get_double(size_t i) const;
  // Text as is, numbers formatted, NULL as "".
  std::string get_text(size_t i) const;
};

struct DbRows {
  std::vector<std::string> columns;
  std::vector<DbRow> rows;
  int64_t affected_rows = 0;  // for INSERT / UPDATE / DELETE

  bool empty() const { return rows.empty(); }
  size_t size() const { return rows.size(); }
};

enum class DbDialect { kSqlite, kPostgres };

// Runs statements. Implemented by Db (each call on a pooled connection, autocommit)
// and by the executor a transaction hands to its callback.
class SqlExecutor {
 public:
  virtual ~SqlExecutor() = default;
  // One statement with `?` placeholders bound to params in order.
  virtual Result<DbRows> query(std::string_view sql, const std::vector<DbValue>& params = {}) = 0;
  virtual DbDialect dialect() const = 0;

  // query() for statements whose rows are not needed; returns the affected row count.
  Result<int64_t> exec(std::string_view sql, const std::vector<DbValue>& params = {});
};

class Connection;

class Db : public SqlExecutor {
 public:
  // Opens a store by URL: "sqlite:///abs/path/keel.db", "sqlite:relative.db",
  // "postgresql://user@host:port/db" (also "postgres://", and libpq's "host=/socket"
  // query parameter). The first connection is made here, so a bad path, a foreign or
  // corrupt file, or a PostgreSQL server that is down is reported at once.
  static Result<std::unique_ptr<Db>> open(const std::string& url, size_t max_connections = 8);

  ~Db() override;

  Result<DbRows> query(std::string_view sql, const std::vector<DbValue>& params = {}) override;
  DbDialect dialect() const override { return dialect_; }
  // The URL with any password replaced by "***", for messages and logs.
  const std::string& display_url() const { return display_url_; }

  // Runs fn inside one transaction on one connection: COMMIT when fn returns OK,
  // ROLLBACK otherwise (and when fn's statements fail). On SQLite the transaction
  // takes the write lock at BEGIN (BEGIN IMMEDIATE), so two writers never deadlock.
  Status transaction(const std::function<Status(SqlExecutor&)>& fn);

 private:
  struct Pool;
  class Lease;
  Result<Lease> lease();
  Db(DbDialect dialect, std::string url, std::string display_url, size_t max_connections);
  Result<std::unique_ptr<Connection>> connect() const;

  DbDialect dialect_;
  std::string url_;  // libpq conninfo or SQLite file path
  std::string display_url_;
  std::unique_ptr<Pool> pool_;
};

// Parses a store URL into its dialect and the connection string the driver takes;
// exposed for tests and for error messages.
struct DbUrl {
  DbDialect dialect;
  std::string target;  // SQLite: file path; PostgreSQL: the URL handed to libpq
};
Result<DbUrl> parse_db_url(const std::string& url);

// "(?, ?, ?)" for n = 3: a parenthesised list of n placeholders (IN lists, VALUES rows).
std::string sql_placeholders(size_t n);
// Escapes LIKE's wildcards (and the escape character '!') so that text matches itself;
// use with "LIKE ? ESCAPE '!'".
std::string like_escape(std::string_view text);

// Replaces the password in a URL ("postgresql://u:secret@h/db" -> "postgresql://u:***@h/db").
std::string redact_db_url(const std::string& url);

}  // namespace keel::store
