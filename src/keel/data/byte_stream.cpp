#include "keel/data/byte_stream.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <vector>

#include "keel/util/file.h"

namespace keel::data {
namespace {

constexpr size_t kChunk = size_t{1} << 18;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A file descriptor that closes itself.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Result<size_t> read_some(int fd, char* buffer, size_t size, const std::string& path) {
  while (true) {
    ssize_t n = ::read(fd, buffer, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return os_error("read " + path, errno);
  }
}

class PlainSource : public ByteSource {
 public:
  PlainSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Result<size_t> read(char* buffer, size_t size) override {
    KEEL_ASSIGN_OR_RETURN(size_t n, read_some(fd_.get(), buffer, size, path_));
    bytes_ += n;
    return n;
  }
  uint64_t file_bytes_read() const override { return bytes_; }

 private:
  Fd fd_;
  std::string path_;
  uint64_t bytes_ = 0;
};

class GzipSource : public ByteSource {
 public:
  GzipSource(int fd, std::string path) : fd_(fd), path_(std::move(path)), in_(kChunk) {
    // 16 + MAX_WBITS: gzip framing only (a zlib or raw stream is not a .gz file).
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) init_failed_ = true;
  }
  ~GzipSource() override {
    if (!init_failed_) inflateEnd(&zs_);
  }

  Result<size_t> read(char* buffer, size_t size) override {
    if (init_failed_) return internal_error("zlib: inflateInit2 failed for " + path_);
    if (done_ || size == 0) return size_t{0};
    zs_.next_out = reinterpret_cast<Bytef*>(buffer);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(size, kChunk));
    while (zs_.avail_out > 0) {
      if (zs_.avail_in == 0 && !eof_) {
        KEEL_ASSIGN_OR_RETURN(size_t n, read_some(fd_.get(), in_.data(), in_.size(), path_));
        bytes_ += n;
        if (n == 0) {
          eof_ = true;
        } else {
          zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
          zs_.avail_in = static_cast<uInt>(n);
        }
      }
      if (eof_ && zs_.avail_in == 0 && !in_member_) {
        done_ = true;
        break;
      }
      in_member_ = true;
      uInt out_before = zs_.avail_out;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        // Another gzip member may follow (concatenated .gz files are valid gzip).
        in_member_ = false;
        inflateReset(&zs_);
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return corrupt(path_ +
                       " is not valid gzip: " + (zs_.msg != nullptr ? zs_.msg : "inflate error " + std::to_string(rc)));
      }
      // At the end of the file inflate may still flush output it holds; only a call that
      // makes no progress there means the stream was cut short.
      if (eof_ && zs_.avail_in == 0 && zs_.avail_out == out_before) {
        return corrupt(path_ + " is truncated: the gzip stream ends before its end marker (file cut short?)");
      }
    }
    return static_cast<size_t>(reinterpret_cast<char*>(zs_.next_out) - buffer);
  }
  uint64_t file_bytes_read() const override { return bytes_; }

 private:
  Fd fd_;
  std::string path_;
  std::vector<char> in_;
  z_stream zs_{};
  bool init_failed_ = false;
  bool in_member_ = false;
  bool eof_ = false;
  bool done_ = false;
  uint64_t bytes_ = 0;
};

class ZstdSource : public ByteSource {
 public:
  ZstdSource(int fd, std::string path) : fd_(fd), path_(std::move(path)), in_(ZSTD_DStreamInSize()) {
    ds_ = ZSTD_createDStream();
  }
  ~ZstdSource() override { ZSTD_freeDStream(ds_); }

