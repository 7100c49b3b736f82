#include "keel/store/artifact_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "keel/util/file.h"
#include "keel/util/id.h"
#include "keel/util/sha256.h"

namespace keel::store {
namespace {

constexpr size_t kChunk = 1 << 20;

class LocalWriter : public ArtifactWriter {
 public:
  LocalWriter(LocalArtifactStore& store, int fd, std::string tmp_path)
      : store_(store), fd_(fd), tmp_path_(std::move(tmp_path)) {}
  ~LocalWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
  }

  Status write(const void* data, size_t size) override {
    if (fd_ < 0) return failed_precondition("artifact writer already finished");
    Status st = write_all(fd_, data, size, "artifact work file " + tmp_path_);
    if (!st.ok()) return abandon(st);
    hasher_.update(data, size);
    size_ += size;
    return Status::Ok();
  }

  Result<ArtifactInfo> commit() override {
    if (fd_ < 0) return failed_precondition("artifact writer already finished");
    if (::fsync(fd_) != 0) return abandon(os_error("fsync " + tmp_path_, errno));
    if (::close(fd_) != 0) {
      fd_ = -1;
      return abandon(os_error("close " + tmp_path_, errno));
    }
    fd_ = -1;
    ArtifactInfo info{hasher_.hex_digest(), size_};
    std::string final_path = store_.blob_path(info.sha256);
    std::string dir = parent_dir(final_path);
    Status st = make_dirs(dir);
    if (!st.ok()) return abandon(st);
    if (path_exists(final_path)) {
      // Same content is already stored: keep the existing blob (de-duplication).
      ::unlink(tmp_path_.c_str());
      committed_ = true;
      return info;
    }
    if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) return abandon(os_error("rename to " + final_path, errno));
    committed_ = true;
    ::chmod(final_path.c_str(), 0444);  // blobs are immutable
    KEEL_RETURN_IF_ERROR(fsync_dir(dir));
    return info;
  }

 private:
  Status abandon(Status st) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
    return st;
  }

  LocalArtifactStore& store_;
  int fd_;
  std::string tmp_path_;
  Sha256 hasher_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

class LocalReader : public ArtifactReader {
 public:
  LocalReader(int fd, std::string sha256, uint64_t size, std::string path)
      : fd_(fd), expected_(std::move(sha256)), size_(size), path_(std::move(path)) {}
  ~LocalReader() override { ::close(fd_); }

  uint64_t size_bytes() const override { return size_; }

  Result<size_t> read(void* buffer, size_t size) override {
    if (done_) return size_t{0};
    for (;;) {
      ssize_t n = ::read(fd_, buffer, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error("read artifact " + path_, errno);
      }
      if (n == 0 && size > 0) {
        done_ = true;
        std::string actual = hasher_.hex_digest();
        if (actual != expected_) {
          return corrupt("artifact " + expected_ + " is corrupt: its content hashes to " + actual +
                         " (run `keel artifacts verify`)");
        }
        return size_t{0};
      }
      hasher_.update(buffer, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
  std::string expected_;
  uint64_t size_;
  std::string path_;
  Sha256 hasher_;
  bool done_ = false;
};

Status check_name(const std::string& sha256) {
  if (!is_sha256_hex(sha256)) return invalid_argument("'" + sha256 + "' is not a sha256 digest (64 lowercase hex digits)");
  return Status::Ok();
}

}  // namespace

Result<ArtifactInfo> ArtifactStore::put_file(const std::string& path, const std::function<void(uint64_t)>& progress) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error("open " + path, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0) return os_error("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return invalid_argument(path + " is not a regular file");
  KEEL_ASSIGN_OR_RETURN(auto w, writer());
  std::vector<char> buf(kChunk);
  uint64_t done = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return os_error("read " + path, errno);
    }
    if (n == 0) break;
    KEEL_RETURN_IF_ERROR(w->write(buf.data(), static_cast<size_t>(n)));
    done += static_cast<uint64_t>(n);
    if (progress) progress(done);
  }
  return w->commit();
}

Result<ArtifactInfo> ArtifactStore::put_bytes(std::string_view bytes) {
  KEEL_ASSIGN_OR_RETURN(auto w, writer());
  KEEL_RETURN_IF_ERROR(w->write(bytes));
  return w->commit();
}

Status ArtifactStore::get_to_file(const std::string& sha256, const std::string& dest) {
  KEEL_ASSIGN_OR_RETURN(auto reader, open(sha256));
  std::string tmp = dest + ".part-" + new_id();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("create " + tmp, errno);
  std::vector<char> buf(kChunk);
  Status st;
  for (;;) {
    auto n = reader->read(buf.data(), buf.size());
    if (!n.ok()) {
      st = n.status();
      break;
    }
    if (*n == 0) break;
    st = write_all(fd, buf.data(), *n, tmp);
    if (!st.ok()) break;
  }
  if (st.ok() && ::fsync(fd) != 0) st = os_error("fsync " + tmp, errno);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), dest.c_str()) != 0) st = os_error("rename to " + dest, errno);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

