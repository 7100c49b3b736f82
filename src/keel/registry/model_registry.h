// The model registry at its first stage: named models with numbered, immutable
// versions, each pointing to a model file in the artifact store. Importing the same
// bytes under the same name again is a no-op that returns the existing version.
// The registry never parses model files itself: the caller (CLI, server) reads the
// file's header with the engine and passes what it found as ModelFileFacts.
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

struct ModelVersion {
  std::string id;
  std::string model_name;
  int64_t version = 0;
  std::string artifact_sha256;
  std::string format;
  uint64_t size_bytes = 0;
  std::string architecture;
  uint64_t parameter_count = 0;
  std::string source;  // where it was imported from
  Json metadata = Json::object();
  int64_t created_at = 0;  // epoch ms
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
  // "name" gives the latest version; "name@3" version 3.
  Result<ModelVersion> get(const std::string& reference);
  Result<std::vector<ModelVersion>> versions(const std::string& name);

 private:
  store::Db& db_;
  store::ArtifactStore& blobs_;
};

Json to_json(const ModelVersion& v);

}  // namespace keel::registry
