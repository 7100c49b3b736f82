// Counters and histograms of the OpenAI-compatible API, written as Prometheus text
// at GET /metrics: requests by model, version, endpoint and status; latency and
// time-to-first-token histograms; for remote models, the time the gateway itself
// added; prompt and completion tokens; and, read from each
// loaded model's scheduler at scrape time, queue depth, running requests, batch size
// and KV-cache bytes. record() is cheap (one short lock) and safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "keel/monitor/trace_writer.h"
#include "keel/server/served_models.h"

namespace keel::server {

// One finished request, as the handlers and the completion jobs see it: what the
// metrics count, the rate limiter charges and a trace records.
struct RequestRecord {
  std::string id;        // the request id (x-request-id)
  int64_t started_at_ms = 0;
  std::string user;
  std::string key;       // the rate limiter's key: the API key id, or the caller's address
  std::string endpoint;  // "chat.completions", "completions", "embeddings"
  std::string served_name;  // the `model` field as sent
  std::string model;     // the registered name ("" when the request named no known model)
  int64_t version = 0;
  std::string prompt;    // the messages (JSON) or prompt text
  std::string response;  // the generated text, choices joined by newlines
  std::string finish_reason;
  std::string error;
  int status = 200;
  double latency_seconds = 0;
  std::optional<double> time_to_first_token_seconds;
  // A remote model's: from sending the request upstream to the end of the upstream's
  // answer. latency_seconds minus this is what the gateway itself added.
  std::optional<double> upstream_seconds;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// Cumulative buckets in seconds, Prometheus style.
class LatencyHistogram {
 public:
  // Requests, from a few milliseconds to minutes.
  static constexpr std::array<double, 14> kRequestBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                            1,     2.5,  5,     10,   30,  60,   120};
  // A gateway's own share of a request, from 100 microseconds up.
  static constexpr std::array<double, 10> kOverheadBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                             0.005,  0.01,    0.025,  0.1,   1};
  explicit LatencyHistogram(std::span<const double> bounds = kRequestBounds)
      : bounds_(bounds), counts_(bounds.size() + 1) {}
  void observe(double seconds);
  // Appends the _bucket, _sum and _count lines of `name` with `labels` ("a=\"x\",b=\"y\"").
  void write(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }

 private:
  std::span<const double> bounds_;  // static storage
  std::vector<uint64_t> counts_;    // by bucket; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServingMetrics {
 public:
  void record(const RequestRecord& record);
  // The Prometheus text exposition (format 0.0.4) of everything, with the loaded
  // models' scheduler gauges and the trace writer's backlog (when there is one).
  std::string prometheus_text(const ServedModels& models, const monitor::TraceWriter* traces = nullptr) const;

 private:
  using SeriesKey = std::tuple<std::string, int64_t, std::string, int>;  // model, version, endpoint, status
  using ModelKey = std::pair<std::string, int64_t>;
  struct ModelSeries {
    LatencyHistogram latency;
    LatencyHistogram time_to_first_token;
    LatencyHistogram gateway_overhead{LatencyHistogram::kOverheadBounds};  // remote models only
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
  };
  mutable std::mutex mutex_;
  // REQUIRES: mutex_ held for both.
  std::map<SeriesKey, uint64_t> requests_;
  std::map<ModelKey, ModelSeries> models_;
};

}  // namespace keel::server
