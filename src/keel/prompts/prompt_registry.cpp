#include "keel/prompts/prompt_registry.h"

#include <algorithm>
#include <map>
#include <set>

#include "keel/prompts/line_diff.h"

namespace keel::prompts {
namespace {

using registry::KeyValueTag;

bool is_convention_tag(const std::string& key) {
  return key.rfind("mlflow.prompt.", 0) == 0 || key.rfind("_mlflow_", 0) == 0 || key.rfind("keel.prompt.", 0) == 0;
}

bool has_prompt_tag(const std::vector<KeyValueTag>& tags) {
  for (const auto& t : tags) {
    if (t.key == kIsPromptTag) return t.value == "true";
  }
  return false;
}

Status not_a_prompt(const std::string& name) {
  return failed_precondition("registered model '" + name + "' is not a prompt (it lacks the tag " + kIsPromptTag +
                             "=true); manage it with `keel models`, or give the prompt another name");
}

Result<PromptVersion> from_model_version(const registry::ModelVersion& mv) {
  std::map<std::string, std::string> tags;
  for (const auto& t : mv.tags) tags[t.key] = t.value;
  PromptVersion v;
  v.name = mv.model_name;
  v.version = mv.version;
  v.commit_message = mv.description;
  v.user_id = mv.user_id;
  v.created_at = mv.created_at;
  v.aliases = mv.aliases;
  std::string where = "prompt " + mv.model_name + " version " + std::to_string(mv.version);
  auto text = tags.find(kPromptTextTag);
  if (text == tags.end()) return corrupt(where + " has no " + kPromptTextTag + " tag");
  v.template_text = text->second;
  v.is_chat = tags.count(kPromptTypeTag) != 0 && tags[kPromptTypeTag] == "chat";
  if (v.is_chat) {
    auto parsed = parse_json(v.template_text);
    if (!parsed.ok()) return corrupt(where + ": its chat messages are not JSON: " + parsed.status().message());
    auto messages = messages_from_json(*parsed);
    if (!messages.ok()) return corrupt(where + ": " + messages.status().message());
    v.messages = std::move(messages).value();
    v.variables = template_variables(v.messages);
  } else {
    v.variables = template_variables(v.template_text);
  }
  if (auto config = tags.find(kModelConfigTag); config != tags.end()) {
    auto parsed = parse_json(config->second);
    if (parsed.ok()) v.model_parameters = std::move(parsed).value();
  }
  for (const auto& t : mv.tags) {
    if (!is_convention_tag(t.key)) v.tags.push_back(t);
  }
  return v;
}

std::string version_label(const PromptVersion& v) { return v.name + "@" + std::to_string(v.version); }

}  // namespace

std::pair<std::string, std::string> split_prompt_reference(const std::string& reference) {
  auto at = reference.rfind('@');
  if (at == std::string::npos) return {reference, ""};
  return {reference.substr(0, at), reference.substr(at + 1)};
}

Result<registry::RegisteredModel> PromptRegistry::prompt_model(const std::string& name) {
  KEEL_RETURN_IF_ERROR(registry::validate_model_name(name));
  auto model = models_.get_model(name);
  if (!model.ok() && model.status().code() == ErrorCode::kNotFound) {
    return not_found("no prompt named '" + name + "' (see `keel prompts list`)");
  }
  if (!model.ok()) return model.status();
  if (!has_prompt_tag(model->tags)) return not_a_prompt(name);
  return model;
}

Result<PromptVersion> PromptRegistry::create_version(const std::string& name, const NewPromptVersion& spec,
                                                     const std::string& actor) {
  KEEL_RETURN_IF_ERROR(registry::validate_model_name(name));
  const bool is_chat = spec.messages.has_value();
  if (is_chat && !spec.template_text.empty()) {
    return invalid_argument("give a template or chat messages, not both");
  }
  if (!is_chat && spec.template_text.empty()) return invalid_argument("the prompt template is empty");
  std::string text = spec.template_text;
  std::vector<std::string> variables;
  if (is_chat) {
    Json array = Json::array();
    for (const auto& m : *spec.messages) array.push_back({{"role", m.role}, {"content", m.content}});
    KEEL_RETURN_IF_ERROR(messages_from_json(array).status());
    text = messages_to_text(*spec.messages);
    variables = template_variables(*spec.messages);
  } else {
    variables = template_variables(text);
  }
  if (text.size() > 100000) {
    return invalid_argument("the prompt is " + std::to_string(text.size()) + " bytes, over the limit of 100000");
  }
  if (!spec.model_parameters.is_null() && !spec.model_parameters.is_object()) {
    return invalid_argument("model parameters must be a JSON object, e.g. {\"temperature\": 0.2}");
  }
  for (const auto& t : spec.tags) {
    if (is_convention_tag(t.key)) {
      return invalid_argument("tag '" + t.key + "' is reserved for the prompt registry; pick another key");
    }
  }

  auto model = models_.get_model(name);
  if (!model.ok() && model.status().code() == ErrorCode::kNotFound) {
    model = models_.create_model(name, spec.commit_message, {{kIsPromptTag, "true"}}, actor);
    if (!model.ok() && model.status().code() == ErrorCode::kAlreadyExists) model = models_.get_model(name);
  }
  if (!model.ok()) return model.status().with_context("creating prompt " + name);
  if (!has_prompt_tag(model->tags)) return not_a_prompt(name);

  registry::NewVersion version;
  version.source = kPromptSource;
  version.description = spec.commit_message;
  version.tags = {{kIsPromptTag, "true"},
                  {kPromptTypeTag, is_chat ? "chat" : "text"},
                  {kPromptTextTag, text},
                  {kVariablesTag, dump_json(Json(variables))}};
  if (spec.model_parameters.is_object()) version.tags.push_back({kModelConfigTag, dump_json(spec.model_parameters)});
  for (const auto& t : spec.tags) version.tags.push_back(t);
  KEEL_ASSIGN_OR_RETURN(registry::ModelVersion created, models_.create_version(name, version, actor));
  return from_model_version(created);
}

Result<PromptVersion> PromptRegistry::get(const std::string& name, const std::string& ref) {
  KEEL_ASSIGN_OR_RETURN(registry::RegisteredModel model, prompt_model(name));
  if (ref.empty() || ref == "latest") {
    if (!model.latest) return not_found("prompt " + name + " has no versions yet");
    return from_model_version(*model.latest);
  }
  if (ref.find_first_not_of("0123456789") == std::string::npos) {
    if (ref.size() > 9) return invalid_argument("prompt version '" + ref + "' is too large");
    auto v = models_.get_version(name, std::stoll(ref));
    if (!v.ok() && v.status().code() == ErrorCode::kNotFound) {
      return not_found("prompt " + name + " has no version " + ref);
    }
    if (!v.ok()) return v.status();
    return from_model_version(*v);
  }
  auto v = models_.get_by_alias(name, ref);
  // The registry answers an unknown alias with kInvalidArgument (MLflow's code for it).
  if (!v.ok() && (v.status().code() == ErrorCode::kInvalidArgument || v.status().code() == ErrorCode::kNotFound)) {
    return not_found("prompt " + name + " has no version or alias '" + ref + "' (see `keel prompts show " + name + "`)");
  }
  if (!v.ok()) return v.status();
  return from_model_version(*v);
}

Result<std::vector<PromptSummary>> PromptRegistry::list() {
  registry::SearchRequest request;
  request.filter = std::string("tags.`") + kIsPromptTag + "` = 'true'";
  request.max_results = 50000;
  KEEL_ASSIGN_OR_RETURN(registry::SearchPage<registry::RegisteredModel> page, models_.search_models(request));
  std::vector<PromptSummary> out;
  for (const auto& m : page.items) {
    PromptSummary s;
    s.name = m.name;
    s.description = m.description;
    s.created_at = m.created_at;
    s.updated_at = m.updated_at;
    s.latest_version = m.latest ? m.latest->version : 0;
    s.aliases = m.aliases;
    out.push_back(std::move(s));
  }
  return out;
}

Status PromptRegistry::set_alias(const std::string& name, const std::string& alias, int64_t version,
                                 const std::string& actor) {
  KEEL_RETURN_IF_ERROR(prompt_model(name).status());
  return models_.set_alias(name, alias, version, actor);
}

Status PromptRegistry::delete_alias(const std::string& name, const std::string& alias, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(prompt_model(name).status());
  return models_.delete_alias(name, alias, actor);
}

Result<RenderedPrompt> PromptRegistry::render(const std::string& name, const std::string& ref, const Json& variables) {
  KEEL_ASSIGN_OR_RETURN(PromptVersion v, get(name, ref));
  Status checked = check_variables(v.variables, variables);
  if (!checked.ok()) return checked.with_context("rendering " + version_label(v));
  RenderedPrompt out;
  out.name = v.name;
  out.version = v.version;
  out.is_chat = v.is_chat;
  out.model_parameters = v.model_parameters;
  if (v.is_chat) {
    for (const auto& m : v.messages) out.messages.push_back({m.role, substitute(m.content, variables)});
  } else {
    out.text = substitute(v.template_text, variables);
  }
  return out;
}

std::string diffable_text(const PromptVersion& v) {
  if (!v.is_chat) return v.template_text;
  std::string text;
  for (const auto& m : v.messages) {
    text += "[" + m.role + "]\n";
    text += m.content;
    if (text.empty() || text.back() != '\n') text += '\n';
  }
  return text;
}

Result<PromptDiff> PromptRegistry::diff(const std::string& name, const std::string& from_ref,
                                        const std::string& to_ref) {
  KEEL_ASSIGN_OR_RETURN(PromptVersion a, get(name, from_ref));
  KEEL_ASSIGN_OR_RETURN(PromptVersion b, get(name, to_ref));
  PromptDiff d;
  d.name = name;
  d.from_version = a.version;
  d.to_version = b.version;
  KEEL_ASSIGN_OR_RETURN(d.template_diff, unified_diff(diffable_text(a), diffable_text(b), version_label(a), version_label(b)));
  Json pa = a.model_parameters.is_object() ? a.model_parameters : Json::object();
  Json pb = b.model_parameters.is_object() ? b.model_parameters : Json::object();
  std::set<std::string> keys;
  for (const auto& [k, _] : pa.items()) keys.insert(k);
  for (const auto& [k, _] : pb.items()) keys.insert(k);
  for (const auto& k : keys) {
    Json from = pa.contains(k) ? pa[k] : Json(nullptr);
    Json to = pb.contains(k) ? pb[k] : Json(nullptr);
    if (from != to) d.parameter_changes.push_back({k, from, to});
  }
  return d;
}

Json to_json(const PromptVersion& v) {
  Json tags = Json::object();
  for (const auto& t : v.tags) tags[t.key] = t.value;
  Json messages = nullptr;
  if (v.is_chat) {
    messages = Json::array();
    for (const auto& m : v.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  return {{"name", v.name},
          {"version", v.version},
          {"type", v.is_chat ? "chat" : "text"},
          {"template", v.is_chat ? Json(nullptr) : Json(v.template_text)},
          {"messages", messages},
          {"commit_message", v.commit_message},
          {"model_parameters", v.model_parameters},
          {"variables", v.variables},
          {"tags", tags},
          {"aliases", v.aliases},
          {"user", v.user_id},
          {"created_at", v.created_at}};
}

Json to_json(const PromptSummary& s) {
  Json aliases = Json::object();
  for (const auto& [alias, version] : s.aliases) aliases[alias] = version;
  return {{"name", s.name},
          {"description", s.description},
          {"latest_version", s.latest_version == 0 ? Json(nullptr) : Json(s.latest_version)},
          {"aliases", aliases},
          {"created_at", s.created_at},
          {"updated_at", s.updated_at}};
}

Json to_json(const RenderedPrompt& r) {
  Json out = {{"name", r.name}, {"version", r.version}, {"model_parameters", r.model_parameters}};
  if (r.is_chat) {
    Json messages = Json::array();
    for (const auto& m : r.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
    out["messages"] = messages;
  } else {
    out["text"] = r.text;
  }
  return out;
}

Json to_json(const PromptDiff& d) {
  Json changes = Json::array();
  for (const auto& c : d.parameter_changes) changes.push_back({{"key", c.key}, {"from", c.from}, {"to", c.to}});
  return {{"name", d.name},
          {"from_version", d.from_version},
          {"to_version", d.to_version},
          {"template_diff", d.template_diff},
          {"parameter_changes", changes}};
}

}  // namespace keel::prompts
