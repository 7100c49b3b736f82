// The model registry: named models with numbered, immutable versions, tags and
// aliases. A version points to a model file in the artifact store (`keel models
// import`; importing the same bytes again returns the existing version) or to a
// source URI such as a run's artifact folder (MLflow's create_model_version). An
// alias names one version at a time; moving it is atomic. The registry never parses
// model files itself: the caller reads the header with the engine (ModelFileFacts).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "keel/store/artifact_catalog.h"
#include "keel/store/db.h"
#include "keel/util/json.h"

namespace keel::registry {

struct ModelFileFacts {
  std::string format;        // "gguf"
  std::string architecture;  // "llama", "gemma3", ...
  uint64_t parameter_count = 0;
  Json metadata = Json::object();  // a few header facts worth showing (name, quantization, context length)
};

struct KeyValueTag {
  std::string key;
  std::string value;
};

struct ModelVersion {
  std::string id;
  std::string model_name;
  int64_t version = 0;
  std::string artifact_sha256;  // "" for a version given by a source URI
  std::string format;           // "gguf", or "mlflow" for a version registered through MLflow
  uint64_t size_bytes = 0;
  std::string architecture;
  uint64_t parameter_count = 0;
  std::string source;  // where it was imported from
  Json metadata = Json::object();
  int64_t created_at = 0;  // epoch ms
  int64_t updated_at = 0;
  std::string run_id;  // the run that produced it, if any
  std::string description;
  std::string status = "READY";
  std::string user_id;
  std::string logged_model_id;
  std::vector<KeyValueTag> tags;
  std::vector<std::string> aliases;
  std::optional<int64_t> archived_at;
};

// Which version a reference names, without the version's details.
struct VersionKey {
  std::string id;
  std::string model_name;
  int64_t version = 0;
};

struct RegisteredModel {
  std::string name;
  std::string description;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<KeyValueTag> tags;
  std::vector<std::pair<std::string, int64_t>> aliases;  // (alias, version)
  std::optional<ModelVersion> latest;
};

struct NewVersion {
  std::string source;  // a URI: mlflow-artifacts:/..., runs:/..., models:/...
  std::string run_id;
  std::string description;
  std::string logged_model_id;
  std::vector<KeyValueTag> tags;
};

struct SearchRequest {
  std::string filter;  // "name LIKE 'm%' AND tags.team = 'a'" (models), "name = 'm' AND run_id = '...'" (versions)
  int64_t max_results = 100;
  std::vector<std::string> order_by;
  std::string page_token;
};

template <typename T>
struct SearchPage {
  std::vector<T> items;
  std::string next_page_token;
};

struct ModelSummary {
  std::string name;
  std::string description;
  int64_t created_at = 0;
  std::optional<ModelVersion> latest;
  int64_t version_count = 0;
};

struct ImportResult {
  ModelVersion version;
  bool created = false;  // false: these bytes were already this model's version
};

// Model names: 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit.
Status validate_model_name(const std::string& name);

class ModelRegistry {
 public:
  ModelRegistry(store::Db& db, store::ArtifactStore& blobs) : db_(db), blobs_(blobs) {}

  // Streams the file into the artifact store, then records the version, in that order
  // (a crash in between leaves no record pointing to a missing blob). actor names who
  // did it, for the audit log.
  Result<ImportResult> import_file(const std::string& path, const std::string& name, const ModelFileFacts& facts,
                                   const std::string& actor,
                                   const std::function<void(uint64_t)>& progress = {});

  Result<std::vector<ModelSummary>> list();
  // "name" gives the latest version; "name@3" version 3; "name@production" the version
  // the alias names.
  Result<ModelVersion> get(const std::string& reference);
  // The version a reference names as get() finds it, in one query and without its tags,
  // aliases and metadata (what serving asks for on every request); the same errors.
  Result<VersionKey> resolve(const std::string& reference);
  Result<std::vector<ModelVersion>> versions(const std::string& name);

  // Registered models (the MLflow registry's operations; every change is audited).
  Result<RegisteredModel> create_model(const std::string& name, const std::string& description,
                                       const std::vector<KeyValueTag>& tags, const std::string& actor);
  Result<RegisteredModel> get_model(const std::string& name);
  Result<RegisteredModel> update_model(const std::string& name, const std::string& description, const std::string& actor);
  Status set_model_tag(const std::string& name, const KeyValueTag& tag, const std::string& actor);
  Status delete_model_tag(const std::string& name, const std::string& key, const std::string& actor);
  Result<SearchPage<RegisteredModel>> search_models(const SearchRequest& request);

  // Versions given by a source URI; the next number is taken atomically. format and
  // metadata are stored as given ("openai" and its endpoint for a remote upstream,
  // remote_models.h).
  Result<ModelVersion> create_version(const std::string& name, const NewVersion& spec, const std::string& actor,
                                      const std::string& format = "mlflow", const Json& metadata = Json::object());
  Result<ModelVersion> get_version(const std::string& name, int64_t version);
  Result<ModelVersion> update_version(const std::string& name, int64_t version, const std::string& description,
                                      const std::string& actor);
  Status set_version_tag(const std::string& name, int64_t version, const KeyValueTag& tag, const std::string& actor);
  // Records the tracking run that produced a version (a fine-tuning whose output was
  // imported); lineage follows it. kNotFound when there is no such run.
  Status set_version_run(const std::string& name, int64_t version, const std::string& run_id, const std::string& actor);
  Status delete_version_tag(const std::string& name, int64_t version, const std::string& key, const std::string& actor);
  Result<SearchPage<ModelVersion>> search_versions(const SearchRequest& request);

  // Points alias at version (moving it if it named another); the alias is one row, so
  // two concurrent moves leave it on exactly one version.
  Status set_alias(const std::string& name, const std::string& alias, int64_t version, const std::string& actor);
  Status delete_alias(const std::string& name, const std::string& alias, const std::string& actor);
  Result<ModelVersion> get_by_alias(const std::string& name, const std::string& alias);

 private:
  Result<std::string> model_id(store::SqlExecutor& sql, const std::string& name);
  Result<ModelVersion> load_version(store::SqlExecutor& sql, const std::string& where, const std::vector<store::DbValue>& params);
  Status fill_version_details(store::SqlExecutor& sql, std::vector<ModelVersion>& versions);
  Result<std::vector<RegisteredModel>> load_models(const std::string& where, const std::vector<store::DbValue>& params);

  store::Db& db_;
  store::ArtifactStore& blobs_;
};

// Alias names: 1-255 characters of [A-Za-z0-9_-]; "latest" and "v<digits>" are reserved
// (they read as version references).
Status validate_alias(const std::string& alias);

Json to_json(const ModelVersion& v);

}  // namespace keel::registry
