#include "keel/registry/model_registry.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "keel/registry/governance.h"
#include "keel/registry/routing_changes.h"
#include "keel/store/audit_log.h"
#include "keel/tracking/run_filter.h"
#include "keel/util/id.h"

namespace keel::registry {
namespace {

constexpr const char* kVersionColumns =
    "v.id, m.name, v.version, v.artifact_sha256, v.format, v.size_bytes, v.architecture, v.parameter_count, "
    "v.source, v.metadata, v.created_at, v.updated_at, v.run_id, v.description, v.status, v.user_id, "
    "v.logged_model_id, v.archived_at";

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
  v.updated_at = r.get_int(11);
  v.run_id = r.get_text(12);
  v.description = r.get_text(13);
  v.status = r.get_text(14);
  v.user_id = r.get_text(15);
  v.logged_model_id = r.get_text(16);
  if (!r.is_null(17)) v.archived_at = r.get_int(17);
  return v;
}

Json tags_json(const std::vector<KeyValueTag>& tags) {
  Json out = Json::object();
  for (const auto& t : tags) out[t.key] = t.value;
  return out;
}

Status validate_tag(const KeyValueTag& tag) {
  if (tag.key.empty() || tag.key.size() > 250) return invalid_argument("a tag key must have 1 to 250 bytes");
  if (tag.value.size() > 100000) {
    return invalid_argument("tag '" + tag.key + "' has a value of " + std::to_string(tag.value.size()) +
                            " bytes, over the limit of 100000");
  }
  return Status::Ok();
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
  const RoutingChange changed;
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
    v.created_at = v.updated_at = now;
    v.user_id = actor;
    KEEL_RETURN_IF_ERROR(
        tx.exec("INSERT INTO model_versions (id, model_id, version, artifact_sha256, format, size_bytes, architecture,"
                " parameter_count, source, metadata, created_at, updated_at, user_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                {v.id, model_id, v.version, v.artifact_sha256, v.format, static_cast<int64_t>(v.size_bytes),
                 v.architecture, static_cast<int64_t>(v.parameter_count), v.source, dump_json(v.metadata), v.created_at,
                 v.updated_at, v.user_id})
            .status());
    KEEL_RETURN_IF_ERROR(tx.exec("UPDATE models SET updated_at = ? WHERE id = ?", {now, model_id}).status());
    Json details = {{"version", v.version}, {"sha256", v.artifact_sha256}, {"source", path}};
    KEEL_RETURN_IF_ERROR(store::record_audit_event(tx, actor, "model.import", "model:" + name, details));
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

namespace {

// A reference split: the model's name and a version number or an alias (neither: the
// latest version).
struct Reference {
  std::string name;
  std::optional<int64_t> version;
  std::string alias;
};

Result<Reference> parse_reference(const std::string& reference) {
  Reference r{.name = reference};
  if (auto at = reference.rfind('@'); at != std::string::npos) {
    r.name = reference.substr(0, at);
    std::string v = reference.substr(at + 1);
    if (v.empty()) return invalid_argument("'" + reference + "' is not NAME, NAME@VERSION or NAME@ALIAS");
    if (v.find_first_not_of("0123456789") != std::string::npos) {
      r.alias = std::move(v);
    } else {
      if (v.size() > 9) return invalid_argument("'" + reference + "': version number too large");
      r.version = std::stoll(v);
    }
  }
  KEEL_RETURN_IF_ERROR(validate_model_name(r.name));
  return r;
}

Status version_not_found(const Reference& r) {
  if (r.version) return not_found("model " + r.name + " has no version " + std::to_string(*r.version));
  return not_found("no model named '" + r.name + "' (see `keel models list`)");
}

}  // namespace

Result<ModelVersion> ModelRegistry::get(const std::string& reference) {
  KEEL_ASSIGN_OR_RETURN(Reference r, parse_reference(reference));
  if (!r.alias.empty()) return get_by_alias(r.name, r.alias);
  std::string sql = std::string("SELECT ") + kVersionColumns +
                    " FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = ?";
  std::vector<store::DbValue> params{r.name};
  if (r.version) {
    sql += " AND v.version = ?";
    params.emplace_back(*r.version);
  }
  sql += " ORDER BY v.version DESC LIMIT 1";
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(sql, params));
  if (rows.empty()) return version_not_found(r);
  std::vector<ModelVersion> found{version_from_row(rows.rows[0])};
  KEEL_RETURN_IF_ERROR(fill_version_details(db_, found));
  return std::move(found[0]);
}

