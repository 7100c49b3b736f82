#include "keel/engine/stop_strings.h"

#include <algorithm>

#include "keel/engine/tokenizer_pretokenizer.h"

namespace keel::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  for (const auto& s : stops_) longest_ = std::max(longest_, s.size());
}

Result<StopStringMatcher> StopStringMatcher::create(std::vector<std::string> stop_strings) {
  if (stop_strings.size() > kMaxStopStrings) {
    return invalid_argument(std::to_string(stop_strings.size()) + " stop strings, more than the " +
                            std::to_string(kMaxStopStrings) + " allowed");
  }
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) return invalid_argument("stop string " + std::to_string(i + 1) + " is empty");
    if (stop_strings[i].size() > kMaxStopStringBytes) {
      return invalid_argument("stop string " + std::to_string(i + 1) + " has " +
                              std::to_string(stop_strings[i].size()) + " bytes, more than the " +
                              std::to_string(kMaxStopStringBytes) + " allowed");
    }
    if (!utf8_valid(stop_strings[i])) {
      return invalid_argument("stop string " + std::to_string(i + 1) + " is not valid UTF-8");
    }
  }
  return StopStringMatcher(std::move(stop_strings));
}

const std::string& StopStringMatcher::matched() const {
  static const std::string kNone;
  return matched_ >= 0 ? stops_[static_cast<size_t>(matched_)] : kNone;
}

std::string StopStringMatcher::feed(std::string_view piece) {
  if (stopped()) return "";
  std::string text = std::move(held_);
  held_.clear();
  text.append(piece);

  // The earliest stop string wins; at one position, the first listed. held_ held no
  // complete stop string, so any match ends in the new piece, but may start in held_.
  size_t cut = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = text.find(stops_[i]);
    if (at < cut) {
      cut = at;
      matched_ = static_cast<int>(i);
    }
  }
  if (cut != std::string::npos) {
    text.resize(cut);
    return text;
  }

  // Hold back the longest suffix that some stop string starts with.
  const std::string_view view(text);
  for (size_t keep = std::min(view.size(), longest_ - std::min(longest_, size_t{1})); keep > 0; --keep) {
    const std::string_view suffix = view.substr(view.size() - keep);
    const bool starts_a_stop = std::any_of(stops_.begin(), stops_.end(), [&](const std::string& s) {
      return s.size() > keep && s[0] == suffix[0] && std::string_view(s).substr(0, keep) == suffix;
    });
    if (starts_a_stop) {
      held_.assign(suffix);
      text.resize(text.size() - keep);
      break;
    }
  }
  return text;
}

std::string StopStringMatcher::finish() {
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

}  // namespace keel::engine
