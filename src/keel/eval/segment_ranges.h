// Shared plumbing of the corpus metrics (BLEU, chrF): checking that every reference
// stream has one segment per hypothesis, and splitting the segments into contiguous
// ranges scored on separate threads. Ranges are fixed by (segments, threads) alone, so
// a metric that sums per-range statistics in range order gets the same bits for any
// thread count.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::eval {

// kInvalidArgument when there are no hypotheses, no streams, or a stream of another length.
Status check_reference_streams(std::string_view metric, size_t hypotheses,
                               const std::vector<std::vector<std::string>>& refs);

// Threads to use for `segments` segments: `requested`, or one per core when 0; never
// more than segments.
size_t segment_threads(int requested, size_t segments);

// Calls score(range, begin, end) for `threads` contiguous ranges of [0, segments), range 0
// on the calling thread, the others on their own threads (or inline when no thread can
// be started: the result is the same). Returns after every range is done.
void for_each_segment_range(size_t segments, size_t threads,
                            const std::function<void(size_t range, size_t begin, size_t end)>& score);

}  // namespace keel::eval