Result<VersionKey> ModelRegistry::resolve(const std::string& reference) {
  KEEL_ASSIGN_OR_RETURN(Reference r, parse_reference(reference));
  store::DbRows rows;
  if (!r.alias.empty()) {
    KEEL_ASSIGN_OR_RETURN(rows, db_.query("SELECT v.id, v.version FROM model_aliases a"
                                          " JOIN models m ON m.id = a.model_id"
                                          " JOIN model_versions v ON v.model_id = a.model_id AND v.version = a.version"
                                          " WHERE m.name = ? AND a.alias = ?",
                                          {r.name, r.alias}));
    // Not found: get_by_alias tells which part is missing.
    if (rows.empty()) return get_by_alias(r.name, r.alias).status();
  } else if (r.version) {
    KEEL_ASSIGN_OR_RETURN(rows, db_.query("SELECT v.id, v.version FROM model_versions v"
                                          " JOIN models m ON m.id = v.model_id WHERE m.name = ? AND v.version = ?",
                                          {r.name, *r.version}));
  } else {
    KEEL_ASSIGN_OR_RETURN(rows, db_.query("SELECT v.id, v.version FROM model_versions v"
                                          " JOIN models m ON m.id = v.model_id WHERE m.name = ?"
                                          " ORDER BY v.version DESC LIMIT 1",
                                          {r.name}));
  }
  if (rows.empty()) return version_not_found(r);
  return VersionKey{.id = rows.rows[0].get_text(0), .model_name = r.name, .version = rows.rows[0].get_int(1)};
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
  KEEL_RETURN_IF_ERROR(fill_version_details(db_, out));
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
              {"created_at", v.created_at},
              {"updated_at", v.updated_at},
              {"run_id", v.run_id},
              {"description", v.description},
              {"status", v.status},
              {"tags", tags_json(v.tags)},
              {"aliases", v.aliases},
              {"archived", v.archived_at.has_value()}};
}

}  // namespace keel::registry

namespace keel::registry {
namespace {

using store::DbRows;
using store::DbValue;
using store::SqlExecutor;

Status upsert_tag(SqlExecutor& sql, const std::string& table, const std::string& owner_column, const std::string& owner,
                  const KeyValueTag& tag) {
  return sql
      .exec("INSERT INTO " + table + " (" + owner_column + ", key, value) VALUES (?, ?, ?) ON CONFLICT (" +
                owner_column + ", key) DO UPDATE SET value = excluded.value",
            {owner, tag.key, tag.value})
      .status();
}

}  // namespace

Status validate_alias(const std::string& alias) {
  if (alias.empty() || alias.size() > 255) return invalid_argument("an alias must have 1 to 255 characters");
  for (char c : alias) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return invalid_argument("alias '" + alias + "' may only use letters, digits, '_' and '-'");
    }
  }
  std::string lower = alias;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "latest" || (lower.size() > 1 && lower[0] == 'v' && lower.find_first_not_of("0123456789", 1) == std::string::npos)) {
    return invalid_argument("alias '" + alias + "' is reserved (it reads as a version reference)");
  }
  if (alias.find_first_not_of("0123456789") == std::string::npos) {
    return invalid_argument("alias '" + alias + "' is a number: it would read as a version");
  }
  return Status::Ok();
}

