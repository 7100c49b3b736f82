#include "keel/data/record_text.h"

namespace keel::data {
namespace {

// The value holding the record's text: the field, or for the default field a chat list.
const Record* text_value(const Record& record, const std::string& field) {
  auto it = record.find(field);
  if (it != record.end()) return &*it;
  if (field != kDefaultTextField) return nullptr;
  for (const char* chat : {"messages", "conversations"}) {
    it = record.find(chat);
    if (it != record.end() && it->is_array()) return &*it;
  }
  return nullptr;
}

// A chat is a non-empty list of objects.
bool is_chat(const Record& value) {
  if (!value.is_array() || value.empty()) return false;
  for (const auto& message : value) {
    if (!message.is_object()) return false;
  }
  return true;
}

// Calls add(string&) for each text of one message, in order.
template <class MessageRef, class Add>
void message_texts(MessageRef& message, Add add) {
  auto content = message.find("content");
  if (content == message.end()) content = message.find("value");  // ShareGPT
  if (content == message.end()) return;
  if (content->is_string()) {
    add(*content);
    return;
  }
  if (!content->is_array()) return;
  for (auto& part : *content) {
    if (part.is_string()) {
      add(part);
    } else if (part.is_object()) {
      auto text = part.find("text");
      if (text != part.end() && text->is_string()) add(*text);
    }
  }
}

}  // namespace

bool text_parts(Record* record, const std::string& field, std::vector<std::string*>* parts) {
  parts->clear();
  // The record is the caller's to change: the lookup is shared with the const readers.
  auto* value = const_cast<Record*>(text_value(*record, field));
  if (value == nullptr) return false;
  if (value->is_string()) {
    parts->push_back(&value->get_ref<std::string&>());
    return true;
  }
  if (!is_chat(*value)) return false;
  for (auto& message : *value) {
    message_texts(message, [parts](Record& text) { parts->push_back(&text.get_ref<std::string&>()); });
  }
  return true;
}

const std::string* record_text(const Record& record, const std::string& field, std::string* joined) {
  const Record* value = text_value(record, field);
  if (value == nullptr) return nullptr;
  if (value->is_string()) return &value->get_ref<const std::string&>();
  if (!is_chat(*value)) return nullptr;
  joined->clear();
  bool first = true;
  for (const auto& message : *value) {
    message_texts(message, [&](const Record& text) {
      if (!first) joined->append("\n\n");
      first = false;
      joined->append(text.get_ref<const std::string&>());
    });
  }
  return joined;
}

bool has_text(const Record& record, const std::string& field) {
  const Record* value = text_value(record, field);
  return value != nullptr && (value->is_string() || is_chat(*value));
}

bool chat_messages(const Record& record, const std::string& field, std::vector<std::string>* roles) {
  roles->clear();
  const Record* value = text_value(record, field);
  if (value == nullptr || !is_chat(*value)) return false;
  for (const auto& message : *value) {
    auto role = message.find("role");
    if (role == message.end()) role = message.find("from");  // ShareGPT
    roles->push_back(role != message.end() && role->is_string() ? role->get<std::string>() : std::string());
  }
  return true;
}

}  // namespace keel::data
