// MinHash signatures and LSH banding for near-duplicate detection (deduplicate() in
// dedup.h drives them over files). A document becomes a set of shingles (word or
// character n-grams, hashed to 64 bits and reduced mod p = 2^61 - 1); permutation i maps
// a shingle x to ((a_i * x + b_i) mod p) & 0xffffffff with a_i in [1, p), b_i in [0, p)
// (the universal family datatrove and datasketch use) and the signature keeps each
// permutation's minimum. Two documents whose signatures agree on every row of some
// band are candidates; union-find joins candidates into clusters whose root is the
// smallest document index (the first in input order).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::data {

struct MinHashConfig {
  int ngram = 5;             // shingle size, in words (or characters with char_ngrams)
  bool char_ngrams = false;  // character n-grams instead of word n-grams
  int bands = 14;            // LSH bands ...
  int rows = 8;              // ... of this many permutations: num_perm = bands * rows
  uint64_t seed = 1;         // permutation parameters derive from it
  // Candidates are joined only when their signatures' estimated Jaccard similarity
  // (the fraction of equal permutations) reaches this; 0 joins every LSH candidate.
  double threshold = 0.0;

  int num_perm() const { return bands * rows; }
  Status validate() const;
};

// datatrove's MinhashConfig defaults: word 5-grams, 14 buckets x 8 hashes (112).
MinHashConfig datatrove_preset();
// NeMo Curator's fuzzy dedup defaults: character 24-grams, 260 hashes, 20 bands x 13.
MinHashConfig nemo_preset();
Result<MinHashConfig> minhash_preset(std::string_view name);

// Computes signatures; immutable after construction, so one instance serves many
// threads at once.
class MinHasher {
 public:
  explicit MinHasher(const MinHashConfig& config);

  // The shingle hashes of text (after simplified_words / simplified_chars), each below
  // 2^61 - 1. A text shorter than one n-gram gives one shingle of what it has; an
  // empty one none.
  void shingles(std::string_view text, std::vector<uint64_t>* out) const;

  // Signature of a shingle set (num_perm values). An empty set gives all 0xffffffff.
  void signature(const std::vector<uint64_t>& shingles, uint32_t* out) const;
  // The same with the % operator on 128-bit values, permutation by permutation: the
  // reference the fast path (Mersenne folding, shingle-major loop) is tested against.
  void signature_reference(const std::vector<uint64_t>& shingles, uint32_t* out) const;

  // Hash of the rows of one band of a signature.
  uint64_t band_key(const uint32_t* signature, int band) const;

  const MinHashConfig& config() const { return config_; }

 private:
  MinHashConfig config_;
  std::vector<uint64_t> a_;  // multipliers, in [1, 2^61 - 1)
  std::vector<uint64_t> b_;  // offsets, in [0, 2^61 - 1)
};

// Estimated Jaccard similarity: the fraction of equal positions in two signatures.
double signature_similarity(const uint32_t* x, const uint32_t* y, int num_perm);

// Union-find over document indices 0..n-1 where the root of a set is its smallest index.
class DocumentClusters {
 public:
  explicit DocumentClusters(size_t n = 0) { resize(n); }
  void resize(size_t n);
  uint32_t find(uint32_t x);
  void join(uint32_t x, uint32_t y);
  size_t size() const { return parent_.size(); }

 private:
  std::vector<uint32_t> parent_;
};

// LSH index: band keys of every document, kept compactly (bands x 8 bytes per
// document, plus the signature when a threshold needs it), clustered at the end.
class MinHashLsh {
 public:
  explicit MinHashLsh(const MinHashConfig& config);
  // Adds the next document (indices are 0, 1, 2, ... in call order). An empty
  // signature (no shingles) is added but never a candidate.
  void add(const uint64_t* band_keys, const uint32_t* signature, bool empty);
  void reserve(size_t documents);
  size_t size() const { return empty_.size(); }
  // Joins candidates; the result maps each document to its cluster root.
  DocumentClusters cluster() const;

 private:
  MinHashConfig config_;
  std::vector<uint64_t> keys_;        // document-major: keys_[doc * bands + band]
  std::vector<uint32_t> signatures_;  // document-major; only when threshold > 0
  std::vector<bool> empty_;
};

}  // namespace keel::data
