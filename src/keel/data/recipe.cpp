#include "keel/data/recipe.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "keel/util/yaml_messages.h"

namespace keel::data {
namespace {


// Sets one parameter from a YAML value, checking its type.
Status set_param(const ParamSet::Param& p, const YAML::Node& value, const std::string& key) {
  auto wrong = [&] {
    return invalid_argument(key + ": expected " + std::string(ParamSet::type_name(p.slot)) + ", got " + yaml_shown(value) +
                            yaml_where(value));
  };
  try {
    switch (p.slot.index()) {
      case 0: {
        if (!value.IsScalar()) return wrong();
        const std::string& s = value.Scalar();
        if (s != "true" && s != "false") return wrong();
        *std::get<bool*>(p.slot) = s == "true";
        return Status::Ok();
      }
      case 1:
        if (!value.IsScalar()) return wrong();
        *std::get<int64_t*>(p.slot) = value.as<int64_t>();
        return Status::Ok();
      case 2:
        if (!value.IsScalar()) return wrong();
        *std::get<double*>(p.slot) = value.as<double>();
        return Status::Ok();
      case 3:
        if (!value.IsScalar()) return wrong();
        *std::get<std::string*>(p.slot) = value.Scalar();
        return Status::Ok();
      case 4: {
        if (!value.IsSequence()) return wrong();
        std::vector<std::string> out;
        for (const auto& item : value) {
          if (!item.IsScalar()) return wrong();
          out.push_back(item.Scalar());
        }
        *std::get<std::vector<std::string>*>(p.slot) = std::move(out);
        return Status::Ok();
      }
      default: {
        if (!value.IsSequence()) return wrong();
        std::vector<double> out;
        for (const auto& item : value) {
          if (!item.IsScalar()) return wrong();
          out.push_back(item.as<double>());
        }
        *std::get<std::vector<double>*>(p.slot) = std::move(out);
        return Status::Ok();
      }
    }
  } catch (const YAML::Exception&) {
    return wrong();
  }
}

Result<PipelineStep> parse_step(const YAML::Node& node, size_t index, const std::string& default_field) {
  std::string at = "steps[" + std::to_string(index) + "]";
  if (!node.IsMap() || node.size() != 1) {
    return invalid_argument(at + ": a step is a map with one key, its type (normalize: {...})" + yaml_where(node));
  }
  auto entry = node.begin();
  std::string type = entry->first.Scalar();
  const YAML::Node params = entry->second;
  at += "." + type;
  if (!params.IsNull() && !params.IsMap()) {
    return invalid_argument(at + ": parameters are a map (name: value), got " + yaml_shown(params) + yaml_where(params));
  }
  ParamSetter set = [&](const ParamSet& ps) -> Status {
    if (params.IsNull()) return Status::Ok();
    for (const auto& kv : params) {
      std::string name = kv.first.Scalar();
      const ParamSet::Param* p = ps.find(name);
      if (p == nullptr) {
        std::string known;
        for (const auto& q : ps.params()) known += (known.empty() ? "" : ", ") + q.name;
        return invalid_argument(at + "." + name + ": unknown parameter" + yaml_where(kv.first) + " (" + type +
                                " takes: " + known + ")");
      }
      KEEL_RETURN_IF_ERROR(set_param(*p, kv.second, at + "." + name));
    }
    return Status::Ok();
  };
  auto step = build_step(type, default_field, set);
  if (!step.ok()) {
    // Errors from set() already name the key; others get the step's place.
    const std::string& m = step.status().message();
    if (m.rfind("steps[", 0) == 0) return step.status();
    return invalid_argument(at + yaml_where(node) + ": " + m);
  }
  return step;
}

}  // namespace

Result<Recipe> parse_recipe(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return invalid_argument(source + ": not valid YAML: " + e.what());
  }
  auto fail = [&](const Status& st) { return Status(st.code(), source + ": " + st.message()); };
  if (!root.IsMap()) return fail(invalid_argument("a recipe is a map with a \"steps\" list"));
  Recipe recipe;
  YAML::Node steps;
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    if (key == "name" || key == "field" || key == "description" || key == "dataset") {
      if (!kv.second.IsScalar()) {
        return fail(invalid_argument(key + ": expected a string, got " + yaml_shown(kv.second) + yaml_where(kv.second)));
      }
      if (key == "name") recipe.name = kv.second.Scalar();
      if (key == "field") recipe.field = kv.second.Scalar();
      if (key == "dataset") recipe.dataset = kv.second.Scalar();
    } else if (key == "steps") {
      steps = kv.second;
    } else {
      return fail(invalid_argument(key + ": unknown key" + yaml_where(kv.first) +
                                   " (a recipe takes: name, description, field, dataset, steps)"));
    }
  }
  if (!steps.IsDefined() || steps.IsNull()) return fail(invalid_argument("steps: missing (a list of steps)"));
  if (!steps.IsSequence() || steps.size() == 0) {
    return fail(invalid_argument("steps: expected a non-empty list, got " + yaml_shown(steps) + yaml_where(steps)));
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    auto step = parse_step(steps[i], i, recipe.field);
    if (!step.ok()) return fail(step.status());
    recipe.steps.push_back(std::move(*step));
  }
  return recipe;
}

Result<Recipe> load_recipe(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("recipe " + path + ": cannot open it");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_recipe(buffer.str(), path);
}

}  // namespace keel::data
