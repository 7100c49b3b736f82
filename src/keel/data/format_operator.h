// The "format" step: turns records into fine-tuning examples, either prompt/response
// pairs ({"prompt": ..., "response": ...}) or chat conversations ({"messages": [{"role":
// "system" | "user" | "assistant", "content": ...}]}), from templates that name record
// fields: "Summarise:\n{text}" substitutes the field text ({a.b} reaches into objects,
// "{{" and "}}" are literal braces). Strings go in as they are, other values as JSON.
// A record lacking a field a template names is dropped ("missing_field_NAME").
// The output record holds the example fields, then keep_fields copied as they were.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keel/data/operator.h"

namespace keel::data {

// A parsed template: literal text and field references in turn.
class FieldTemplate {
 public:
  static Result<FieldTemplate> parse(std::string_view text);
  // The rendered text, or the name of the first field the record lacks.
  bool render(const Record& record, std::string* out, std::string* missing) const;
  const std::vector<std::string>& fields() const { return fields_; }

 private:
  struct Part {
    bool is_field;
    std::string text;  // literal text, or the field path
  };
  std::vector<Part> parts_;
  std::vector<std::string> fields_;
};

struct FormatOptions {
  std::string style = "prompt_response";  // or "chat"
  std::string prompt;                     // prompt_response
  std::string response;
  std::string system;  // chat; empty: no system message
  std::string user;
  std::string assistant;
  std::string prompt_field = "prompt";
  std::string response_field = "response";
  std::string messages_field = "messages";
  std::vector<std::string> keep_fields;

  void describe(ParamSet* params);
  Status validate() const;
};

class FormatOperator : public RecordOperator {
 public:
  static Result<std::unique_ptr<FormatOperator>> create(FormatOptions options);
  std::string_view name() const override { return "format"; }

 protected:
  Verdict process(Record* record, bool* changed) override;

 private:
  explicit FormatOperator(FormatOptions options) : options_(std::move(options)) {}
  FormatOptions options_;
  // prompt_response: prompt, response. chat: system (may be absent), user, assistant.
  std::vector<std::pair<std::string, FieldTemplate>> templates_;
};

}  // namespace keel::data
