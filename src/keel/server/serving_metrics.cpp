#include "keel/server/serving_metrics.h"

#include <algorithm>
#include <cstdio>

namespace keel::server {
namespace {

// A label value with Prometheus' escapes (backslash, quote, newline).
std::string label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", x);
  return buffer;
}

std::string model_labels(const std::string& model, int64_t version) {
  return "model=\"" + label_value(model) + "\",version=\"" + std::to_string(version) + "\"";
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void LatencyHistogram::observe(double seconds) {
  size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += seconds;
  ++count_;
}

void LatencyHistogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + number(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

void ServingMetrics::record(const RequestRecord& r) {
  std::lock_guard lock(mutex_);
  ++requests_[{r.model, r.version, r.endpoint, r.status}];
  if (r.model.empty()) return;
  ModelSeries& m = models_[{r.model, r.version}];
  m.latency.observe(r.latency_seconds);
  if (r.time_to_first_token_seconds) m.time_to_first_token.observe(*r.time_to_first_token_seconds);
  if (r.upstream_seconds) m.gateway_overhead.observe(std::max(0.0, r.latency_seconds - *r.upstream_seconds));
  m.prompt_tokens += static_cast<uint64_t>(r.prompt_tokens);
  m.completion_tokens += static_cast<uint64_t>(r.completion_tokens);
}

std::string ServingMetrics::prometheus_text(const ServedModels& models, const monitor::TraceWriter* traces) const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    header(out, "keel_requests_total", "counter", "OpenAI-compatible API requests by model, version, endpoint and status.");
    for (const auto& [key, count] : requests_) {
      const auto& [model, version, endpoint, status] = key;
      out += "keel_requests_total{" + model_labels(model, version) + ",endpoint=\"" + endpoint + "\",status=\"" +
             std::to_string(status) + "\"} " + std::to_string(count) + "\n";
    }
    header(out, "keel_request_errors_total", "counter", "Requests answered with a 4xx or 5xx status.");
    std::map<ModelKey, uint64_t> errors;
    for (const auto& [key, count] : requests_) {
      if (std::get<3>(key) >= 400) errors[{std::get<0>(key), std::get<1>(key)}] += count;
    }
    for (const auto& [key, count] : errors) {
      out += "keel_request_errors_total{" + model_labels(key.first, key.second) + "} " + std::to_string(count) + "\n";
    }
    header(out, "keel_request_latency_seconds", "histogram", "Time from receiving a request to its last byte.");
    for (const auto& [key, m] : models_) m.latency.write(out, "keel_request_latency_seconds", model_labels(key.first, key.second));
    header(out, "keel_time_to_first_token_seconds", "histogram", "Time from receiving a request to its first token.");
    for (const auto& [key, m] : models_) {
      m.time_to_first_token.write(out, "keel_time_to_first_token_seconds", model_labels(key.first, key.second));
    }
    header(out, "keel_gateway_overhead_seconds", "histogram",
           "What a remote model's requests spent in Keel itself: latency less the upstream's time.");
    for (const auto& [key, m] : models_) {
      if (m.gateway_overhead.count() > 0) {
        m.gateway_overhead.write(out, "keel_gateway_overhead_seconds", model_labels(key.first, key.second));
      }
    }
    header(out, "keel_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
    for (const auto& [key, m] : models_) {
      out += "keel_prompt_tokens_total{" + model_labels(key.first, key.second) + "} " + std::to_string(m.prompt_tokens) + "\n";
    }
    header(out, "keel_completion_tokens_total", "counter", "Generated tokens of finished requests.");
    for (const auto& [key, m] : models_) {
      out += "keel_completion_tokens_total{" + model_labels(key.first, key.second) + "} " +
             std::to_string(m.completion_tokens) + "\n";
    }
  }
  const auto loaded = models.loaded();
  struct Gauge {
    const char* name;
    const char* help;
    double (*value)(const engine::SchedulerStats&);
  };
  static constexpr Gauge kGauges[] = {
      {"keel_queue_depth", "Requests waiting for a decoding slot.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.queued); }},
      {"keel_running_requests", "Requests holding a decoding slot.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.running); }},
      {"keel_batch_size", "Sequences in the last forward pass.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.last_batch_sequences); }},
      {"keel_batch_tokens", "Tokens in the last forward pass.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.last_batch_tokens); }},
      {"keel_kv_cache_bytes", "Bytes held by the KV caches of all sequences.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.kv_cache_bytes); }},
      {"keel_kv_cache_reserved_bytes", "KV-cache bytes counted against the budget.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.kv_cache_reserved_bytes); }},
      {"keel_cached_prefixes", "Finished sequences kept for prompt-prefix reuse.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.cached_prefixes); }},
      {"keel_prompt_tokens_reused_total", "Prompt tokens taken from a cached or shared prefix.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.prompt_tokens_reused); }},
      {"keel_forward_passes_total", "Forward passes the scheduler ran.",
       [](const engine::SchedulerStats& s) { return static_cast<double>(s.steps); }},
  };
  std::vector<std::pair<std::string, engine::SchedulerStats>> stats;
  for (const auto& m : loaded) {
    if (m->scheduler) {
      stats.emplace_back(model_labels(m->name, m->version), m->scheduler->stats());
    } else if (m->remote) {  // a remote model's requests in flight hold its "slots"
      stats.emplace_back(model_labels(m->name, m->version),
                         engine::SchedulerStats{.running = m->remote->in_flight.load(std::memory_order_relaxed)});
    }
  }
  for (const Gauge& g : kGauges) {
    const bool counter = std::string_view(g.name).ends_with("_total");
    header(out, g.name, counter ? "counter" : "gauge", g.help);
    for (const auto& [labels, s] : stats) out += std::string(g.name) + "{" + labels + "} " + number(g.value(s)) + "\n";
  }
  if (traces != nullptr) {
    const monitor::TraceWriterStats t = traces->stats();
    header(out, "keel_trace_writer_backlog", "gauge", "Traces accepted and not yet written.");
    out += "keel_trace_writer_backlog " + std::to_string(t.queued) + "\n";
    header(out, "keel_traces_written_total", "counter", "Traces written to the store.");
    out += "keel_traces_written_total " + std::to_string(t.written) + "\n";
    header(out, "keel_traces_dropped_total", "counter", "Traces dropped because the writer fell behind.");
    out += "keel_traces_dropped_total " + std::to_string(t.dropped) + "\n";
    header(out, "keel_traces_failed_total", "counter", "Traces the store refused after retries.");
    out += "keel_traces_failed_total " + std::to_string(t.failed_traces) + "\n";
  }
  return out;
}

}  // namespace keel::server
