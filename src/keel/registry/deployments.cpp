#include "keel/registry/deployments.h"

#include <algorithm>

#include "keel/registry/routing_changes.h"
#include "keel/store/audit_log.h"
#include "keel/util/id.h"

namespace keel::registry {

Result<Deployment> DeploymentRegistry::set_target(const std::string& name, const std::string& model, int64_t version,
                                                  int64_t weight, const std::string& actor) {
  const RoutingChange changed;
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  if (weight < 0 || weight > kMaxDeploymentWeight) {
    return invalid_argument("a weight must be in [0, " + std::to_string(kMaxDeploymentWeight) + "], not " +
                            std::to_string(weight));
  }
  ModelRegistry models(db_, blobs_);
  KEEL_RETURN_IF_ERROR(models.get_version(model, version).status());
  KEEL_RETURN_IF_ERROR(db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(store::DbRows current,
                          sql.query("SELECT DISTINCT model FROM deployment_targets WHERE name = ?", {name}));
    if (!current.empty() && current.rows[0].get_text(0) != model) {
      return invalid_argument("deployment '" + name + "' serves model '" + current.rows[0].get_text(0) +
                              "', not '" + model + "' (remove it first to serve another model)");
    }
    KEEL_RETURN_IF_ERROR(sql.exec("DELETE FROM deployment_targets WHERE name = ? AND version = ?", {name, version})
                             .status());
    if (weight > 0) {
      KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO deployment_targets (name, model, version, weight, updated_at) "
                                    "VALUES (?, ?, ?, ?, ?)",
                                    {name, model, version, weight, now_millis()})
                               .status());
    }
    return store::record_audit_event(sql, actor, "deployment.set", "deployment:" + name,
                                     Json{{"model", model}, {"version", version}, {"weight", weight}});
  }));
  auto deployment = get(name);
  if (!deployment.ok() && deployment.status().code() == ErrorCode::kNotFound && weight == 0) {
    return Deployment{.name = name, .model = model};  // its last target went
  }
  return deployment;
}

Result<Deployment> DeploymentRegistry::get(const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(std::vector<Deployment> found, load("WHERE name = ?", {name}));
  if (found.empty()) return not_found("there is no deployment named '" + name + "'");
  return std::move(found[0]);
}

Result<std::vector<Deployment>> DeploymentRegistry::list() { return load("", {}); }

Status DeploymentRegistry::remove(const std::string& name, const std::string& actor) {
  const RoutingChange changed;
  return db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(int64_t gone, sql.exec("DELETE FROM deployment_targets WHERE name = ?", {name}));
    if (gone == 0) return not_found("there is no deployment named '" + name + "'");
    return store::record_audit_event(sql, actor, "deployment.remove", "deployment:" + name, Json::object());
  });
}

Result<std::vector<Deployment>> DeploymentRegistry::load(const std::string& where,
                                                         const std::vector<store::DbValue>& params) {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query("SELECT name, model, version, weight, updated_at FROM deployment_targets " + where +
                                      " ORDER BY name, version",
                                  params));
  std::vector<Deployment> out;
  for (const store::DbRow& r : rows.rows) {
    if (out.empty() || out.back().name != r.get_text(0)) out.push_back({.name = r.get_text(0), .model = r.get_text(1)});
    Deployment& d = out.back();
    d.targets.push_back({.version = r.get_int(2), .weight = r.get_int(3)});
    d.updated_at = std::max(d.updated_at, r.get_int(4));
  }
  return out;
}

int64_t pick_version(const Deployment& deployment, double u) {
  int64_t total = 0;
  for (const DeploymentTarget& t : deployment.targets) total += t.weight;
  const double point = u * static_cast<double>(total);
  double covered = 0;
  for (const DeploymentTarget& t : deployment.targets) {
    covered += static_cast<double>(t.weight);
    if (point < covered) return t.version;
  }
  return deployment.targets.back().version;
}

Json to_json(const Deployment& d) {
  int64_t total = 0;
  for (const DeploymentTarget& t : d.targets) total += t.weight;
  Json targets = Json::array();
  for (const DeploymentTarget& t : d.targets) {
    targets.push_back({{"version", t.version},
                       {"weight", t.weight},
                       {"share", total > 0 ? static_cast<double>(t.weight) / static_cast<double>(total) : 0.0}});
  }
  return Json{{"name", d.name}, {"model", d.model}, {"targets", targets}, {"updated_at", d.updated_at}};
}

}  // namespace keel::registry
