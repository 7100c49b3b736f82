#include "keel/monitor/summary.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "keel/util/id.h"

namespace keel::monitor {
namespace {

struct Accumulator {
  VersionSummary out;
  std::vector<double> latency;
  std::vector<double> ttft;
  double tps_sum = 0;
  int64_t tps_count = 0;
  double score_sum = 0;
  int64_t rating_sum = 0;
};

Percentiles percentiles_of(std::vector<double>& values) {
  std::sort(values.begin(), values.end());
  return {percentile(values, 50), percentile(values, 95), percentile(values, 99)};
}

Json percentiles_json(const std::optional<Percentiles>& p) {
  if (!p) return nullptr;
  return Json{{"p50", p->p50}, {"p95", p->p95}, {"p99", p->p99}};
}

Json optional_json(const std::optional<double>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.size() == 1) return sorted[0];
  double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Result<MonitorSummary> summarize(store::Db& db, const SummaryRequest& request) {
  if (request.window_ms <= 0) return invalid_argument("the summary window must be positive");
  if (request.max_rows < 1 || request.max_rows > 10000000) return invalid_argument("max_rows must be 1..10000000");
  MonitorSummary summary;
  summary.until_ms = request.until_ms > 0 ? request.until_ms : now_millis() + 1;
  summary.since_ms = summary.until_ms - request.window_ms;

  std::string where = " WHERE 1 = 1";
  std::vector<store::DbValue> params;
  if (!request.model.empty()) {
    where += " AND model = ?";
    params.emplace_back(request.model);
  }
  if (request.version) {
    where += " AND version = ?";
    params.emplace_back(*request.version);
  }

  std::map<std::pair<std::string, int64_t>, Accumulator> by_version;
  auto slot = [&](const std::string& model, int64_t version) -> Accumulator& {
    Accumulator& a = by_version[{model, version}];
    a.out.model = model;
    a.out.version = version;
    return a;
  };

  std::vector<store::DbValue> trace_params = params;
  trace_params.emplace_back(summary.since_ms);
  trace_params.emplace_back(summary.until_ms);
  trace_params.emplace_back(request.max_rows + 1);
  KEEL_ASSIGN_OR_RETURN(
      store::DbRows traces,
      db.query("SELECT model, version, status, latency_ms, time_to_first_token_ms, prompt_tokens, completion_tokens,"
               " tokens_per_second FROM traces" +
                   where + " AND started_at >= ? AND started_at < ? ORDER BY started_at DESC, id DESC LIMIT ?",
               trace_params));
  if (static_cast<int64_t>(traces.size()) > request.max_rows) {
    summary.truncated = true;
    traces.rows.resize(static_cast<size_t>(request.max_rows));
  }
  summary.traces_scanned = static_cast<int64_t>(traces.size());
  for (const auto& r : traces.rows) {
    Accumulator& a = slot(r.get_text(0), r.get_int(1));
    ++a.out.requests;
    a.out.prompt_tokens += r.get_int(5);
    a.out.completion_tokens += r.get_int(6);
    if (r.get_int(2) >= 400) {
      ++a.out.errors;
      continue;
    }
    a.latency.push_back(r.get_double(3));
    if (!r.is_null(4)) a.ttft.push_back(r.get_double(4));
    double tps = r.get_double(7);
    if (tps > 0) {
      a.tps_sum += tps;
      ++a.tps_count;
    }
  }

  std::vector<store::DbValue> feedback_params = params;
  feedback_params.emplace_back(summary.since_ms);
  feedback_params.emplace_back(summary.until_ms);
  KEEL_ASSIGN_OR_RETURN(
      store::DbRows feedback,
      db.query("SELECT model, version, kind, COUNT(*), SUM(score), SUM(CASE WHEN score > 0 THEN 1 ELSE 0 END)"
               " FROM feedback" +
                   where + " AND created_at >= ? AND created_at < ? GROUP BY model, version, kind",
               feedback_params));
  for (const auto& r : feedback.rows) {
    Accumulator& a = slot(r.get_text(0), r.get_int(1));
    std::string kind = r.get_text(2);
    int64_t count = r.get_int(3);
    int64_t sum = r.get_int(4);
    a.out.feedback_count += count;
    if (kind == "rating") {
      a.out.ratings += count;
      a.rating_sum += sum;
      a.score_sum += (static_cast<double>(sum) - 3.0 * static_cast<double>(count)) / 2.0;
    } else {
      a.out.thumbs_up += r.get_int(5);
      a.out.thumbs_down += count - r.get_int(5);
      a.score_sum += static_cast<double>(sum);
    }
  }

  for (auto& [key, a] : by_version) {
    VersionSummary& v = a.out;
    if (v.requests > 0) v.error_rate = static_cast<double>(v.errors) / static_cast<double>(v.requests);
    if (!a.latency.empty()) v.latency_ms = percentiles_of(a.latency);
    if (!a.ttft.empty()) v.time_to_first_token_ms = percentiles_of(a.ttft);
    if (a.tps_count > 0) v.mean_tokens_per_second = a.tps_sum / static_cast<double>(a.tps_count);
    if (v.feedback_count > 0) v.mean_feedback_score = a.score_sum / static_cast<double>(v.feedback_count);
    if (v.ratings > 0) v.mean_rating = static_cast<double>(a.rating_sum) / static_cast<double>(v.ratings);
    summary.versions.push_back(std::move(v));
  }
  std::stable_sort(summary.versions.begin(), summary.versions.end(),
                   [](const VersionSummary& x, const VersionSummary& y) {
                     return x.model != y.model ? x.model < y.model : x.version > y.version;
                   });
  return summary;
}

Json to_json(const VersionSummary& v) {
  return Json{{"model", v.model},
              {"version", v.version},
              {"requests", v.requests},
              {"errors", v.errors},
              {"error_rate", v.error_rate},
              {"latency_ms", percentiles_json(v.latency_ms)},
              {"time_to_first_token_ms", percentiles_json(v.time_to_first_token_ms)},
              {"prompt_tokens", v.prompt_tokens},
              {"completion_tokens", v.completion_tokens},
              {"mean_tokens_per_second", optional_json(v.mean_tokens_per_second)},
              {"feedback",
               {{"count", v.feedback_count},
                {"mean_score", optional_json(v.mean_feedback_score)},
                {"thumbs_up", v.thumbs_up},
                {"thumbs_down", v.thumbs_down},
                {"ratings", v.ratings},
                {"mean_rating", optional_json(v.mean_rating)}}}};
}

Json to_json(const MonitorSummary& s) {
  Json versions = Json::array();
  for (const auto& v : s.versions) versions.push_back(to_json(v));
  return Json{{"since", s.since_ms},
              {"until", s.until_ms},
              {"traces_scanned", s.traces_scanned},
              {"truncated", s.truncated},
              {"versions", versions}};
}

}  // namespace keel::monitor
