// Cuts streamed text before the first stop string (OpenAI's `stop`: the stop string
// itself is never returned). feed() returns only text that can no longer become part
// of a stop string and holds back any suffix that could still be one's start, so a stop
// string split across pieces is still caught. Used by generate() (generation.h) on the
// output of StreamingDecoder. Matching is on bytes: feed it whole UTF-8 characters
// (StreamingDecoder's pieces) and what comes out is whole characters too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine {

class StopStringMatcher {
 public:
  // Bounds that keep the work per piece small whatever a client sends (each feed
  // compares the held text with every stop string's prefixes).
  static constexpr size_t kMaxStopStrings = 64;
  static constexpr size_t kMaxStopStringBytes = 1024;

  // kInvalidArgument for an empty stop string, one that is not valid UTF-8 or longer
  // than kMaxStopStringBytes, or more than kMaxStopStrings of them. No stop strings at
  // all is allowed (everything passes through at once).
  static Result<StopStringMatcher> create(std::vector<std::string> stop_strings);

  // Appends a piece; returns the text now safe to emit (maybe empty). After a stop
  // string has appeared, returns the text before it once, then only "".
  std::string feed(std::string_view piece);
  // The end of the stream: returns what was held back (nothing when stopped).
  std::string finish();

  bool stopped() const { return matched_ >= 0; }
  // The stop string that ended the text ("" when none has).
  const std::string& matched() const;

 private:
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  std::vector<std::string> stops_;
  size_t longest_ = 0;
  std::string held_;  // a suffix that is a proper prefix of some stop string
  int matched_ = -1;  // index into stops_
};

}  // namespace keel::engine