Result<std::string> ModelRegistry::model_id(SqlExecutor& sql, const std::string& name) {
  // Inside a PostgreSQL transaction the row lock serialises writers of one model (next
  // version numbers, alias moves); SQLite's write lock already does.
  std::string lock = sql.dialect() == store::DbDialect::kPostgres && &sql != &db_ ? " FOR UPDATE" : "";
  KEEL_ASSIGN_OR_RETURN(DbRows rows, sql.query("SELECT id FROM models WHERE name = ?" + lock, {name}));
  if (rows.empty()) return not_found("Registered Model with name=" + name + " not found");
  return rows.rows[0].get_text(0);
}

Status ModelRegistry::fill_version_details(SqlExecutor& sql, std::vector<ModelVersion>& versions) {
  if (versions.empty()) return Status::Ok();
  std::vector<DbValue> ids;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < versions.size(); ++i) {
    ids.emplace_back(versions[i].id);
    index[versions[i].id] = i;
  }
  // In chunks, to stay under the databases' parameter limits.
  for (size_t start = 0; start < ids.size(); start += 500) {
    std::vector<DbValue> chunk(ids.begin() + static_cast<std::ptrdiff_t>(start),
                               ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + 500)));
    KEEL_ASSIGN_OR_RETURN(DbRows tags, sql.query("SELECT version_id, key, value FROM model_version_tags WHERE version_id "
                                                 "IN " + store::sql_placeholders(chunk.size()) + " ORDER BY key",
                                                 chunk));
    for (const auto& r : tags.rows) versions[index.at(r.get_text(0))].tags.push_back({r.get_text(1), r.get_text(2)});
    KEEL_ASSIGN_OR_RETURN(DbRows aliases, sql.query("SELECT v.id, a.alias FROM model_aliases a JOIN model_versions v ON "
                                                    "v.model_id = a.model_id AND v.version = a.version WHERE v.id IN " +
                                                        store::sql_placeholders(chunk.size()) + " ORDER BY a.alias",
                                                    chunk));
    for (const auto& r : aliases.rows) versions[index.at(r.get_text(0))].aliases.push_back(r.get_text(1));
  }
  return Status::Ok();
}

Result<ModelVersion> ModelRegistry::load_version(SqlExecutor& sql, const std::string& where,
                                                 const std::vector<DbValue>& params) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, sql.query(std::string("SELECT ") + kVersionColumns +
                                                   " FROM model_versions v JOIN models m ON m.id = v.model_id WHERE " +
                                                   where,
                                               params));
  if (rows.empty()) return not_found("model version not found");
  std::vector<ModelVersion> found{version_from_row(rows.rows[0])};
  KEEL_RETURN_IF_ERROR(fill_version_details(sql, found));
  return std::move(found[0]);
}

Result<std::vector<RegisteredModel>> ModelRegistry::load_models(const std::string& where,
                                                                const std::vector<DbValue>& params) {
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT m.id, m.name, m.description, m.created_at, m.updated_at FROM "
                                               "models m WHERE " + where + " ORDER BY m.name",
                                               params));
  std::vector<RegisteredModel> out;
  std::map<std::string, size_t> index;
  for (const auto& r : rows.rows) {
    RegisteredModel m;
    m.name = r.get_text(1);
    m.description = r.get_text(2);
    m.created_at = r.get_int(3);
    m.updated_at = r.get_int(4);
    index[r.get_text(0)] = out.size();
    out.push_back(std::move(m));
  }
  if (out.empty()) return out;
  // Only the selected models' tags, aliases and latest versions (get_model asks for one).
  const std::string selected = " model_id IN (SELECT m.id FROM models m WHERE " + where + ")";
  KEEL_ASSIGN_OR_RETURN(DbRows tags,
                        db_.query("SELECT model_id, key, value FROM model_tags WHERE" + selected + " ORDER BY key", params));
  for (const auto& r : tags.rows) {
    auto it = index.find(r.get_text(0));
    if (it != index.end()) out[it->second].tags.push_back({r.get_text(1), r.get_text(2)});
  }
  KEEL_ASSIGN_OR_RETURN(DbRows aliases, db_.query("SELECT model_id, alias, version FROM model_aliases WHERE" + selected +
                                                       " ORDER BY alias",
                                                   params));
  for (const auto& r : aliases.rows) {
    auto it = index.find(r.get_text(0));
    if (it != index.end()) out[it->second].aliases.emplace_back(r.get_text(1), r.get_int(2));
  }
  // The latest version of each model.
  KEEL_ASSIGN_OR_RETURN(DbRows latest, db_.query(std::string("SELECT ") + kVersionColumns +
                                                 " FROM model_versions v JOIN models m ON m.id = v.model_id WHERE "
                                                 "v.version = (SELECT MAX(version) FROM model_versions w WHERE "
                                                 "w.model_id = v.model_id) AND " + where,
                                                 params));
  std::vector<ModelVersion> versions;
  for (const auto& r : latest.rows) versions.push_back(version_from_row(r));
  KEEL_RETURN_IF_ERROR(fill_version_details(db_, versions));
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < out.size(); ++i) by_name[out[i].name] = i;
  for (auto& v : versions) {
    auto it = by_name.find(v.model_name);
    if (it != by_name.end()) out[it->second].latest = std::move(v);
  }
  return out;
}

