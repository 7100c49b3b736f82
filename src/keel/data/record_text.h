// Where a step finds a record's text. A string field is the text. A chat record holds
// one text per message instead: a list of messages as OpenAI and Hugging Face chat
// datasets write them ([{"role": ..., "content": "..."}], where content may also be a
// list of parts [{"type": "text", "text": "..."}]) or as ShareGPT does ([{"from": ...,
// "value": "..."}]). When the field asked for is the default, "text", and a record lacks
// it, "messages" and then "conversations" are tried, so chat datasets need no option.
// Messages without text (a tool call's null content, an image part) are skipped.
#pragma once

#include <string>
#include <vector>

#include "keel/data/records.h"

namespace keel::data {

inline constexpr const char* kDefaultTextField = "text";

// The strings a rewriting step edits in place: the field, or every message text of a
// chat record, in order. False (and no parts) when the record has no text: the field
// is missing or neither a string nor a list of messages.
bool text_parts(Record* record, const std::string& field, std::vector<std::string*>* parts);

// The text a judging step reads: the string field itself, or a chat record's message
// texts joined by blank lines (a paragraph each), built in *joined. nullptr when the
// record has no text.
const std::string* record_text(const Record& record, const std::string& field, std::string* joined);

// Whether the record has text at all (what record_text would find), without joining.
bool has_text(const Record& record, const std::string& field);

// Whether the record's text is a chat: its text field (after the fallback above) is a
// list of messages. *roles gets the role of every message in order ("user",
// "assistant", ...; ShareGPT's "human" and "gpt" as written; "" when a message has none).
bool chat_messages(const Record& record, const std::string& field, std::vector<std::string>* roles);

}  // namespace keel::data
