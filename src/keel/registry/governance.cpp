#include "keel/registry/governance.h"

#include <algorithm>
#include <cmath>

#include "keel/registry/routing_changes.h"
#include "keel/store/audit_log.h"
#include "keel/util/id.h"

namespace keel::registry {
namespace {

using store::DbRows;
using store::DbValue;
using store::SqlExecutor;

Result<Policy> load_policy(SqlExecutor& sql, const std::string& model_id) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, sql.query("SELECT policy FROM model_policies WHERE model_id = ?", {model_id}));
  if (rows.empty()) return Policy{};
  KEEL_ASSIGN_OR_RETURN(Json j, parse_json(rows.rows[0].get_text(0)));
  return parse_policy(j);
}

struct VersionRow {
  std::string id;
  std::string model_id;
  std::string author;
  bool archived = false;
};

Result<VersionRow> find_version(SqlExecutor& sql, const std::string& model, int64_t version) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, sql.query("SELECT v.id, v.model_id, v.user_id, v.archived_at FROM model_versions v "
                                               "JOIN models m ON m.id = v.model_id WHERE m.name = ? AND v.version = ?",
                                               {model, version}));
  if (rows.empty()) {
    return not_found("model " + model + " has no version " + std::to_string(version) + " (see `keel models show " +
                     model + " --all-versions`)");
  }
  return VersionRow{rows.rows[0].get_text(0), rows.rows[0].get_text(1), rows.rows[0].get_text(2), !rows.rows[0].is_null(3)};
}

std::string plural(int n, const std::string& word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

}  // namespace

Result<Policy> parse_policy(const Json& json) {
  if (!json.is_object()) return invalid_argument("a policy is a JSON object");
  Policy p;
  for (const auto& [key, value] : json.items()) {
    if (key == "protected_aliases" || key == "required_checks") {
      if (!value.is_array()) return invalid_argument("policy field '" + key + "' must be a list of strings");
      std::vector<std::string> list;
      for (const auto& item : value) {
        if (!item.is_string() || item.get<std::string>().empty()) {
          return invalid_argument("policy field '" + key + "' must be a list of non-empty strings");
        }
        list.push_back(item.get<std::string>());
      }
      (key == "protected_aliases" ? p.protected_aliases : p.required_checks) = std::move(list);
    } else if (key == "required_approvals") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 100) {
        return invalid_argument("policy field 'required_approvals' must be a whole number from 0 to 100");
      }
      p.required_approvals = static_cast<int>(value.get<int64_t>());
    } else {
      return invalid_argument("unknown policy field '" + key +
                              "' (use protected_aliases, required_checks, required_approvals)");
    }
  }
  return p;
}

Json to_json(const Policy& p) {
  return Json{{"protected_aliases", p.protected_aliases},
              {"required_checks", p.required_checks},
              {"required_approvals", p.required_approvals}};
}

Json to_json(const PromotionRequest& r) {
  Json reviews = Json::array();
  for (const auto& rv : r.reviews) {
    reviews.push_back({{"reviewer", rv.reviewer}, {"decision", rv.decision}, {"comment", rv.comment}, {"at", rv.at}});
  }
  return Json{{"id", r.id},          {"model", r.model_name},           {"version", r.version},
              {"alias", r.alias},    {"requested_by", r.requested_by}, {"status", r.status},
              {"comment", r.comment}, {"created_at", r.created_at},     {"reviews", reviews},
              {"missing", r.missing}};
}

