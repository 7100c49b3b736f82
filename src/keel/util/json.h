// JSON for Keel: nlohmann::json, plus parsing that returns a Result instead of throwing.
// Use parse_json() on anything that came from outside the process.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "keel/util/status.h"

namespace keel {

using Json = nlohmann::json;

// Parses text as JSON; malformed text gives kInvalidArgument with the byte position.
Result<Json> parse_json(std::string_view text);

// Serialises JSON; invalid UTF-8 in strings is replaced (U+FFFD), never thrown.
std::string dump_json(const Json& value, int indent = -1);

}  // namespace keel
