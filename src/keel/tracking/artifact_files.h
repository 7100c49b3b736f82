// Files by path under the tracking artifact root ("<experiment>/<run>/artifacts/plots/a.png"),
// as MLflow's proxied artifact API sees them. The bytes go to the content-addressed
// store first and the path is recorded second, so a crash never leaves a path that
// points to missing bytes. Paths are checked: absolute paths, "..", "." and empty
// segments are refused, so no request can name a file outside its run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/store/artifact_store.h"
#include "keel/store/db.h"

namespace keel::tracking {

struct ArtifactEntry {
  std::string path;  // relative to the listed folder's root ("plots/a.png")
  bool is_dir = false;
  uint64_t size_bytes = 0;  // files only
};

struct StoredFile {
  std::string sha256;
  uint64_t size_bytes = 0;
};

// kInvalidArgument unless path is a clean relative path ("a/b.txt"); "" is allowed
// only when allow_root (it names the root folder).
Status validate_artifact_path(const std::string& path, bool allow_root = false);

class ArtifactFiles {
 public:
  ArtifactFiles(store::Db& db, store::ArtifactStore& blobs) : db_(db), blobs_(blobs) {}

  // Stores bytes at path, replacing what was there.
  Result<StoredFile> put(const std::string& path, std::string_view bytes);
  // The same with a local file's bytes, streamed (a checkpoint, an adapter).
  Result<StoredFile> put_file(const std::string& path, const std::string& local_file);
  // The blob behind a file; kNotFound when there is none.
  Result<StoredFile> stat(const std::string& path);
  // The direct children of folder ("" for the root): files with sizes, then sub-folders,
  // with paths relative to `relative_to` (MLflow lists paths relative to the run root).
  Result<std::vector<ArtifactEntry>> list(const std::string& folder, const std::string& relative_to);
  // Removes every file at or under path; returns how many were removed.
  Result<int64_t> remove(const std::string& path);

 private:
  // Points path at a stored blob (recording the blob in the catalog).
  Result<StoredFile> record(const std::string& path, const store::ArtifactInfo& blob);

  store::Db& db_;
  store::ArtifactStore& blobs_;
};

}  // namespace keel::tracking
