// Byte streams over files, with gzip (.gz) and zstd (.zst) chosen by the path's
// extension, for the data readers and writers. Both directions stream in fixed-size
// chunks (constant memory). A compressed input that ends before its stream does is an
// error (kCorrupt), never a silent end of data. Concatenated gzip members are read.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "keel/util/status.h"

namespace keel::data {

enum class Compression { kNone, kGzip, kZstd };

// ".gz" -> kGzip, ".zst" -> kZstd, anything else kNone.
Compression compression_for_path(std::string_view path);
// The path without a trailing ".gz" / ".zst" ("a.jsonl.gz" -> "a.jsonl").
std::string_view strip_compression_suffix(std::string_view path);

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to size bytes; returns 0 at the end of the data. A truncated or corrupt
  // compressed stream is an error naming the file.
  virtual Result<size_t> read(char* buffer, size_t size) = 0;
  // Bytes consumed from the file so far (compressed bytes for compressed input).
  virtual uint64_t file_bytes_read() const = 0;
};

// Opens path for reading, decompressing by extension.
Result<std::unique_ptr<ByteSource>> open_byte_source(const std::string& path);

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status write(std::string_view bytes) = 0;
  // Flushes the compressor's trailer and closes the file; must be called for the
  // output to be complete. Writing after close() is refused.
  virtual Status close() = 0;
};

// Creates (truncates) path for writing, compressing by extension.
Result<std::unique_ptr<ByteSink>> open_byte_sink(const std::string& path);

}  // namespace keel::data
