// Where a model version came from, and its model card. Lineage walks version -> the run
// that produced it (parameters, final metrics, parent run) -> the dataset versions that
// run read -> the base model (a version tag or run parameter "base_model" naming
// NAME@VERSION, followed recursively). The model card is Markdown generated from the same
// facts plus the version's check results and its review history.
#pragma once

#include <string>

#include "keel/registry/model_registry.h"

namespace keel::registry {

class Lineage {
 public:
  Lineage(store::Db& db, store::ArtifactStore& blobs) : db_(db), blobs_(blobs) {}

  // {"model": ..., "version": ..., "run": {...} | null, "datasets": [...], "base_model": {lineage} | null}
  Result<Json> trace(const std::string& name, int64_t version);
  Result<std::string> model_card(const std::string& name, int64_t version);

 private:
  Result<Json> trace_depth(const std::string& name, int64_t version, int depth);

  store::Db& db_;
  store::ArtifactStore& blobs_;
};

}  // namespace keel::registry
