#include "keel/util/id.h"

#include <openssl/rand.h>

#include <array>
#include <chrono>
#include <mutex>
#include <random>

namespace keel {

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_id() {
  // RFC 9562 "method 3": 12 bits of the rand_a field count ids within one
  // millisecond, so ids from this process stay monotonic.
  static std::mutex mutex;  // guards last_ms and counter
  static int64_t last_ms = 0;
  static uint16_t counter = 0;
  int64_t ms;
  uint16_t seq;
  {
    std::lock_guard lock(mutex);
    ms = now_millis();
    if (ms <= last_ms) {
      ms = last_ms;
      if (++counter > 0x0fff) {  // counter exhausted: borrow the next millisecond
        ++ms;
        counter = 0;
      }
    } else {
      counter = 0;
    }
    last_ms = ms;
    seq = counter;
  }
  std::array<uint8_t, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
    std::random_device rd;
    for (auto& x : b) x = static_cast<uint8_t>(rd());
  }
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  b[6] = static_cast<uint8_t>(0x70 | ((seq >> 8) & 0x0f));
  b[7] = static_cast<uint8_t>(seq & 0xff);
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

bool is_uuid(const std::string& text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace keel
