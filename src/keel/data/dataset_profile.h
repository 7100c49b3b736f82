// Exploratory profile of a record file in one streaming pass: record count; per field
// its type, missing / null / empty counts, length distributions (characters, words,
// and tokens when a token counter is given) with percentiles and histograms, and the
// frequencies of categorical fields; and on the text field the language mix (CLD2),
// exact-duplicate rate, near-duplicate clusters (MinHash LSH, datatrove's preset), PII
// findings by type, what each Gopher / C4 filter would remove at its defaults, and
// outliers (longest, shortest, most repetitive) with previews.
// Memory grows with the record count (a few dozen bytes per record for lengths and
// the LSH index), never with record size. Deterministic: the same records in the same
// order give the same profile.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "keel/data/records.h"
#include "keel/util/status.h"

namespace keel::data {

// Keys in a fixed, readable order.
using ProfileJson = nlohmann::ordered_json;

struct ProfileOptions {
  // The field the text analyses look at. Empty: "text" when the first record has it
  // as a string, else that record's longest string field.
  std::string text_field;
  // Counts the tokens of a text (an engine tokenizer); empty: no token lengths.
  std::function<Result<size_t>(std::string_view)> count_tokens;
  std::string tokenizer;  // the tokenizer's name, recorded in the profile
  size_t examples = 3;         // outliers kept per kind
  size_t preview_chars = 240;  // code points of an example shown
  int histogram_bins = 20;
  // Threads for the per-text analyses (languages, PII, quality rules, MinHash); 0: one
  // per core. The profile is the same for any number.
  size_t threads = 0;
  // Run the Gopher and C4 rules (most of the profile's time); false leaves out "quality".
  bool quality_rules = true;
};

// Records per add_batch() when a file is profiled.
inline constexpr size_t kProfileBatch = 512;

class DatasetProfiler {
 public:
  static Result<std::unique_ptr<DatasetProfiler>> create(ProfileOptions options);
  ~DatasetProfiler();
  DatasetProfiler(const DatasetProfiler&) = delete;
  DatasetProfiler& operator=(const DatasetProfiler&) = delete;

  // Adds the next record; `line` is where it starts in its file (for examples). Fails
  // only when the token counter does.
  Status add(const Record& record, uint64_t line);
  // The same for consecutive records at once; the per-text analyses run on the
  // threads. One line per record.
  Status add_batch(std::span<const Record> records, std::span<const uint64_t> lines);
  // The profile of everything added (see the file comment for its parts).
  ProfileJson finish();

 private:
  struct State;
  explicit DatasetProfiler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct ProfileFileOptions {
  ReadOptions read;  // format, record size limit, on_reject
  ProfileOptions profile;
  // Called now and then with input bytes consumed and records read.
  std::function<void(uint64_t bytes, uint64_t records)> progress;
};

struct FileProfile {
  ProfileJson profile;
  uint64_t rejected = 0;                    // malformed records (not profiled)
  std::vector<Rejection> first_rejections;  // up to three
  uint64_t input_bytes = 0;
  double seconds = 0;
};

Result<FileProfile> profile_file(const std::string& path, ProfileFileOptions options);

// The schema a profile found: [{"name": field, "type": type}] in first-seen order,
// type one of string, integer, number, boolean, object, array, null, mixed.
ProfileJson profile_schema(const ProfileJson& profile);

// The "HF dataset viewer" rule for a categorical column: at most 10 distinct values,
// or fewer than 1,000 that are at most a fifth of the non-null values.
bool is_categorical(uint64_t distinct, uint64_t values);

}  // namespace keel::data
