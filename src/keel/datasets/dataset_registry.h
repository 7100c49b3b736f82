// Dataset versions: immutable record sets in the metadata store, referenced as
// NAME@VERSION (NAME alone: the latest). A version's records live in the artifact store
// as canonical JSONL (one compact JSON object per line, fields in input order), so its
// content hash is that blob's sha256 whatever format it came from; beside it the store
// keeps the record count, schema, profile (data/dataset_profile.h), the source, the
// recipe and Keel version that made it, and its parents (lineage).
// Identical content under the same name is not a new version: creating it returns the
// version that already holds it (created = false), lineage as first recorded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/data/dataset_profile.h"
#include "keel/data/records.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"

namespace keel::datasets {

struct DatasetReference {
  std::string name;
  int64_t version = 0;  // 0: the latest
  std::string to_string() const;
};

// "NAME" or "NAME@VERSION" (VERSION a positive integer, or "latest").
Result<DatasetReference> parse_dataset_reference(std::string_view text);
// Letters, digits, '.', '_' and '-', starting with a letter or digit; at most 128.
Status check_dataset_name(std::string_view name);

struct DatasetVersion {
  std::string id;
  std::string name;
  int64_t version = 0;
  std::string content_sha256;
  uint64_t size_bytes = 0;  // of the canonical JSONL
  uint64_t record_count = 0;
  data::ProfileJson schema = data::ProfileJson::array();
  data::ProfileJson profile = nullptr;  // null unless asked for
  std::string source;                   // "import data.csv", "recipe clean.yaml on raw.jsonl"
  std::string recipe;                   // the recipe's YAML text, when one made it
  std::string keel_version;
  data::ProfileJson details = data::ProfileJson::object();  // input file, records rejected, ...
  std::vector<DatasetReference> parents;
  std::string user_id;
  int64_t created_at = 0;

  std::string reference() const { return name + "@" + std::to_string(version); }
};

struct DatasetSummary {
  std::string name;
  int64_t versions = 0;
  int64_t latest_version = 0;
  uint64_t latest_records = 0;
  std::string latest_sha256;
  int64_t updated_at = 0;
};

struct NewDatasetVersion {
  std::string name;
  std::string source;
  std::string recipe;
  std::vector<DatasetReference> parents;  // must exist
  data::ProfileJson details = data::ProfileJson::object();
  data::ReadOptions read;      // how to read the file: format, record size limit, on_reject
  std::string text_field;      // for the profile; empty: chosen from the first record
  // Called now and then with input bytes consumed and records read.
  std::function<void(uint64_t bytes, uint64_t records)> progress;
};

struct CreatedDataset {
  DatasetVersion version;
  bool created = false;     // false: the name already had this content
  uint64_t rejected = 0;    // malformed input records, skipped
  std::vector<data::Rejection> first_rejections;
};

// A version's records as a local JSONL file (for readers that take a path).
struct LocalDataset {
  DatasetVersion version;
  std::string path;
};

class DatasetRegistry {
 public:
  DatasetRegistry(store::Db& db, store::ArtifactStore& blobs) : db_(db), blobs_(blobs) {}

  // Reads `path` (any format records.h reads), writes its records into the artifact
  // store as canonical JSONL while profiling them, and records the version. A file
  // without any readable record is refused.
  Result<CreatedDataset> create_from_file(const std::string& path, const NewDatasetVersion& spec,
                                          const std::string& actor);

  // version 0: the latest. kNotFound names what is missing.
  Result<DatasetVersion> get(const std::string& name, int64_t version, bool with_profile = false);
  Result<DatasetVersion> get(const DatasetReference& ref, bool with_profile = false) {
    return get(ref.name, ref.version, with_profile);
  }
  Result<DatasetVersion> resolve(std::string_view reference, bool with_profile = false);
  Result<std::vector<DatasetSummary>> list();
  // Every version of one dataset, oldest first (without profiles).
  Result<std::vector<DatasetVersion>> versions(const std::string& name);
  // Versions that name this one as a parent.
  Result<std::vector<DatasetReference>> children(const DatasetVersion& version);

  // The version's records as a readable local file: the blob itself through a
  // "<sha256>.jsonl" link in cache_dir when the artifact store is local, else a copy
  // there. This is how fine-tuning and evaluation read NAME@VERSION.
  Result<LocalDataset> local_file(std::string_view reference, const std::string& cache_dir);

  store::ArtifactStore& blobs() { return blobs_; }

 private:
  Result<DatasetVersion> load(const store::DbRow& row, bool with_profile);

  store::Db& db_;
  store::ArtifactStore& blobs_;
};

data::ProfileJson to_json(const DatasetVersion& v);
data::ProfileJson to_json(const DatasetSummary& s);

}  // namespace keel::datasets
