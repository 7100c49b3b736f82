#include "keel/train/sft_data.h"

#include <algorithm>
#include <optional>
#include <string>

#include "keel/engine/chat_prompt.h"

namespace keel::train {
namespace {

bool starts_with(const std::vector<int32_t>& whole, const std::vector<int32_t>& prefix) {
  return prefix.size() <= whole.size() && std::equal(prefix.begin(), prefix.end(), whole.begin());
}

// ShareGPT's speaker names, as the role a chat template knows.
std::optional<std::string> sharegpt_role(const std::string& from) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant" || from == "model" || from == "chatgpt") return "assistant";
  if (from == "system") return "system";
  return std::nullopt;
}

// The record in one of the two shapes encode_sft_record trains on: ShareGPT's
// {"conversations": [{"from", "value"}]} becomes "messages"; Alpaca's {"instruction",
// "input", "output"} becomes "messages" (user: the instruction, a blank line and the
// input when there is one; assistant: the output) with a chat template, else
// prompt/completion. Other records are returned as they are.
Result<nlohmann::json> canonical_record(const nlohmann::json& record, bool chat) {
  if (record.contains("messages") || record.contains("prompt")) return record;
  if (record.contains("conversations")) {
    const nlohmann::json& turns = record["conversations"];
    if (!turns.is_array() || turns.empty()) return invalid_argument("\"conversations\" must be a non-empty array");
    nlohmann::json messages = nlohmann::json::array();
    for (const auto& t : turns) {
      if (!t.is_object() || !t.contains("from") || !t["from"].is_string() || !t.contains("value") ||
          !t["value"].is_string()) {
        return invalid_argument("every turn of \"conversations\" needs a string \"from\" and a string \"value\"");
      }
      const auto role = sharegpt_role(t["from"].get<std::string>());
      if (!role) {
        return invalid_argument("a turn is from \"" + t["from"].get<std::string>() +
                                "\"; ShareGPT turns are from human, gpt or system");
      }
      messages.push_back({{"role", *role}, {"content", t["value"]}});
    }
    return nlohmann::json{{"messages", std::move(messages)}};
  }
  if (record.contains("instruction") && record.contains("output")) {
    const nlohmann::json empty = "";
    const nlohmann::json& input = record.contains("input") ? record["input"] : empty;
    if (!record["instruction"].is_string() || !record["output"].is_string() || !input.is_string()) {
      return invalid_argument("\"instruction\", \"input\" and \"output\" must be strings");
    }
    std::string question = record["instruction"].get<std::string>();
    if (!input.get<std::string>().empty()) question += "\n\n" + input.get<std::string>();
    if (chat) {
      nlohmann::json messages = nlohmann::json::array();
      messages.push_back({{"role", "user"}, {"content", question}});
      messages.push_back({{"role", "assistant"}, {"content", record["output"]}});
      return nlohmann::json{{"messages", std::move(messages)}};
    }
    return nlohmann::json{{"prompt", question + "\n\n"}, {"completion", record["output"]}};
  }
  return record;
}

}  // namespace

int64_t SftExample::target_count() const {
  return std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; });
}

Result<SftExample> encode_sft_record(const engine::Tokenizer& tokenizer, const engine::ChatTemplate* chat_template,
                                     const nlohmann::json& original, int64_t max_tokens) {
  if (!original.is_object()) return invalid_argument("an SFT record must be a JSON object");
  KEEL_ASSIGN_OR_RETURN(const nlohmann::json record, canonical_record(original, chat_template != nullptr));
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained;  // per token: is it a target (predicted from the one before)?
  if (record.contains("messages")) {
    if (chat_template == nullptr) return invalid_argument("the model has no chat template for \"messages\" records");
    const nlohmann::json& list = record["messages"];
    if (!list.is_array() || list.empty()) return invalid_argument("\"messages\" must be a non-empty array");
    std::vector<engine::ChatMessage> messages;
    for (const auto& m : list) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
          !m["content"].is_string()) {
        return invalid_argument("every message needs a string \"role\" and a string \"content\"");
      }
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    engine::ChatTemplateOptions closed;
    closed.add_generation_prompt = false;
    KEEL_ASSIGN_OR_RETURN(tokens, engine::encode_chat(tokenizer, *chat_template, messages, closed));
    trained.assign(tokens.size(), 0);
    bool any = false;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].role != "assistant") continue;
      any = true;
      const std::vector<engine::ChatMessage> before(messages.begin(), messages.begin() + static_cast<long>(i));
      const std::vector<engine::ChatMessage> through(messages.begin(), messages.begin() + static_cast<long>(i + 1));
      KEEL_ASSIGN_OR_RETURN(auto prompt, engine::encode_chat(tokenizer, *chat_template, before));  // + assistant header
      KEEL_ASSIGN_OR_RETURN(auto turn, engine::encode_chat(tokenizer, *chat_template, through, closed));
      if (!starts_with(turn, prompt) || !starts_with(tokens, turn)) {
        return invalid_argument(
            "the chat template does not render the conversation's turns as prefixes of it; "
            "the assistant tokens cannot be told apart");
      }
      std::fill(trained.begin() + static_cast<long>(prompt.size()), trained.begin() + static_cast<long>(turn.size()),
                1);
    }
    if (!any) return invalid_argument("a \"messages\" record needs at least one assistant message");
  } else if (record.contains("prompt") && (record.contains("completion") || record.contains("response"))) {
    // "response" is what `keel data`'s format step writes; "completion" is OpenAI's and TRL's.
    const char* answer = record.contains("completion") ? "completion" : "response";
    if (!record["prompt"].is_string() || !record[answer].is_string()) {
      return invalid_argument("\"prompt\" and \"" + std::string(answer) + "\" must be strings");
    }
    KEEL_ASSIGN_OR_RETURN(tokens, tokenizer.encode(record["prompt"].get<std::string>(), true, false));
    KEEL_ASSIGN_OR_RETURN(auto completion, tokenizer.encode(record[answer].get<std::string>(), false, false));
    trained.assign(tokens.size(), 0);
    tokens.insert(tokens.end(), completion.begin(), completion.end());
    if (tokenizer.eos_id() >= 0) tokens.push_back(tokenizer.eos_id());
    trained.resize(tokens.size(), 1);
  } else {
    return invalid_argument(
        "an SFT record needs \"messages\", \"prompt\" and \"completion\" (or \"response\"), ShareGPT's "
        "\"conversations\", or Alpaca's \"instruction\" and \"output\"");
  }
  if (max_tokens > 0 && static_cast<int64_t>(tokens.size()) > max_tokens) {
    tokens.resize(static_cast<size_t>(max_tokens));
    trained.resize(static_cast<size_t>(max_tokens));
  }
  SftExample e;
  e.tokens = std::move(tokens);
  e.targets.assign(e.tokens.size(), -1);
  for (size_t t = 0; t + 1 < e.tokens.size(); ++t) {
    if (trained[t + 1]) e.targets[t] = e.tokens[t + 1];
  }
  if (e.target_count() == 0) {
    return failed_precondition("the record has no token to train on within the first " + std::to_string(max_tokens) +
                               " tokens");
  }
  return e;
}

}  // namespace keel::train