Result<std::vector<std::string>> unmet_requirements(SqlExecutor& sql, const std::string& model_id,
                                                    const std::string& version_id, const std::string& alias) {
  std::vector<std::string> missing;
  KEEL_ASSIGN_OR_RETURN(DbRows version, sql.query("SELECT user_id, archived_at, version FROM model_versions WHERE id = ?",
                                                  {version_id}));
  if (version.empty()) return not_found("model version not found");
  if (!version.rows[0].is_null(1)) missing.push_back("the version is archived");
  KEEL_ASSIGN_OR_RETURN(Policy policy, load_policy(sql, model_id));
  auto& aliases = policy.protected_aliases;
  if (std::find(aliases.begin(), aliases.end(), alias) == aliases.end()) return missing;
  const std::string author = version.rows[0].get_text(0);
  if (policy.required_approvals > 0) {
    KEEL_ASSIGN_OR_RETURN(DbRows request, sql.query("SELECT id, status FROM promotion_requests WHERE version_id = ? AND "
                                                    "alias = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                                                    {version_id, alias}));
    if (request.empty()) {
      missing.push_back("a promotion request (keel models request-promotion ... --alias " + alias + ")");
      missing.push_back(plural(policy.required_approvals, "approval") + " by a reviewer other than the author" +
                        (author.empty() ? "" : " (" + author + ")"));
    } else if (request.rows[0].get_text(1) == "rejected") {
      missing.push_back("a new promotion request: the last one was rejected");
    } else {
      KEEL_ASSIGN_OR_RETURN(DbRows approvals, sql.query("SELECT COUNT(DISTINCT reviewer) FROM reviews WHERE request_id = ? "
                                                        "AND decision = 'approve' AND reviewer <> ?",
                                                        {request.rows[0].get_text(0), author}));
      int have = static_cast<int>(approvals.rows[0].get_int(0));
      if (have < policy.required_approvals) {
        missing.push_back(plural(policy.required_approvals - have, "more approval") +
                          " by a reviewer other than the author" + (author.empty() ? "" : " (" + author + ")") +
                          " (" + std::to_string(have) + " of " + std::to_string(policy.required_approvals) + ")");
      }
    }
  }
  for (const auto& check : policy.required_checks) {
    KEEL_ASSIGN_OR_RETURN(DbRows result, sql.query("SELECT passed FROM check_results WHERE version_id = ? AND name = ? "
                                                   "ORDER BY recorded_at DESC, id DESC LIMIT 1",
                                                   {version_id, check}));
    if (result.empty()) {
      missing.push_back("a result for check '" + check + "'");
    } else if (result.rows[0].get_int(0) == 0) {
      missing.push_back("check '" + check + "' to pass (its latest result failed)");
    }
  }
  return missing;
}

Result<Policy> Governance::policy(const std::string& model) {
  KEEL_ASSIGN_OR_RETURN(RegisteredModel m, registry_.get_model(model));
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT p.policy FROM model_policies p JOIN models m ON m.id = p.model_id "
                                               "WHERE m.name = ?",
                                               {m.name}));
  if (rows.empty()) return Policy{};
  KEEL_ASSIGN_OR_RETURN(Json j, parse_json(rows.rows[0].get_text(0)));
  return parse_policy(j);
}

Status Governance::set_policy(const std::string& model, const Policy& policy, const std::string& actor) {
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows m, sql.query("SELECT id FROM models WHERE name = ?", {model}));
    if (m.empty()) return not_found("no model named '" + model + "' (see `keel models list`)");
    std::string id = m.rows[0].get_text(0);
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO model_policies (model_id, policy, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                                  "ON CONFLICT (model_id) DO UPDATE SET policy = excluded.policy, updated_at = "
                                  "excluded.updated_at, updated_by = excluded.updated_by",
                                  {id, dump_json(to_json(policy)), now_millis(), actor})
                             .status());
    return store::record_audit_event(sql, actor, "model.policy.set", "model:" + model, to_json(policy));
  });
}

Status Governance::record_check(const std::string& model, int64_t version, const CheckResult& check,
                                const std::string& actor) {
  if (check.name.empty() || check.name.size() > 250) return invalid_argument("a check name must have 1 to 250 characters");
  if (check.value && !std::isfinite(*check.value)) return invalid_argument("a check value must be a finite number");
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(VersionRow v, find_version(sql, model, version));
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO check_results (id, version_id, name, passed, value, details, recorded_at, "
                                  "recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  {new_id(), v.id, check.name, int64_t{check.passed ? 1 : 0},
                                   check.value ? DbValue(*check.value) : DbValue(nullptr), check.details, now_millis(),
                                   actor})
                             .status());
    Json details = {{"version", version}, {"check", check.name}, {"passed", check.passed}};
    if (check.value) details["value"] = *check.value;
    return store::record_audit_event(sql, actor, "model.version.check", "model:" + model, details);
  });
}

Result<std::vector<CheckResult>> Governance::checks(const std::string& model, int64_t version) {
  KEEL_ASSIGN_OR_RETURN(VersionRow v, find_version(db_, model, version));
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT name, passed, value, details, recorded_at, recorded_by FROM "
                                               "check_results WHERE version_id = ? ORDER BY recorded_at, id",
                                               {v.id}));
  std::vector<CheckResult> out;
  for (const auto& r : rows.rows) {
    CheckResult c{r.get_text(0), r.get_int(1) != 0, std::nullopt, r.get_text(3), r.get_int(4), r.get_text(5)};
    if (!r.is_null(2)) c.value = r.get_double(2);
    out.push_back(std::move(c));
  }
  return out;
}

