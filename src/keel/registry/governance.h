// Review and approval before production. A policy, stored per registered model, names
// the protected aliases (default: "production"), the checks a version must have passed
// (named results recorded through the API, e.g. by an evaluation suite) and how many
// reviewers must approve. Moving a protected alias is refused with the list of what is
// missing; the version's author never counts as its own reviewer. Archived versions
// are neither promotable nor servable.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "keel/auth/users.h"
#include "keel/registry/model_registry.h"

namespace keel::registry {

struct Policy {
  std::vector<std::string> protected_aliases{"production"};
  std::vector<std::string> required_checks;
  int required_approvals = 1;
};

// {"protected_aliases": [...], "required_checks": [...], "required_approvals": N}; unknown
// fields and wrong types are refused.
Result<Policy> parse_policy(const Json& json);
Json to_json(const Policy& policy);

struct CheckResult {
  std::string name;
  bool passed = false;
  std::optional<double> value;
  std::string details;
  int64_t recorded_at = 0;
  std::string recorded_by;
};

struct Review {
  std::string reviewer;
  std::string decision;  // "approve" or "reject"
  std::string comment;
  int64_t at = 0;
};

struct PromotionRequest {
  std::string id;
  std::string model_name;
  int64_t version = 0;
  std::string alias;
  std::string requested_by;
  std::string status;  // pending, approved, rejected, promoted
  std::string comment;
  int64_t created_at = 0;
  std::vector<Review> reviews;
  std::vector<std::string> missing;  // what the policy still needs (filled on read)
};

// {"id", "model", "version", "alias", "requested_by", "status", "comment", "created_at",
//  "reviews": [{"reviewer", "decision", "comment", "at"}], "missing": [...]}
Json to_json(const PromotionRequest& request);

class Governance {
 public:
  Governance(store::Db& db, store::ArtifactStore& blobs) : db_(db), registry_(db, blobs) {}

  Result<Policy> policy(const std::string& model);
  Status set_policy(const std::string& model, const Policy& policy, const std::string& actor);

  Status record_check(const std::string& model, int64_t version, const CheckResult& check, const std::string& actor);
  Result<std::vector<CheckResult>> checks(const std::string& model, int64_t version);

  Result<PromotionRequest> request_promotion(const std::string& model, int64_t version, const std::string& alias,
                                             const std::string& comment, const std::string& actor);
  // A reviewer's decision on the open request. An approval that completes the policy
  // moves the alias at once (status "promoted"); a rejection closes the request.
  Result<PromotionRequest> review(const std::string& model, int64_t version, const std::string& alias,
                                  bool approve, const std::string& comment, const auth::User& reviewer);
  Result<std::vector<PromotionRequest>> requests(const std::string& model);

  // What moving `alias` to the version still needs under the model's policy (empty when
  // nothing, or when the alias is not protected).
  Result<std::vector<std::string>> missing(const std::string& model, int64_t version, const std::string& alias);
  // Moves the alias after checking the policy (the registry's set_alias checks it too).
  Status promote(const std::string& model, int64_t version, const std::string& alias, const std::string& actor);
  Status archive(const std::string& model, int64_t version, const std::string& actor);

 private:
  Result<PromotionRequest> load_request(const std::string& where, const std::vector<store::DbValue>& params);

  store::Db& db_;
  ModelRegistry registry_;
};

// The policy check that every alias move goes through, inside the caller's transaction.
// Returns the unmet requirements; empty when the move is allowed.
Result<std::vector<std::string>> unmet_requirements(store::SqlExecutor& sql, const std::string& model_id,
                                                    const std::string& version_id, const std::string& alias);

}  // namespace keel::registry
