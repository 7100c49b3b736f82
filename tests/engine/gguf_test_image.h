// Builds small GGUF v3 images in memory (metadata only, no tensors) for tokenizer
// tests: each kv_* call appends one key/value, finish() puts the header in front.
// The caller passes finish() the number of kv_* calls made; a wrong count is how
// tests make a malformed file on purpose.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::testing {

class GgufImage {
 public:
  GgufImage& kv_string(const std::string& key, const std::string& value) {
    str(key).u32(8);
    return str(value);
  }
  GgufImage& kv_int(const std::string& key, int32_t value) {
    str(key).u32(5);
    return raw(&value, 4);
  }
  GgufImage& kv_bool(const std::string& key, bool value) {
    str(key).u32(7);
    bytes_.push_back(value ? '\1' : '\0');
    return *this;
  }
  GgufImage& kv_strings(const std::string& key, const std::vector<std::string>& values) {
    str(key).u32(9).u32(8).u64(values.size());
    for (const auto& v : values) str(v);
    return *this;
  }
  GgufImage& kv_ints(const std::string& key, const std::vector<int32_t>& values) {
    str(key).u32(9).u32(5).u64(values.size());
    for (int32_t v : values) raw(&v, 4);
    return *this;
  }
  GgufImage& kv_floats(const std::string& key, const std::vector<float>& values) {
    str(key).u32(9).u32(6).u64(values.size());
    for (float v : values) raw(&v, 4);
    return *this;
  }
  // The finished file: header (version 3, no tensors) then the key/values.
  std::string finish(uint64_t kv_count) const {
    std::string out = "GGUF";
    const uint32_t version = 3;
    const uint64_t tensors = 0;
    out.append(reinterpret_cast<const char*>(&version), 4);
    out.append(reinterpret_cast<const char*>(&tensors), 8);
    out.append(reinterpret_cast<const char*>(&kv_count), 8);
    return out + bytes_;
  }

 private:
  GgufImage& u32(uint32_t v) { return raw(&v, 4); }
  GgufImage& u64(uint64_t v) { return raw(&v, 8); }
  GgufImage& str(const std::string& s) {
    u64(s.size());
    bytes_ += s;
    return *this;
  }
  GgufImage& raw(const void* p, size_t n) {
    bytes_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string bytes_;
};

}  // namespace keel::testing
