// Time-ordered unique ids (UUIDv7, RFC 9562): ids sort by creation time, so tables
// keyed by them stay append-friendly and "newest first" is an ordinary ORDER BY.
// Thread-safe. Ids made within one millisecond by one process stay ordered.
#pragma once

#include <cstdint>
#include <string>

namespace keel {

// "0190d3c4-5b7e-7xxx-yxxx-xxxxxxxxxxxx", lowercase, 36 characters.
std::string new_id();

// Milliseconds since the Unix epoch (wall clock).
int64_t now_millis();

// True when text is a well-formed UUID (any version) in canonical lowercase form.
bool is_uuid(const std::string& text);

}  // namespace keel
