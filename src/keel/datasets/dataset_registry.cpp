#include "keel/datasets/dataset_registry.h"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <filesystem>

#include "keel/store/artifact_catalog.h"
#include "keel/store/audit_log.h"
#include "keel/util/id.h"

namespace keel::datasets {
namespace {

constexpr const char* kColumns =
    "id, name, version, content_sha256, size_bytes, record_count, schema_json, source, recipe, keel_version, details,"
    " user_id, created_at";

Result<data::ProfileJson> parse_stored(const std::string& text, const std::string& what) {
  try {
    return data::ProfileJson::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return corrupt("stored " + what + " is not valid JSON: " + e.what());
  }
}

// Buffers canonical JSONL lines into an artifact writer.
class JsonlBlobWriter {
 public:
  explicit JsonlBlobWriter(store::ArtifactWriter& out) : out_(out) {}
  Status add(const data::Record& record) {
    try {
      buffer_ += record.dump();
    } catch (const nlohmann::json::exception& e) {
      return invalid_argument(std::string("record cannot be written as JSON: ") + e.what());
    }
    buffer_ += '\n';
    if (buffer_.size() >= (1u << 20)) return flush();
    return Status::Ok();
  }
  Status flush() {
    if (buffer_.empty()) return Status::Ok();
    Status st = out_.write(buffer_);
    buffer_.clear();
    return st;
  }

