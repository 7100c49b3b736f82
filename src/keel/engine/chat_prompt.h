// Turns a conversation into the token ids a model expects: the model's chat template
// (chat_template.h) renders the messages, and the tokenizer encodes the text with its
// control tokens parsed. The one trap this exists for: templates that write
// {{ bos_token }} themselves, for models whose tokenizer also adds BOS, would give two
// BOS tokens; as llama.cpp does, the template's copy is dropped. Used by `keel
// generate --chat`, `keel chat` and the OpenAI chat endpoint.
#pragma once

#include <vector>

#include "keel/engine/chat_template.h"
#include "keel/engine/tokenizer.h"
#include "keel/util/status.h"

namespace keel::engine {

Result<std::vector<TokenId>> encode_chat(const Tokenizer& tokenizer, const ChatTemplate& chat_template,
                                         const std::vector<ChatMessage>& messages,
                                         const ChatTemplateOptions& options = {});
// The same for messages as JSON, as an OpenAI request carries them (ChatTemplate::render_json).
Result<std::vector<TokenId>> encode_chat_json(const Tokenizer& tokenizer, const ChatTemplate& chat_template,
                                              const nlohmann::ordered_json& messages,
                                              const ChatTemplateOptions& options = {});
// Tokenizes text a chat template rendered (control tokens parsed, a duplicate BOS dropped).
Result<std::vector<TokenId>> encode_rendered_chat(const Tokenizer& tokenizer, std::string_view text);

}  // namespace keel::engine
