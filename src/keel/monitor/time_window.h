// Times as the monitor API and CLI accept them: windows ("15m", "1h", "7d") and
// instants (epoch milliseconds or ISO-8601). Shared by the REST routes and the CLI so
// that both read the same text the same way.
#pragma once

#include <cstdint>
#include <string_view>

#include "keel/util/status.h"

namespace keel::monitor {

// "<n><unit>" with unit s, m, h or d and n >= 1 ("90s", "15m", "1h", "24h", "7d"), at
// most 366 days; in milliseconds.
Result<int64_t> parse_window_ms(std::string_view text);

// Epoch milliseconds ("1735787045123"), or ISO-8601: "2025-01-02", "2025-01-02T03:04",
// "2025-01-02T03:04:05", with optional fraction (".123") and zone ("Z", "+02:00",
// "-0530"); a time without a zone is UTC, as is a date alone (its midnight). A space
// may stand for the "T".
Result<int64_t> parse_time_ms(std::string_view text);

}  // namespace keel::monitor
