// GGUF files (the llama.cpp ecosystem's model format, versions 2 and 3): the reader
// maps the file read-only and parses the header, every metadata key/value (arrays
// included) and the tensor table. Every count, length and offset is checked against
// the file's size before it is used, so a truncated, corrupt or hostile file is a
// kInvalidArgument / kCorrupt error, never a crash or a huge allocation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

struct GgufArray;

// A metadata value. Integers of every width are widened (signed to int64, unsigned
// to uint64); `type` keeps the width the file used.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> data;

  std::optional<std::string> as_string() const;
  std::optional<int64_t> as_int() const;  // any integer type that fits
  std::optional<double> as_double() const;
};

struct GgufArray {
  GgufValueType element_type = GgufValueType::kUint8;
  std::vector<GgufValue> values;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] first, as ggml orders them
  uint32_t type = 0;           // ggml type id (see ggml_types.h)
  uint64_t offset = 0;         // from the start of the data section
  uint64_t size_bytes = 0;     // computed from dims and type
  uint64_t element_count() const;
};

struct GgufLimits {
  uint64_t max_string_bytes = 64u << 20;   // one key or string value
  uint64_t max_array_elements = 1u << 26;  // one metadata array
  uint64_t max_tensors = 1u << 20;
  uint64_t max_metadata_entries = 1u << 20;
};

class GgufFile {
 public:
  // Maps and parses path. The mapping stays alive as long as the GgufFile.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path, const GgufLimits& limits = {});
  // Parses an in-memory image (tests, fuzzing). The bytes must outlive the object.
  static Result<std::unique_ptr<GgufFile>> parse(const uint8_t* data, uint64_t size, const GgufLimits& limits = {});
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufValue* find(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;

  // general.architecture, or "" when absent.
  std::string architecture() const;
  // The sum of the element counts of every tensor.
  uint64_t parameter_count() const;
  // Pointer to a tensor's bytes inside the mapped (or parse()d) image; parsing checked
  // that they lie within it.
  const uint8_t* tensor_data(const GgufTensorInfo& tensor) const;

 private:
  GgufFile() = default;
  Status parse_all(const GgufLimits& limits);

  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // owned mmap, or nullptr for parse()
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
};

// A type's name as GGUF writers print it ("uint32", "string", "array").
const char* gguf_value_type_name(GgufValueType type);

}  // namespace keel::engine
