#include "keel/registry/remote_models.h"

#include <cctype>
#include <charconv>

namespace keel::registry {
namespace {

bool valid_env_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

}  // namespace

Result<ParsedUrl> parse_http_url(const std::string& url) {
  auto bad = [&](const std::string& why) { return invalid_argument("'" + url + "' is not an upstream URL: " + why); };
  ParsedUrl out;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return bad("it must start with http:// or https://");
  }
  if (url.size() > 2048) return bad("longer than 2048 bytes");
  if (rest.find_first_of("?#") != std::string_view::npos) return bad("a query or fragment is not allowed");
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials belong in the API key's environment variable, not in the URL");
  }
  std::string_view port_text;
  if (authority.starts_with("[")) {  // [v6 address]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in the host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected ':' after the IPv6 address");
      port_text = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  for (char c : out.host) {
    if (std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x20) return bad("bad host");
  }
  out.port = out.tls ? 443 : 80;
  if (!port_text.empty() || authority.ends_with(":")) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535) {
      return bad("the port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return bad("the path has a space or a character that must be percent-encoded");
    }
  }
  while (path.ends_with("/")) path.remove_suffix(1);
  out.path = std::string(path);
  return out;
}

Result<ModelVersion> register_remote_model(ModelRegistry& registry, const std::string& name,
                                           const RemoteEndpoint& endpoint, const std::string& description,
                                           const std::string& actor) {
  KEEL_RETURN_IF_ERROR(validate_model_name(name));
  KEEL_RETURN_IF_ERROR(parse_http_url(endpoint.base_url).status());
  if (endpoint.upstream_model.empty() || endpoint.upstream_model.size() > 256) {
    return invalid_argument("the upstream model name must be 1 to 256 bytes");
  }
  if (!endpoint.api_key_env.empty() && !valid_env_name(endpoint.api_key_env)) {
    return invalid_argument("'" + endpoint.api_key_env +
                            "' is not an environment variable name (letters, digits and '_', not starting with a digit)");
  }
  auto existing = registry.get_model(name);
  if (!existing.ok()) {
    if (existing.status().code() != ErrorCode::kNotFound) return existing.status();
    auto created = registry.create_model(name, "", {}, actor);
    // Another writer may have created it since: that is as good.
    if (!created.ok() && created.status().code() != ErrorCode::kAlreadyExists) return created.status();
  }
  NewVersion spec;
  spec.source = endpoint.base_url;
  spec.description = description;
  return registry.create_version(
      name, spec, actor, kRemoteModelFormat,
      Json{{"upstream_model", endpoint.upstream_model}, {"api_key_env", endpoint.api_key_env}});
}

bool is_remote(const ModelVersion& version) { return version.format == kRemoteModelFormat; }

Result<RemoteEndpoint> remote_endpoint(const ModelVersion& version) {
  const std::string label = version.model_name + "@" + std::to_string(version.version);
  if (!is_remote(version)) return failed_precondition(label + " is not a remote model");
  const Json& m = version.metadata;
  if (!m.is_object() || !m.contains("upstream_model") || !m["upstream_model"].is_string()) {
    return failed_precondition(label + " has no upstream model name in its record");
  }
  RemoteEndpoint e;
  e.base_url = version.source;
  e.upstream_model = m["upstream_model"].get<std::string>();
  if (m.contains("api_key_env") && m["api_key_env"].is_string()) e.api_key_env = m["api_key_env"].get<std::string>();
  return e;
}

}  // namespace keel::registry
