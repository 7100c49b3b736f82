// The streaming form of exact duplicate removal for pipelines: keeps the first record
// of every group whose text is equal after normalize_for_exact (the same key as
// `keel data dedup`), in one pass, 16 bytes of memory per distinct text.
// Drop reasons: "exact_duplicate", "no_text_field".
#pragma once

#include <memory>
#include <string>
#include <unordered_set>

#include "keel/data/operator.h"

namespace keel::data {

class ExactDedupOperator : public RecordOperator {
 public:
  explicit ExactDedupOperator(std::string field) : field_(std::move(field)) {}
  std::string_view name() const override { return "dedup"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  struct Key {
    uint64_t hi;
    uint64_t lo;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return static_cast<size_t>(k.lo); }
  };
  std::string field_;
  std::unordered_set<Key, KeyHash> seen_;
};

}  // namespace keel::data
