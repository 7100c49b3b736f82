#include "keel/engine/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "keel/engine/ggml_types.h"
#include "keel/util/file.h"
#include "keel/util/id.h"

namespace keel::engine {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kVersion = 3;
constexpr uint64_t kMaxKeyBytes = 65535;  // what GgufFile accepts for keys and names
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayNesting = 2;  // GgufFile rejects an array inside an array inside an array

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Appends little-endian encodings (x86-64 and aarch64 Linux are little-endian; the
// format is too).
class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_ += s;
  }
  void put_value(const GgufValue& v) {
    switch (v.type) {
      case GgufValueType::kUint8: put(static_cast<uint8_t>(std::get<uint64_t>(v.data))); break;
      case GgufValueType::kInt8: put(static_cast<int8_t>(std::get<int64_t>(v.data))); break;
      case GgufValueType::kUint16: put(static_cast<uint16_t>(std::get<uint64_t>(v.data))); break;
      case GgufValueType::kInt16: put(static_cast<int16_t>(std::get<int64_t>(v.data))); break;
      case GgufValueType::kUint32: put(static_cast<uint32_t>(std::get<uint64_t>(v.data))); break;
      case GgufValueType::kInt32: put(static_cast<int32_t>(std::get<int64_t>(v.data))); break;
      case GgufValueType::kUint64: put(std::get<uint64_t>(v.data)); break;
      case GgufValueType::kInt64: put(std::get<int64_t>(v.data)); break;
      case GgufValueType::kFloat32: put(static_cast<float>(std::get<double>(v.data))); break;
      case GgufValueType::kFloat64: put(std::get<double>(v.data)); break;
      case GgufValueType::kBool: put(static_cast<uint8_t>(std::get<bool>(v.data) ? 1 : 0)); break;
      case GgufValueType::kString: put_string(std::get<std::string>(v.data)); break;
      case GgufValueType::kArray: {
        const GgufArray& a = *std::get<std::shared_ptr<GgufArray>>(v.data);
        put(static_cast<uint32_t>(a.element_type));
        put<uint64_t>(a.values.size());
        for (const GgufValue& e : a.values) put_value(e);
        break;
      }
    }
  }

 private:
  std::string& out_;
};

// Checks that a value's data matches its type (the encoder relies on it).
Status check_value(const GgufValue& v, int depth) {
  const char* type_name = gguf_value_type_name(v.type);
  auto mismatch = [&](const std::string& why) {
    return invalid_argument(std::string("a ") + type_name + " value " + why);
  };
  auto unsigned_fits = [&](uint64_t max) -> Status {
    auto p = std::get_if<uint64_t>(&v.data);
    if (p == nullptr) return mismatch("must hold an unsigned integer");
    if (*p > max) return mismatch("cannot hold " + std::to_string(*p));
    return Status::Ok();
  };
  auto signed_fits = [&](int64_t min, int64_t max) -> Status {
    auto p = std::get_if<int64_t>(&v.data);
    if (p == nullptr) return mismatch("must hold a signed integer");
    if (*p < min || *p > max) return mismatch("cannot hold " + std::to_string(*p));
    return Status::Ok();
  };
  switch (v.type) {
    case GgufValueType::kUint8: return unsigned_fits(UINT8_MAX);
    case GgufValueType::kUint16: return unsigned_fits(UINT16_MAX);
    case GgufValueType::kUint32: return unsigned_fits(UINT32_MAX);
    case GgufValueType::kUint64: return unsigned_fits(UINT64_MAX);
    case GgufValueType::kInt8: return signed_fits(INT8_MIN, INT8_MAX);
    case GgufValueType::kInt16: return signed_fits(INT16_MIN, INT16_MAX);
    case GgufValueType::kInt32: return signed_fits(INT32_MIN, INT32_MAX);
    case GgufValueType::kInt64: return signed_fits(INT64_MIN, INT64_MAX);
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64:
      return std::holds_alternative<double>(v.data) ? Status::Ok() : mismatch("must hold a double");
    case GgufValueType::kBool:
      return std::holds_alternative<bool>(v.data) ? Status::Ok() : mismatch("must hold a bool");
    case GgufValueType::kString:
      return std::holds_alternative<std::string>(v.data) ? Status::Ok() : mismatch("must hold a string");
    case GgufValueType::kArray: {
      auto p = std::get_if<std::shared_ptr<GgufArray>>(&v.data);
      if (p == nullptr || *p == nullptr) return mismatch("must hold an array");
      if (depth + 1 >= kMaxArrayNesting && (*p)->element_type == GgufValueType::kArray) {
        return invalid_argument("arrays nest at most " + std::to_string(kMaxArrayNesting) + " deep");
      }
      if (static_cast<uint32_t>((*p)->element_type) > static_cast<uint32_t>(GgufValueType::kFloat64)) {
        return invalid_argument("unknown array element type " +
                                std::to_string(static_cast<uint32_t>((*p)->element_type)));
      }
      for (size_t i = 0; i < (*p)->values.size(); ++i) {
        const GgufValue& e = (*p)->values[i];
        if (e.type != (*p)->element_type) {
          return invalid_argument("array element " + std::to_string(i) + " is a " + gguf_value_type_name(e.type) +
                                  ", not a " + gguf_value_type_name((*p)->element_type));
        }
        Status st = check_value(e, depth + 1);
        if (!st.ok()) return st.with_context("array element " + std::to_string(i));
      }
      return Status::Ok();
    }
  }
  return invalid_argument("unknown value type " + std::to_string(static_cast<uint32_t>(v.type)));
}

