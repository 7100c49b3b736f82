// Remote models: a model version that is not a file but an OpenAI-compatible endpoint
// elsewhere (vLLM, llama.cpp's server, another Keel, a hosted API), given by its base
// URL, the model name the upstream knows it by, and the name of the environment
// variable that holds the upstream's API key. The key itself is never stored: the
// serving process reads it from its own environment. Such a version is a version like
// any other (aliases, deployments, traces, feedback), with format "openai".
#pragma once

#include <cstdint>
#include <string>

#include "keel/registry/model_registry.h"
#include "keel/util/status.h"

namespace keel::registry {

inline constexpr const char* kRemoteModelFormat = "openai";

struct RemoteEndpoint {
  std::string base_url;        // "http://host:port/v1" or "https://api.example.com/v1"
  std::string upstream_model;  // the `model` sent upstream
  std::string api_key_env;     // "" for an upstream without keys
};

// The parts of an http(s) URL that a client needs.
struct ParsedUrl {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string path;  // without a trailing '/'; "" for the root
};
// kInvalidArgument, naming what is wrong, for anything but http(s)://host[:port][/path]
// (no user info, query or fragment).
Result<ParsedUrl> parse_http_url(const std::string& url);

// Checks the endpoint, creates the registered model when it does not exist yet and adds
// a version pointing at the endpoint (audited as model.version.create).
Result<ModelVersion> register_remote_model(ModelRegistry& registry, const std::string& name,
                                           const RemoteEndpoint& endpoint, const std::string& description,
                                           const std::string& actor);

bool is_remote(const ModelVersion& version);
// The endpoint a remote version points at; kFailedPrecondition when its record is not one.
Result<RemoteEndpoint> remote_endpoint(const ModelVersion& version);

}  // namespace keel::registry