Result<PromotionRequest> Governance::load_request(const std::string& where, const std::vector<DbValue>& params) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT r.id, m.name, v.version, r.alias, r.requested_by, r.status, "
                                               "r.comment, r.created_at, m.id, v.id FROM promotion_requests r JOIN "
                                               "model_versions v ON v.id = r.version_id JOIN models m ON m.id = "
                                               "v.model_id WHERE " + where + " ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
                                               params));
  if (rows.empty()) return not_found("no promotion request");
  const auto& r = rows.rows[0];
  PromotionRequest p{r.get_text(0), r.get_text(1), r.get_int(2), r.get_text(3), r.get_text(4),
                     r.get_text(5), r.get_text(6), r.get_int(7), {}, {}};
  KEEL_ASSIGN_OR_RETURN(DbRows reviews, db_.query("SELECT reviewer, decision, comment, at FROM reviews WHERE request_id = ? "
                                                  "ORDER BY at, id",
                                                  {p.id}));
  for (const auto& rv : reviews.rows) p.reviews.push_back({rv.get_text(0), rv.get_text(1), rv.get_text(2), rv.get_int(3)});
  if (p.status == "pending" || p.status == "approved") {
    KEEL_ASSIGN_OR_RETURN(p.missing, unmet_requirements(db_, r.get_text(8), r.get_text(9), p.alias));
  }
  return p;
}

Result<PromotionRequest> Governance::request_promotion(const std::string& model, int64_t version,
                                                       const std::string& alias, const std::string& comment,
                                                       const std::string& actor) {
  KEEL_RETURN_IF_ERROR(validate_alias(alias));
  KEEL_RETURN_IF_ERROR(db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(VersionRow v, find_version(sql, model, version));
    if (v.archived) return failed_precondition(model + "@" + std::to_string(version) + " is archived and cannot be promoted");
    KEEL_ASSIGN_OR_RETURN(DbRows open, sql.query("SELECT id FROM promotion_requests WHERE version_id = ? AND alias = ? AND "
                                                 "status = 'pending'",
                                                 {v.id, alias}));
    if (!open.empty()) {
      return already_exists("a promotion request for " + model + "@" + std::to_string(version) + " to '" + alias +
                            "' is already open");
    }
    int64_t now = now_millis();
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO promotion_requests (id, version_id, alias, requested_by, status, comment, "
                                  "created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                                  {new_id(), v.id, alias, actor, comment, now, now})
                             .status());
    return store::record_audit_event(sql, actor, "model.promotion.request", "model:" + model,
                        Json{{"version", version}, {"alias", alias}, {"comment", comment}});
  }));
  return load_request("m.name = ? AND v.version = ? AND r.alias = ?", {model, version, alias});
}

