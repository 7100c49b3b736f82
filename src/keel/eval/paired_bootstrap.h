// A paired bootstrap interval for the difference between two systems scored on the same
// examples (Koehn 2004's paired resampling): the examples are resampled with replacement
// `samples` times, each time taking the mean of b[i] - a[i] over the drawn examples; the
// interval is the percentile interval of those means. Used by `keel eval compare` to say
// whether a candidate's per-example scores moved beyond what the choice of examples
// explains. Seeded, so the same inputs give the same interval.
#pragma once

#include <cstdint>
#include <span>

#include "keel/util/status.h"

namespace keel::eval {

struct PairedInterval {
  double mean_delta = 0;  // mean of b - a over all examples
  double low = 0;         // the interval of the mean difference
  double high = 0;
  double confidence = 0.95;
  int64_t examples = 0;
  int64_t samples = 0;
  double b_better = 0;  // share of resamples in which b's mean is higher
};

// kInvalidArgument for spans of different lengths, no examples, a non-finite score,
// samples < 1 or a confidence outside (0, 1).
Result<PairedInterval> paired_bootstrap(std::span<const double> a, std::span<const double> b, int64_t samples = 1000,
                                        double confidence = 0.95, uint64_t seed = 0);

}  // namespace keel::eval
