#include "keel/server/served_models.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "keel/registry/adapters.h"
#include "keel/registry/deployments.h"
#include "keel/registry/routing_changes.h"

#include <spdlog/spdlog.h>

namespace keel::server {

ServedModels::ServedModels(store::Db& db, store::ArtifactStore& blobs, ServingOptions options)
    : db_(db), blobs_(blobs), options_(std::move(options)), upstreams_(std::make_unique<UpstreamClient>()) {}

ServedModels::~ServedModels() {
  upstreams_.reset();  // ends the calls in flight (their requests are told, and traced)
  std::lock_guard lock(mutex_);
  for (const auto& [id, model] : loaded_) {
    if (model->scheduler) model->scheduler->stop();
  }
}

bool ServedModels::serves(const std::string& name) const {
  return options_.models.empty() || std::find(options_.models.begin(), options_.models.end(), name) != options_.models.end();
}

Result<std::shared_ptr<ServedModel>> ServedModels::get(const std::string& reference) {
  std::string resolved = reference;
  bool deployed = false;
  if (reference.find('@') == std::string::npos) {
    KEEL_ASSIGN_OR_RETURN(std::optional<registry::Deployment> deployment, deployment_named(reference));
    if (deployment) {
      thread_local std::mt19937_64 random{std::random_device{}()};
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
      resolved = deployment->model + "@" + std::to_string(registry::pick_version(*deployment, u));
      deployed = serves(reference) || serves(deployment->model);
    }
  }
  const std::string name = resolved.substr(0, resolved.find('@'));
  if (!deployed && !serves(name)) return not_found("the model '" + reference + "' is not served here");
  return version_named(resolved, reference);
}

std::optional<ServedModels::Route> ServedModels::kept_route(const std::string& key, uint64_t generation) const {
  std::lock_guard lock(routes_mutex_);
  auto it = routes_.find(key);
  if (it == routes_.end() || it->second.generation != generation ||
      std::chrono::steady_clock::now() - it->second.checked >= options_.resolution_ttl) {
    return std::nullopt;
  }
  return it->second;
}

void ServedModels::keep_route(const std::string& key, Route route) {
  constexpr size_t kMaxRoutes = 4096;  // names come from clients: a flood of them starts the map afresh
  std::lock_guard lock(routes_mutex_);
  if (routes_.size() >= kMaxRoutes && !routes_.contains(key)) routes_.clear();
  routes_[key] = std::move(route);
}

// The generation is read before the store: a change during the lookup makes the next
// request look again.
Result<std::optional<registry::Deployment>> ServedModels::deployment_named(const std::string& name) {
  const uint64_t generation = registry::routing_generation();
  const std::string key = "deployment:" + name;
  if (auto kept = kept_route(key, generation)) return std::move(kept->deployment);
  const auto checked = std::chrono::steady_clock::now();
  std::optional<registry::Deployment> found;
  auto deployment = registry::DeploymentRegistry(db_, blobs_).get(name);
  if (deployment.ok()) {
    found = std::move(*deployment);
  } else if (deployment.status().code() != ErrorCode::kNotFound) {
    return deployment.status();
  }
  keep_route(key, {.deployment = found, .generation = generation, .checked = checked});
  return found;
}

Result<std::shared_ptr<ServedModel>> ServedModels::version_named(const std::string& resolved,
                                                                 const std::string& reference) {
  const uint64_t generation = registry::routing_generation();
  const std::string key = "version:" + resolved;
  if (auto kept = kept_route(key, generation)) return std::move(kept->model);
  const auto checked = std::chrono::steady_clock::now();
  registry::ModelRegistry registry(db_, blobs_);
  auto missing = [&](const Status& s) -> Status {
    if (s.code() != ErrorCode::kNotFound) return s;
    return not_found("the model '" + reference + "' does not exist (" + s.message() + ")");
  };
  auto version_key = registry.resolve(resolved);
  if (!version_key.ok()) return missing(version_key.status());
  std::shared_ptr<ServedModel> served;
  {
    std::lock_guard lock(mutex_);
    auto it = loaded_.find(version_key->id);
    if (it != loaded_.end()) {
      served = it->second;
    } else {
      // First use: the version's details, then the model.
      auto version = registry.get(version_key->model_name + "@" + std::to_string(version_key->version));
      if (!version.ok()) return missing(version.status());
      KEEL_ASSIGN_OR_RETURN(served, load(*version));
      loaded_.emplace(version->id, served);
    }
  }
  keep_route(key, {.model = served, .generation = generation, .checked = checked});
  return served;
}

Result<std::shared_ptr<ServedModel>> ServedModels::load(const registry::ModelVersion& version) {
  const std::string label = version.model_name + "@" + std::to_string(version.version);
  if (registry::is_remote(version)) return load_remote(version, label);
  if (version.artifact_sha256.empty() || version.format != "gguf") {
    return failed_precondition(label + " has no GGUF file to serve (format '" + version.format + "')");
  }
  auto path = blobs_.local_path(version.artifact_sha256);
  if (!path) return failed_precondition("the file of " + label + " is missing from the artifact store");
  auto served = std::make_shared<ServedModel>();
  served->name = version.model_name;
  served->version = version.version;
  served->version_id = version.id;
  if (registry::is_lora_adapter(version)) {
    KEEL_ASSIGN_OR_RETURN(served->file, load_adapter(version, label, *path));
  } else {
    KEEL_ASSIGN_OR_RETURN(served->file, engine::GgufFile::open(*path));
  }
  KEEL_ASSIGN_OR_RETURN(served->tokenizer, engine::Tokenizer::from_gguf(*served->file));
  KEEL_ASSIGN_OR_RETURN(served->model, engine::Model::load(*served->file));
  auto chat_template = engine::chat_template_from_gguf(*served->file);
  if (chat_template.ok()) {
    served->chat_template.emplace(std::move(*chat_template));
  } else if (chat_template.status().code() != ErrorCode::kNotFound) {
    spdlog::warn("{}: its chat template does not parse ({}); chat completions are refused",
                 label, chat_template.status().message());
  }
  KEEL_ASSIGN_OR_RETURN(served->scheduler, engine::BatchScheduler::create(*served->model, *served->tokenizer,
                                                                          options_.session, options_.scheduler));
  spdlog::info("loaded {} ({}, {} slots, context {})", label, version.architecture, options_.scheduler.max_sequences,
               served->scheduler->context_length());
  return served;
}

Result<std::unique_ptr<engine::GgufFile>> ServedModels::load_adapter(const registry::ModelVersion& version,
                                                                    const std::string& label,
                                                                    const std::string& adapter_path) {
  if (!options_.fold_adapter) return failed_precondition(label + " is a LoRA adapter, and this server cannot fold adapters");
  const std::optional<std::string> base = registry::adapter_base(version);
  if (!base) return failed_precondition(label + " is a LoRA adapter without a base_model tag naming its base");
  std::string base_path = *base;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(base_path, ec)) {
    auto base_version = registry::ModelRegistry(db_, blobs_).get(*base);
    if (!base_version.ok()) {
      return failed_precondition("the base of " + label + ", " + *base + ", cannot be found: " +
                                 base_version.status().message());
    }
    if (registry::is_remote(*base_version) || registry::is_lora_adapter(*base_version)) {
      return failed_precondition("the base of " + label + ", " + *base + ", is not a local model file");
    }
    auto local = blobs_.local_path(base_version->artifact_sha256);
    if (!local) return failed_precondition("the file of " + *base + " (the base of " + label + ") is missing");
    base_path = *local;
  }
  auto folded = options_.fold_adapter(base_path, adapter_path);
  if (!folded.ok()) return folded.status().with_context(label + " on " + *base);
  spdlog::info("{}: LoRA adapter folded into {}", label, *base);
  return folded;
}

