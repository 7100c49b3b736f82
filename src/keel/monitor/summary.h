// Per-model-version health over a time window, from the traces and feedback tables:
// traffic, errors, latency and time-to-first-token percentiles, tokens, speed and the
// human feedback. Percentiles are computed here over the window's newest rows (at most
// max_rows traces are read, and the result says when the window held more).
//
// Rules: a request is an error when its status is >= 400. Latency, TTFT and tokens/s
// describe successful requests only (a 400 answered in 1 ms says nothing about speed);
// token counts add up every request. Feedback counts what was given during the window
// on traces of that version (whenever the trace was served).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/store/db.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::monitor {

struct SummaryRequest {
  std::string model;  // "" = every model
  std::optional<int64_t> version;
  int64_t window_ms = 3600 * 1000;
  int64_t until_ms = 0;  // the window's end (exclusive); 0 = now
  int64_t max_rows = 100000;
};

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0;
};

struct VersionSummary {
  std::string model;
  int64_t version = 0;
  int64_t requests = 0;
  int64_t errors = 0;
  double error_rate = 0;                              // errors / requests; 0 without requests
  std::optional<Percentiles> latency_ms;              // absent without successful requests
  std::optional<Percentiles> time_to_first_token_ms;  // absent without streamed ones
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::optional<double> mean_tokens_per_second;  // over successful requests that report it (> 0)
  int64_t feedback_count = 0;
  std::optional<double> mean_feedback_score;  // mean normalized_score(), -1..1
  int64_t thumbs_up = 0, thumbs_down = 0;
  int64_t ratings = 0;
  std::optional<double> mean_rating;  // 1..5
};

struct MonitorSummary {
  int64_t since_ms = 0;  // [since_ms, until_ms)
  int64_t until_ms = 0;
  int64_t traces_scanned = 0;
  bool truncated = false;                // the window held more than max_rows traces; the oldest were left out
  std::vector<VersionSummary> versions;  // by model name, then newest version first
};

Result<MonitorSummary> summarize(store::Db& db, const SummaryRequest& request);

// The p-th percentile (0..100) of sorted values, interpolating linearly between the
// closest ranks (numpy's default): rank = p / 100 * (n - 1). REQUIRES: !sorted.empty().
double percentile(const std::vector<double>& sorted, double p);

Json to_json(const VersionSummary& summary);
Json to_json(const MonitorSummary& summary);

}  // namespace keel::monitor
