#include "keel/engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "keel/engine/ggml_types.h"

namespace keel::engine {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxDims = 4;          // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 2;

// Reads little-endian values from a bounded buffer; every read checks the bound.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status read(T& out, const char* what) {
    if (remaining() < sizeof(T)) return truncated(what);
    std::memcpy(&out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status read_string(std::string& out, uint64_t max_bytes, const char* what) {
    uint64_t len = 0;
    KEEL_RETURN_IF_ERROR(read(len, what));
    if (len > max_bytes) {
      return invalid_argument(std::string(what) + " at byte " + std::to_string(pos_ - 8) + " claims " +
                              std::to_string(len) + " bytes, more than the limit of " + std::to_string(max_bytes));
    }
    if (remaining() < len) return truncated(what);
    out.assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status truncated(const char* what) const {
    return invalid_argument(std::string("file is truncated: ") + what + " at byte " + std::to_string(pos_) +
                            " runs past the end (" + std::to_string(size_) + " bytes)");
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// The smallest number of bytes one element of `type` can take in the file; used to
// reject array counts that could not fit before allocating for them.
uint64_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString: return 8;
    case GgufValueType::kArray: return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

Status read_value(Cursor& c, GgufValueType type, GgufValue& out, const GgufLimits& limits, int depth) {
  out.type = type;
  switch (type) {
    case GgufValueType::kUint8: { uint8_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "uint8 value")); out.data = uint64_t{v}; break; }
    case GgufValueType::kInt8: { int8_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "int8 value")); out.data = int64_t{v}; break; }
    case GgufValueType::kUint16: { uint16_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "uint16 value")); out.data = uint64_t{v}; break; }
    case GgufValueType::kInt16: { int16_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "int16 value")); out.data = int64_t{v}; break; }
    case GgufValueType::kUint32: { uint32_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "uint32 value")); out.data = uint64_t{v}; break; }
    case GgufValueType::kInt32: { int32_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "int32 value")); out.data = int64_t{v}; break; }
    case GgufValueType::kUint64: { uint64_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "uint64 value")); out.data = v; break; }
    case GgufValueType::kInt64: { int64_t v{}; KEEL_RETURN_IF_ERROR(c.read(v, "int64 value")); out.data = v; break; }
    case GgufValueType::kFloat32: { float v{}; KEEL_RETURN_IF_ERROR(c.read(v, "float32 value")); out.data = double{v}; break; }
    case GgufValueType::kFloat64: { double v{}; KEEL_RETURN_IF_ERROR(c.read(v, "float64 value")); out.data = v; break; }
    case GgufValueType::kBool: {
      uint8_t v{};
      KEEL_RETURN_IF_ERROR(c.read(v, "bool value"));
      if (v > 1) return invalid_argument("bool value at byte " + std::to_string(c.pos() - 1) + " is " + std::to_string(v));
      out.data = v == 1;
      break;
    }
    case GgufValueType::kString: {
      std::string s;
      KEEL_RETURN_IF_ERROR(c.read_string(s, limits.max_string_bytes, "string value"));
      out.data = std::move(s);
      break;
    }
    case GgufValueType::kArray: {
      if (depth >= kMaxArrayNesting) return invalid_argument("arrays nested too deeply at byte " + std::to_string(c.pos()));
      uint32_t elem_type = 0;
      uint64_t count = 0;
      KEEL_RETURN_IF_ERROR(c.read(elem_type, "array element type"));
      if (!valid_type(elem_type)) {
        return invalid_argument("unknown array element type " + std::to_string(elem_type) + " at byte " +
                                std::to_string(c.pos() - 4));
      }
      KEEL_RETURN_IF_ERROR(c.read(count, "array length"));
      auto et = static_cast<GgufValueType>(elem_type);
      if (count > limits.max_array_elements || count > c.remaining() / min_encoded_size(et)) {
        return invalid_argument("array at byte " + std::to_string(c.pos() - 12) + " claims " + std::to_string(count) +
                                " elements, more than the file can hold");
      }
      auto arr = std::make_shared<GgufArray>();
      arr->element_type = et;
      arr->values.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        KEEL_RETURN_IF_ERROR(read_value(c, et, arr->values[i], limits, depth + 1));
      }
      out.data = std::move(arr);
      break;
    }
  }
  return Status::Ok();
}

}  // namespace

const char* gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

