#include "keel/server/openai_request.h"

#include <cmath>
#include <limits>

namespace keel::server {
namespace {

ApiError invalid(const std::string& param, const std::string& message) {
  return ApiError{.status = 400, .message = message, .param = param};
}

std::string type_name(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

ApiError wrong_type(const std::string& param, const std::string& expected, const Json& got) {
  return invalid(param, "'" + param + "' must be " + expected + ", not " + type_name(got));
}

// A field that is absent or null gives nullopt (OpenAI treats null as "not given").
const Json* field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<ApiError> read_number(const Json& body, const char* name, double min, double max, double& out) {
  const Json* v = field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return wrong_type(name, "a number", *v);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    return invalid(name, "'" + std::string(name) + "' must be in [" + std::to_string(min).substr(0, 4) + ", " +
                             std::to_string(max).substr(0, 4) + "], not " + v->dump());
  }
  out = x;
  return std::nullopt;
}

std::optional<ApiError> read_integer(const Json& body, const char* name, int64_t min, int64_t max,
                                     std::optional<int64_t>& out) {
  const Json* v = field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer() && !(v->is_number_float() && std::floor(v->get<double>()) == v->get<double>())) {
    return wrong_type(name, "an integer", *v);
  }
  // Floats and huge integers are compared as doubles so nothing wraps.
  const double x = v->get<double>();
  if (x < static_cast<double>(min) || x > static_cast<double>(max)) {
    return invalid(name, "'" + std::string(name) + "' must be in [" + std::to_string(min) + ", " +
                             std::to_string(max) + "], not " + v->dump());
  }
  out = v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
  return std::nullopt;
}

std::optional<ApiError> read_bool(const Json& body, const char* name, bool& out) {
  const Json* v = field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return wrong_type(name, "a boolean", *v);
  out = v->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> read_string(const Json& body, const char* name, std::string& out) {
  const Json* v = field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return wrong_type(name, "a string", *v);
  out = v->get<std::string>();
  return std::nullopt;
}

std::optional<ApiError> read_sampling(const Json& body, SamplingRequest& r) {
  if (!body.is_object()) return invalid("", "the request body must be a JSON object");
  const Json* model = field(body, "model");
  if (model == nullptr) return invalid("model", "you must provide a model parameter");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  r.model = model->get<std::string>();
  if (r.model.empty()) return invalid("model", "'model' must not be empty");

  std::optional<int64_t> max_tokens;
  const char* max_name = field(body, "max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens";
  // 0 only scores an echoed prompt (completions with echo); the parsers check that.
  if (auto e = read_integer(body, max_name, 0, std::numeric_limits<int32_t>::max(), max_tokens)) return e;
  r.max_tokens = max_tokens;
  if (auto e = read_number(body, "temperature", 0, 2, r.temperature)) return e;
  if (auto e = read_number(body, "top_p", 0, 1, r.top_p)) return e;
  if (r.top_p == 0) r.top_p = std::numeric_limits<float>::min();  // "only the most likely": keeps one token
  std::optional<int64_t> n;
  if (auto e = read_integer(body, "n", 1, kMaxChoices, n)) return e;
  r.n = static_cast<int>(n.value_or(1));
  if (auto e = read_number(body, "presence_penalty", -2, 2, r.presence_penalty)) return e;
  if (auto e = read_number(body, "frequency_penalty", -2, 2, r.frequency_penalty)) return e;
  std::optional<int64_t> seed;
  if (auto e = read_integer(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                            seed)) {
    return e;
  }
  if (seed) r.seed = static_cast<uint64_t>(*seed);
  if (auto e = read_bool(body, "stream", r.stream)) return e;
  if (const Json* options = field(body, "stream_options")) {
    if (!options->is_object()) return wrong_type("stream_options", "an object", *options);
    if (auto e = read_bool(*options, "include_usage", r.include_usage)) return e;
  }
  if (auto e = read_string(body, "user", r.user)) return e;

  if (const Json* stop = field(body, "stop")) {
    if (stop->is_string()) {
      r.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > kMaxStopStrings) {
        return invalid("stop", "'stop' takes at most " + std::to_string(kMaxStopStrings) + " strings");
      }
      for (const Json& s : *stop) {
        if (!s.is_string()) return wrong_type("stop", "a string or an array of strings", s);
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      return wrong_type("stop", "a string or an array of strings", *stop);
    }
    for (const std::string& s : r.stop) {
      if (s.empty()) return invalid("stop", "a stop string must not be empty");
    }
  }
  if (const Json* bias = field(body, "logit_bias")) {
    if (!bias->is_object()) return wrong_type("logit_bias", "an object of token ids to numbers", *bias);
    for (const auto& [key, value] : bias->items()) {
      char* end = nullptr;
      const long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id > std::numeric_limits<int32_t>::max()) {
        return invalid("logit_bias", "logit_bias keys must be token ids, not '" + key + "'");
      }
      if (!value.is_number() || value.get<double>() < -100 || value.get<double>() > 100) {
        return invalid("logit_bias", "logit_bias values must be numbers in [-100, 100]");
      }
      r.logit_bias[static_cast<int32_t>(id)] = value.get<float>();
    }
  }
  return std::nullopt;
}

// A prompt or an embedding input: a string, an array of strings, an array of token
// ids, or an array of arrays of token ids.
std::optional<ApiError> read_inputs(const Json& body, const char* name, std::vector<PromptInput>& out) {
  const Json* v = field(body, name);
  const std::string expected = "a string, an array of strings or an array of token ids";
  if (v == nullptr) return invalid(name, "you must provide '" + std::string(name) + "'");
  auto tokens = [&](const Json& array) -> std::optional<std::vector<int32_t>> {
    std::vector<int32_t> ids;
    for (const Json& t : array) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return std::nullopt;
      }
      ids.push_back(t.get<int32_t>());
    }
    return ids;
  };
  if (v->is_string()) {
    out.emplace_back(v->get<std::string>());
  } else if (v->is_array() && !v->empty() && (*v)[0].is_number()) {
    auto ids = tokens(*v);
    if (!ids) return invalid(name, "token ids in '" + std::string(name) + "' must be non-negative integers");
    out.emplace_back(std::move(*ids));
  } else if (v->is_array()) {
    if (v->empty()) return invalid(name, "'" + std::string(name) + "' must not be empty");
    for (const Json& item : *v) {
      if (item.is_string()) {
        out.emplace_back(item.get<std::string>());
      } else if (item.is_array()) {
        auto ids = tokens(item);
        if (!ids || ids->empty()) {
          return invalid(name, "token ids in '" + std::string(name) + "' must be non-empty arrays of integers");
        }
        out.emplace_back(std::move(*ids));
      } else {
        return wrong_type(name, expected, item);
      }
    }
  } else {
    return wrong_type(name, expected, *v);
  }
  if (out.size() > kMaxPrompts) {
    return invalid(name, "'" + std::string(name) + "' takes at most " + std::to_string(kMaxPrompts) + " items");
  }
  return std::nullopt;
}

