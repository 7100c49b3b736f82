#include "keel/prompts/prompt_template.h"

#include <algorithm>
#include <cctype>

namespace keel::prompts {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

struct Placeholder {
  size_t begin = 0;  // offset of "{{"
  size_t end = 0;    // one past "}}"
  std::string name;
};

// Matches MLflow's PROMPT_TEMPLATE_VARIABLE_PATTERN at `at`:
// \{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}
bool match_placeholder(const std::string& s, size_t at, Placeholder& out) {
  if (s.compare(at, 2, "{{") != 0) return false;
  size_t i = at + 2;
  while (i < s.size() && is_space(s[i])) ++i;
  size_t name_begin = i;
  while (true) {
    if (i >= s.size() || !is_name_start(s[i])) return false;
    ++i;
    while (i < s.size() && is_name_char(s[i])) ++i;
    if (i + 1 < s.size() && s[i] == '.' && is_name_start(s[i + 1])) {
      ++i;
      continue;
    }
    break;
  }
  size_t name_end = i;
  while (i < s.size() && is_space(s[i])) ++i;
  if (s.compare(i, 2, "}}") != 0) return false;
  out.begin = at;
  out.end = i + 2;
  out.name = s.substr(name_begin, name_end - name_begin);
  return true;
}

std::vector<Placeholder> placeholders(const std::string& text) {
  std::vector<Placeholder> out;
  size_t at = 0;
  while ((at = text.find("{{", at)) != std::string::npos) {
    Placeholder p;
    if (match_placeholder(text, at, p)) {
      at = p.end;
      out.push_back(std::move(p));
    } else {
      ++at;
    }
  }
  return out;
}

void add_unique(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

std::vector<std::string> template_variables(const std::string& text) {
  std::vector<std::string> names;
  for (const auto& p : placeholders(text)) add_unique(names, p.name);
  return names;
}

std::vector<std::string> template_variables(const std::vector<ChatMessage>& messages) {
  std::vector<std::string> names;
  for (const auto& m : messages) {
    for (const auto& p : placeholders(m.content)) add_unique(names, p.name);
  }
  return names;
}

Status check_variables(const std::vector<std::string>& declared, const Json& values) {
  if (!values.is_object()) return invalid_argument("variables must be a JSON object of name: value");
  std::vector<std::string> missing, extra, wrong_type;
  for (const auto& name : declared) {
    if (!values.contains(name)) missing.push_back(name);
  }
  for (const auto& [name, value] : values.items()) {
    if (std::find(declared.begin(), declared.end(), name) == declared.end()) {
      extra.push_back(name);
    } else if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
      wrong_type.push_back(name);
    }
  }
  if (missing.empty() && extra.empty() && wrong_type.empty()) return Status::Ok();
  std::string message;
  if (!missing.empty()) message += "missing variables: " + join(missing);
  if (!extra.empty()) {
    if (!message.empty()) message += "; ";
    message += "unknown variables: " + join(extra);
  }
  if (!wrong_type.empty()) {
    if (!message.empty()) message += "; ";
    message += "variables that must be a string, number or boolean: " + join(wrong_type);
  }
  message += " (the template declares: ";
  message += declared.empty() ? std::string("none") : join(declared);
  message += ")";
  return invalid_argument(message);
}

std::string substitute(const std::string& text, const Json& values) {
  std::string out;
  size_t copied = 0;
  for (const auto& p : placeholders(text)) {
    if (!values.is_object() || !values.contains(p.name)) continue;
    out.append(text, copied, p.begin - copied);
    const Json& v = values.at(p.name);
    out += v.is_string() ? v.get<std::string>() : v.dump();
    copied = p.end;
  }
  out.append(text, copied, std::string::npos);
  return out;
}

std::string messages_to_text(const std::vector<ChatMessage>& messages) {
  Json array = Json::array();
  for (const auto& m : messages) array.push_back({{"role", m.role}, {"content", m.content}});
  return dump_json(array);
}

Result<std::vector<ChatMessage>> messages_from_json(const Json& value) {
  if (!value.is_array() || value.empty()) {
    return invalid_argument("chat messages must be a non-empty JSON array of {\"role\": ..., \"content\": ...}");
  }
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& m = value[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || m["role"].get<std::string>().empty() ||
        !m.contains("content") || !m["content"].is_string()) {
      return invalid_argument("chat message " + std::to_string(i) +
                              " must be {\"role\": \"...\", \"content\": \"...\"} with a non-empty role");
    }
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

}  // namespace keel::prompts