Result<std::shared_ptr<ServedModel>> ServedModels::load_remote(const registry::ModelVersion& version,
                                                             const std::string& label) {
  auto remote = std::make_unique<RemoteModel>();
  KEEL_ASSIGN_OR_RETURN(remote->endpoint, registry::remote_endpoint(version));
  KEEL_ASSIGN_OR_RETURN(remote->url, registry::parse_http_url(remote->endpoint.base_url));
  if (!remote->endpoint.api_key_env.empty()) {
    const char* key = std::getenv(remote->endpoint.api_key_env.c_str());
    if (key == nullptr || *key == '\0') {
      return failed_precondition("the upstream API key of " + label + " is read from the environment variable " +
                                 remote->endpoint.api_key_env + ", which is not set where this server runs");
    }
    remote->api_key = key;
  }
  remote->max_in_flight = options_.scheduler.max_sequences + options_.scheduler.max_queue;
  auto served = std::make_shared<ServedModel>();
  served->name = version.model_name;
  served->version = version.version;
  served->version_id = version.id;
  spdlog::info("serving {} from the upstream {} (model '{}')", label, remote->endpoint.base_url,
               remote->endpoint.upstream_model);
  served->remote = std::move(remote);
  return served;
}

Result<std::vector<registry::ModelSummary>> ServedModels::list() {
  registry::ModelRegistry registry(db_, blobs_);
  KEEL_ASSIGN_OR_RETURN(std::vector<registry::ModelSummary> all, registry.list());
  std::erase_if(all, [&](const registry::ModelSummary& m) { return !serves(m.name); });
  return all;
}

Result<std::vector<registry::Deployment>> ServedModels::deployments() {
  KEEL_ASSIGN_OR_RETURN(std::vector<registry::Deployment> all, registry::DeploymentRegistry(db_, blobs_).list());
  std::erase_if(all, [&](const registry::Deployment& d) { return !serves(d.name) && !serves(d.model); });
  return all;
}

std::vector<std::shared_ptr<ServedModel>> ServedModels::loaded() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<ServedModel>> out;
  for (const auto& [id, m] : loaded_) out.push_back(m);
  return out;
}

}  // namespace keel::server
