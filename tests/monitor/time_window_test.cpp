// Windows and instants as the monitor API and CLI read them.
#include "keel/monitor/time_window.h"

#include <gtest/gtest.h>

namespace keel::monitor {
namespace {

TEST(TimeWindow, ReadsSecondsMinutesHoursAndDays) {
  EXPECT_EQ(*parse_window_ms("90s"), 90'000);
  EXPECT_EQ(*parse_window_ms("15m"), 900'000);
  EXPECT_EQ(*parse_window_ms("1h"), 3'600'000);
  EXPECT_EQ(*parse_window_ms("24h"), 86'400'000);
  EXPECT_EQ(*parse_window_ms("7d"), 7 * 86'400'000LL);
  for (const char* bad : {"", "h", "0h", "1", "1w", "-1h", "1.5h", "1 h", "400d", "99999999999d"}) {
    auto r = parse_window_ms(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(TimeWindow, ReadsEpochMillisecondsAndIso8601) {
  EXPECT_EQ(*parse_time_ms("1735787045000"), 1735787045000);
  EXPECT_EQ(*parse_time_ms("0"), 0);
  // Expected values from Python's datetime(...).timestamp().
  EXPECT_EQ(*parse_time_ms("2025-01-02T03:04:05Z"), 1735787045000);
  EXPECT_EQ(*parse_time_ms("2025-01-02T03:04:05"), 1735787045000);
  EXPECT_EQ(*parse_time_ms("2025-01-02 03:04:05z"), 1735787045000);
  EXPECT_EQ(*parse_time_ms("2025-01-02T03:04:05.123+02:00"), 1735779845123);
  EXPECT_EQ(*parse_time_ms("2025-01-02T03:04:05.1234567+0200"), 1735779845123);
  EXPECT_EQ(*parse_time_ms("2024-02-29"), 1709164800000);
  EXPECT_EQ(*parse_time_ms("1999-12-31T23:59-05:30"), 946704540000);
  for (const char* bad :
       {"", "yesterday", "2025-13-01", "2025-02-29", "2025-01-02T25:00", "2025-01-02T03:04:05Q", "2025-01-02T03",
        "2025-1-2", "2025-01-02T03:04:05.", "12345678901234567890", "2025-01-02T03:04:05+2"}) {
    auto r = parse_time_ms(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace keel::monitor