Result<PromotionRequest> Governance::review(const std::string& model, int64_t version, const std::string& alias,
                                            bool approve, const std::string& comment, const auth::User& reviewer) {
  const RoutingChange changed;
  if (!auth::role_at_least(reviewer.role, auth::Role::kReviewer)) {
    return permission_denied("user '" + reviewer.name + "' has the role " + std::string(auth::role_name(reviewer.role)) +
                             "; approving or rejecting needs the reviewer role");
  }
  KEEL_RETURN_IF_ERROR(db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(VersionRow v, find_version(sql, model, version));
    if (approve && v.author == reviewer.name) {
      return permission_denied(reviewer.name + " is the author of " + model + "@" + std::to_string(version) +
                               " and cannot approve it; another reviewer must");
    }
    KEEL_ASSIGN_OR_RETURN(DbRows open, sql.query("SELECT id FROM promotion_requests WHERE version_id = ? AND alias = ? AND "
                                                 "status = 'pending' ORDER BY created_at DESC LIMIT 1",
                                                 {v.id, alias}));
    if (open.empty()) {
      return failed_precondition("no open promotion request for " + model + "@" + std::to_string(version) + " to '" +
                                 alias + "' (keel models request-promotion first)");
    }
    std::string request_id = open.rows[0].get_text(0);
    KEEL_ASSIGN_OR_RETURN(DbRows already, sql.query("SELECT decision FROM reviews WHERE request_id = ? AND reviewer = ?",
                                                    {request_id, reviewer.name}));
    if (!already.empty()) return already_exists(reviewer.name + " already reviewed this request (" + already.rows[0].get_text(0) + ")");
    int64_t now = now_millis();
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO reviews (id, request_id, reviewer, decision, comment, at) VALUES (?, ?, ?, ?, ?, ?)",
                                  {new_id(), request_id, reviewer.name, std::string(approve ? "approve" : "reject"), comment, now})
                             .status());
    KEEL_RETURN_IF_ERROR(store::record_audit_event(sql, reviewer.name, approve ? "model.promotion.approve" : "model.promotion.reject",
                                      "model:" + model, Json{{"version", version}, {"alias", alias}, {"comment", comment}}));
    if (!approve) {
      return sql.exec("UPDATE promotion_requests SET status = 'rejected', updated_at = ? WHERE id = ?", {now, request_id})
          .status();
    }
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> missing, unmet_requirements(sql, v.model_id, v.id, alias));
    if (!missing.empty()) return Status::Ok();  // still pending: more approvals or checks needed
    // The policy is met: move the alias now, in this transaction.
    KEEL_ASSIGN_OR_RETURN(DbRows before, sql.query("SELECT version FROM model_aliases WHERE model_id = ? AND alias = ?",
                                                   {v.model_id, alias}));
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO model_aliases (model_id, alias, version, updated_at) VALUES (?, ?, ?, ?) "
                                  "ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version, updated_at = "
                                  "excluded.updated_at",
                                  {v.model_id, alias, version, now})
                             .status());
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE promotion_requests SET status = 'promoted', updated_at = ? WHERE id = ?",
                                  {now, request_id})
                             .status());
    Json details = {{"alias", alias}, {"version", version}, {"request", request_id}};
    details["previous_version"] = before.empty() ? Json(nullptr) : Json(before.rows[0].get_int(0));
    return store::record_audit_event(sql, reviewer.name, "model.alias.set", "model:" + model, details);
  }));
  return load_request("m.name = ? AND v.version = ? AND r.alias = ?", {model, version, alias});
}

Result<std::vector<PromotionRequest>> Governance::requests(const std::string& model) {
  KEEL_ASSIGN_OR_RETURN(DbRows ids, db_.query("SELECT r.id FROM promotion_requests r JOIN model_versions v ON v.id = "
                                              "r.version_id JOIN models m ON m.id = v.model_id WHERE m.name = ? ORDER BY "
                                              "r.created_at DESC",
                                              {model}));
  std::vector<PromotionRequest> out;
  for (const auto& r : ids.rows) {
    KEEL_ASSIGN_OR_RETURN(PromotionRequest p, load_request("r.id = ?", {r.get_text(0)}));
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<std::string>> Governance::missing(const std::string& model, int64_t version,
                                                     const std::string& alias) {
  KEEL_ASSIGN_OR_RETURN(VersionRow v, find_version(db_, model, version));
  return unmet_requirements(db_, v.model_id, v.id, alias);
}

Status Governance::promote(const std::string& model, int64_t version, const std::string& alias,
                           const std::string& actor) {
  return registry_.set_alias(model, alias, version, actor);
}

Status Governance::archive(const std::string& model, int64_t version, const std::string& actor) {
  const RoutingChange changed;
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(VersionRow v, find_version(sql, model, version));
    if (v.archived) return Status::Ok();
    KEEL_ASSIGN_OR_RETURN(DbRows aliases, sql.query("SELECT alias FROM model_aliases WHERE model_id = ? AND version = ?",
                                                    {v.model_id, version}));
    if (!aliases.empty()) {
      return failed_precondition(model + "@" + std::to_string(version) + " holds the alias '" + aliases.rows[0].get_text(0) +
                                 "'; move the alias to another version before archiving");
    }
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE model_versions SET archived_at = ? WHERE id = ?", {now_millis(), v.id}).status());
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE promotion_requests SET status = 'rejected', updated_at = ? WHERE version_id = ? "
                                  "AND status = 'pending'",
                                  {now_millis(), v.id})
                             .status());
    return store::record_audit_event(sql, actor, "model.version.archive", "model:" + model, Json{{"version", version}});
  });
}

}  // namespace keel::registry
