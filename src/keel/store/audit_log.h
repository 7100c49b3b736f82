// Reading the append-only audit log (table audit_events): who did what, when, to which
// object, with the details each service recorded (before and after values where they
// apply). Services write their events inside the transaction that makes the change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/store/db.h"
#include "keel/util/json.h"

namespace keel::store {

struct AuditEvent {
  std::string id;
  int64_t at = 0;  // epoch ms
  std::string actor;
  std::string action;  // "model.alias.set", "user.create", ...
  std::string target;  // "model:chat", "user:ana", ...
  Json details = Json::object();
};

struct AuditQuery {
  std::string actor;          // exact
  std::string action_prefix;  // "model." matches every model action
  std::string target;         // exact, or a prefix ending in '*' ("model:*")
  int64_t since = 0;          // epoch ms, inclusive
  int64_t until = 0;          // epoch ms, exclusive; 0 = no bound
  int64_t limit = 100;        // newest first
};

// Appends one event inside the caller's transaction (so the event and the change it
// records commit together). An empty actor is recorded as "unknown".
Status record_audit_event(SqlExecutor& sql, const std::string& actor, const std::string& action,
                          const std::string& target, const Json& details);

Result<std::vector<AuditEvent>> list_audit_events(Db& db, const AuditQuery& query);
Json to_json(const AuditEvent& event);

}  // namespace keel::store