GgufValue make_unsigned(GgufValueType type, uint64_t v) { return GgufValue{type, v}; }
GgufValue make_signed(GgufValueType type, int64_t v) { return GgufValue{type, v}; }

template <typename T>
GgufValue make_array(GgufValueType element_type, const std::vector<T>& values) {
  auto arr = std::make_shared<GgufArray>();
  arr->element_type = element_type;
  arr->values.reserve(values.size());
  for (const T& v : values) {
    GgufValue e;
    e.type = element_type;
    if constexpr (std::is_same_v<T, std::string>) {
      e.data = v;
    } else if constexpr (std::is_floating_point_v<T>) {
      e.data = double{v};
    } else {
      e.data = int64_t{v};
    }
    arr->values.push_back(std::move(e));
  }
  return GgufValue{GgufValueType::kArray, std::move(arr)};
}

// Writes to a file descriptor, counting bytes so a producer that writes too much or
// too little is caught.
class FdSink : public GgufTensorSink {
 public:
  FdSink(int fd, const std::string& path, uint64_t limit) : fd_(fd), path_(path), limit_(limit) {}
  Status write(std::span<const uint8_t> bytes) override {
    if (bytes.size() > limit_ - written_) {
      return invalid_argument("the producer wrote more than the tensor's " + std::to_string(limit_) + " bytes");
    }
    KEEL_RETURN_IF_ERROR(write_all(fd_, bytes.data(), bytes.size(), path_));
    written_ += bytes.size();
    return Status::Ok();
  }
  uint64_t written() const { return written_; }

 private:
  int fd_;
  const std::string& path_;
  uint64_t limit_;
  uint64_t written_ = 0;
};

Status write_zeros(int fd, uint64_t n, const std::string& path) {
  static constexpr uint8_t kZeros[4096] = {};
  while (n > 0) {
    uint64_t chunk = n < sizeof(kZeros) ? n : sizeof(kZeros);
    KEEL_RETURN_IF_ERROR(write_all(fd, kZeros, chunk, path));
    n -= chunk;
  }
  return Status::Ok();
}

}  // namespace

