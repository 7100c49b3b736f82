// The key/value cache of one sequence: for every layer, the keys and values of every
// position seen so far, [position][kv_dim], in F16 (the default, as llama.cpp's) or F32
// (exact, for reference tests). Storage grows in steps as the sequence does, up to a
// fixed capacity, so a short conversation does not pay for the whole context. The
// attention kernels read rows through kv_dot / kv_accumulate, which use F16C where the
// CPU has it. A KvCache is owned by one Decoder sequence and is not thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace keel::engine {

enum class KvCacheType { kF16, kF32 };
std::string_view kv_cache_type_name(KvCacheType type);  // "f16", "f32"

class KvCache {
 public:
  KvCache(KvCacheType type, int64_t layers, int64_t kv_dim, int64_t capacity);

  KvCacheType type() const { return type_; }
  int64_t capacity() const { return capacity_; }
  // Positions storage exists for (>= what has been written).
  int64_t allocated() const { return allocated_; }
  size_t bytes() const;

  // Makes room for positions [0, length). REQUIRES: length <= capacity().
  void reserve(int64_t length);
  // Stores one position's keys and values (kv_dim floats each) of one layer.
  void store(int64_t layer, int64_t position, const float* keys, const float* values);
  // Copies positions [0, length) of every layer from another cache of the same shape.
  void copy_prefix(const KvCache& from, int64_t length);

  const void* keys(int64_t layer, int64_t position) const { return at(keys_, layer, position); }
  const void* values(int64_t layer, int64_t position) const { return at(values_, layer, position); }
  // Bytes between consecutive positions of one layer.
  int64_t row_stride() const { return kv_dim_ * element_bytes(); }

 private:
  int64_t element_bytes() const { return type_ == KvCacheType::kF16 ? 2 : 4; }
  const void* at(const std::vector<std::vector<uint8_t>>& part, int64_t layer, int64_t position) const {
    return part[static_cast<size_t>(layer)].data() + position * row_stride();
  }

  KvCacheType type_;
  int64_t kv_dim_;
  int64_t capacity_;
  int64_t allocated_ = 0;
  std::vector<std::vector<uint8_t>> keys_;  // [layer] -> [allocated_][kv_dim]
  std::vector<std::vector<uint8_t>> values_;
};

// sum_i q[i] * k[i] over n elements of a cached row of `type`.
float kv_dot(KvCacheType type, const float* q, const void* k, int64_t n);
// out[i] += p * v[i] over n elements of a cached row of `type`.
void kv_accumulate(KvCacheType type, float p, const void* v, float* out, int64_t n);

// The same over `count` cached rows, `stride` bytes apart, for the attention of one
// query: scores[j] = kv_dot(type, q, rows + j * stride, n), and kv_accumulate(type,
// weights[j], rows + j * stride, out, n) for j = 0, 1, ... in order. Every result is
// the row-by-row one to the bit; an F16 cache with n a multiple of 16 (dots) or 8 up
// to 128 (sums) runs several rows at a time and keeps out in registers.
void kv_dot_rows(KvCacheType type, const float* q, const uint8_t* rows, int64_t stride, int64_t count, int64_t n,
                 float* scores);
void kv_accumulate_rows(KvCacheType type, const float* weights, const uint8_t* rows, int64_t stride, int64_t count,
                        float* out, int64_t n);

}  // namespace keel::engine
