#include "keel/eval/paired_bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace keel::eval {
namespace {

// The q-quantile of sorted values, interpolated linearly between order statistics
// (numpy's default).
double quantile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(std::floor(at));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (at - static_cast<double>(below));
}

}  // namespace

Result<PairedInterval> paired_bootstrap(std::span<const double> a, std::span<const double> b, int64_t samples,
                                        double confidence, uint64_t seed) {
  if (a.size() != b.size()) {
    return invalid_argument("paired scores need the same examples: " + std::to_string(a.size()) + " against " +
                            std::to_string(b.size()));
  }
  if (a.empty()) return invalid_argument("no examples to resample");
  if (samples < 1 || samples > 1'000'000) return invalid_argument("bootstrap samples must be in 1..1000000");
  if (!(confidence > 0 && confidence < 1)) return invalid_argument("the confidence must be in (0, 1)");
  const size_t n = a.size();
  std::vector<double> delta(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      return invalid_argument("example " + std::to_string(i) + " has a score that is not finite");
    }
    delta[i] = b[i] - a[i];
    sum += delta[i];
  }
  PairedInterval out;
  out.mean_delta = sum / static_cast<double>(n);
  out.confidence = confidence;
  out.examples = static_cast<int64_t>(n);
  out.samples = samples;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> means(static_cast<size_t>(samples));
  int64_t better = 0;
  for (double& m : means) {
    double s = 0;
    for (size_t k = 0; k < n; ++k) s += delta[pick(rng)];
    m = s / static_cast<double>(n);
    better += m > 0 ? 1 : 0;
  }
  std::sort(means.begin(), means.end());
  out.low = quantile(means, (1 - confidence) / 2);
  out.high = quantile(means, 1 - (1 - confidence) / 2);
  out.b_better = static_cast<double>(better) / static_cast<double>(samples);
  return out;
}

}  // namespace keel::eval
