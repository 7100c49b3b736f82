// Chat templates: renders a model's tokenizer.chat_template (a Jinja template) for a
// conversation, byte for byte as Hugging Face transformers' apply_chat_template does
// (jinja2 sandbox, trim_blocks, lstrip_blocks, loop controls, its tojson,
// raise_exception and strftime_now). Used by generation and serving to turn messages
// into the prompt text. The one thing not to get wrong: the output still has to be
// tokenized with parse_special = true, or the template's control tokens
// ("<|im_start|>") become plain text.
#pragma once

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/engine/gguf.h"
#include "keel/engine/jinja_interpreter.h"
#include "keel/util/status.h"

namespace keel::engine {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool", ...
  std::string content;
};

struct ChatTemplateOptions {
  // Ends the prompt with the header of an assistant turn, so the model answers.
  bool add_generation_prompt = true;
  // The text of the model's BOS / EOS tokens; unset: what the template was loaded with
  // (chat_template_from_gguf reads them from the model), else "".
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  // More template variables, as apply_chat_template's keyword arguments: "tools" (a
  // list of JSON schemas), "documents", "date_string", "enable_thinking", ... Keys
  // keep their order (tojson writes them in it). They override the names above.
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  // The local time strftime_now() formats (tests fix it); unset: the current time.
  std::optional<std::tm> now;
  jinja::RenderLimits limits;
};

class ChatTemplate {
 public:
  // Parses a template. Syntax errors, unknown filters and tests are kInvalidArgument
  // naming the line and column.
  static Result<ChatTemplate> parse(std::string_view source);

  // Renders the template for messages with string contents. Errors (the template's
  // raise_exception, a type error, a limit of options.limits) carry the template's
  // line and column; raise_exception's message is kept as the template wrote it.
  Result<std::string> render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options = {}) const;
  // Renders for messages as JSON (an array of objects, as an OpenAI request carries
  // them): content may be a list of parts, and tool_calls / tool_call_id / name pass
  // through to the template.
  Result<std::string> render_json(const nlohmann::ordered_json& messages,
                                  const ChatTemplateOptions& options = {}) const;

  const std::string& source() const { return *source_; }
  // The BOS / EOS text render uses when the options leave them unset.
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  void set_special_tokens(std::string bos_token, std::string eos_token);

 private:
  ChatTemplate() = default;
  Result<std::string> render_value(jinja::Value messages, const ChatTemplateOptions& options) const;

  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const jinja::Template> template_;  // immutable: renders may share it
  std::string bos_token_;
  std::string eos_token_;
};

// The model's chat template (tokenizer.chat_template) with its BOS / EOS token text
// (tokenizer.ggml.bos_token_id / eos_token_id). kNotFound when the model has none.
Result<ChatTemplate> chat_template_from_gguf(const GgufFile& file);

}  // namespace keel::engine
