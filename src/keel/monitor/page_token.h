// Page tokens of the monitor's lists (traces, feedback): the position of the last row
// of the previous page, "<time>:<id>", for keyset paging on (time, id) descending.
// Internal to the monitor module.
#pragma once

#include <cstdint>
#include <string>

#include "keel/util/status.h"

namespace keel::monitor {

std::string make_page_token(int64_t at, const std::string& id);
// kInvalidArgument for a token this module did not make.
Status parse_page_token(const std::string& token, int64_t* at, std::string* id);

}  // namespace keel::monitor