  Result<size_t> read(char* buffer, size_t size) override {
    if (ds_ == nullptr) return internal_error("zstd: cannot create a decompression stream for " + path_);
    if (done_ || size == 0) return size_t{0};
    ZSTD_outBuffer out{buffer, size, 0};
    while (out.pos < out.size) {
      if (input_.pos == input_.size && !eof_) {
        KEEL_ASSIGN_OR_RETURN(size_t n, read_some(fd_.get(), in_.data(), in_.size(), path_));
        bytes_ += n;
        if (n == 0) {
          eof_ = true;
        } else {
          input_ = ZSTD_inBuffer{in_.data(), n, 0};
        }
      }
      if (eof_ && input_.pos == input_.size && !frame_open_) {
        done_ = true;
        break;
      }
      size_t out_before = out.pos;
      size_t rc = ZSTD_decompressStream(ds_, &out, &input_);
      if (ZSTD_isError(rc)) return corrupt(path_ + " is not valid zstd: " + ZSTD_getErrorName(rc));
      frame_open_ = rc != 0;
      // At the end of the file the decoder may still flush output it holds; only a call
      // that makes no progress there means the frame was cut short.
      if (eof_ && input_.pos == input_.size && frame_open_ && out.pos == out_before) {
        return corrupt(path_ + " is truncated: the zstd frame ends before its end (file cut short?)");
      }
    }
    return out.pos;
  }
  uint64_t file_bytes_read() const override { return bytes_; }

 private:
  Fd fd_;
  std::string path_;
  std::vector<char> in_;
  ZSTD_DStream* ds_ = nullptr;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  bool frame_open_ = false;
  bool eof_ = false;
  bool done_ = false;
  uint64_t bytes_ = 0;
};

class PlainSink : public ByteSink {
 public:
  PlainSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) { buffer_.reserve(kChunk); }
  ~PlainSink() override { (void)close(); }
  Status write(std::string_view bytes) override {
    if (fd_.get() < 0) return failed_precondition("write to closed " + path_);
    if (buffer_.size() + bytes.size() > kChunk) {
      KEEL_RETURN_IF_ERROR(flush());
      if (bytes.size() > kChunk) return write_all(fd_.get(), bytes.data(), bytes.size(), "write " + path_);
    }
    buffer_.append(bytes);
    return Status::Ok();
  }
  Status close() override {
    if (fd_.get() < 0) return Status::Ok();
    Status st = flush();
    int fd = fd_.release();
    if (::close(fd) != 0 && st.ok()) st = os_error("close " + path_, errno);
    return st;
  }

 private:
  Status flush() {
    if (buffer_.empty()) return Status::Ok();
    Status st = write_all(fd_.get(), buffer_.data(), buffer_.size(), "write " + path_);
    buffer_.clear();
    return st;
  }
  Fd fd_;
  std::string path_;
  std::string buffer_;
};

