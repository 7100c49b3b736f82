// The top-level members of a JSON object read from its text without building its
// values: the gateway relays an upstream's answer whose bulk (embedding vectors, long
// texts) it passes on unchanged, and edits or reads only a few small members. Every value
// is still checked against JSON's grammar (RFC 8259), so what is relayed is valid JSON.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel {

struct JsonMember {
  std::string key;         // decoded
  std::string_view value;  // the value's text, exactly as written (a view into the input)
};

// The members of text, which must hold one JSON object (whitespace around it allowed), in
// their order (duplicates kept). kInvalidArgument naming the byte offset when text is not
// valid JSON, not an object, or nests deeper than max_depth.
Result<std::vector<JsonMember>> json_object_members(std::string_view text, int max_depth = 256);

// Writes members back as one compact object: `{"key":value,...}`.
std::string json_object_text(const std::vector<JsonMember>& members);

}  // namespace keel
