#include "keel/store/artifact_catalog.h"

#include <set>

#include "keel/util/id.h"

namespace keel::store {

Status ArtifactCatalog::record(SqlExecutor& tx, const ArtifactInfo& info) {
  return tx
      .exec("INSERT INTO artifacts (sha256, size_bytes, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            {info.sha256, static_cast<int64_t>(info.size_bytes), now_millis()})
      .status();
}

Result<ArtifactInfo> ArtifactCatalog::add_file(const std::string& path, const std::function<void(uint64_t)>& progress) {
  KEEL_ASSIGN_OR_RETURN(ArtifactInfo info, blobs_.put_file(path, progress));
  KEEL_RETURN_IF_ERROR(record(db_, info));
  return info;
}

Result<ArtifactInfo> ArtifactCatalog::add_bytes(std::string_view bytes) {
  KEEL_ASSIGN_OR_RETURN(ArtifactInfo info, blobs_.put_bytes(bytes));
  KEEL_RETURN_IF_ERROR(record(db_, info));
  return info;
}

Result<VerifyReport> ArtifactCatalog::verify(const std::function<void(size_t, size_t)>& progress) {
  VerifyReport report;
  KEEL_ASSIGN_OR_RETURN(DbRows rows, db_.query("SELECT sha256 FROM artifacts ORDER BY sha256"));
  std::set<std::string> recorded;
  for (const auto& row : rows.rows) recorded.insert(row.get_text(0));
  KEEL_ASSIGN_OR_RETURN(std::vector<ArtifactInfo> stored, blobs_.list());
  std::set<std::string> present;
  for (const auto& blob : stored) present.insert(blob.sha256);
  for (const auto& sha : recorded) {
    if (!present.count(sha)) report.missing.push_back(sha);
  }
  size_t done = 0;
  for (const auto& blob : stored) {
    KEEL_ASSIGN_OR_RETURN(BlobCheck check, blobs_.check(blob.sha256));
    ++report.checked;
    report.bytes_checked += check.size_bytes;
    if (!check.ok) report.corrupt.push_back(check);
    if (!recorded.count(blob.sha256)) report.unreferenced.push_back(blob.sha256);
    if (progress) progress(++done, stored.size());
  }
  return report;
}

}  // namespace keel::store
