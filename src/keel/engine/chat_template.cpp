#include "keel/engine/chat_template.h"

#include "keel/engine/jinja_parser.h"

namespace keel::engine {
namespace {

constexpr size_t kMaxTemplateBytes = 4u << 20;

Status in_template(const Status& status) {
  return status.with_context("chat template");
}

// The text of token id `key` names, or "" when the model has no such token.
std::string token_text(const GgufFile& file, const std::string& key) {
  const auto id = file.get_int(key);
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  if (!id || *id < 0 || tokens == nullptr) return "";
  const auto* array = std::get_if<std::shared_ptr<GgufArray>>(&tokens->data);
  if (array == nullptr || *array == nullptr || static_cast<uint64_t>(*id) >= (*array)->values.size()) return "";
  return (*array)->values[static_cast<size_t>(*id)].as_string().value_or("");
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    return in_template(invalid_argument("template is " + std::to_string(source.size()) + " bytes, over the limit of " +
                                        std::to_string(kMaxTemplateBytes)));
  }
  auto parsed = jinja::parse_template(source);
  if (!parsed.ok()) return in_template(parsed.status());
  ChatTemplate t;
  t.source_ = std::make_shared<const std::string>(source);
  t.template_ = std::shared_ptr<const jinja::Template>(std::move(parsed).value());
  return t;
}

void ChatTemplate::set_special_tokens(std::string bos_token, std::string eos_token) {
  bos_token_ = std::move(bos_token);
  eos_token_ = std::move(eos_token);
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                         const ChatTemplateOptions& options) const {
  jinja::ValueList list;
  list.reserve(messages.size());
  for (const auto& m : messages) {
    auto d = std::make_shared<jinja::Dict>();
    d->set(jinja::Value::string("role"), jinja::Value::string(m.role));
    d->set(jinja::Value::string("content"), jinja::Value::string(m.content));
    list.push_back(jinja::Value::dict(std::move(d)));
  }
  return render_value(jinja::Value::list(std::move(list)), options);
}

Result<std::string> ChatTemplate::render_json(const nlohmann::ordered_json& messages,
                                              const ChatTemplateOptions& options) const {
  if (!messages.is_array()) return in_template(invalid_argument("messages must be a JSON array"));
  for (const auto& m : messages) {
    if (!m.is_object()) return in_template(invalid_argument("each message must be a JSON object"));
  }
  return render_value(jinja::Value::from_json(messages), options);
}

Result<std::string> ChatTemplate::render_value(jinja::Value messages, const ChatTemplateOptions& options) const {
  if (!options.variables.is_object()) return in_template(invalid_argument("variables must be a JSON object"));
  jinja::Interpreter interpreter(options.limits, options.now);
  // What transformers passes to render(): messages, tools and documents (None when not
  // given), add_generation_prompt, the special tokens, then the caller's keywords.
  interpreter.set_global("messages", std::move(messages));
  interpreter.set_global("tools", jinja::Value::none());
  interpreter.set_global("documents", jinja::Value::none());
  interpreter.set_global("add_generation_prompt", jinja::Value::boolean(options.add_generation_prompt));
  interpreter.set_global("bos_token", jinja::Value::string(options.bos_token.value_or(bos_token_)));
  interpreter.set_global("eos_token", jinja::Value::string(options.eos_token.value_or(eos_token_)));
  for (const auto& [key, value] : options.variables.items()) {
    interpreter.set_global(key, jinja::Value::from_json(value));
  }
  auto out = interpreter.render(*template_);
  if (!out.ok()) return in_template(out.status());
  return out;
}

Result<ChatTemplate> chat_template_from_gguf(const GgufFile& file) {
  auto source = file.get_string("tokenizer.chat_template");
  if (!source) {
    return not_found("the model has no chat template (GGUF key tokenizer.chat_template is missing)");
  }
  KEEL_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(*source));
  t.set_special_tokens(token_text(file, "tokenizer.ggml.bos_token_id"),
                       token_text(file, "tokenizer.ggml.eos_token_id"));
  return t;
}

}  // namespace keel::engine
