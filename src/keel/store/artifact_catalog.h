// The artifact catalog joins blobs to the metadata store: add() writes the blob first
// and records it second, so a crash between the two leaves an unreferenced blob at
// worst, never a record that points to a missing blob. verify() checks both sides:
// every recorded artifact is present and hashes to its name.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "keel/store/artifact_store.h"
#include "keel/store/db.h"

namespace keel::store {

struct VerifyReport {
  size_t checked = 0;                    // blobs re-hashed
  uint64_t bytes_checked = 0;
  std::vector<BlobCheck> corrupt;        // content does not match the name
  std::vector<std::string> missing;      // recorded in the store, no blob
  std::vector<std::string> unreferenced; // blob without a record (harmless)
  bool ok() const { return corrupt.empty() && missing.empty(); }
};

class ArtifactCatalog {
 public:
  ArtifactCatalog(Db& db, ArtifactStore& blobs) : db_(db), blobs_(blobs) {}

  // Streams a file into the store and records it. Idempotent for identical content.
  Result<ArtifactInfo> add_file(const std::string& path, const std::function<void(uint64_t)>& progress = {});
  Result<ArtifactInfo> add_bytes(std::string_view bytes);
  // Records a blob already in the blob store (inside the caller's transaction).
  Status record(SqlExecutor& tx, const ArtifactInfo& info);

  // Re-hashes every blob; progress(done, total) is called after each one.
  Result<VerifyReport> verify(const std::function<void(size_t, size_t)>& progress = {});

 private:
  Db& db_;
  ArtifactStore& blobs_;
};

}  // namespace keel::store