class GzipSink : public ByteSink {
 public:
  GzipSink(int fd, std::string path) : fd_(fd), path_(std::move(path)), out_(kChunk) {
    if (deflateInit2(&zs_, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) init_failed_ = true;
  }
  ~GzipSink() override {
    (void)close();
    if (!init_failed_) deflateEnd(&zs_);
  }
  Status write(std::string_view bytes) override {
    if (init_failed_) return internal_error("zlib: deflateInit2 failed for " + path_);
    if (fd_.get() < 0) return failed_precondition("write to closed " + path_);
    while (!bytes.empty()) {
      size_t take = std::min<size_t>(bytes.size(), kChunk);
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
      zs_.avail_in = static_cast<uInt>(take);
      KEEL_RETURN_IF_ERROR(pump(Z_NO_FLUSH));
      bytes.remove_prefix(take);
    }
    return Status::Ok();
  }
  Status close() override {
    if (fd_.get() < 0 || init_failed_) return Status::Ok();
    zs_.avail_in = 0;
    Status st = pump(Z_FINISH);
    int fd = fd_.release();
    if (::close(fd) != 0 && st.ok()) st = os_error("close " + path_, errno);
    return st;
  }

 private:
  Status pump(int flush) {
    while (true) {
      zs_.next_out = reinterpret_cast<Bytef*>(out_.data());
      zs_.avail_out = static_cast<uInt>(out_.size());
      int rc = deflate(&zs_, flush);
      if (rc == Z_STREAM_ERROR) return internal_error("zlib: deflate failed for " + path_);
      size_t have = out_.size() - zs_.avail_out;
      if (have > 0) KEEL_RETURN_IF_ERROR(write_all(fd_.get(), out_.data(), have, "write " + path_));
      if (flush == Z_FINISH ? rc == Z_STREAM_END : (zs_.avail_in == 0 && zs_.avail_out != 0)) return Status::Ok();
    }
  }
  Fd fd_;
  std::string path_;
  std::vector<char> out_;
  z_stream zs_{};
  bool init_failed_ = false;
};

class ZstdSink : public ByteSink {
 public:
  ZstdSink(int fd, std::string path) : fd_(fd), path_(std::move(path)), out_(ZSTD_CStreamOutSize()) {
    cs_ = ZSTD_createCCtx();
    if (cs_ != nullptr) ZSTD_CCtx_setParameter(cs_, ZSTD_c_compressionLevel, 3);
  }
  ~ZstdSink() override {
    (void)close();
    ZSTD_freeCCtx(cs_);
  }
  Status write(std::string_view bytes) override {
    if (cs_ == nullptr) return internal_error("zstd: cannot create a compression context for " + path_);
    if (fd_.get() < 0) return failed_precondition("write to closed " + path_);
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    while (in.pos < in.size) KEEL_RETURN_IF_ERROR(pump(in, ZSTD_e_continue));
    return Status::Ok();
  }
  Status close() override {
    if (fd_.get() < 0 || cs_ == nullptr) return Status::Ok();
    ZSTD_inBuffer in{nullptr, 0, 0};
    Status st = pump(in, ZSTD_e_end);
    int fd = fd_.release();
    if (::close(fd) != 0 && st.ok()) st = os_error("close " + path_, errno);
    return st;
  }

 private:
  // Runs the compressor once (continue) or until the frame is complete (end).
  Status pump(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    while (true) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t remaining = ZSTD_compressStream2(cs_, &out, &in, mode);
      if (ZSTD_isError(remaining)) return internal_error("zstd: " + std::string(ZSTD_getErrorName(remaining)));
      if (out.pos > 0) KEEL_RETURN_IF_ERROR(write_all(fd_.get(), out_.data(), out.pos, "write " + path_));
      if (mode == ZSTD_e_end ? remaining == 0 : true) return Status::Ok();
    }
  }
  Fd fd_;
  std::string path_;
  std::vector<char> out_;
  ZSTD_CCtx* cs_ = nullptr;
};

}  // namespace

Compression compression_for_path(std::string_view path) {
  if (ends_with(path, ".gz")) return Compression::kGzip;
  if (ends_with(path, ".zst")) return Compression::kZstd;
  return Compression::kNone;
}

std::string_view strip_compression_suffix(std::string_view path) {
  if (ends_with(path, ".gz")) return path.substr(0, path.size() - 3);
  if (ends_with(path, ".zst")) return path.substr(0, path.size() - 4);
  return path;
}

Result<std::unique_ptr<ByteSource>> open_byte_source(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error("open " + path, errno);
  switch (compression_for_path(path)) {
    case Compression::kGzip:
      return std::unique_ptr<ByteSource>(new GzipSource(fd, path));
    case Compression::kZstd:
      return std::unique_ptr<ByteSource>(new ZstdSource(fd, path));
    case Compression::kNone:
      break;
  }
  return std::unique_ptr<ByteSource>(new PlainSource(fd, path));
}

Result<std::unique_ptr<ByteSink>> open_byte_sink(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("create " + path, errno);
  switch (compression_for_path(path)) {
    case Compression::kGzip:
      return std::unique_ptr<ByteSink>(new GzipSink(fd, path));
    case Compression::kZstd:
      return std::unique_ptr<ByteSink>(new ZstdSink(fd, path));
    case Compression::kNone:
      break;
  }
  return std::unique_ptr<ByteSink>(new PlainSink(fd, path));
}

}  // namespace keel::data
