#include "keel/tracking/artifact_files.h"

#include <map>

#include "keel/store/artifact_catalog.h"
#include "keel/util/id.h"

namespace keel::tracking {

Status validate_artifact_path(const std::string& path, bool allow_root) {
  if (path.empty()) {
    if (allow_root) return Status::Ok();
    return invalid_argument("an artifact path must not be empty");
  }
  if (path.size() > 4096) return invalid_argument("an artifact path must be at most 4096 bytes");
  if (path.front() == '/') return invalid_argument("artifact path '" + path + "' must be relative, not absolute");
  for (char c : path) {
    if (c == '\0' || c == '\\') return invalid_argument("artifact path '" + path + "' contains a NUL or a backslash");
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view segment(path.data() + start, end - start);
    if (segment == "..") return invalid_argument("artifact path '" + path + "' must not contain '..'");
    if (segment == "." || (segment.empty() && end != path.size())) {
      return invalid_argument("artifact path '" + path + "' has an empty or '.' segment");
    }
    start = end + 1;
  }
  return Status::Ok();
}

Result<StoredFile> ArtifactFiles::put(const std::string& path, std::string_view bytes) {
  KEEL_RETURN_IF_ERROR(validate_artifact_path(path));
  KEEL_ASSIGN_OR_RETURN(store::ArtifactInfo blob, blobs_.put_bytes(bytes));
  return record(path, blob);
}

Result<StoredFile> ArtifactFiles::put_file(const std::string& path, const std::string& local_file) {
  KEEL_RETURN_IF_ERROR(validate_artifact_path(path));
  KEEL_ASSIGN_OR_RETURN(store::ArtifactInfo blob, blobs_.put_file(local_file));
  return record(path, blob);
}

Result<StoredFile> ArtifactFiles::record(const std::string& path, const store::ArtifactInfo& blob) {
  store::ArtifactCatalog catalog(db_, blobs_);
  KEEL_RETURN_IF_ERROR(db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(catalog.record(sql, blob));
    return sql
        .exec("INSERT INTO artifact_files (path, sha256, size_bytes, created_at) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size_bytes = excluded.size_bytes, "
              "created_at = excluded.created_at",
              {path, blob.sha256, static_cast<int64_t>(blob.size_bytes), now_millis()})
        .status();
  }));
  return StoredFile{blob.sha256, blob.size_bytes};
}

Result<StoredFile> ArtifactFiles::stat(const std::string& path) {
  KEEL_RETURN_IF_ERROR(validate_artifact_path(path));
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query("SELECT sha256, size_bytes FROM artifact_files WHERE path = ?", {path}));
  if (rows.empty()) return not_found("no artifact at '" + path + "'");
  return StoredFile{rows.rows[0].get_text(0), static_cast<uint64_t>(rows.rows[0].get_int(1))};
}


Result<std::vector<ArtifactEntry>> ArtifactFiles::list(const std::string& folder, const std::string& relative_to) {
  KEEL_RETURN_IF_ERROR(validate_artifact_path(folder, true));
  std::string prefix = folder.empty() ? "" : folder + "/";
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query("SELECT path, size_bytes FROM artifact_files WHERE path LIKE ? ESCAPE '!' ORDER BY path",
                                  {store::like_escape(prefix) + "%"}));
  std::string base = relative_to.empty() ? "" : relative_to + "/";
  auto relative = [&](const std::string& p) { return p.compare(0, base.size(), base) == 0 ? p.substr(base.size()) : p; };
  std::map<std::string, ArtifactEntry> entries;
  for (const auto& r : rows.rows) {
    std::string path = r.get_text(0);
    if (path.compare(0, prefix.size(), prefix) != 0) continue;  // LIKE is case-insensitive on SQLite
    std::string rest = path.substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      entries[rest] = {relative(path), false, static_cast<uint64_t>(r.get_int(1))};
    } else {
      std::string dir = rest.substr(0, slash);
      entries.emplace(dir, ArtifactEntry{relative(prefix + dir), true, 0});
    }
  }
  std::vector<ArtifactEntry> out;
  for (auto& [name, e] : entries) out.push_back(std::move(e));
  return out;
}

Result<int64_t> ArtifactFiles::remove(const std::string& path) {
  KEEL_RETURN_IF_ERROR(validate_artifact_path(path));
  return db_.exec("DELETE FROM artifact_files WHERE path = ? OR path LIKE ? ESCAPE '!'", {path, store::like_escape(path + "/") + "%"});
}

}  // namespace keel::tracking
