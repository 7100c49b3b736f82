#include "keel/data/minhash.h"

#include <algorithm>
#include <limits>

#include "keel/data/hash.h"
#include "keel/data/text_normalize.h"

namespace keel::data {
namespace {

constexpr uint64_t kMersenne61 = (uint64_t{1} << 61) - 1;

// x mod 2^61 - 1 for any 64-bit x.
uint64_t reduce61(uint64_t x) {
  uint64_t r = (x & kMersenne61) + (x >> 61);
  return r >= kMersenne61 ? r - kMersenne61 : r;
}

// (a * x + b) mod 2^61 - 1 for a, b, x below 2^61 - 1, by folding the 122-bit product.
inline uint64_t mulmod61(uint64_t a, uint64_t x, uint64_t b) {
  unsigned __int128 v = static_cast<unsigned __int128>(a) * x + b;
  uint64_t r = (static_cast<uint64_t>(v) & kMersenne61) + static_cast<uint64_t>(v >> 61);
  r = (r & kMersenne61) + (r >> 61);
  return r >= kMersenne61 ? r - kMersenne61 : r;
}

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

}  // namespace

Status MinHashConfig::validate() const {
  if (ngram < 1 || ngram > 1000) return invalid_argument("--ngram must be between 1 and 1000");
  if (bands < 1 || rows < 1) return invalid_argument("--bands and rows per band must be at least 1");
  if (num_perm() > 4096) return invalid_argument("at most 4096 permutations (bands x rows)");
  if (threshold < 0.0 || threshold > 1.0) {
    return invalid_argument("--threshold is a Jaccard similarity between 0 and 1");
  }
  return Status::Ok();
}

MinHashConfig datatrove_preset() {
  MinHashConfig c;
  c.ngram = 5;
  c.char_ngrams = false;
  c.bands = 14;
  c.rows = 8;
  return c;
}

MinHashConfig nemo_preset() {
  MinHashConfig c;
  c.ngram = 24;
  c.char_ngrams = true;
  c.bands = 20;
  c.rows = 13;
  return c;
}

Result<MinHashConfig> minhash_preset(std::string_view name) {
  if (name == "datatrove") return datatrove_preset();
  if (name == "nemo") return nemo_preset();
  return invalid_argument("unknown preset \"" + std::string(name) + "\": use datatrove or nemo");
}

MinHasher::MinHasher(const MinHashConfig& config) : config_(config) {
  uint64_t state = config.seed;
  auto next = [&state] {
    state += 0x9e3779b97f4a7c15ull;
    return mix64(state);
  };
  const int n = config.num_perm();
  a_.resize(static_cast<size_t>(n));
  b_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    a_[static_cast<size_t>(i)] = 1 + next() % (kMersenne61 - 1);
    b_[static_cast<size_t>(i)] = next() % kMersenne61;
  }
}

void MinHasher::shingles(std::string_view text, std::vector<uint64_t>* out) const {
  out->clear();
  const auto n = static_cast<size_t>(config_.ngram);
  if (!config_.char_ngrams) {
    std::string storage;
    std::vector<std::string_view> words;
    simplified_words(text, &storage, &words);
    if (words.empty()) return;
    std::vector<uint64_t> word_hashes(words.size());
    for (size_t i = 0; i < words.size(); ++i) word_hashes[i] = hash_bytes(words[i]);
    size_t count = words.size() >= n ? words.size() - n + 1 : 1;
    size_t width = std::min(n, words.size());
    out->reserve(count);
    for (size_t i = 0; i < count; ++i) {
      uint64_t h = 0x243f6a8885a308d3ull;
      for (size_t j = 0; j < width; ++j) h = combine64(h, word_hashes[i + j]);
      out->push_back(reduce61(h));
    }
    return;
  }
  std::string simple = simplified_chars(text);
  if (simple.empty()) return;
  std::vector<size_t> starts;
  starts.reserve(simple.size() + 1);
  for (size_t i = 0; i < simple.size(); ++i) {
    if (!is_continuation_byte(simple[i])) starts.push_back(i);
  }
  starts.push_back(simple.size());
  size_t chars = starts.size() - 1;
  size_t count = chars >= n ? chars - n + 1 : 1;
  size_t width = std::min(n, chars);
  out->reserve(count);
  std::string_view view(simple);
  for (size_t i = 0; i < count; ++i) {
    out->push_back(reduce61(hash_bytes(view.substr(starts[i], starts[i + width] - starts[i]))));
  }
}

void MinHasher::signature(const std::vector<uint64_t>& shingles, uint32_t* out) const {
  const size_t n = a_.size();
  std::fill(out, out + n, std::numeric_limits<uint32_t>::max());
  const uint64_t* a = a_.data();
  const uint64_t* b = b_.data();
  // Shingle-major so that out[] stays in L1; each product is folded mod 2^61 - 1
  // without a division.
  for (uint64_t x : shingles) {
    for (size_t i = 0; i < n; ++i) {
      auto h = static_cast<uint32_t>(mulmod61(a[i], x, b[i]));
      out[i] = h < out[i] ? h : out[i];
    }
  }
}

