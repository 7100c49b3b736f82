// Process-wide logging on spdlog: the one piece of global state Keel allows. The CLI
// calls init_logging() once at start; everyone else just uses spdlog::info(...) etc.
// Logs go to stderr so that stdout stays clean for command output and --json.
#pragma once

#include <string_view>

#include "keel/util/status.h"

namespace keel {

// level: trace, debug, info, warn, error, critical, off.
Status init_logging(std::string_view level);

}  // namespace keel
