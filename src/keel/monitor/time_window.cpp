#include "keel/monitor/time_window.h"

#include <string>

namespace keel::monitor {
namespace {

// Days from 1970-01-01 to year-month-day in the proleptic Gregorian calendar
// (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// Reads exactly n digits at text[*pos]; false when they are not there.
bool digits(std::string_view text, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > text.size()) return false;
  int64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

}  // namespace

Result<int64_t> parse_window_ms(std::string_view text) {
  auto bad = [&] {
    return invalid_argument("window '" + std::string(text) + "' must be a number and a unit: 90s, 15m, 1h, 7d");
  };
  if (text.size() < 2 || text.size() > 12) return bad();
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1000;
      break;
    case 'm':
      unit = 60 * 1000;
      break;
    case 'h':
      unit = 3600 * 1000;
      break;
    case 'd':
      unit = 86400 * 1000;
      break;
    default:
      return bad();
  }
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return bad();
    n = n * 10 + (text[i] - '0');
  }
  if (n < 1) return bad();
  if (n * unit > int64_t{366} * 86400 * 1000) {
    return invalid_argument("window '" + std::string(text) + "' is longer than 366 days");
  }
  return n * unit;
}

Result<int64_t> parse_time_ms(std::string_view text) {
  auto bad = [&] {
    return invalid_argument("time '" + std::string(text) +
                            "' must be epoch milliseconds or ISO-8601 (2025-01-02T03:04:05Z)");
  };
  if (text.empty() || text.size() > 40) return bad();
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    if (text.size() > 15) return bad();
    return static_cast<int64_t>(std::stoll(std::string(text)));
  }
  size_t pos = 0;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!digits(text, &pos, 4, &year) || pos >= text.size() || text[pos++] != '-' || !digits(text, &pos, 2, &month) ||
      pos >= text.size() || text[pos++] != '-' || !digits(text, &pos, 2, &day)) {
    return bad();
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] + (month == 2 && leap(year) ? 1 : 0)) return bad();
  int64_t offset_minutes = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad();
    ++pos;
    if (!digits(text, &pos, 2, &hour) || pos >= text.size() || text[pos++] != ':' || !digits(text, &pos, 2, &minute)) {
      return bad();
    }
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!digits(text, &pos, 2, &second)) return bad();
      if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
        ++pos;
        size_t start = pos;
        int64_t scale = 100;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          millis += (text[pos] - '0') * scale;  // digits past milliseconds are truncated
          scale /= 10;
          ++pos;
        }
        if (pos == start) return bad();
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return bad();
    if (pos < text.size()) {
      char z = text[pos++];
      if (z == 'Z' || z == 'z') {
        if (pos != text.size()) return bad();
      } else if (z == '+' || z == '-') {
        int64_t oh = 0, om = 0;
        if (!digits(text, &pos, 2, &oh)) return bad();
        if (pos < text.size() && text[pos] == ':') ++pos;
        if (!digits(text, &pos, 2, &om) || pos != text.size() || oh > 23 || om > 59) return bad();
        offset_minutes = (z == '+' ? 1 : -1) * (oh * 60 + om);
      } else {
        return bad();
      }
    }
  }
  int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return (seconds - offset_minutes * 60) * 1000 + millis;
}

}  // namespace keel::monitor