Result<RegisteredModel> ModelRegistry::create_model(const std::string& name, const std::string& description,
                                                    const std::vector<KeyValueTag>& tags, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  for (const auto& t : tags) KEEL_RETURN_IF_ERROR(validate_tag(t));
  Status st = db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows same, sql.query("SELECT id FROM models WHERE name = ?", {name}));
    if (!same.empty()) return already_exists("Registered Model (name=" + name + ") already exists.");
    std::string id = new_id();
    int64_t now = now_millis();
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO models (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                                  {id, name, description, now, now})
                             .status());
    for (const auto& t : tags) KEEL_RETURN_IF_ERROR(upsert_tag(sql, "model_tags", "model_id", id, t));
    return store::record_audit_event(sql, actor, "model.create", "model:" + name, Json{{"description", description}});
  });
  if (st.code() == ErrorCode::kAlreadyExists) return already_exists("Registered Model (name=" + name + ") already exists.");
  KEEL_RETURN_IF_ERROR(st);
  return get_model(name);
}

Result<RegisteredModel> ModelRegistry::get_model(const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(std::vector<RegisteredModel> found, load_models("m.name = ?", {name}));
  if (found.empty()) return not_found("Registered Model with name=" + name + " not found");
  return std::move(found[0]);
}

Result<RegisteredModel> ModelRegistry::update_model(const std::string& name, const std::string& description,
                                                    const std::string& actor) {
  KEEL_RETURN_IF_ERROR(db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string id, model_id(sql, name));
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE models SET description = ?, updated_at = ? WHERE id = ?",
                                  {description, now_millis(), id})
                             .status());
    return store::record_audit_event(sql, actor, "model.update", "model:" + name, Json{{"description", description}});
  }));
  return get_model(name);
}

Status ModelRegistry::set_model_tag(const std::string& name, const KeyValueTag& tag, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(validate_tag(tag));
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string id, model_id(sql, name));
    KEEL_RETURN_IF_ERROR(upsert_tag(sql, "model_tags", "model_id", id, tag));
    return store::record_audit_event(sql, actor, "model.set_tag", "model:" + name, Json{{"key", tag.key}, {"value", tag.value}});
  });
}

Status ModelRegistry::delete_model_tag(const std::string& name, const std::string& key, const std::string& actor) {
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string id, model_id(sql, name));
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("DELETE FROM model_tags WHERE model_id = ? AND key = ?", {id, key}));
    if (n == 0) return not_found("model " + name + " has no tag '" + key + "'");
    return store::record_audit_event(sql, actor, "model.delete_tag", "model:" + name, Json{{"key", key}});
  });
}