Status GgufWriter::add(const std::string& key, const GgufValue& value) {
  if (key.empty()) return invalid_argument("a GGUF metadata key must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return invalid_argument("GGUF metadata key of " + std::to_string(key.size()) + " bytes is longer than " +
                            std::to_string(kMaxKeyBytes));
  }
  if (keys_.count(key) != 0) return invalid_argument("GGUF metadata key '" + key + "' was already added");
  Status st = check_value(value, 0);
  if (!st.ok()) return st.with_context("GGUF metadata key '" + key + "'");
  uint64_t alignment = alignment_;
  if (key == "general.alignment") {
    auto v = value.as_int();
    if (value.type == GgufValueType::kArray || value.type == GgufValueType::kBool || !v || *v <= 0 ||
        (*v & (*v - 1)) != 0 || static_cast<uint64_t>(*v) > kMaxAlignment) {
      return invalid_argument("general.alignment must be a power of two from 1 to " + std::to_string(kMaxAlignment));
    }
    if (!tensors_.empty()) return failed_precondition("general.alignment must be set before the first tensor");
    alignment = static_cast<uint64_t>(*v);
  }
  metadata_.push_back(GgufKeyValue{key, value});
  keys_.insert(key);
  alignment_ = alignment;
  return Status::Ok();
}

Status GgufWriter::add_uint8(const std::string& key, uint8_t v) {
  return add(key, make_unsigned(GgufValueType::kUint8, v));
}
Status GgufWriter::add_int8(const std::string& key, int8_t v) { return add(key, make_signed(GgufValueType::kInt8, v)); }
Status GgufWriter::add_uint16(const std::string& key, uint16_t v) {
  return add(key, make_unsigned(GgufValueType::kUint16, v));
}
Status GgufWriter::add_int16(const std::string& key, int16_t v) {
  return add(key, make_signed(GgufValueType::kInt16, v));
}
Status GgufWriter::add_uint32(const std::string& key, uint32_t v) {
  return add(key, make_unsigned(GgufValueType::kUint32, v));
}
Status GgufWriter::add_int32(const std::string& key, int32_t v) {
  return add(key, make_signed(GgufValueType::kInt32, v));
}
Status GgufWriter::add_uint64(const std::string& key, uint64_t v) {
  return add(key, make_unsigned(GgufValueType::kUint64, v));
}
Status GgufWriter::add_int64(const std::string& key, int64_t v) {
  return add(key, make_signed(GgufValueType::kInt64, v));
}
Status GgufWriter::add_float32(const std::string& key, float v) {
  return add(key, GgufValue{GgufValueType::kFloat32, double{v}});
}
Status GgufWriter::add_float64(const std::string& key, double v) {
  return add(key, GgufValue{GgufValueType::kFloat64, v});
}
Status GgufWriter::add_bool(const std::string& key, bool v) { return add(key, GgufValue{GgufValueType::kBool, v}); }
Status GgufWriter::add_string(const std::string& key, const std::string& v) {
  return add(key, GgufValue{GgufValueType::kString, v});
}
Status GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  return add(key, make_array(GgufValueType::kString, v));
}
Status GgufWriter::add_int32_array(const std::string& key, const std::vector<int32_t>& v) {
  return add(key, make_array(GgufValueType::kInt32, v));
}
Status GgufWriter::add_float32_array(const std::string& key, const std::vector<float>& v) {
  return add(key, make_array(GgufValueType::kFloat32, v));
}
Status GgufWriter::set_alignment(uint64_t alignment) {
  if (alignment == 0 || alignment > kMaxAlignment) {
    return invalid_argument("general.alignment must be a power of two from 1 to " + std::to_string(kMaxAlignment));
  }
  return add_uint32("general.alignment", static_cast<uint32_t>(alignment));
}