 private:
  store::ArtifactWriter& out_;
  std::string buffer_;
};

}  // namespace

std::string DatasetReference::to_string() const {
  return version > 0 ? name + "@" + std::to_string(version) : name;
}

Status check_dataset_name(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return invalid_argument("dataset name \"" + std::string(name) + "\": " + why);
  };
  if (name.empty()) return invalid_argument("a dataset name must not be empty");
  if (name.size() > 128) return bad("longer than 128 characters");
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return bad("must start with a letter or digit");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return bad("may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

Result<DatasetReference> parse_dataset_reference(std::string_view text) {
  DatasetReference ref;
  size_t at = text.rfind('@');
  ref.name = std::string(text.substr(0, at));
  KEEL_RETURN_IF_ERROR(check_dataset_name(ref.name));
  if (at == std::string_view::npos) return ref;
  std::string_view v = text.substr(at + 1);
  if (v == "latest") return ref;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n <= 0) {
    return invalid_argument("dataset reference \"" + std::string(text) +
                            "\": the version after '@' must be a positive number or \"latest\"");
  }
  ref.version = n;
  return ref;
}

Result<CreatedDataset> DatasetRegistry::create_from_file(const std::string& path, const NewDatasetVersion& spec,
                                                         const std::string& actor) {
  KEEL_RETURN_IF_ERROR(check_dataset_name(spec.name));
  // Parents first: a missing one is reported before any work.
  std::vector<DatasetVersion> parents;
  for (const auto& ref : spec.parents) {
    auto parent = get(ref);
    if (!parent.ok()) return parent.status().with_context("parent of " + spec.name);
    parents.push_back(std::move(*parent));
  }

  CreatedDataset result;
  data::ReadOptions read = spec.read;
  auto user_reject = read.on_reject;
  read.on_reject = [&](const data::Rejection& r) {
    ++result.rejected;
    if (result.first_rejections.size() < 3) result.first_rejections.push_back(r);
    if (user_reject) user_reject(r);
  };
  KEEL_ASSIGN_OR_RETURN(auto reader, data::RecordReader::open(path, read));
  data::ProfileOptions profile_options;
  profile_options.text_field = spec.text_field;
  KEEL_ASSIGN_OR_RETURN(auto profiler, data::DatasetProfiler::create(std::move(profile_options)));
  KEEL_ASSIGN_OR_RETURN(auto writer, blobs_.writer());
  JsonlBlobWriter jsonl(*writer);
  std::vector<data::Record> batch(data::kProfileBatch);
  std::vector<uint64_t> numbers(data::kProfileBatch);
  uint64_t n = 0;
  bool more = true;
  while (more) {
    size_t filled = 0;
    while (filled < batch.size()) {
      KEEL_ASSIGN_OR_RETURN(more, reader->next(&batch[filled]));
      if (!more) break;
      Status st = jsonl.add(batch[filled]);
      if (!st.ok()) return st.with_context(path + " line " + std::to_string(reader->record_line()));
      // A record's line in the stored file is its number.
      numbers[filled++] = ++n;
    }
    KEEL_RETURN_IF_ERROR(profiler->add_batch(std::span<const data::Record>(batch.data(), filled),
                                             std::span<const uint64_t>(numbers.data(), filled)));
    if (spec.progress) spec.progress(reader->file_bytes_read(), n);
  }
  if (n == 0) {
    return invalid_argument(path + ": no readable records" +
                            (result.rejected > 0 ? " (" + std::to_string(result.rejected) + " malformed)" : "") +
                            "; a dataset version needs at least one");
  }
  KEEL_RETURN_IF_ERROR(jsonl.flush());
  KEEL_ASSIGN_OR_RETURN(store::ArtifactInfo blob, writer->commit());

  DatasetVersion v;
  v.name = spec.name;
  v.content_sha256 = blob.sha256;
  v.size_bytes = blob.size_bytes;
  v.record_count = n;
  v.profile = profiler->finish();
  v.schema = data::profile_schema(v.profile);
  v.source = spec.source;
  v.recipe = spec.recipe;
  v.keel_version = KEEL_VERSION;
  v.details = spec.details;
  v.details["rejected"] = result.rejected;
  v.details["input_format"] = std::string(data::record_format_name(reader->format()));
  for (const auto& p : parents) v.parents.push_back({p.name, p.version});
  v.user_id = actor;

  store::ArtifactCatalog catalog(db_, blobs_);
  auto record_version = [&](store::SqlExecutor& tx) -> Status {
    KEEL_ASSIGN_OR_RETURN(store::DbRows same,
                          tx.query(std::string("SELECT ") + kColumns +
                                       " FROM dataset_versions WHERE name = ? AND content_sha256 = ?",
                                   {spec.name, blob.sha256}));
    if (!same.empty()) {
      result.version.name = same.rows[0].get_text(1);
      result.version.version = same.rows[0].get_int(2);
      result.created = false;
      return Status::Ok();
    }
    KEEL_RETURN_IF_ERROR(catalog.record(tx, blob));
    KEEL_ASSIGN_OR_RETURN(store::DbRows max,
                          tx.query("SELECT COALESCE(MAX(version), 0) FROM dataset_versions WHERE name = ?", {spec.name}));
    v.id = new_id();
    v.version = max.rows[0].get_int(0) + 1;
    v.created_at = now_millis();
    KEEL_RETURN_IF_ERROR(
        tx.exec("INSERT INTO dataset_versions (id, name, version, content_sha256, size_bytes, record_count, schema_json,"
                " profile, source, recipe, keel_version, details, user_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                {v.id, v.name, v.version, v.content_sha256, static_cast<int64_t>(v.size_bytes),
                 static_cast<int64_t>(v.record_count), v.schema.dump(), v.profile.dump(), v.source, v.recipe,
                 v.keel_version, v.details.dump(), v.user_id, v.created_at})
            .status());
    for (size_t i = 0; i < parents.size(); ++i) {
      KEEL_RETURN_IF_ERROR(tx.exec("INSERT INTO dataset_parents (dataset_version_id, parent_id, position)"
                                   " VALUES (?, ?, ?)",
                                   {v.id, parents[i].id, static_cast<int64_t>(i)})
                               .status());
    }
    nlohmann::json details = {{"version", v.version},
                              {"sha256", v.content_sha256},
                              {"records", v.record_count},
                              {"source", v.source}};
    nlohmann::json parent_refs = nlohmann::json::array();
    for (const auto& p : v.parents) parent_refs.push_back(p.to_string());
    details["parents"] = parent_refs;
    KEEL_RETURN_IF_ERROR(store::record_audit_event(tx, actor, "dataset.create", "dataset:" + v.name, details));
    result.version = v;
    result.created = true;
    return Status::Ok();
  };
  // Two writers of one name can pick the same next version on PostgreSQL; the unique
  // constraints turn the loser's insert into kAlreadyExists and a retry sees the winner.
  Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    st = db_.transaction(record_version);
    if (st.code() != ErrorCode::kAlreadyExists) break;
  }
  if (!st.ok()) return st.with_context("recording dataset " + spec.name);
  if (!result.created) {
    // The existing version keeps what it recorded; hand back its full record.
    KEEL_ASSIGN_OR_RETURN(result.version, get(result.version.name, result.version.version, true));
  }
  return result;
}