std::optional<std::string> GgufValue::as_string() const {
  if (auto p = std::get_if<std::string>(&data)) return *p;
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (auto p = std::get_if<int64_t>(&data)) return *p;
  if (auto p = std::get_if<uint64_t>(&data)) {
    if (*p <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(*p);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::as_double() const {
  if (auto p = std::get_if<double>(&data)) return *p;
  if (auto i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

uint64_t GgufTensorInfo::element_count() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path, const GgufLimits& limits) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error("open " + path, errno);
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return os_error("stat " + path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument(path + " is not a regular file");
  }
  if (st.st_size < 24) {
    ::close(fd);
    return invalid_argument(path + " is not a GGUF file: only " + std::to_string(st.st_size) + " bytes long");
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) return os_error("mmap " + path, err);
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->mapping_ = map;
  file->base_ = static_cast<const uint8_t*>(map);
  file->size_ = static_cast<uint64_t>(st.st_size);
  Status parsed = file->parse_all(limits);
  if (!parsed.ok()) return parsed.with_context(path);
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(const uint8_t* data, uint64_t size, const GgufLimits& limits) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->base_ = data;
  file->size_ = size;
  KEEL_RETURN_IF_ERROR(file->parse_all(limits));
  return file;
}

Status GgufFile::parse_all(const GgufLimits& limits) {
  Cursor c(base_, size_);
  uint32_t magic = 0;
  KEEL_RETURN_IF_ERROR(c.read(magic, "magic"));
  if (magic != kMagic) return invalid_argument("not a GGUF file (the first four bytes are not \"GGUF\")");
  KEEL_RETURN_IF_ERROR(c.read(version_, "version"));
  if (version_ == 1) return invalid_argument("GGUF version 1 is obsolete and not supported (convert it to v3)");
  if (version_ != 2 && version_ != 3) return invalid_argument("unsupported GGUF version " + std::to_string(version_));
  uint64_t n_tensors = 0, n_kv = 0;
  KEEL_RETURN_IF_ERROR(c.read(n_tensors, "tensor count"));
  KEEL_RETURN_IF_ERROR(c.read(n_kv, "metadata count"));
  // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor entry 8 + 4 + 8 + 4 + 8.
  if (n_kv > limits.max_metadata_entries || n_kv > c.remaining() / 13) {
    return invalid_argument("header claims " + std::to_string(n_kv) + " metadata entries, more than the file can hold");
  }
  if (n_tensors > limits.max_tensors || n_tensors > c.remaining() / 32) {
    return invalid_argument("header claims " + std::to_string(n_tensors) + " tensors, more than the file can hold");
  }
  metadata_.resize(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKeyValue& kv = metadata_[i];
    KEEL_RETURN_IF_ERROR(c.read_string(kv.key, 65535, "metadata key"));
    uint32_t type = 0;
    KEEL_RETURN_IF_ERROR(c.read(type, "metadata value type"));
    if (!valid_type(type)) {
      return invalid_argument("metadata key '" + kv.key + "' has unknown value type " + std::to_string(type));
    }
    Status st = read_value(c, static_cast<GgufValueType>(type), kv.value, limits, 0);
    if (!st.ok()) return st.with_context("metadata key '" + kv.key + "'");
  }
  if (const GgufValue* a = find("general.alignment")) {
    auto v = a->as_int();
    if (!v || *v <= 0 || (*v & (*v - 1)) != 0 || *v > (1 << 20)) {
      return invalid_argument("general.alignment must be a power of two, not " + (v ? std::to_string(*v) : "a non-integer"));
    }
    alignment_ = static_cast<uint64_t>(*v);
  }
  tensors_.resize(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo& t = tensors_[i];
    KEEL_RETURN_IF_ERROR(c.read_string(t.name, 65535, "tensor name"));
    uint32_t n_dims = 0;
    KEEL_RETURN_IF_ERROR(c.read(n_dims, "tensor dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return invalid_argument("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    t.dims.resize(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      KEEL_RETURN_IF_ERROR(c.read(t.dims[d], "tensor dimension"));
      if (t.dims[d] == 0 || t.dims[d] > (uint64_t{1} << 40) || elements > (uint64_t{1} << 50) / t.dims[d]) {
        return invalid_argument("tensor '" + t.name + "' has an impossible shape");
      }
      elements *= t.dims[d];
    }
    KEEL_RETURN_IF_ERROR(c.read(t.type, "tensor type"));
    auto info = ggml_type_info(t.type);
    if (!info) return invalid_argument("tensor '" + t.name + "' has unknown type id " + std::to_string(t.type));
    if (t.dims[0] % info->block_size != 0) {
      return invalid_argument("tensor '" + t.name + "' of type " + std::string(info->name) + " has a row of " +
                              std::to_string(t.dims[0]) + " elements, not a multiple of the block size " +
                              std::to_string(info->block_size));
    }
    t.size_bytes = elements / info->block_size * info->type_size;
    KEEL_RETURN_IF_ERROR(c.read(t.offset, "tensor offset"));
    if (t.offset % alignment_ != 0) {
      return invalid_argument("tensor '" + t.name + "' starts at offset " + std::to_string(t.offset) +
                              ", not a multiple of the alignment " + std::to_string(alignment_));
    }
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  uint64_t data_size = size_ >= data_offset_ ? size_ - data_offset_ : 0;
  for (const auto& t : tensors_) {
    if (t.offset > data_size || t.size_bytes > data_size - t.offset) {
      return invalid_argument("file is truncated: tensor '" + t.name + "' (" + std::to_string(t.size_bytes) +
                              " bytes at data offset " + std::to_string(t.offset) + ") runs past the end of the file");
    }
  }
  return Status::Ok();
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& kv : metadata_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  return v ? v->as_string() : std::nullopt;
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  return v ? v->as_int() : std::nullopt;
}

std::string GgufFile::architecture() const { return get_string("general.architecture").value_or(""); }

uint64_t GgufFile::parameter_count() const {
  uint64_t total = 0;
  for (const auto& t : tensors_) total += t.element_count();
  return total;
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& tensor) const {
  return base_ + data_offset_ + tensor.offset;
}

}  // namespace keel::engine
