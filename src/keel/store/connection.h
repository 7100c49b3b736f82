// One open connection to SQLite or PostgreSQL, used by Db's pool. Internal to the
// store module: services talk to Db and SqlExecutor. Not thread-safe: the pool
// hands a connection to one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "keel/store/db.h"

namespace keel::store {

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Result<DbRows> run(std::string_view sql, const std::vector<DbValue>& params) = 0;
  // The statement that opens a write transaction in this dialect.
  virtual std::string_view begin_sql() const = 0;
  // False once the connection is known to be broken (the pool then drops it).
  virtual bool healthy() const = 0;
};

Result<std::unique_ptr<Connection>> open_sqlite(const std::string& path);
Result<std::unique_ptr<Connection>> open_postgres(const std::string& conninfo, const std::string& display);

}  // namespace keel::store
