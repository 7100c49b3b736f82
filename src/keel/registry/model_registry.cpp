#include "keel/registry/model_registry.h"

#include "keel/util/id.h"

namespace keel::registry {
namespace {

constexpr const char* kVersionColumns =
    "v.id, m.name, v.version, v.artifact_sha256, v.format, v.size_bytes, v.architecture, v.parameter_count, "
    "v.source, v.metadata, v.created_at";

ModelVersion version_from_row(const store::DbRow& r) {
  ModelVersion v;
  v.id = r.get_text(0);
  v.model_name = r.get_text(1);
  v.version = r.get_int(2);
  v.artifact_sha256 = r.get_text(3);
  v.format = r.get_text(4);
  v.size_bytes = static_cast<uint64_t>(r.get_int(5));
  v.architecture = r.get_text(6);
  v.parameter_count = static_cast<uint64_t>(r.get_int(7));
  v.source = r.get_text(8);
  auto meta = parse_json(r.get_text(9));
  v.metadata = meta.ok() ? *meta : Json::object();
  v.created_at = r.get_int(10);
  return v;
}

}  // namespace

Status validate_model_name(const std::string& name) {
  if (name.empty() || name.size() > 128) return invalid_argument("a model name must have 1 to 128 characters");
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!(alnum || (i > 0 && (c == '.' || c == '_' || c == '-')))) {
      return invalid_argument("model name '" + name +
                              "' may only use letters, digits, '.', '_' and '-', and must start with a letter or digit");
    }
  }
  return Status::Ok();
}

Result<ImportResult> ModelRegistry::import_file(const std::string& path, const std::string& name,
                                                const ModelFileFacts& facts, const std::string& actor,
                                                const std::function<void(uint64_t)>& progress) {
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  store::ArtifactCatalog catalog(db_, blobs_);
  KEEL_ASSIGN_OR_RETURN(store::ArtifactInfo blob, blobs_.put_file(path, progress));
  ImportResult result;
  auto record = [&](store::SqlExecutor& tx) -> Status {
    KEEL_RETURN_IF_ERROR(catalog.record(tx, blob));
    KEEL_ASSIGN_OR_RETURN(store::DbRows model, tx.query("SELECT id FROM models WHERE name = ?", {name}));
    std::string model_id;
    int64_t now = now_millis();
    if (model.empty()) {
      model_id = new_id();
      KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO models (id, name, description, created_at, updated_at) VALUES (?, ?, '', ?, ?)",
                                   {model_id, name, now, now})
                               .status());
    } else {
      model_id = model.rows[0].get_text(0);
      KEEL_ASSIGN_OR_RETURN(
          store::DbRows same,
          tx.query(std::string("SELECT ") + kVersionColumns +
                       " FROM model_versions v JOIN models m ON m.id = v.model_id"
                       " WHERE v.model_id = ? AND v.artifact_sha256 = ? ORDER BY v.version DESC LIMIT 1",
                   {model_id, blob.sha256}));
      if (!same.empty()) {
        result.version = version_from_row(same.rows[0]);
        result.created = false;
        return Status::Ok();
      }
    }
    KEEL_ASSIGN_OR_RETURN(store::DbRows max,
                          tx.query("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model_id = ?", {model_id}));
    ModelVersion v;
    v.id = new_id();
    v.model_name = name;
    v.version = max.rows[0].get_int(0) + 1;
    v.artifact_sha256 = blob.sha256;
    v.format = facts.format;
    v.size_bytes = blob.size_bytes;
    v.architecture = facts.architecture;
    v.parameter_count = facts.parameter_count;
    v.source = path;
    v.metadata = facts.metadata;
    v.created_at = now;
    KEEL_RETURN_IF_ERROR(
        tx.exec("INSERT INTO model_versions (id, model_id, version, artifact_sha256, format, size_bytes, architecture,"
                " parameter_count, source, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                {v.id, model_id, v.version, v.artifact_sha256, v.format, static_cast<int64_t>(v.size_bytes),
                 v.architecture, static_cast<int64_t>(v.parameter_count), v.source, dump_json(v.metadata), v.created_at})
            .status());
    KEEL_RETURN_IF_ERROR(tx.exec("UPDATE models SET updated_at = ? WHERE id = ?", {now, model_id}).status());
    Json details = {{"version", v.version}, {"sha256", v.artifact_sha256}, {"source", path}};
    KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO audit_events (id, at, actor, action, target, details) VALUES (?, ?, ?, ?, ?, ?)",
                                 {new_id(), now, actor, std::string("model.import"), "model:" + name, dump_json(details)})
                             .status());
    result.version = std::move(v);
    result.created = true;
    return Status::Ok();
  };
  // Two importers of one model can both compute the same next version (or both create
  // the model row) on PostgreSQL; the unique constraints turn the loser's insert into
  // kAlreadyExists, and a retry then sees the winner's row.
  Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    st = db_.transaction(record);
    if (st.code() != ErrorCode::kAlreadyExists) break;
  }
  if (!st.ok()) return st.with_context("recording model " + name);
  return result;
}

