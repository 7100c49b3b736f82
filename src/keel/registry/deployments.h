// Deployments: a served name mapped to one or more versions of a registered model,
// each with a weight. One target at full weight is a blue-green deployment (moving it
// switches new requests at once; running ones finish where they started); two, such
// as 90 and 10, are a canary split: each request picks a target at random in
// proportion to the weights. Every change is stored and audited, and the next request
// sees it. The server resolves a request's `model` through this first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/registry/model_registry.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::registry {

struct DeploymentTarget {
  int64_t version = 0;
  int64_t weight = 0;  // > 0
};

struct Deployment {
  std::string name;
  std::string model;                     // the registered model whose versions it serves
  std::vector<DeploymentTarget> targets;  // by version; never empty
  int64_t updated_at = 0;                // epoch ms
};

inline constexpr int64_t kMaxDeploymentWeight = 1000000;

class DeploymentRegistry {
 public:
  DeploymentRegistry(store::Db& db, store::ArtifactStore& blobs) : db_(db), blobs_(blobs) {}

  // Gives `version` of `model` the weight in deployment `name`, creating the deployment
  // with its first target; weight 0 removes the target (and the deployment with its
  // last one). kNotFound for a version that does not exist; kInvalidArgument for a bad
  // name or weight, or a model other than the one the deployment serves.
  Result<Deployment> set_target(const std::string& name, const std::string& model, int64_t version, int64_t weight,
                                const std::string& actor);
  // kNotFound when there is no deployment of that name.
  Result<Deployment> get(const std::string& name);
  Result<std::vector<Deployment>> list();
  Status remove(const std::string& name, const std::string& actor);

 private:
  Result<std::vector<Deployment>> load(const std::string& where, const std::vector<store::DbValue>& params);

  store::Db& db_;
  store::ArtifactStore& blobs_;
};

// The version a request goes to, for u uniform in [0, 1): targets in version order,
// each covering its share of [0, 1). REQUIRES: targets not empty.
int64_t pick_version(const Deployment& deployment, double u);

Json to_json(const Deployment& deployment);

}  // namespace keel::registry
