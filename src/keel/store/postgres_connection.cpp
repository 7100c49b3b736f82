// PostgreSQL connection over libpq. `?` placeholders are rewritten to `$1..$n`
// (outside quoted literals); integers and doubles are sent with their type so that
// comparisons with BIGINT / DOUBLE PRECISION columns need no casts in SQL.
#include <libpq-fe.h>

#include <cstdlib>
#include <string>

#include "keel/store/connection.h"

namespace keel::store {
namespace {

// Type OIDs from PostgreSQL's catalog (pg_type.h), stable across versions.
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

std::string rewrite_placeholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;
      out.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      out.push_back(c);
    } else if (c == '?') {
      out += "$" + std::to_string(++n);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

class PostgresConnection : public Connection {
 public:
  PostgresConnection(PGconn* conn, std::string display) : conn_(conn), display_(std::move(display)) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  std::string_view begin_sql() const override { return "BEGIN"; }
  bool healthy() const override { return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

  Result<DbRows> run(std::string_view sql, const std::vector<DbValue>& params) override {
    std::string text = rewrite_placeholders(sql);
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<Oid> types(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const DbValue& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) continue;
      if (auto p = std::get_if<int64_t>(&v)) {
        storage[i] = std::to_string(*p);
        types[i] = kInt8Oid;
      } else if (auto p = std::get_if<double>(&v)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", *p);
        storage[i] = buf;
        types[i] = kFloat8Oid;
      } else {
        storage[i] = std::get<std::string>(v);
      }
      values[i] = storage[i].c_str();
    }
    PGresult* res = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), types.data(),
                                 values.data(), nullptr, nullptr, 0);
    struct Clear {
      PGresult* r;
      ~Clear() { PQclear(r); }
    } clear{res};
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return error(res);
    DbRows out;
    int ncols = PQnfields(res);
    int nrows = PQntuples(res);
    for (int c = 0; c < ncols; ++c) out.columns.emplace_back(PQfname(res, c));
    out.rows.reserve(static_cast<size_t>(nrows));
    for (int r = 0; r < nrows; ++r) {
      DbRow row;
      row.values.reserve(static_cast<size_t>(ncols));
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.values.emplace_back(nullptr);
          continue;
        }
        const char* v = PQgetvalue(res, r, c);
        switch (PQftype(res, c)) {
          case kInt2Oid:
          case kInt4Oid:
          case kInt8Oid: row.values.emplace_back(static_cast<int64_t>(std::strtoll(v, nullptr, 10))); break;
          case kBoolOid: row.values.emplace_back(static_cast<int64_t>(v[0] == 't' ? 1 : 0)); break;
          case kFloat4Oid:
          case kFloat8Oid:
          case kNumericOid: row.values.emplace_back(std::strtod(v, nullptr)); break;
          default: row.values.emplace_back(std::string(v, static_cast<size_t>(PQgetlength(res, r, c))));
        }
      }
      out.rows.push_back(std::move(row));
    }
    const char* tuples = PQcmdTuples(res);
    out.affected_rows = (tuples && *tuples) ? std::strtoll(tuples, nullptr, 10) : 0;
    return out;
  }

 private:
  Status error(PGresult* res) const {
    if (PQstatus(conn_) != CONNECTION_OK) {
      return unavailable("lost the connection to PostgreSQL at " + display_ + ": " + PQerrorMessage(conn_));
    }
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    std::string sqlstate = state ? state : "";
    std::string msg = PQresultErrorMessage(res);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (sqlstate == "23505") return already_exists(msg);
    if (sqlstate.rfind("23", 0) == 0) return failed_precondition(msg);  // other constraint violations
    if (sqlstate.rfind("53", 0) == 0) return resource_exhausted("PostgreSQL: " + msg);
    if (sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57", 0) == 0) return unavailable("PostgreSQL: " + msg);
    if (sqlstate == "42501") return permission_denied("PostgreSQL: " + msg);
    return Status(ErrorCode::kIo, "PostgreSQL: " + msg + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"));
  }

  PGconn* conn_;
  std::string display_;
};

void ignore_notice(void*, const PGresult*) {}

}  // namespace

Result<std::unique_ptr<Connection>> open_postgres(const std::string& conninfo, const std::string& display) {
  // connect_timeout keeps a server that is down from hanging the CLI.
  std::string with_timeout = conninfo;
  if (with_timeout.find("connect_timeout") == std::string::npos) {
    with_timeout += (with_timeout.find('?') == std::string::npos ? "?" : "&");
    with_timeout += "connect_timeout=10";
  }
  PGconn* conn = PQconnectdb(with_timeout.c_str());
  if (conn == nullptr) return unavailable("cannot connect to PostgreSQL at " + display + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(conn);
    return unavailable("cannot connect to PostgreSQL at " + display + ": " + msg +
                       " (is the server running, and is the URL right?)");
  }
  PQsetNoticeReceiver(conn, ignore_notice, nullptr);
  auto c = std::make_unique<PostgresConnection>(conn, display);
  auto r = c->run("SET client_min_messages TO warning", {});
  if (!r.ok()) return r.status();
  return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace keel::store
