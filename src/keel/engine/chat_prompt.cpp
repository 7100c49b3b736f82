#include "keel/engine/chat_prompt.h"

#include <string_view>

namespace keel::engine {

Result<std::vector<TokenId>> encode_chat(const Tokenizer& tokenizer, const ChatTemplate& chat_template,
                                         const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  if (messages.empty()) return invalid_argument("a chat needs at least one message");
  KEEL_ASSIGN_OR_RETURN(std::string text, chat_template.render(messages, options));
  return encode_rendered_chat(tokenizer, text);
}

Result<std::vector<TokenId>> encode_chat_json(const Tokenizer& tokenizer, const ChatTemplate& chat_template,
                                              const nlohmann::ordered_json& messages,
                                              const ChatTemplateOptions& options) {
  if (!messages.is_array() || messages.empty()) return invalid_argument("a chat needs at least one message");
  KEEL_ASSIGN_OR_RETURN(std::string text, chat_template.render_json(messages, options));
  return encode_rendered_chat(tokenizer, text);
}

Result<std::vector<TokenId>> encode_rendered_chat(const Tokenizer& tokenizer, std::string_view text) {
  std::string_view rest(text);
  if (tokenizer.adds_bos() && tokenizer.bos_id() >= 0) {
    const std::string& bos = tokenizer.token_text(tokenizer.bos_id());
    if (!bos.empty() && rest.substr(0, bos.size()) == bos) rest.remove_prefix(bos.size());
  }
  return tokenizer.encode(rest, /*add_special=*/true, /*parse_special=*/true);
}

}  // namespace keel::engine