Status GgufWriter::add_tensor_info(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                                   uint64_t size_bytes) {
  if (name.empty()) return invalid_argument("a GGUF tensor name must not be empty");
  if (name.size() > kMaxKeyBytes) return invalid_argument("GGUF tensor name is longer than 65535 bytes");
  if (tensor_names_.count(name) != 0) return invalid_argument("GGUF tensor '" + name + "' was already added");
  if (dims.empty() || dims.size() > kMaxDims) {
    return invalid_argument("tensor '" + name + "' has " + std::to_string(dims.size()) +
                            " dimensions (1 to 4 allowed)");
  }
  auto info = ggml_type_info(type);
  if (!info) return invalid_argument("tensor '" + name + "' has unknown ggml type id " + std::to_string(type));
  uint64_t elements = 1;
  for (uint64_t d : dims) {
    if (d == 0 || d > (uint64_t{1} << 40) || elements > (uint64_t{1} << 50) / d) {
      return invalid_argument("tensor '" + name + "' has an impossible shape");
    }
    elements *= d;
  }
  if (dims[0] % info->block_size != 0) {
    return invalid_argument("tensor '" + name + "' of type " + std::string(info->name) + " has a row of " +
                            std::to_string(dims[0]) + " elements, not a multiple of the block size " +
                            std::to_string(info->block_size));
  }
  uint64_t expected = elements / info->block_size * info->type_size;
  if (size_bytes != expected) {
    return invalid_argument("tensor '" + name + "' of type " + std::string(info->name) + " needs " +
                            std::to_string(expected) + " bytes for its shape, got " + std::to_string(size_bytes));
  }
  return Status::Ok();
}

Status GgufWriter::add_tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                              std::span<const uint8_t> bytes) {
  KEEL_RETURN_IF_ERROR(add_tensor_info(name, dims, type, bytes.size()));
  auto borrowed = [bytes](GgufTensorSink& sink) { return sink.write(bytes); };
  tensors_.push_back(Tensor{name, dims, type, bytes.size(), std::move(borrowed)});
  tensor_names_.insert(name);
  return Status::Ok();
}

Status GgufWriter::add_tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                              uint64_t size_bytes, GgufTensorProducer producer) {
  if (!producer) return invalid_argument("tensor '" + name + "' has no producer");
  KEEL_RETURN_IF_ERROR(add_tensor_info(name, dims, type, size_bytes));
  tensors_.push_back(Tensor{name, dims, type, size_bytes, std::move(producer)});
  tensor_names_.insert(name);
  return Status::Ok();
}

std::string GgufWriter::encode_header() const {
  std::string out;
  Encoder e(out);
  e.put(kMagic);
  e.put(kVersion);
  e.put<uint64_t>(tensors_.size());
  e.put<uint64_t>(metadata_.size());
  for (const GgufKeyValue& kv : metadata_) {
    e.put_string(kv.key);
    e.put(static_cast<uint32_t>(kv.value.type));
    e.put_value(kv.value);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    e.put_string(t.name);
    e.put(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) e.put(d);
    e.put(t.type);
    e.put(offset);
    offset += align_up(t.size_bytes, alignment_);
  }
  out.resize(align_up(out.size(), alignment_), '\0');
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  // The temporary file sits beside the target so that rename() is atomic.
  std::string tmp = path + ".tmp-" + new_id();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("create " + tmp, errno);
  auto body = [&]() -> Status {
    std::string header = encode_header();
    KEEL_RETURN_IF_ERROR(write_all(fd, header.data(), header.size(), tmp));
    for (const Tensor& t : tensors_) {
      FdSink sink(fd, tmp, t.size_bytes);
      Status st = t.producer(sink);
      if (!st.ok()) return st.with_context("tensor '" + t.name + "'");
      if (sink.written() != t.size_bytes) {
        return invalid_argument("tensor '" + t.name + "': the producer wrote " + std::to_string(sink.written()) +
                                " bytes, not " + std::to_string(t.size_bytes));
      }
      // Every tensor, the last included, is padded to the alignment (as ggml and gguf-py do).
      KEEL_RETURN_IF_ERROR(write_zeros(fd, align_up(t.size_bytes, alignment_) - t.size_bytes, tmp));
    }
    if (::fsync(fd) != 0) return os_error("fsync " + tmp, errno);
    return Status::Ok();
  };
  Status st = body();
  if (::close(fd) != 0 && st.ok()) st = os_error("close " + tmp, errno);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = os_error("rename to " + path, errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return fsync_dir(parent_dir(path));
}

}  // namespace keel::engine
