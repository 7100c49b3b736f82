#include "keel/data/format_operator.h"

namespace keel::data {
namespace {

// The value at a dotted path, or nullptr.
const Record* lookup(const Record& record, std::string_view path) {
  const Record* node = &record;
  while (true) {
    size_t dot = path.find('.');
    std::string key(path.substr(0, dot));
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) return node->is_null() ? nullptr : node;
    path.remove_prefix(dot + 1);
  }
}

}  // namespace

Result<FieldTemplate> FieldTemplate::parse(std::string_view text) {
  FieldTemplate t;
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      literal.push_back('{');
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      literal.push_back('}');
      ++i;
    } else if (c == '{') {
      size_t close = text.find('}', i + 1);
      if (close == std::string_view::npos) {
        return invalid_argument("template \"" + std::string(text) + "\": '{' at " + std::to_string(i) +
                                " has no closing '}' (write {{ for a literal brace)");
      }
      std::string name(text.substr(i + 1, close - i - 1));
      if (name.empty() || name.find('{') != std::string::npos || name.front() == '.' || name.back() == '.') {
        return invalid_argument("template \"" + std::string(text) + "\": \"{" + name + "}\" is not a field name");
      }
      if (!literal.empty()) t.parts_.push_back({false, std::move(literal)});
      literal.clear();
      t.parts_.push_back({true, name});
      t.fields_.push_back(name);
      i = close;
    } else if (c == '}') {
      return invalid_argument("template \"" + std::string(text) + "\": '}' at " + std::to_string(i) +
                              " closes nothing (write }} for a literal brace)");
    } else {
      literal.push_back(c);
    }
  }
  if (!literal.empty()) t.parts_.push_back({false, std::move(literal)});
  return t;
}

bool FieldTemplate::render(const Record& record, std::string* out, std::string* missing) const {
  out->clear();
  for (const auto& part : parts_) {
    if (!part.is_field) {
      out->append(part.text);
      continue;
    }
    const Record* value = lookup(record, part.text);
    if (value == nullptr) {
      *missing = part.text;
      return false;
    }
    if (value->is_string()) {
      out->append(value->get_ref<const std::string&>());
    } else {
      out->append(value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  return true;
}

void FormatOptions::describe(ParamSet* p) {
  p->add("style", &style, "prompt_response or chat");
  p->add("prompt", &prompt, "Prompt template (prompt_response), e.g. \"Summarise:\\n{text}\"");
  p->add("response", &response, "Response template (prompt_response), e.g. \"{summary}\"");
  p->add("system", &system, "System message template (chat; empty: none)");
  p->add("user", &user, "User message template (chat)");
  p->add("assistant", &assistant, "Assistant message template (chat)");
  p->add("prompt_field", &prompt_field, "Output field of the prompt");
  p->add("response_field", &response_field, "Output field of the response");
  p->add("messages_field", &messages_field, "Output field of the chat messages");
  p->add("keep_fields", &keep_fields, "Input fields copied to the output (an id, a source)");
}

Status FormatOptions::validate() const {
  if (style == "prompt_response") {
    if (prompt.empty() || response.empty()) return invalid_argument("format prompt_response needs prompt and response");
    if (!system.empty() || !user.empty() || !assistant.empty()) {
      return invalid_argument("format prompt_response takes prompt and response, not system/user/assistant");
    }
  } else if (style == "chat") {
    if (user.empty() || assistant.empty()) return invalid_argument("format chat needs user and assistant");
    if (!prompt.empty() || !response.empty()) {
      return invalid_argument("format chat takes system/user/assistant, not prompt and response");
    }
  } else {
    return invalid_argument("format style must be prompt_response or chat, not \"" + style + "\"");
  }
  return Status::Ok();
}

Result<std::unique_ptr<FormatOperator>> FormatOperator::create(FormatOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  std::unique_ptr<FormatOperator> op(new FormatOperator(std::move(options)));
  const FormatOptions& o = op->options_;
  std::vector<std::pair<std::string, const std::string*>> wanted;
  if (o.style == "prompt_response") {
    wanted = {{"prompt", &o.prompt}, {"response", &o.response}};
  } else {
    if (!o.system.empty()) wanted.emplace_back("system", &o.system);
    wanted.emplace_back("user", &o.user);
    wanted.emplace_back("assistant", &o.assistant);
  }
  for (const auto& [role, text] : wanted) {
    auto t = FieldTemplate::parse(*text);
    if (!t.ok()) return t.status().with_context(role);
    op->templates_.emplace_back(role, std::move(*t));
  }
  return op;
}

Verdict FormatOperator::process(Record* record, bool* changed) {
  Record out = Record::object();
  std::string rendered;
  std::string missing;
  if (options_.style == "prompt_response") {
    for (size_t i = 0; i < templates_.size(); ++i) {
      if (!templates_[i].second.render(*record, &rendered, &missing)) return Verdict::Drop("missing_field_" + missing);
      out[i == 0 ? options_.prompt_field : options_.response_field] = rendered;
    }
  } else {
    Record messages = Record::array();
    for (const auto& [role, t] : templates_) {
      if (!t.render(*record, &rendered, &missing)) return Verdict::Drop("missing_field_" + missing);
      messages.push_back({{"role", role}, {"content", rendered}});
    }
    out[options_.messages_field] = std::move(messages);
  }
  for (const auto& f : options_.keep_fields) {
    auto it = record->find(f);
    if (it != record->end()) out[f] = *it;
  }
  *record = std::move(out);
  *changed = true;
  return Verdict::Keep();
}

}  // namespace keel::data