std::optional<ApiError> check_messages(const Json& body, nlohmann::ordered_json& out) {
  const Json* messages = field(body, "messages");
  if (messages == nullptr) return invalid("messages", "you must provide 'messages'");
  if (!messages->is_array()) return wrong_type("messages", "an array", *messages);
  if (messages->empty()) return invalid("messages", "'messages' must not be empty");
  out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return wrong_type(where, "an object", m);
    const Json* role = field(m, "role");
    if (role == nullptr || !role->is_string()) return invalid(where + ".role", where + " needs a string 'role'");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
      return invalid(where + ".role", "unknown role '" + r + "' (use system, developer, user, assistant or tool)");
    }
    const Json* content = field(m, "content");
    if (content == nullptr && !(r == "assistant" && m.contains("tool_calls"))) {
      return invalid(where + ".content", where + " needs a 'content'");
    }
    if (content != nullptr && !content->is_string()) {
      if (!content->is_array()) return wrong_type(where + ".content", "a string or an array of parts", *content);
      for (const Json& part : *content) {
        const Json* type = part.is_object() ? field(part, "type") : nullptr;
        if (type == nullptr || !type->is_string() || type->get<std::string>() != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
          return invalid(where + ".content", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
        }
      }
    }
    nlohmann::ordered_json copy = nlohmann::ordered_json::parse(m.dump());
    copy["role"] = r;
    out.push_back(std::move(copy));
  }
  return std::nullopt;
}

}  // namespace

Json api_error_json(const ApiError& error) {
  return Json{{"error",
               {{"message", error.message},
                {"type", error.type},
                {"param", error.param.empty() ? Json(nullptr) : Json(error.param)},
                {"code", error.code.empty() ? Json(nullptr) : Json(error.code)}}}};
}

Parsed<ChatRequest> parse_chat_request(const Json& body) {
  ChatRequest r;
  if (auto e = read_sampling(body, r)) return *e;
  if (r.max_tokens == 0) return invalid("max_tokens", "'max_tokens' must be at least 1");
  if (auto e = check_messages(body, r.messages)) return *e;
  if (auto e = read_bool(body, "logprobs", r.logprobs)) return *e;
  std::optional<int64_t> top;
  if (auto e = read_integer(body, "top_logprobs", 0, 20, top)) return *e;
  if (top && !r.logprobs) return invalid("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
  r.top_logprobs = static_cast<int>(top.value_or(0));
  return r;
}

Parsed<CompletionRequest> parse_completion_request(const Json& body) {
  CompletionRequest r;
  if (auto e = read_sampling(body, r)) return *e;
  if (auto e = read_inputs(body, "prompt", r.prompts)) return *e;
  std::optional<int64_t> logprobs;
  if (auto e = read_integer(body, "logprobs", 0, 5, logprobs)) return *e;
  if (logprobs) r.logprobs = static_cast<int>(*logprobs);
  if (auto e = read_bool(body, "echo", r.echo)) return *e;
  if (r.max_tokens == 0 && !r.echo) {
    return invalid("max_tokens", "'max_tokens' must be at least 1 (0 only with 'echo', to score the prompt)");
  }
  if (r.echo && r.stream) return invalid("echo", "'echo' cannot be combined with 'stream'");
  if (r.prompts.size() * static_cast<size_t>(r.n) > kMaxPrompts) {
    return invalid("n", "prompts times n must be at most " + std::to_string(kMaxPrompts));
  }
  return r;
}

Parsed<EmbeddingsRequest> parse_embeddings_request(const Json& body) {
  EmbeddingsRequest r;
  if (!body.is_object()) return invalid("", "the request body must be a JSON object");
  const Json* model = field(body, "model");
  if (model == nullptr) return invalid("model", "you must provide a model parameter");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  r.model = model->get<std::string>();
  if (auto e = read_inputs(body, "input", r.inputs)) return *e;
  std::string format = "float";
  if (auto e = read_string(body, "encoding_format", format)) return *e;
  if (format != "float" && format != "base64") {
    return invalid("encoding_format", "'encoding_format' must be float or base64, not '" + format + "'");
  }
  r.base64 = format == "base64";
  if (field(body, "dimensions") != nullptr) {
    return invalid("dimensions", "'dimensions' is not supported: this model's embeddings have a fixed size");
  }
  if (auto e = read_string(body, "user", r.user)) return *e;
  return r;
}

}  // namespace keel::server
