#include "keel/eval/segment_ranges.h"

#include <algorithm>
#include <system_error>
#include <thread>

namespace keel::eval {

Status check_reference_streams(std::string_view metric, size_t hypotheses,
                               const std::vector<std::vector<std::string>>& refs) {
  if (hypotheses == 0) return invalid_argument(std::string(metric) + " needs at least one hypothesis segment");
  if (refs.empty()) return invalid_argument(std::string(metric) + " needs at least one reference stream");
  for (size_t k = 0; k < refs.size(); ++k) {
    if (refs[k].size() != hypotheses) {
      return invalid_argument("reference stream " + std::to_string(k) + " has " + std::to_string(refs[k].size()) +
                              " segments but there are " + std::to_string(hypotheses) + " hypotheses");
    }
  }
  return Status::Ok();
}

size_t segment_threads(int requested, size_t segments) {
  size_t threads = requested <= 0 ? std::max(1u, std::thread::hardware_concurrency()) : static_cast<size_t>(requested);
  return std::max<size_t>(1, std::min(threads, segments));
}

void for_each_segment_range(size_t segments, size_t threads,
                            const std::function<void(size_t range, size_t begin, size_t end)>& score) {
  auto begin = [&](size_t t) { return segments * t / threads; };
  std::vector<std::thread> workers;
  for (size_t t = 1; t < threads; ++t) {
    try {
      workers.emplace_back(score, t, begin(t), begin(t + 1));
    } catch (const std::system_error&) {
      score(t, begin(t), begin(t + 1));  // no thread to be had: same result, computed here
    }
  }
  score(0, begin(0), begin(1));
  for (std::thread& w : workers) w.join();
}

}  // namespace keel::eval