Result<ModelVersion> ModelRegistry::create_version(const std::string& name, const NewVersion& spec,
                                                   const std::string& actor, const std::string& format,
                                                   const Json& metadata) {
  const RoutingChange changed;
  for (const auto& t : spec.tags) KEEL_RETURN_IF_ERROR(validate_tag(t));
  if (spec.source.size() > 4096) return invalid_argument("a model version source must be at most 4096 bytes");
  ModelVersion created;
  auto create = [&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string id, model_id(sql, name));
    KEEL_ASSIGN_OR_RETURN(DbRows max, sql.query("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model_id = ?", {id}));
    ModelVersion& v = created;
    v = ModelVersion{};
    v.id = new_id();
    v.model_name = name;
    v.version = max.rows[0].get_int(0) + 1;
    v.format = format;
    v.metadata = metadata;
    v.source = spec.source;
    v.run_id = spec.run_id;
    v.description = spec.description;
    v.logged_model_id = spec.logged_model_id;
    v.user_id = actor;
    v.created_at = v.updated_at = now_millis();
    v.tags = spec.tags;
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO model_versions (id, model_id, version, artifact_sha256, format, source, "
                                  "metadata, created_at, updated_at, run_id, description, status, user_id, "
                                  "logged_model_id) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, 'READY', ?, ?)",
                                  {v.id, id, v.version, v.format, v.source, dump_json(v.metadata), v.created_at, v.updated_at,
                                   v.run_id.empty() ? DbValue(nullptr) : DbValue(v.run_id), v.description, v.user_id,
                                   v.logged_model_id.empty() ? DbValue(nullptr) : DbValue(v.logged_model_id)})
                             .status());
    for (const auto& t : spec.tags) KEEL_RETURN_IF_ERROR(upsert_tag(sql, "model_version_tags", "version_id", v.id, t));
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE models SET updated_at = ? WHERE id = ?", {v.created_at, id}).status());
    return store::record_audit_event(sql, actor, "model.version.create", "model:" + name,
                        Json{{"version", v.version}, {"source", v.source}, {"run_id", v.run_id}});
  };
  Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {  // concurrent creators race for the next number
    st = db_.transaction(create);
    if (st.code() != ErrorCode::kAlreadyExists) break;
  }
  KEEL_RETURN_IF_ERROR(st);
  return get_version(name, created.version);
}

Result<ModelVersion> ModelRegistry::get_version(const std::string& name, int64_t version) {
  auto v = load_version(db_, "m.name = ? AND v.version = ?", {name, version});
  if (!v.ok() && v.status().code() == ErrorCode::kNotFound) {
    return not_found("Model Version (name=" + name + ", version=" + std::to_string(version) + ") not found");
  }
  return v;
}

Result<ModelVersion> ModelRegistry::update_version(const std::string& name, int64_t version,
                                                   const std::string& description, const std::string& actor) {
  KEEL_ASSIGN_OR_RETURN(ModelVersion v, get_version(name, version));
  KEEL_RETURN_IF_ERROR(db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE model_versions SET description = ?, updated_at = ? WHERE id = ?",
                                  {description, now_millis(), v.id})
                             .status());
    return store::record_audit_event(sql, actor, "model.version.update", "model:" + name,
                        Json{{"version", version}, {"description", description}});
  }));
  return get_version(name, version);
}

Status ModelRegistry::set_version_tag(const std::string& name, int64_t version, const KeyValueTag& tag,
                                      const std::string& actor) {
  KEEL_RETURN_IF_ERROR(validate_tag(tag));
  KEEL_ASSIGN_OR_RETURN(ModelVersion v, get_version(name, version));
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(upsert_tag(sql, "model_version_tags", "version_id", v.id, tag));
    return store::record_audit_event(sql, actor, "model.version.set_tag", "model:" + name,
                        Json{{"version", version}, {"key", tag.key}, {"value", tag.value}});
  });
}

Status ModelRegistry::set_version_run(const std::string& name, int64_t version, const std::string& run_id,
                                      const std::string& actor) {
  KEEL_ASSIGN_OR_RETURN(ModelVersion v, get_version(name, version));
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(DbRows run, sql.query("SELECT id FROM runs WHERE id = ?", {run_id}));
    if (run.empty()) return not_found("there is no run " + run_id);
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE model_versions SET run_id = ? WHERE id = ?", {run_id, v.id}).status());
    return store::record_audit_event(sql, actor, "model.version.set_run", "model:" + name,
                                     Json{{"version", version}, {"run_id", run_id}});
  });
}

