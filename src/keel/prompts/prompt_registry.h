// The prompt registry: versioned prompt templates (text, or chat messages) with
// default model parameters and aliases. A prompt IS a registered model of the model
// registry carrying MLflow's prompt conventions (the tags below), so the stock mlflow
// client's register_prompt / load_prompt and Keel see the same objects. Versions are
// immutable. A registered model without the is_prompt tag is refused, never adopted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/prompts/prompt_template.h"
#include "keel/registry/model_registry.h"

namespace keel::prompts {

// MLflow's wire conventions (mlflow/prompt/constants.py) and Keel's own declaration.
inline constexpr const char* kIsPromptTag = "mlflow.prompt.is_prompt";
inline constexpr const char* kPromptTextTag = "mlflow.prompt.text";
inline constexpr const char* kPromptTypeTag = "_mlflow_prompt_type";
inline constexpr const char* kModelConfigTag = "_mlflow_prompt_model_config";
inline constexpr const char* kVariablesTag = "keel.prompt.variables";
inline constexpr const char* kPromptSource = "dummy-source";

struct NewPromptVersion {
  std::string template_text;                        // a text prompt ...
  std::optional<std::vector<ChatMessage>> messages;  // ... or a chat prompt: exactly one of the two
  std::string commit_message;
  Json model_parameters = nullptr;  // default model parameters: a JSON object, or null
  std::vector<registry::KeyValueTag> tags;
};

struct PromptVersion {
  std::string name;
  int64_t version = 0;
  bool is_chat = false;
  std::string template_text;           // text prompts; for chat prompts, MLflow's JSON text
  std::vector<ChatMessage> messages;   // chat prompts
  std::string commit_message;
  Json model_parameters = nullptr;
  std::vector<std::string> variables;  // in order of first appearance
  std::vector<registry::KeyValueTag> tags;  // the caller's tags, without the convention tags
  std::vector<std::string> aliases;
  std::string user_id;
  int64_t created_at = 0;
};

struct PromptSummary {
  std::string name;
  std::string description;  // the first version's commit message
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t latest_version = 0;  // 0: no version yet
  std::vector<std::pair<std::string, int64_t>> aliases;
};

struct RenderedPrompt {
  std::string name;
  int64_t version = 0;
  bool is_chat = false;
  std::string text;                   // text prompts
  std::vector<ChatMessage> messages;  // chat prompts
  Json model_parameters = nullptr;
};

struct ParameterChange {
  std::string key;
  Json from;  // null: absent
  Json to;
};

struct PromptDiff {
  std::string name;
  int64_t from_version = 0;
  int64_t to_version = 0;
  std::string template_diff;  // unified line diff; "" when the templates are equal
  std::vector<ParameterChange> parameter_changes;
};

// "NAME", "NAME@3", "NAME@production" -> (name, ref); ref "" means the latest version.
std::pair<std::string, std::string> split_prompt_reference(const std::string& reference);

class PromptRegistry {
 public:
  explicit PromptRegistry(registry::ModelRegistry& models) : models_(models) {}

  // Creates the prompt (the registered model, tagged) on first use, then the next version.
  Result<PromptVersion> create_version(const std::string& name, const NewPromptVersion& spec, const std::string& actor);
  // ref: "" or "latest" for the newest version, digits for a number, else an alias.
  Result<PromptVersion> get(const std::string& name, const std::string& ref = "");
  Result<std::vector<PromptSummary>> list();
  Status set_alias(const std::string& name, const std::string& alias, int64_t version, const std::string& actor);
  Status delete_alias(const std::string& name, const std::string& alias, const std::string& actor);
  // variables: a JSON object; see check_variables for what is refused.
  Result<RenderedPrompt> render(const std::string& name, const std::string& ref, const Json& variables);
  Result<PromptDiff> diff(const std::string& name, const std::string& from_ref, const std::string& to_ref);

 private:
  // The registered model, if it is a prompt; kNotFound or kFailedPrecondition otherwise.
  Result<registry::RegisteredModel> prompt_model(const std::string& name);

  registry::ModelRegistry& models_;
};

// The text a diff compares for a version: the template, or for a chat prompt one
// "[role]" line followed by the content's lines per message.
std::string diffable_text(const PromptVersion& v);

Json to_json(const PromptVersion& v);
Json to_json(const PromptSummary& s);
Json to_json(const RenderedPrompt& r);
Json to_json(const PromptDiff& d);

}  // namespace keel::prompts