Result<std::vector<ModelSummary>> ModelRegistry::list() {
  KEEL_ASSIGN_OR_RETURN(store::DbRows models,
                        db_.query("SELECT m.name, m.description, m.created_at, "
                                  "(SELECT COUNT(*) FROM model_versions v WHERE v.model_id = m.id) "
                                  "FROM models m ORDER BY m.name"));
  std::vector<ModelSummary> out;
  for (const auto& r : models.rows) {
    ModelSummary s;
    s.name = r.get_text(0);
    s.description = r.get_text(1);
    s.created_at = r.get_int(2);
    s.version_count = r.get_int(3);
    if (s.version_count > 0) {
      KEEL_ASSIGN_OR_RETURN(ModelVersion latest, get(s.name));
      s.latest = std::move(latest);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<ModelVersion> ModelRegistry::get(const std::string& reference) {
  std::string name = reference;
  std::optional<int64_t> version;
  if (auto at = reference.rfind('@'); at != std::string::npos) {
    name = reference.substr(0, at);
    std::string v = reference.substr(at + 1);
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
      return invalid_argument("'" + reference + "' is not NAME or NAME@VERSION (a version is a number)");
    }
    version = std::stoll(v);
  }
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  std::string sql = std::string("SELECT ") + kVersionColumns +
                    " FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = ?";
  std::vector<store::DbValue> params{name};
  if (version) {
    sql += " AND v.version = ?";
    params.emplace_back(*version);
  }
  sql += " ORDER BY v.version DESC LIMIT 1";
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(sql, params));
  if (rows.empty()) {
    if (version) return not_found("model " + name + " has no version " + std::to_string(*version));
    return not_found("no model named '" + name + "' (see `keel models list`)");
  }
  return version_from_row(rows.rows[0]);
}

Result<std::vector<ModelVersion>> ModelRegistry::versions(const std::string& name) {
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query(std::string("SELECT ") + kVersionColumns +
                                      " FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = ?"
                                      " ORDER BY v.version",
                                  {name}));
  if (rows.empty()) return not_found("no model named '" + name + "' (see `keel models list`)");
  std::vector<ModelVersion> out;
  for (const auto& r : rows.rows) out.push_back(version_from_row(r));
  return out;
}

Json to_json(const ModelVersion& v) {
  return Json{{"id", v.id},
              {"name", v.model_name},
              {"version", v.version},
              {"format", v.format},
              {"size_bytes", v.size_bytes},
              {"sha256", v.artifact_sha256},
              {"architecture", v.architecture},
              {"parameter_count", v.parameter_count},
              {"source", v.source},
              {"metadata", v.metadata},
              {"created_at", v.created_at}};
}

}  // namespace keel::registry
