#include "keel/store/db.h"

#include <cmath>
#include <condition_variable>
#include <mutex>

#include "keel/store/connection.h"
#include "keel/util/file.h"

namespace keel::store {

int64_t DbRow::get_int(size_t i) const {
  const DbValue& v = values.at(i);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<double>(&v)) return static_cast<int64_t>(*p);
  if (auto p = std::get_if<std::string>(&v)) {
    try {
      return std::stoll(*p);
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

double DbRow::get_double(size_t i) const {
  const DbValue& v = values.at(i);
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  if (auto p = std::get_if<std::string>(&v)) {
    try {
      return std::stod(*p);
    } catch (...) {
      return std::nan("");
    }
  }
  return 0.0;
}

std::string DbRow::get_text(size_t i) const {
  const DbValue& v = values.at(i);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return std::to_string(*p);
  if (auto p = std::get_if<double>(&v)) return std::to_string(*p);
  return "";
}

Result<int64_t> SqlExecutor::exec(std::string_view sql, const std::vector<DbValue>& params) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, query(sql, params));
  return rows.affected_rows;
}

Result<DbUrl> parse_db_url(const std::string& url) {
  auto starts = [&](std::string_view p) { return url.rfind(p, 0) == 0; };
  if (starts("sqlite://")) {
    std::string path = url.substr(9);  // "sqlite:///abs" -> "/abs"
    if (path.empty()) return invalid_argument("database URL '" + url + "' names no file (use sqlite:///PATH)");
    return DbUrl{DbDialect::kSqlite, path};
  }
  if (starts("sqlite:")) {
    std::string path = url.substr(7);
    if (path.empty()) return invalid_argument("database URL '" + url + "' names no file (use sqlite:///PATH)");
    return DbUrl{DbDialect::kSqlite, expand_home(path)};
  }
  if (starts("postgresql://") || starts("postgres://")) {
    return DbUrl{DbDialect::kPostgres, url};
  }
  return invalid_argument("unsupported database URL '" + redact_db_url(url) +
                          "': use sqlite:///PATH/keel.db or postgresql://USER@HOST:PORT/DB");
}

std::string redact_db_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  auto at = url.find('@', scheme_end + 3);
  auto slash = url.find('/', scheme_end + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  auto colon = url.find(':', scheme_end + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// Idle connections waiting for a borrower, plus a count of all open ones.
struct Db::Pool {
  std::mutex mutex;  // guards idle and open_count
  std::condition_variable available;
  std::vector<std::unique_ptr<Connection>> idle;
  size_t open_count = 0;
  size_t max_connections = 8;
};

Db::Db(DbDialect dialect, std::string url, std::string display_url, size_t max_connections)
    : dialect_(dialect), url_(std::move(url)), display_url_(std::move(display_url)), pool_(std::make_unique<Pool>()) {
  pool_->max_connections = max_connections == 0 ? 1 : max_connections;
}

Db::~Db() = default;

Result<std::unique_ptr<Connection>> Db::connect() const {
  if (dialect_ == DbDialect::kSqlite) return open_sqlite(url_);
  return open_postgres(url_, display_url_);
}

Result<std::unique_ptr<Db>> Db::open(const std::string& url, size_t max_connections) {
  KEEL_ASSIGN_OR_RETURN(DbUrl parsed, parse_db_url(url));
  std::unique_ptr<Db> db(new Db(parsed.dialect, parsed.target, redact_db_url(url), max_connections));
  KEEL_ASSIGN_OR_RETURN(auto first, db->connect());
  db->pool_->idle.push_back(std::move(first));
  db->pool_->open_count = 1;
  return db;
}

namespace {

class TransactionExecutor : public SqlExecutor {
 public:
  TransactionExecutor(Connection& conn, DbDialect dialect) : conn_(conn), dialect_(dialect) {}
  Result<DbRows> query(std::string_view sql, const std::vector<DbValue>& params) override {
    auto result = conn_.run(sql, params);
    if (!result.ok()) failed_ = true;
    return result;
  }
  DbDialect dialect() const override { return dialect_; }
  bool failed() const { return failed_; }

 private:
  Connection& conn_;
  DbDialect dialect_;
  bool failed_ = false;
};

}  // namespace

// A connection borrowed from the pool for one scope; given back (or dropped when it
// broke while borrowed) by the destructor.
class Db::Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&& other) noexcept : pool_(other.pool_), conn_(std::move(other.conn_)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  Connection* operator->() { return conn_.get(); }
  Connection& operator*() { return *conn_; }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> conn_;
};

Db::Lease::~Lease() {
  if (pool_ == nullptr || !conn_) return;
  std::lock_guard lock(pool_->mutex);
  if (conn_->healthy()) {
    pool_->idle.push_back(std::move(conn_));
  } else {
    --pool_->open_count;
    conn_.reset();
  }
  pool_->available.notify_one();
}

Result<Db::Lease> Db::lease() {
  std::unique_lock lock(pool_->mutex);
  pool_->available.wait(lock, [&] { return !pool_->idle.empty() || pool_->open_count < pool_->max_connections; });
  if (!pool_->idle.empty()) {
    std::unique_ptr<Connection> conn = std::move(pool_->idle.back());
    pool_->idle.pop_back();
    return Lease(pool_.get(), std::move(conn));
  }
  ++pool_->open_count;  // reserve a slot, then connect without holding the lock
  lock.unlock();
  auto made = connect();
  if (!made.ok()) {
    std::lock_guard relock(pool_->mutex);
    --pool_->open_count;
    pool_->available.notify_one();
    return made.status();
  }
  return Lease(pool_.get(), std::move(made).value());
}

Result<DbRows> Db::query(std::string_view sql, const std::vector<DbValue>& params) {
  KEEL_ASSIGN_OR_RETURN(Lease conn, lease());
  return conn->run(sql, params);
}

Status Db::transaction(const std::function<Status(SqlExecutor&)>& fn) {
  KEEL_ASSIGN_OR_RETURN(Lease conn, lease());
  auto begun = conn->run(conn->begin_sql(), {});
  if (!begun.ok()) return begun.status().with_context("begin transaction");
  TransactionExecutor tx(*conn, dialect_);
  Status st = fn(tx);
  if (st.ok() && !tx.failed()) {
    auto committed = conn->run("COMMIT", {});
    if (committed.ok()) return Status::Ok();
    st = committed.status().with_context("commit");
  } else if (st.ok()) {
    st = internal_error("a statement inside the transaction failed but the error was ignored");
  }
  (void)conn->run("ROLLBACK", {});
  return st;
}


std::string sql_placeholders(size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += i == 0 ? "?" : ", ?";
  s += ')';
  return s;
}

std::string like_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '%' || c == '_' || c == '!') out += '!';
    out += c;
  }
  return out;
}

}  // namespace keel::store
