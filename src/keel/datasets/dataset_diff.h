// Comparing two dataset versions (keel data diff A B): records added, removed and
// changed, and how the profile moved. With a key field (given, or "id" when both
// schemas have one) records are matched by key, and a key whose record differs is
// "changed"; without one, records are compared whole, as multisets, and what is left on
// both sides is then paired by text: a removed and an added record whose texts are near
// duplicates (MinHash, datatrove's settings, estimated Jaccard similarity at or above
// near_threshold) count as one changed record. The text is the record's text field
// (data/record_text.h: "text", or a chat's messages) or, lacking one, the whole
// record's JSON. Two versions whose schemas differ (a field only in
// one, or of another type) are refused with the differences named: their records are
// not comparable one to one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "keel/datasets/dataset_registry.h"

namespace keel::datasets {

struct ProfileDelta {
  std::string metric;  // "records", "field text: chars p50", "language en share", ...
  double from = 0;
  double to = 0;
};

struct RecordExample {
  uint64_t line = 0;  // 1-based record number in its version
  std::string json;   // the record, cut to a preview
};

struct DatasetDiff {
  std::string from, to;  // NAME@VERSION
  std::string key;       // "" when records were compared whole
  double near_threshold = 0;  // whole records: the similarity that paired changed ones; 0: not paired
  std::string near_skipped;   // why the pairing was skipped ("" when it ran or was not asked for)
  uint64_t from_records = 0, to_records = 0;
  uint64_t unchanged = 0, added = 0, removed = 0, changed = 0;
  std::vector<RecordExample> added_examples, removed_examples, changed_examples;  // in `to` (removed: `from`)
  std::vector<ProfileDelta> profile;  // metrics whose value differs
};

struct DiffOptions {
  // nullopt: "id" when both schemas have it, else whole records; "": whole records.
  std::optional<std::string> key;
  size_t examples = 3;
  // Whole records: pair leftovers at this estimated Jaccard similarity; 0 turns it off.
  double near_threshold = 0.7;
  // The pairing indexes every added record (about 1 KiB each); past this many it is
  // skipped, and the diff says so.
  size_t max_near_pairs = 1000000;
  std::string cache_dir;  // where local_file() puts its links
  // Called now and then with the records compared so far (of from + to records).
  std::function<void(uint64_t records)> progress;
};

Result<DatasetDiff> diff_datasets(DatasetRegistry& registry, std::string_view from, std::string_view to,
                                  const DiffOptions& options);

// The metrics of a profile that diffs compare, by name.
std::vector<std::pair<std::string, double>> profile_metrics(const data::ProfileJson& profile);

data::ProfileJson to_json(const DatasetDiff& d);

}  // namespace keel::datasets