Result<DatasetVersion> DatasetRegistry::load(const store::DbRow& row, bool with_profile) {
  DatasetVersion v;
  v.id = row.get_text(0);
  v.name = row.get_text(1);
  v.version = row.get_int(2);
  v.content_sha256 = row.get_text(3);
  v.size_bytes = static_cast<uint64_t>(row.get_int(4));
  v.record_count = static_cast<uint64_t>(row.get_int(5));
  KEEL_ASSIGN_OR_RETURN(v.schema, parse_stored(row.get_text(6), "schema of " + v.reference()));
  v.source = row.get_text(7);
  v.recipe = row.get_text(8);
  v.keel_version = row.get_text(9);
  KEEL_ASSIGN_OR_RETURN(v.details, parse_stored(row.get_text(10), "details of " + v.reference()));
  v.user_id = row.get_text(11);
  v.created_at = row.get_int(12);
  KEEL_ASSIGN_OR_RETURN(store::DbRows parents,
                        db_.query("SELECT p.name, p.version FROM dataset_parents l"
                                  " JOIN dataset_versions p ON p.id = l.parent_id"
                                  " WHERE l.dataset_version_id = ? ORDER BY l.position",
                                  {v.id}));
  for (const auto& p : parents.rows) v.parents.push_back({p.get_text(0), p.get_int(1)});
  if (with_profile) {
    KEEL_ASSIGN_OR_RETURN(store::DbRows profile,
                          db_.query("SELECT profile FROM dataset_versions WHERE id = ?", {v.id}));
    if (!profile.empty()) {
      KEEL_ASSIGN_OR_RETURN(v.profile, parse_stored(profile.rows[0].get_text(0), "profile of " + v.reference()));
    }
  }
  return v;
}

Result<DatasetVersion> DatasetRegistry::get(const std::string& name, int64_t version, bool with_profile) {
  KEEL_RETURN_IF_ERROR(check_dataset_name(name));
  store::DbRows rows;
  if (version > 0) {
    KEEL_ASSIGN_OR_RETURN(rows, db_.query(std::string("SELECT ") + kColumns +
                                              " FROM dataset_versions WHERE name = ? AND version = ?",
                                          {name, version}));
  } else {
    KEEL_ASSIGN_OR_RETURN(rows, db_.query(std::string("SELECT ") + kColumns +
                                              " FROM dataset_versions WHERE name = ? ORDER BY version DESC LIMIT 1",
                                          {name}));
  }
  if (rows.empty()) {
    KEEL_ASSIGN_OR_RETURN(store::DbRows any,
                          db_.query("SELECT MAX(version) FROM dataset_versions WHERE name = ?", {name}));
    bool known = !any.empty() && !any.rows[0].is_null(0);
    if (!known) return not_found("no dataset named " + name + " (keel data list shows them)");
    return not_found("dataset " + name + " has no version " + std::to_string(version) + " (latest is " +
                     std::to_string(any.rows[0].get_int(0)) + ")");
  }
  return load(rows.rows[0], with_profile);
}

Result<DatasetVersion> DatasetRegistry::resolve(std::string_view reference, bool with_profile) {
  KEEL_ASSIGN_OR_RETURN(DatasetReference ref, parse_dataset_reference(reference));
  return get(ref, with_profile);
}

