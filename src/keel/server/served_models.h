// The models a server answers for: a request's `model` ("name", "name@3",
// "name@production", or a deployment's name, which picks one of its weighted versions
// per request) is resolved through the registry, and the version's GGUF file is
// loaded on first use, with its tokenizer, chat template and a BatchScheduler
// (continuous batching) of its own. Resolutions are kept until this process changes
// the registry (registry/routing_changes.h) and at most resolution_ttl, which bounds
// how late a change made elsewhere (the CLI, another replica) is seen; so a request
// costs no store query. Requests hold the version they started on (a shared_ptr), so
// when an alias moves, running requests finish on the old version while new ones go
// to the new one. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "keel/engine/batch_scheduler.h"
#include "keel/engine/chat_template.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/tokenizer.h"
#include "keel/registry/deployments.h"
#include "keel/registry/model_registry.h"
#include "keel/registry/remote_models.h"
#include "keel/server/upstream_client.h"
#include "keel/store/artifact_store.h"
#include "keel/store/db.h"
#include "keel/util/status.h"

namespace keel::server {

struct ServingOptions {
  engine::SessionOptions session;      // threads, context length, KV cache type
  engine::SchedulerOptions scheduler;  // slots, queue, batch tokens, KV budget
  // Registered model names this server answers for; empty: every registered model.
  std::vector<std::string> models;
  // How long a resolution is kept at most (see above); zero resolves on every request.
  std::chrono::milliseconds resolution_ttl{1000};
  // Serves a LoRA adapter version (registry::is_lora_adapter) as its base with the
  // adapter folded in: given the base's and the adapter's GGUF files, the merged model's
  // file. Unset: adapter versions are refused.
  std::function<Result<std::unique_ptr<engine::GgufFile>>(const std::string& base_file, const std::string& adapter_file)>
      fold_adapter;
};

// A version that is an OpenAI-compatible endpoint elsewhere (openai_proxy.h).
struct RemoteModel {
  registry::RemoteEndpoint endpoint;
  registry::ParsedUrl url;
  std::string api_key;  // read from endpoint.api_key_env when the version was loaded; "" for none
  int64_t max_in_flight = 0;  // past it, 429 (the scheduler's slots plus its queue)
  std::atomic<int64_t> in_flight{0};
};

// One model version in memory: a local GGUF model (file, tokenizer, model, scheduler)
// or a remote one (remote set, the rest empty).
struct ServedModel {
  std::string name;  // the registered model's name
  int64_t version = 0;
  std::string version_id;
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<engine::Model> model;                // borrows file
  std::optional<engine::ChatTemplate> chat_template;   // absent when the file has none
  std::unique_ptr<RemoteModel> remote;
  std::unique_ptr<engine::BatchScheduler> scheduler;   // borrows model and tokenizer; last, so destroyed first
};

class ServedModels {
 public:
  // db and blobs must outlive this object.
  ServedModels(store::Db& db, store::ArtifactStore& blobs, ServingOptions options);
  // Stops every loaded model's scheduler (their last requests end with kUnavailable,
  // on this thread's watch) before letting go of them: a request still holding a
  // ServedModel must not keep a scheduler running past what its callbacks use.
  ~ServedModels();

  // The loaded version `reference` names. kNotFound for a model that is not
  // registered or not served here; kFailedPrecondition for a version without a GGUF
  // file; loading errors pass through (and are retried on the next request).
  Result<std::shared_ptr<ServedModel>> get(const std::string& reference);
  // The registered models this server answers for, by name.
  Result<std::vector<registry::ModelSummary>> list();
  // The deployments it answers for (named in options.models, or serving a model that is).
  Result<std::vector<registry::Deployment>> deployments();
  // The versions loaded so far (for metrics).
  std::vector<std::shared_ptr<ServedModel>> loaded() const;
  const ServingOptions& options() const { return options_; }
  // Sends remote models' requests; cancels the calls still running when this goes.
  UpstreamClient& upstreams() { return *upstreams_; }

 private:
  bool serves(const std::string& name) const;
  // A resolution as kept: a plain name's deployment (or that there is none), or the
  // version a reference names.
  struct Route {
    std::optional<registry::Deployment> deployment;
    std::shared_ptr<ServedModel> model;
    uint64_t generation = 0;
    std::chrono::steady_clock::time_point checked;
  };
  std::optional<Route> kept_route(const std::string& key, uint64_t generation) const;
  void keep_route(const std::string& key, Route route);
  Result<std::optional<registry::Deployment>> deployment_named(const std::string& name);
  Result<std::shared_ptr<ServedModel>> version_named(const std::string& resolved, const std::string& reference);
  Result<std::shared_ptr<ServedModel>> load(const registry::ModelVersion& version);
  Result<std::unique_ptr<engine::GgufFile>> load_adapter(const registry::ModelVersion& version, const std::string& label,
                                                        const std::string& adapter_path);
  Result<std::shared_ptr<ServedModel>> load_remote(const registry::ModelVersion& version, const std::string& label);

  store::Db& db_;
  store::ArtifactStore& blobs_;
  const ServingOptions options_;
  mutable std::mutex mutex_;
  // REQUIRES: mutex_ held. Keyed by version id; loading happens under the lock, so two
  // first requests for one version load it once.
  std::map<std::string, std::shared_ptr<ServedModel>> loaded_;
  std::unique_ptr<UpstreamClient> upstreams_;
  mutable std::mutex routes_mutex_;  // not mutex_: a hit never waits for a model to load
  std::unordered_map<std::string, Route> routes_;  // guarded by routes_mutex_
};

}  // namespace keel::server
