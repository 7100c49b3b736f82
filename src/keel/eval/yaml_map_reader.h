// YamlMapReader: reads the values of one map of a YAML document (a task, a judge)
// with the checks every key gets: unknown keys refused, types and ranges checked, and
// errors that name the file, the section, the key and its line. For eval's parsers only
// (task.cpp, judge.cpp); the node it reads must outlive it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "keel/eval/generator.h"
#include "keel/util/status.h"
#include "keel/util/yaml_messages.h"

namespace keel::eval {

// A name that can stand in tags, run names and file names: letters, digits, '_', '-', '.'.
inline bool is_plain_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

class YamlMapReader {
 public:
  YamlMapReader(const YAML::Node& node, std::string context, std::string source)
      : node_(node), context_(std::move(context)), source_(std::move(source)) {}

  Status check_keys(const std::vector<std::string>& known) const {
    for (const auto& entry : node_) {
      const std::string key = entry.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return error("unknown key \"" + key + "\"" + yaml_where(entry.first) + "; expected one of: " + list);
      }
    }
    return Status::Ok();
  }
  bool has(const std::string& key) const { return static_cast<bool>(node_[key]); }
  YAML::Node get(const std::string& key) const { return node_[key]; }

  Status string(const std::string& key, std::string& out, bool required = false) const {
    const YAML::Node v = node_[key];
    if (!v) return required ? error("missing \"" + key + "\"" + yaml_where(node_)) : Status::Ok();
    if (!v.IsScalar()) return wrong(key, v, "a string");
    out = v.Scalar();
    return Status::Ok();
  }
  Status integer(const std::string& key, int64_t& out, int64_t low, int64_t high) const {
    const YAML::Node v = node_[key];
    if (!v) return Status::Ok();
    int64_t value = 0;
    if (!v.IsScalar() || !YAML::convert<int64_t>::decode(v, value)) return wrong(key, v, "an integer");
    if (value < low || value > high) {
      return error(key + " must be between " + std::to_string(low) + " and " + std::to_string(high) + yaml_where(v));
    }
    out = value;
    return Status::Ok();
  }
  Status number(const std::string& key, double& out, double low, double high) const {
    const YAML::Node v = node_[key];
    if (!v) return Status::Ok();
    double value = 0;
    if (!v.IsScalar() || !YAML::convert<double>::decode(v, value)) return wrong(key, v, "a number");
    if (!(value >= low && value <= high)) {
      return error(key + " must be between " + fmt(low) + " and " + fmt(high) + yaml_where(v));
    }
    out = value;
    return Status::Ok();
  }
  Status boolean(const std::string& key, bool& out) const {
    const YAML::Node v = node_[key];
    if (!v) return Status::Ok();
    if (!v.IsScalar() || (v.Scalar() != "true" && v.Scalar() != "false")) return wrong(key, v, "true or false");
    out = v.Scalar() == "true";
    return Status::Ok();
  }
  Status strings(const std::string& key, std::vector<std::string>& out) const {
    const YAML::Node v = node_[key];
    if (!v) return Status::Ok();
    if (!v.IsSequence()) return wrong(key, v, "a list of strings");
    out.clear();
    for (const auto& item : v) {
      if (!item.IsScalar()) return wrong(key, item, "a list of strings");
      out.push_back(item.Scalar());
    }
    return Status::Ok();
  }

  Status wrong(const std::string& key, const YAML::Node& v, const std::string& expected) const {
    return error(key + ": expected " + expected + ", got " + yaml_shown(v) + yaml_where(v));
  }
  Status error(const std::string& message) const {
    return invalid_argument(source_ + ": " + (context_.empty() ? "" : context_ + ": ") + message);
  }

 private:
  static std::string fmt(double v) {
    std::string s = std::to_string(v);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  const YAML::Node& node_;
  std::string context_;
  std::string source_;
};

// A generation: section (max_tokens, temperature, top_p, seed, stop, chat; with
// `until`, lm-eval's name for stop too), read into `out` over its defaults.
inline Status read_generation(const YAML::Node& node, const std::string& context, const std::string& source,
                              GenerationParams& out, bool until = false) {
  const std::string keys = until ? "max_tokens, temperature, top_p, seed, stop, until, chat"
                                 : "max_tokens, temperature, top_p, seed, stop, chat";
  YamlMapReader m(node, context, source);
  if (!node.IsMap()) return m.error("expected a map (" + keys + "), got " + yaml_shown(node) + yaml_where(node));
  std::vector<std::string> known = {"max_tokens", "temperature", "top_p", "seed", "stop", "chat"};
  if (until) known.push_back("until");
  KEEL_RETURN_IF_ERROR(m.check_keys(known));
  KEEL_RETURN_IF_ERROR(m.integer("max_tokens", out.max_tokens, 1, 32768));
  KEEL_RETURN_IF_ERROR(m.number("temperature", out.temperature, 0, 100));
  KEEL_RETURN_IF_ERROR(m.number("top_p", out.top_p, 1e-9, 1));
  int64_t seed = static_cast<int64_t>(out.seed);
  KEEL_RETURN_IF_ERROR(m.integer("seed", seed, 0, INT64_MAX));
  out.seed = static_cast<uint64_t>(seed);
  if (m.has("stop") && m.has("until")) return m.error("give stop or until (the same thing), not both");
  KEEL_RETURN_IF_ERROR(m.strings("stop", out.stop));
  if (until) KEEL_RETURN_IF_ERROR(m.strings("until", out.stop));
  for (const auto& s : out.stop) {
    if (s.empty()) return m.error("an empty stop string would end every generation at once");
  }
  return m.boolean("chat", out.chat);
}

}  // namespace keel::eval