void MinHasher::signature_reference(const std::vector<uint64_t>& shingles, uint32_t* out) const {
  for (size_t i = 0; i < a_.size(); ++i) {
    uint32_t best = std::numeric_limits<uint32_t>::max();
    for (uint64_t x : shingles) {
      unsigned __int128 v = static_cast<unsigned __int128>(a_[i]) * x + b_[i];
      auto h = static_cast<uint32_t>(static_cast<uint64_t>(v % kMersenne61));
      best = std::min(best, h);
    }
    out[i] = best;
  }
}

uint64_t MinHasher::band_key(const uint32_t* signature, int band) const {
  const uint32_t* rows = signature + static_cast<size_t>(band) * static_cast<size_t>(config_.rows);
  return hash_bytes(
      std::string_view(reinterpret_cast<const char*>(rows), sizeof(uint32_t) * static_cast<size_t>(config_.rows)),
      static_cast<uint64_t>(band));
}

double signature_similarity(const uint32_t* x, const uint32_t* y, int num_perm) {
  int equal = 0;
  for (int i = 0; i < num_perm; ++i) equal += x[i] == y[i] ? 1 : 0;
  return num_perm == 0 ? 0.0 : static_cast<double>(equal) / num_perm;
}

void DocumentClusters::resize(size_t n) {
  size_t old = parent_.size();
  parent_.resize(n);
  for (size_t i = old; i < n; ++i) parent_[i] = static_cast<uint32_t>(i);
}

uint32_t DocumentClusters::find(uint32_t x) {
  uint32_t root = x;
  while (parent_[root] != root) root = parent_[root];
  while (parent_[x] != root) {  // path compression
    uint32_t next = parent_[x];
    parent_[x] = root;
    x = next;
  }
  return root;
}

void DocumentClusters::join(uint32_t x, uint32_t y) {
  uint32_t rx = find(x);
  uint32_t ry = find(y);
  if (rx == ry) return;
  // The smaller index stays the root: the first document in input order is kept.
  if (rx < ry) {
    parent_[ry] = rx;
  } else {
    parent_[rx] = ry;
  }
}

MinHashLsh::MinHashLsh(const MinHashConfig& config) : config_(config) {}

void MinHashLsh::reserve(size_t documents) {
  keys_.reserve(documents * static_cast<size_t>(config_.bands));
  if (config_.threshold > 0) signatures_.reserve(documents * static_cast<size_t>(config_.num_perm()));
  empty_.reserve(documents);
}

void MinHashLsh::add(const uint64_t* band_keys, const uint32_t* signature, bool empty) {
  keys_.insert(keys_.end(), band_keys, band_keys + config_.bands);
  if (config_.threshold > 0) signatures_.insert(signatures_.end(), signature, signature + config_.num_perm());
  empty_.push_back(empty);
}

DocumentClusters MinHashLsh::cluster() const {
  const size_t docs = empty_.size();
  const auto bands = static_cast<size_t>(config_.bands);
  const int num_perm = config_.num_perm();
  DocumentClusters clusters(docs);
  std::vector<std::pair<uint64_t, uint32_t>> bucket;
  std::vector<uint32_t> representatives;
  bucket.reserve(docs);
  for (size_t band = 0; band < bands; ++band) {
    bucket.clear();
    for (size_t d = 0; d < docs; ++d) {
      if (!empty_[d]) bucket.emplace_back(keys_[d * bands + band], static_cast<uint32_t>(d));
    }
    std::sort(bucket.begin(), bucket.end());
    for (size_t i = 0; i < bucket.size();) {
      size_t j = i + 1;
      while (j < bucket.size() && bucket[j].first == bucket[i].first) ++j;
      if (j - i > 1) {
        if (config_.threshold <= 0) {
          for (size_t k = i + 1; k < j; ++k) clusters.join(bucket[i].second, bucket[k].second);
        } else {
          // Each member joins the first earlier representative it is similar enough
          // to, or becomes a representative itself.
          representatives.clear();
          for (size_t k = i; k < j; ++k) {
            uint32_t doc = bucket[k].second;
            const uint32_t* sig = signatures_.data() + static_cast<size_t>(doc) * static_cast<size_t>(num_perm);
            bool joined = false;
            for (uint32_t rep : representatives) {
              const uint32_t* rep_sig = signatures_.data() + static_cast<size_t>(rep) * static_cast<size_t>(num_perm);
              if (signature_similarity(sig, rep_sig, num_perm) >= config_.threshold) {
                clusters.join(rep, doc);
                joined = true;
                break;
              }
            }
            if (!joined) representatives.push_back(doc);
          }
        }
      }
      i = j;
    }
  }
  return clusters;
}

}  // namespace keel::data
