// Requests of the OpenAI-compatible API, parsed and checked: the JSON bodies of
// /v1/chat/completions, /v1/completions and /v1/embeddings become plain structs, and
// every wrong type or out-of-range value becomes an ApiError naming the parameter, as
// OpenAI's API answers it (400, type invalid_request_error). Unknown fields are
// ignored, as OpenAI ignores them. No HTTP and no model here: openai_routes.cpp does
// the rest.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "keel/util/json.h"

namespace keel::server {

// An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};

template <typename T>
using Parsed = std::variant<T, ApiError>;

// What chat and text completions share.
struct SamplingRequest {
  std::string model;
  std::optional<int64_t> max_tokens;  // max_completion_tokens or max_tokens; >= 1
  double temperature = 1.0;           // OpenAI's default
  double top_p = 1.0;
  int n = 1;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  double presence_penalty = 0;
  double frequency_penalty = 0;
  std::map<int32_t, float> logit_bias;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string user;
};

struct ChatRequest : SamplingRequest {
  nlohmann::ordered_json messages;  // checked: roles and contents; "developer" reads as "system"
  bool logprobs = false;
  int top_logprobs = 0;
};

// A prompt as text or as token ids.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest : SamplingRequest {
  std::vector<PromptInput> prompts;
  std::optional<int> logprobs;  // the legacy form: how many alternatives (0..5)
  bool echo = false;
};

struct EmbeddingsRequest {
  std::string model;
  std::vector<PromptInput> inputs;
  bool base64 = false;  // encoding_format "base64" (what the openai Python client asks for)
  std::string user;
};

inline constexpr int kMaxChoices = 16;
inline constexpr size_t kMaxPrompts = 64;    // prompts (or inputs) in one request
inline constexpr size_t kMaxStopStrings = 4;  // as OpenAI

Parsed<ChatRequest> parse_chat_request(const Json& body);
Parsed<CompletionRequest> parse_completion_request(const Json& body);
Parsed<EmbeddingsRequest> parse_embeddings_request(const Json& body);

Json api_error_json(const ApiError& error);

}  // namespace keel::server
