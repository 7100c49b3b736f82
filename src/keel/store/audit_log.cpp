#include "keel/store/audit_log.h"

#include "keel/util/id.h"

namespace keel::store {

Status record_audit_event(SqlExecutor& sql, const std::string& actor, const std::string& action,
                          const std::string& target, const Json& details) {
  return sql
      .exec("INSERT INTO audit_events (id, at, actor, action, target, details) VALUES (?, ?, ?, ?, ?, ?)",
            {new_id(), now_millis(), actor.empty() ? std::string("unknown") : actor, action, target,
             dump_json(details)})
      .status();
}

Result<std::vector<AuditEvent>> list_audit_events(Db& db, const AuditQuery& q) {
  if (q.limit <= 0 || q.limit > 100000) return invalid_argument("limit must be between 1 and 100000");
  std::string sql = "SELECT id, at, actor, action, target, details FROM audit_events WHERE 1 = 1";
  std::vector<DbValue> params;
  if (!q.actor.empty()) {
    sql += " AND actor = ?";
    params.emplace_back(q.actor);
  }
  if (!q.action_prefix.empty()) {
    sql += " AND action LIKE ? ESCAPE '!'";
    params.emplace_back(like_escape(q.action_prefix) + "%");
  }
  if (!q.target.empty()) {
    if (q.target.back() == '*') {
      sql += " AND target LIKE ? ESCAPE '!'";
      params.emplace_back(like_escape(q.target.substr(0, q.target.size() - 1)) + "%");
    } else {
      sql += " AND target = ?";
      params.emplace_back(q.target);
    }
  }
  if (q.since > 0) {
    sql += " AND at >= ?";
    params.emplace_back(q.since);
  }
  if (q.until > 0) {
    sql += " AND at < ?";
    params.emplace_back(q.until);
  }
  sql += " ORDER BY at DESC, id DESC LIMIT ?";
  params.emplace_back(q.limit);
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db.query(sql, params));
  std::vector<AuditEvent> out;
  for (const auto& r : rows.rows) {
    AuditEvent e{r.get_text(0), r.get_int(1), r.get_text(2), r.get_text(3), r.get_text(4), Json::object()};
    auto details = parse_json(r.get_text(5));
    if (details.ok()) e.details = std::move(*details);
    out.push_back(std::move(e));
  }
  return out;
}

Json to_json(const AuditEvent& e) {
  return Json{{"id", e.id}, {"at", e.at}, {"actor", e.actor}, {"action", e.action}, {"target", e.target},
              {"details", e.details}};
}

}  // namespace keel::store
