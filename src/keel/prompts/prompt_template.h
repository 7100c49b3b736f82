// Prompt templates: `{{ name }}` variables (MLflow's syntax: a name of letters, digits,
// '_' and dotted parts, whitespace allowed inside the braces), found in order of first
// appearance and substituted at render time. Rendering is strict: every declared
// variable must be given and nothing else may be; values must be strings, numbers or
// booleans. Used by the prompt registry, which stores and versions the templates.
#pragma once

#include <string>
#include <vector>

#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::prompts {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;  // a template
};

// Variable names in `text`, each once, in order of first appearance.
std::vector<std::string> template_variables(const std::string& text);
// The same over a chat prompt's message contents, in message order.
std::vector<std::string> template_variables(const std::vector<ChatMessage>& messages);

// Checks `values` (a JSON object) against `declared`: a missing or an extra variable, or
// a value that is not a string, number or boolean, is kInvalidArgument naming them all.
Status check_variables(const std::vector<std::string>& declared, const Json& values);

// Substitutes every `{{ name }}` whose name is in `values`; call check_variables first.
// Numbers print as JSON does (3, 0.5), booleans as true / false.
std::string substitute(const std::string& text, const Json& values);

// Chat messages as MLflow stores them: a JSON array of {"role", "content"}.
std::string messages_to_text(const std::vector<ChatMessage>& messages);
// Parses that array back; anything else is kInvalidArgument.
Result<std::vector<ChatMessage>> messages_from_json(const Json& value);

}  // namespace keel::prompts
