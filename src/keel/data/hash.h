// Fast non-cryptographic 64-bit hashing for deduplication: shingles, band keys and
// exact-duplicate keys. Deterministic across runs and machines (little-endian
// x86-64); not for security. Different seeds give independent-looking hashes.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace keel::data {

// A strong 64-bit finaliser (Stafford's mix13 of splitmix64): every input bit
// affects every output bit.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Combines a running hash with one more 64-bit value (order-sensitive).
inline uint64_t combine64(uint64_t h, uint64_t value) {
  return mix64(h ^ (value + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)));
}

// Hashes bytes eight at a time; the length is mixed in so that trailing zero bytes
// change the hash.
inline uint64_t hash_bytes(std::string_view bytes, uint64_t seed = 0) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * (n + 1));
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ mix64(word)) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t word = 0;
    std::memcpy(&word, p, n);
    h = (h ^ mix64(word ^ n)) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
  }
  return mix64(h);
}

}  // namespace keel::data
