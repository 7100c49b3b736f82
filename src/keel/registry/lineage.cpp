#include "keel/registry/lineage.h"

#include <cmath>
#include <sstream>

#include "keel/registry/governance.h"
#include "keel/tracking/tracking_service.h"

namespace keel::registry {
namespace {

constexpr int kMaxBaseDepth = 8;  // a chain of fine-tunes deeper than this is cut (and cycles end)

std::string find_tag(const std::vector<KeyValueTag>& tags, const std::string& key) {
  for (const auto& t : tags)
    if (t.key == key) return t.value;
  return "";
}

std::string find_kv(const std::vector<tracking::KeyValue>& kvs, const std::string& key) {
  for (const auto& kv : kvs)
    if (kv.key == key) return kv.value;
  return "";
}

std::string number_text(const Json& v) {
  if (v.is_number_float()) {
    std::ostringstream out;
    out.precision(6);
    out << v.get<double>();
    return out.str();
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

Result<Json> Lineage::trace(const std::string& name, int64_t version) { return trace_depth(name, version, 0); }

Result<Json> Lineage::trace_depth(const std::string& name, int64_t version, int depth) {
  ModelRegistry registry(db_, blobs_);
  KEEL_ASSIGN_OR_RETURN(ModelVersion v, registry.get_version(name, version));
  Json out = {{"model", name}, {"version", version}, {"format", v.format}, {"source", v.source},
              {"sha256", v.artifact_sha256}, {"created_at", v.created_at}, {"author", v.user_id},
              {"run", nullptr}, {"datasets", Json::array()}, {"base_model", nullptr}};
  std::string base = find_tag(v.tags, "base_model");
  if (!v.run_id.empty()) {
    tracking::TrackingService tracking(db_);
    auto run = tracking.get_run(v.run_id);
    if (run.ok()) {
      Json r = tracking::to_json(*run);
      out["run"] = {{"id", run->id}, {"name", run->name}, {"experiment_id", run->experiment_id},
                    {"status", r["status"]}, {"params", r["params"]}, {"metrics", r["metrics"]},
                    {"parent_run_id", r["parent_run_id"]}};
      for (const auto& d : run->inputs) {
        Json tags = Json::object();
        for (const auto& t : d.tags) tags[t.key] = t.value;
        out["datasets"].push_back({{"name", d.name}, {"digest", d.digest}, {"source_type", d.source_type},
                                   {"source", d.source}, {"tags", tags}});
      }
      if (base.empty()) base = find_kv(run->params, "base_model");
    } else {
      out["run"] = {{"id", v.run_id}, {"missing", true}};
    }
  }
  if (!base.empty()) {
    size_t at = base.rfind('@');
    std::string base_name = at == std::string::npos ? base : base.substr(0, at);
    std::string ref = at == std::string::npos ? "" : base.substr(at + 1);
    Json base_json = {{"reference", base}};
    if (depth + 1 < kMaxBaseDepth) {
      auto resolved = registry.get(base);
      if (resolved.ok()) {
        auto deeper = trace_depth(resolved->model_name, resolved->version, depth + 1);
        if (deeper.ok()) base_json = *deeper;
        base_json["reference"] = base;
      } else {
        base_json["unresolved"] = resolved.status().message();
      }
    }
    out["base_model"] = base_json;
  }
  return out;
}

Result<std::string> Lineage::model_card(const std::string& name, int64_t version) {
  ModelRegistry registry(db_, blobs_);
  KEEL_ASSIGN_OR_RETURN(RegisteredModel model, registry.get_model(name));
  KEEL_ASSIGN_OR_RETURN(ModelVersion v, registry.get_version(name, version));
  KEEL_ASSIGN_OR_RETURN(Json trace, trace(name, version));
  Governance governance(db_, blobs_);
  KEEL_ASSIGN_OR_RETURN(std::vector<CheckResult> checks, governance.checks(name, version));
  KEEL_ASSIGN_OR_RETURN(std::vector<PromotionRequest> requests, governance.requests(name));

  std::ostringstream md;
  md << "# " << name << " — version " << version << "\n\n";
  if (!model.description.empty()) md << model.description << "\n\n";
  if (!v.description.empty()) md << v.description << "\n\n";
  md << "## Model details\n\n| | |\n|---|---|\n";
  md << "| Format | " << v.format << " |\n";
  if (!v.architecture.empty()) md << "| Architecture | " << v.architecture << " |\n";
  if (v.parameter_count > 0) md << "| Parameters | " << v.parameter_count << " |\n";
  if (v.metadata.contains("quantization")) md << "| Quantization | " << number_text(v.metadata["quantization"]) << " |\n";
  if (v.metadata.contains("context_length")) md << "| Context length | " << number_text(v.metadata["context_length"]) << " |\n";
  if (!v.artifact_sha256.empty()) md << "| SHA-256 | `" << v.artifact_sha256 << "` |\n";
  md << "| Source | `" << v.source << "` |\n";
  md << "| Registered by | " << (v.user_id.empty() ? "-" : v.user_id) << " |\n";
  if (!v.aliases.empty()) {
    std::string aliases;
    for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
    md << "| Aliases | " << aliases << " |\n";
  }
  if (v.archived_at) md << "| Status | archived |\n";
  md << "\n## Lineage\n\n";
  if (trace["run"].is_null()) {
    md << "No training run is recorded for this version.\n";
  } else if (trace["run"].value("missing", false)) {
    md << "Produced by run `" << v.run_id << "` (no longer in the tracking store).\n";
  } else {
    const Json& run = trace["run"];
    md << "Produced by run `" << run["name"].get<std::string>() << "` (`" << run["id"].get<std::string>()
       << "`, experiment " << run["experiment_id"].get<std::string>() << ").\n";
    if (!run["params"].empty()) {
      md << "\n| Parameter | Value |\n|---|---|\n";
      for (const auto& [k, val] : run["params"].items()) md << "| " << k << " | " << number_text(val) << " |\n";
    }
    if (!run["metrics"].empty()) {
      md << "\n| Metric (final) | Value | Step |\n|---|---|---|\n";
      for (const auto& [k, m] : run["metrics"].items()) {
        md << "| " << k << " | " << number_text(m["value"]) << " | " << m["step"].get<int64_t>() << " |\n";
      }
    }
  }
  if (!trace["datasets"].empty()) {
    md << "\n### Training data\n\n";
    for (const auto& d : trace["datasets"]) {
      md << "- " << d["name"].get<std::string>() << " (digest `" << d["digest"].get<std::string>() << "`";
      if (d["tags"].contains("mlflow.data.context")) md << ", " << d["tags"]["mlflow.data.context"].get<std::string>();
      md << ")\n";
    }
  }
  if (!trace["base_model"].is_null()) {
    md << "\n### Base model\n\n" << trace["base_model"]["reference"].get<std::string>() << "\n";
  }
  md << "\n## Evaluation and checks\n\n";
  if (checks.empty()) {
    md << "No check results are recorded.\n";
  } else {
    md << "| Check | Result | Value | Recorded by |\n|---|---|---|---|\n";
    for (const auto& c : checks) {
      md << "| " << c.name << " | " << (c.passed ? "passed" : "failed") << " | "
         << (c.value ? number_text(Json(*c.value)) : "-") << " | " << c.recorded_by << " |\n";
    }
  }
  md << "\n## Reviews and approvals\n\n";
  bool any = false;
  for (const auto& r : requests) {
    if (r.version != version) continue;
    any = true;
    md << "- Promotion to `" << r.alias << "` requested by " << r.requested_by << ": **" << r.status << "**\n";
    for (const auto& rv : r.reviews) {
      md << "  - " << rv.decision << " by " << rv.reviewer << (rv.comment.empty() ? "" : ": " + rv.comment) << "\n";
    }
  }
  if (!any) md << "No promotion has been requested for this version.\n";
  return md.str();
}

}  // namespace keel::registry
