// The "split" step: assigns every record to one of named splits (train / validation /
// test by default) by a hash of its key field, or of the whole record when no key is
// named, so the same record always lands in the same split whatever the order or size
// of the input, and records sharing a key stay together. The share of each split
// approaches its ratio as the input grows. It keeps every record; with tag_field set
// it writes the split's name into that field. Missing key: dropped ("no_key_field").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/operator.h"

namespace keel::data {

struct SplitOptions {
  std::vector<double> ratios = {0.8, 0.1, 0.1};
  std::vector<std::string> names = {"train", "validation", "test"};
  std::string key;            // empty: the whole record (its compact JSON)
  std::string seed = "keel";  // another seed gives another, equally deterministic split
  std::string tag_field;      // empty: no field written

  void describe(ParamSet* params);
  Status validate() const;
};

// The split index for a key: hash(seed, key) as a number in [0, 1), against the
// cumulative ratios.
size_t split_index(std::string_view key, const SplitOptions& options);

class SplitOperator : public RecordOperator {
 public:
  static Result<std::unique_ptr<SplitOperator>> create(SplitOptions options);
  std::string_view name() const override { return "split"; }
  const std::vector<std::string>& split_names() const { return options_.names; }
  // The split of the record last kept.
  size_t last_split() const { return last_split_; }
  // Records kept per split.
  const std::vector<uint64_t>& split_counts() const { return split_counts_; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  explicit SplitOperator(SplitOptions options)
      : options_(std::move(options)), split_counts_(options_.names.size(), 0) {}
  SplitOptions options_;
  size_t last_split_ = 0;
  std::vector<uint64_t> split_counts_;
};

}  // namespace keel::data