Result<std::vector<DatasetSummary>> DatasetRegistry::list() {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query("SELECT d.name, d.version, d.record_count, d.content_sha256, d.created_at,"
                                  " (SELECT COUNT(*) FROM dataset_versions c WHERE c.name = d.name)"
                                  " FROM dataset_versions d"
                                  " WHERE d.version = (SELECT MAX(version) FROM dataset_versions m WHERE m.name = d.name)"
                                  " ORDER BY d.name"));
  std::vector<DatasetSummary> out;
  for (const auto& r : rows.rows) {
    DatasetSummary s;
    s.name = r.get_text(0);
    s.latest_version = r.get_int(1);
    s.latest_records = static_cast<uint64_t>(r.get_int(2));
    s.latest_sha256 = r.get_text(3);
    s.updated_at = r.get_int(4);
    s.versions = r.get_int(5);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<DatasetVersion>> DatasetRegistry::versions(const std::string& name) {
  KEEL_RETURN_IF_ERROR(check_dataset_name(name));
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(std::string("SELECT ") + kColumns +
                                                          " FROM dataset_versions WHERE name = ? ORDER BY version",
                                                      {name}));
  if (rows.empty()) return not_found("no dataset named " + name + " (keel data list shows them)");
  std::vector<DatasetVersion> out;
  for (const auto& r : rows.rows) {
    KEEL_ASSIGN_OR_RETURN(DatasetVersion v, load(r, false));
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<DatasetReference>> DatasetRegistry::children(const DatasetVersion& version) {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query("SELECT c.name, c.version FROM dataset_parents l"
                                  " JOIN dataset_versions c ON c.id = l.dataset_version_id"
                                  " WHERE l.parent_id = ? ORDER BY c.name, c.version",
                                  {version.id}));
  std::vector<DatasetReference> out;
  for (const auto& r : rows.rows) out.push_back({r.get_text(0), r.get_int(1)});
  return out;
}

Result<LocalDataset> DatasetRegistry::local_file(std::string_view reference, const std::string& cache_dir) {
  LocalDataset out;
  KEEL_ASSIGN_OR_RETURN(out.version, resolve(reference));
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) return unavailable("dataset cache " + cache_dir + ": " + ec.message());
  fs::path path = fs::path(cache_dir) / (out.version.content_sha256 + ".jsonl");
  out.path = path.string();
  if (fs::exists(path, ec)) return out;  // content-addressed: what is there is right
  std::optional<std::string> blob = blobs_.local_path(out.version.content_sha256);
  if (blob) {
    fs::path tmp = path;
    tmp += ".tmp" + std::to_string(::getpid());
    fs::remove(tmp, ec);
    fs::create_symlink(fs::absolute(*blob), tmp, ec);
    if (!ec) fs::rename(tmp, path, ec);
    if (ec) return unavailable("linking " + out.path + " to the artifact store: " + ec.message());
    return out;
  }
  if (!blobs_.exists(out.version.content_sha256)) {
    return not_found(out.version.reference() + ": its records (blob " + out.version.content_sha256 +
                     ") are missing from the artifact store");
  }
  KEEL_RETURN_IF_ERROR(blobs_.get_to_file(out.version.content_sha256, out.path));
  return out;
}

data::ProfileJson to_json(const DatasetVersion& v) {
  data::ProfileJson parents = data::ProfileJson::array();
  for (const auto& p : v.parents) parents.push_back(p.to_string());
  data::ProfileJson out = {{"name", v.name},
                           {"version", v.version},
                           {"reference", v.reference()},
                           {"content_sha256", v.content_sha256},
                           {"size_bytes", v.size_bytes},
                           {"records", v.record_count},
                           {"schema", v.schema},
                           {"source", v.source},
                           {"recipe", v.recipe},
                           {"keel_version", v.keel_version},
                           {"parents", parents},
                           {"details", v.details},
                           {"user_id", v.user_id},
                           {"created_at", v.created_at}};
  if (!v.profile.is_null()) out["profile"] = v.profile;
  return out;
}

data::ProfileJson to_json(const DatasetSummary& s) {
  return {{"name", s.name},
          {"versions", s.versions},
          {"latest_version", s.latest_version},
          {"latest_records", s.latest_records},
          {"latest_sha256", s.latest_sha256},
          {"updated_at", s.updated_at}};
}

}  // namespace keel::datasets