Status ModelRegistry::delete_version_tag(const std::string& name, int64_t version, const std::string& key,
                                         const std::string& actor) {
  KEEL_ASSIGN_OR_RETURN(ModelVersion v, get_version(name, version));
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("DELETE FROM model_version_tags WHERE version_id = ? AND key = ?", {v.id, key}));
    if (n == 0) return not_found("model " + name + " version " + std::to_string(version) + " has no tag '" + key + "'");
    return store::record_audit_event(sql, actor, "model.version.delete_tag", "model:" + name, Json{{"version", version}, {"key", key}});
  });
}

Status ModelRegistry::set_alias(const std::string& name, const std::string& alias, int64_t version,
                                const std::string& actor) {
  const RoutingChange changed;
  KEEL_RETURN_IF_ERROR(validate_alias(alias));
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string id, model_id(sql, name));
    KEEL_ASSIGN_OR_RETURN(DbRows v, sql.query("SELECT id FROM model_versions WHERE model_id = ? AND version = ?", {id, version}));
    if (v.empty()) return not_found("Model Version (name=" + name + ", version=" + std::to_string(version) + ") not found");
    KEEL_ASSIGN_OR_RETURN(std::vector<std::string> unmet, unmet_requirements(sql, id, v.rows[0].get_text(0), alias));
    if (!unmet.empty()) {
      std::string list;
      for (const auto& u : unmet) list += (list.empty() ? "" : "; ") + u;
      return failed_precondition("cannot point '" + alias + "' of " + name + " at version " + std::to_string(version) +
                                 ": the model's policy still needs " + list);
    }
    KEEL_ASSIGN_OR_RETURN(DbRows before, sql.query("SELECT version FROM model_aliases WHERE model_id = ? AND alias = ?", {id, alias}));
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO model_aliases (model_id, alias, version, updated_at) VALUES (?, ?, ?, ?) "
                                  "ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version, "
                                  "updated_at = excluded.updated_at",
                                  {id, alias, version, now_millis()})
                             .status());
    Json details = {{"alias", alias}, {"version", version}};
    details["previous_version"] = before.empty() ? Json(nullptr) : Json(before.rows[0].get_int(0));
    return store::record_audit_event(sql, actor, "model.alias.set", "model:" + name, details);
  });
}

Status ModelRegistry::delete_alias(const std::string& name, const std::string& alias, const std::string& actor) {
  const RoutingChange changed;
  return db_.transaction([&](SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string id, model_id(sql, name));
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("DELETE FROM model_aliases WHERE model_id = ? AND alias = ?", {id, alias}));
    if (n == 0) return invalid_argument("Registered model alias " + alias + " not found.");
    return store::record_audit_event(sql, actor, "model.alias.delete", "model:" + name, Json{{"alias", alias}});
  });
}

Result<ModelVersion> ModelRegistry::get_by_alias(const std::string& name, const std::string& alias) {
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  auto found = model_id(db_, name);
  if (!found.ok() && found.status().code() == ErrorCode::kNotFound) {
    return not_found("no model named '" + name + "' (see `keel models list`)");
  }
  KEEL_ASSIGN_OR_RETURN(std::string id, std::move(found));
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT version FROM model_aliases WHERE model_id = ? AND alias = ?", {id, alias}));
  if (rows.empty()) return invalid_argument("Registered model alias " + alias + " not found.");
  return get_version(name, rows.rows[0].get_int(0));
}

