#include "keel/monitor/traces.h"

#include <algorithm>
#include <cmath>

#include "keel/monitor/page_token.h"

namespace keel::monitor {
namespace {

constexpr const char* kColumns =
    "id, started_at, user_id, endpoint, served_name, model, version, prompt, response, prompt_tokens,"
    " completion_tokens, time_to_first_token_ms, latency_ms, tokens_per_second, finish_reason, status, error,"
    " upstream_ms";
constexpr const char* kColumnsWithoutText =
    "id, started_at, user_id, endpoint, served_name, model, version, '' AS prompt, '' AS response, prompt_tokens,"
    " completion_tokens, time_to_first_token_ms, latency_ms, tokens_per_second, finish_reason, status,"
    " '' AS error, upstream_ms";
constexpr size_t kColumnCount = 18;
// Rows per INSERT statement: 18 * 64 = 1152 bound values, well under SQLite's and
// PostgreSQL's limits, and one round trip per 64 traces.
constexpr size_t kRowsPerStatement = 64;

double finite_or_zero(double v) {
  return std::isfinite(v) ? v : 0.0;
}

void bind_optional(const std::optional<double>& v, std::vector<store::DbValue>& params) {
  if (v && std::isfinite(*v)) {
    params.emplace_back(*v);
  } else {
    params.emplace_back(nullptr);
  }
}

void bind(const Trace& t, std::vector<store::DbValue>& params) {
  params.emplace_back(storable_text(t.id));
  params.emplace_back(t.started_at);
  params.emplace_back(storable_text(t.user));
  params.emplace_back(storable_text(t.endpoint));
  params.emplace_back(storable_text(t.served_name));
  params.emplace_back(storable_text(t.model));
  params.emplace_back(t.version);
  params.emplace_back(storable_text(t.prompt));
  params.emplace_back(storable_text(t.response));
  params.emplace_back(t.prompt_tokens);
  params.emplace_back(t.completion_tokens);
  bind_optional(t.time_to_first_token_ms, params);
  params.emplace_back(finite_or_zero(t.latency_ms));
  params.emplace_back(finite_or_zero(t.tokens_per_second));
  params.emplace_back(storable_text(t.finish_reason));
  params.emplace_back(static_cast<int64_t>(t.status));
  params.emplace_back(storable_text(t.error));
  bind_optional(t.upstream_ms, params);
}

Trace from_row(const store::DbRow& r) {
  Trace t;
  t.id = r.get_text(0);
  t.started_at = r.get_int(1);
  t.user = r.get_text(2);
  t.endpoint = r.get_text(3);
  t.served_name = r.get_text(4);
  t.model = r.get_text(5);
  t.version = r.get_int(6);
  t.prompt = r.get_text(7);
  t.response = r.get_text(8);
  t.prompt_tokens = r.get_int(9);
  t.completion_tokens = r.get_int(10);
  if (!r.is_null(11)) t.time_to_first_token_ms = r.get_double(11);
  t.latency_ms = r.get_double(12);
  t.tokens_per_second = r.get_double(13);
  t.finish_reason = r.get_text(14);
  t.status = static_cast<int>(r.get_int(15));
  t.error = r.get_text(16);
  if (!r.is_null(17)) t.upstream_ms = r.get_double(17);
  return t;
}

// Length of the well-formed UTF-8 sequence at text[i], or 0 when it is not one.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t min;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

Result<TextPolicy> parse_text_policy(std::string_view name) {
  if (name == "store") return TextPolicy::kStore;
  if (name == "redact_pii" || name == "redact") return TextPolicy::kRedactPii;
  if (name == "drop") return TextPolicy::kDrop;
  return invalid_argument("trace text policy must be store, redact_pii or drop, not '" + std::string(name) + "'");
}

std::string_view text_policy_name(TextPolicy policy) {
  switch (policy) {
    case TextPolicy::kStore:
      return "store";
    case TextPolicy::kRedactPii:
      return "redact_pii";
    case TextPolicy::kDrop:
      return "drop";
  }
  return "store";
}

std::string storable_text(std::string_view text) {
  std::string out;
  size_t i = 0;
  // Fast path: most text is valid and NUL-free, and comes back as is.
  while (i < text.size()) {
    size_t n = text[i] == '\0' ? 0 : utf8_sequence_length(text, i);
    if (n == 0) break;
    i += n;
  }
  if (i == text.size()) return std::string(text);
  out.reserve(text.size() + 8);
  out.append(text.substr(0, i));
  while (i < text.size()) {
    if (text[i] == '\0') {
      ++i;
      continue;
    }
    size_t n = utf8_sequence_length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for one bad byte
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

Status TraceStore::append(std::span<const Trace> traces) {
  for (const auto& t : traces) {
    if (t.id.empty()) return invalid_argument("a trace needs an id (the request id)");
  }
  if (traces.empty()) return Status::Ok();
  return db_.transaction([&](store::SqlExecutor& sql) -> Status {
    for (size_t start = 0; start < traces.size(); start += kRowsPerStatement) {
      size_t n = std::min(kRowsPerStatement, traces.size() - start);
      std::string text = std::string("INSERT INTO traces (") + kColumns + ") VALUES ";
      std::vector<store::DbValue> params;
      params.reserve(n * kColumnCount);
      for (size_t i = 0; i < n; ++i) {
        text += (i == 0 ? "" : ", ") + store::sql_placeholders(kColumnCount);
        bind(traces[start + i], params);
      }
      text += " ON CONFLICT (id) DO NOTHING";
      KEEL_RETURN_IF_ERROR(sql.exec(text, params).status());
    }
    return Status::Ok();
  });
}

Result<TracePage> TraceStore::list(const TraceFilter& f) {
  if (f.limit < 1 || f.limit > 1000) return invalid_argument("limit must be between 1 and 1000");
  std::string sql =
      std::string("SELECT ") + (f.include_text ? kColumns : kColumnsWithoutText) + " FROM traces WHERE 1 = 1";
  std::vector<store::DbValue> params;
  if (!f.model.empty()) {
    sql += " AND model = ?";
    params.emplace_back(f.model);
  }
  if (f.version) {
    sql += " AND version = ?";
    params.emplace_back(*f.version);
  }
  if (!f.user.empty()) {
    sql += " AND user_id = ?";
    params.emplace_back(f.user);
  }
  if (!f.endpoint.empty()) {
    sql += " AND endpoint = ?";
    params.emplace_back(f.endpoint);
  }
  if (f.status) {
    sql += " AND status = ?";
    params.emplace_back(static_cast<int64_t>(*f.status));
  }
  if (f.since_ms) {
    sql += " AND started_at >= ?";
    params.emplace_back(*f.since_ms);
  }
  if (f.until_ms) {
    sql += " AND started_at < ?";
    params.emplace_back(*f.until_ms);
  }
  if (!f.page_token.empty()) {
    int64_t at = 0;
    std::string id;
    KEEL_RETURN_IF_ERROR(parse_page_token(f.page_token, &at, &id));
    sql += " AND (started_at < ? OR (started_at = ? AND id < ?))";
    params.emplace_back(at);
    params.emplace_back(at);
    params.emplace_back(id);
  }
  sql += " ORDER BY started_at DESC, id DESC LIMIT ?";
  params.emplace_back(f.limit + 1);  // one more tells whether a next page exists
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(sql, params));
  TracePage page;
  for (const auto& r : rows.rows) {
    if (static_cast<int64_t>(page.traces.size()) == f.limit) {
      page.next_page_token = make_page_token(page.traces.back().started_at, page.traces.back().id);
      break;
    }
    page.traces.push_back(from_row(r));
  }
  return page;
}

Result<Trace> TraceStore::get(const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query(std::string("SELECT ") + kColumns + " FROM traces WHERE id = ?", {id}));
  if (rows.empty()) return not_found("no trace with id '" + id + "'");
  return from_row(rows.rows[0]);
}

Json to_json(const Trace& t) {
  return Json{{"id", t.id},
              {"started_at", t.started_at},
              {"user", t.user},
              {"endpoint", t.endpoint},
              {"served_name", t.served_name},
              {"model", t.model},
              {"version", t.version},
              {"prompt", t.prompt},
              {"response", t.response},
              {"prompt_tokens", t.prompt_tokens},
              {"completion_tokens", t.completion_tokens},
              {"time_to_first_token_ms", t.time_to_first_token_ms ? Json(*t.time_to_first_token_ms) : Json(nullptr)},
              {"latency_ms", t.latency_ms},
              {"tokens_per_second", t.tokens_per_second},
              {"finish_reason", t.finish_reason},
              {"status", t.status},
              {"error", t.error},
              {"upstream_ms", t.upstream_ms ? Json(*t.upstream_ms) : Json(nullptr)}};
}

}  // namespace keel::monitor
