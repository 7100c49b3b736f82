// Content-addressed blob storage. A blob is named by the sha256 of its bytes, so
// identical content is stored once. Writes stream through an ArtifactWriter and become
// visible only at commit() — atomically, after an fsync — so a crash mid-write never
// leaves a partial blob. Reads stream through an ArtifactReader that re-hashes and
// reports a corrupt blob at the end. LocalArtifactStore keeps blobs in a folder; an
// object-storage back end implements the same interface.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::store {

struct ArtifactInfo {
  std::string sha256;
  uint64_t size_bytes = 0;
};

// Receives a blob's bytes in pieces. Destroying it without commit() discards them.
class ArtifactWriter {
 public:
  virtual ~ArtifactWriter() = default;
  virtual Status write(const void* data, size_t size) = 0;
  Status write(std::string_view data) { return write(data.data(), data.size()); }
  // Makes the blob durable and visible under its sha256; the writer is finished afterwards.
  virtual Result<ArtifactInfo> commit() = 0;
};

// Gives a blob's bytes in pieces. read() returns 0 at the end; at that point the
// bytes have been re-hashed, and a mismatch with the blob's name is a kCorrupt error.
class ArtifactReader {
 public:
  virtual ~ArtifactReader() = default;
  virtual Result<size_t> read(void* buffer, size_t size) = 0;
  virtual uint64_t size_bytes() const = 0;
};

struct BlobCheck {
  std::string sha256;
  uint64_t size_bytes = 0;
  bool ok = false;
  std::string problem;  // "content hashes to ab12..." / "unreadable: ..."
};

class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;

  virtual Result<std::unique_ptr<ArtifactWriter>> writer() = 0;
  virtual Result<std::unique_ptr<ArtifactReader>> open(const std::string& sha256) = 0;
  virtual bool exists(const std::string& sha256) = 0;
  // Every stored blob (name and size), without reading contents.
  virtual Result<std::vector<ArtifactInfo>> list() = 0;
  // Re-hashes one blob; a missing blob is kNotFound.
  virtual Result<BlobCheck> check(const std::string& sha256) = 0;
  // A local file holding the blob when the back end has one (for mmap); nullopt otherwise.
  virtual std::optional<std::string> local_path(const std::string& sha256) = 0;

  // Streams a file in (constant memory). progress, if set, is called with bytes done.
  Result<ArtifactInfo> put_file(const std::string& path, const std::function<void(uint64_t)>& progress = {});
  Result<ArtifactInfo> put_bytes(std::string_view bytes);
  // Streams a blob out to dest atomically; a corrupt blob leaves dest untouched.
  Status get_to_file(const std::string& sha256, const std::string& dest);
  // Reads a whole (small) blob, verified.
  Result<std::string> get_bytes(const std::string& sha256, size_t max_bytes = 64u << 20);
};

// Blobs under root/sha256/ab/<sha256>; work files under root/tmp/. Files left in
// tmp/ by a writer process that died are removed when the store is opened.
class LocalArtifactStore : public ArtifactStore {
 public:
  static Result<std::unique_ptr<LocalArtifactStore>> open_at(const std::string& root);

  Result<std::unique_ptr<ArtifactWriter>> writer() override;
  Result<std::unique_ptr<ArtifactReader>> open(const std::string& sha256) override;
  bool exists(const std::string& sha256) override;
  Result<std::vector<ArtifactInfo>> list() override;
  Result<BlobCheck> check(const std::string& sha256) override;
  std::optional<std::string> local_path(const std::string& sha256) override;

  const std::string& root() const { return root_; }
  std::string blob_path(const std::string& sha256) const;
  // Removes work files of dead writers; returns how many were removed.
  size_t remove_stale_work_files();

 private:
  explicit LocalArtifactStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace keel::store