namespace {

// Fields of registry objects as the search language names them.
std::optional<std::string> tag_value(const std::vector<KeyValueTag>& tags, const std::string& key) {
  for (const auto& t : tags)
    if (t.key == key) return t.value;
  return std::nullopt;
}

std::optional<std::string> model_field(const RegisteredModel& m, tracking::FilterEntity entity, const std::string& key) {
  if (entity == tracking::FilterEntity::kTag) return tag_value(m.tags, key);
  if (entity != tracking::FilterEntity::kAttribute) return std::nullopt;
  if (key == "name") return m.name;
  if (key == "creation_timestamp") return std::to_string(m.created_at);
  if (key == "last_updated_timestamp") return std::to_string(m.updated_at);
  return std::nullopt;
}

std::optional<std::string> version_field(const ModelVersion& v, tracking::FilterEntity entity, const std::string& key) {
  if (entity == tracking::FilterEntity::kTag) return tag_value(v.tags, key);
  if (entity != tracking::FilterEntity::kAttribute) return std::nullopt;
  if (key == "name") return v.model_name;
  if (key == "version_number") return std::to_string(v.version);
  if (key == "run_id") return v.run_id;
  if (key == "source") return v.source;
  if (key == "creation_timestamp") return std::to_string(v.created_at);
  if (key == "last_updated_timestamp") return std::to_string(v.updated_at);
  return std::nullopt;
}

}  // namespace

Result<SearchPage<RegisteredModel>> ModelRegistry::search_models(const SearchRequest& request) {
  static const tracking::FilterSchema schema{{"name", "creation_timestamp", "last_updated_timestamp"},
                                             {"creation_timestamp", "last_updated_timestamp"}};
  if (request.max_results <= 0 || request.max_results > 50000) {
    return invalid_argument("max_results must be between 1 and 50000");
  }
  KEEL_ASSIGN_OR_RETURN(tracking::ParsedSearch search,
                        tracking::parse_search(schema, request.filter, request.order_by, request.page_token));
  KEEL_ASSIGN_OR_RETURN(std::vector<RegisteredModel> all, load_models("1 = 1", {}));
  auto by_name = [](const RegisteredModel& a, const RegisteredModel& b) { return a.name < b.name; };
  SearchPage<RegisteredModel> page;
  page.items = tracking::search_page(std::move(all), search, schema, model_field, by_name, true, request.max_results,
                                     &page.next_page_token);
  return page;
}

Result<SearchPage<ModelVersion>> ModelRegistry::search_versions(const SearchRequest& request) {
  static const tracking::FilterSchema schema{
      {"name", "version_number", "run_id", "source", "creation_timestamp", "last_updated_timestamp"},
      {"version_number", "creation_timestamp", "last_updated_timestamp"}};
  if (request.max_results <= 0 || request.max_results > 200000) {
    return invalid_argument("max_results must be between 1 and 200000");
  }
  KEEL_ASSIGN_OR_RETURN(tracking::ParsedSearch search,
                        tracking::parse_search(schema, request.filter, request.order_by, request.page_token));
  // Narrow by name in SQL when the filter names one model (the common case).
  std::string where = "1 = 1";
  std::vector<DbValue> params;
  for (const auto& c : search.clauses) {
    if (c.entity == tracking::FilterEntity::kAttribute && c.key == "name" && c.comparator == "=") {
      where = "m.name = ?";
      params = {c.values.at(0)};
    }
  }
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query(std::string("SELECT ") + kVersionColumns +
                                                   " FROM model_versions v JOIN models m ON m.id = v.model_id WHERE " +
                                                   where + " ORDER BY m.name, v.version DESC",
                                               params));
  std::vector<ModelVersion> all;
  for (const auto& r : rows.rows) all.push_back(version_from_row(r));
  KEEL_RETURN_IF_ERROR(fill_version_details(db_, all));
  auto newest_first = [](const ModelVersion& a, const ModelVersion& b) {
    return a.model_name != b.model_name ? a.model_name < b.model_name : a.version > b.version;
  };
  SearchPage<ModelVersion> page;
  page.items = tracking::search_page(std::move(all), search, schema, version_field, newest_first, true,
                                     request.max_results, &page.next_page_token);
  return page;
}

}  // namespace keel::registry
