// Writes GGUF v3 files (the format gguf.h reads): metadata in the order added, the
// tensor table, then each tensor's bytes at an offset aligned to general.alignment
// (32 unless that key is set). Tensor bytes are borrowed or produced on demand and
// streamed to disk, never gathered in memory; the file appears atomically at `path`
// (temporary file, fsync, rename) or not at all.
// A caller must keep every borrowed span alive until write() returns.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/util/status.h"

namespace keel::engine {

// Receives a tensor's bytes in pieces of any size (from a GgufTensorProducer).
class GgufTensorSink {
 public:
  virtual ~GgufTensorSink() = default;
  virtual Status write(std::span<const uint8_t> bytes) = 0;
};

// Produces one tensor's bytes into a sink, in order; must write exactly the size
// given to add_tensor (write() fails otherwise).
using GgufTensorProducer = std::function<Status(GgufTensorSink& sink)>;

class GgufWriter {
 public:
  static constexpr uint64_t kDefaultAlignment = 32;
  static constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;  // what GgufFile accepts

  // Adds one metadata entry. Errors: an empty, over-long (> 65535 bytes) or duplicate
  // key; a value whose data does not match its type (a uint8 of 300, a string typed as
  // int32), an array whose elements differ from its element type or that nests deeper
  // than the reader accepts; general.alignment that is not an integer power of two
  // up to kMaxAlignment.
  Status add(const std::string& key, const GgufValue& value);

  Status add_uint8(const std::string& key, uint8_t v);
  Status add_int8(const std::string& key, int8_t v);
  Status add_uint16(const std::string& key, uint16_t v);
  Status add_int16(const std::string& key, int16_t v);
  Status add_uint32(const std::string& key, uint32_t v);
  Status add_int32(const std::string& key, int32_t v);
  Status add_uint64(const std::string& key, uint64_t v);
  Status add_int64(const std::string& key, int64_t v);
  Status add_float32(const std::string& key, float v);
  Status add_float64(const std::string& key, double v);
  Status add_bool(const std::string& key, bool v);
  Status add_string(const std::string& key, const std::string& v);
  Status add_string_array(const std::string& key, const std::vector<std::string>& v);
  Status add_int32_array(const std::string& key, const std::vector<int32_t>& v);
  Status add_float32_array(const std::string& key, const std::vector<float>& v);
  // Sets general.alignment (uint32), as gguf-py's add_custom_alignment does.
  Status set_alignment(uint64_t alignment);

  // Adds a tensor whose bytes are borrowed (they must stay valid until write()).
  // dims are in ggml order (ne[0], the row length, first). Errors: a duplicate or
  // empty name, 0 or more than 4 dims, a zero dim, an unknown type id, a row length
  // that is not a multiple of the type's block size, or bytes.size() other than
  // dims x type.
  Status add_tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                    std::span<const uint8_t> bytes);
  // The same, with the bytes produced while the file is written.
  Status add_tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                    uint64_t size_bytes, GgufTensorProducer producer);

  uint64_t alignment() const { return alignment_; }

  // Writes the file to path atomically. The writer can write again (same content).
  Status write(const std::string& path) const;

  // The header, metadata and tensor table, padded to the alignment: the bytes
  // before the data section.
  std::string encode_header() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type = 0;
    uint64_t size_bytes = 0;
    GgufTensorProducer producer;
  };
  Status add_tensor_info(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                         uint64_t size_bytes);

  std::vector<GgufKeyValue> metadata_;
  std::unordered_set<std::string> keys_;
  std::vector<Tensor> tensors_;
  std::unordered_set<std::string> tensor_names_;
  uint64_t alignment_ = kDefaultAlignment;
};

}  // namespace keel::engine