Result<std::string> ArtifactStore::get_bytes(const std::string& sha256, size_t max_bytes) {
  KEEL_ASSIGN_OR_RETURN(auto reader, open(sha256));
  if (reader->size_bytes() > max_bytes) {
    return resource_exhausted("artifact " + sha256 + " is " + std::to_string(reader->size_bytes()) +
                              " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::string out;
  out.resize(reader->size_bytes());
  size_t pos = 0;
  char tail[1];
  for (;;) {
    size_t room = out.size() - pos;
    KEEL_ASSIGN_OR_RETURN(size_t n, room > 0 ? reader->read(out.data() + pos, room) : reader->read(tail, 1));
    if (n == 0) break;
    if (room == 0) return corrupt("artifact " + sha256 + " grew while being read");
    pos += n;
  }
  out.resize(pos);
  return out;
}

Result<std::unique_ptr<LocalArtifactStore>> LocalArtifactStore::open_at(const std::string& root) {
  KEEL_RETURN_IF_ERROR(ensure_writable_dir(root).with_context("artifact store"));
  KEEL_RETURN_IF_ERROR(make_dirs(root + "/sha256"));
  KEEL_RETURN_IF_ERROR(make_dirs(root + "/tmp"));
  std::unique_ptr<LocalArtifactStore> store(new LocalArtifactStore(root));
  store->remove_stale_work_files();
  return store;
}

std::string LocalArtifactStore::blob_path(const std::string& sha256) const {
  return root_ + "/sha256/" + sha256.substr(0, 2) + "/" + sha256;
}

size_t LocalArtifactStore::remove_stale_work_files() {
  // Work files are named "<pid>-<id>.part"; a file whose pid is gone is a leftover
  // of a writer that was killed, and nobody will ever commit it.
  size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_ + "/tmp", ec)) {
    std::string name = entry.path().filename().string();
    auto dash = name.find('-');
    if (dash == std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.substr(0, dash).c_str(), nullptr, 10));
    if (pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno == EPERM) continue;  // writer still alive
    if (::unlink(entry.path().c_str()) == 0) ++removed;
  }
  return removed;
}

Result<std::unique_ptr<ArtifactWriter>> LocalArtifactStore::writer() {
  std::string tmp = root_ + "/tmp/" + std::to_string(::getpid()) + "-" + new_id() + ".part";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("create artifact work file " + tmp, errno);
  return std::unique_ptr<ArtifactWriter>(new LocalWriter(*this, fd, std::move(tmp)));
}

Result<std::unique_ptr<ArtifactReader>> LocalArtifactStore::open(const std::string& sha256) {
  KEEL_RETURN_IF_ERROR(check_name(sha256));
  std::string path = blob_path(sha256);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return not_found("artifact " + sha256 + " is not in the store");
    return os_error("open artifact " + path, errno);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return os_error("stat artifact " + path, err);
  }
  return std::unique_ptr<ArtifactReader>(new LocalReader(fd, sha256, static_cast<uint64_t>(st.st_size), path));
}

bool LocalArtifactStore::exists(const std::string& sha256) {
  return is_sha256_hex(sha256) && path_exists(blob_path(sha256));
}

std::optional<std::string> LocalArtifactStore::local_path(const std::string& sha256) {
  if (!exists(sha256)) return std::nullopt;
  return blob_path(sha256);
}

Result<std::vector<ArtifactInfo>> LocalArtifactStore::list() {
  std::vector<ArtifactInfo> out;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(root_ + "/sha256", ec), end;
  if (ec) return os_error("list " + root_ + "/sha256", ec.value());
  for (; it != end; it.increment(ec)) {
    if (ec) return os_error("list " + root_ + "/sha256", ec.value());
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    if (!is_sha256_hex(name)) continue;
    out.push_back({name, static_cast<uint64_t>(it->file_size(ec))});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.sha256 < b.sha256; });
  return out;
}

Result<BlobCheck> LocalArtifactStore::check(const std::string& sha256) {
  KEEL_RETURN_IF_ERROR(check_name(sha256));
  std::string path = blob_path(sha256);
  if (!path_exists(path)) return not_found("artifact " + sha256 + " is not in the store");
  BlobCheck result{sha256, 0, false, ""};
  auto actual = Sha256::of_file(path);
  std::error_code ec;
  result.size_bytes = static_cast<uint64_t>(std::filesystem::file_size(path, ec));
  if (!actual.ok()) {
    result.problem = "unreadable: " + actual.status().message();
  } else if (*actual != sha256) {
    result.problem = "content hashes to " + *actual;
  } else {
    result.ok = true;
  }
  return result;
}

}  // namespace keel::store
