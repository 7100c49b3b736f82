#include "keel/monitor/feedback.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "keel/monitor/page_token.h"
#include "keel/monitor/traces.h"
#include "keel/store/audit_log.h"
#include "keel/util/id.h"

namespace keel::monitor {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr const char* kColumns =
    "id, trace_id, kind, score, comment, corrected_answer, user_id, created_at, model, version";

Feedback from_row(const store::DbRow& r) {
  Feedback f;
  f.id = r.get_text(0);
  f.trace_id = r.get_text(1);
  f.kind = r.get_text(2);
  f.score = static_cast<int>(r.get_int(3));
  f.comment = r.get_text(4);
  f.corrected_answer = r.get_text(5);
  f.user = r.get_text(6);
  f.created_at = r.get_int(7);
  f.model = r.get_text(8);
  f.version = r.get_int(9);
  return f;
}

// The conditions a filter puts on feedback rows (alias f), appended to sql.
void add_filter(const FeedbackFilter& filter, std::string* sql, std::vector<store::DbValue>* params) {
  if (!filter.trace_id.empty()) {
    *sql += " AND f.trace_id = ?";
    params->emplace_back(filter.trace_id);
  }
  if (!filter.model.empty()) {
    *sql += " AND f.model = ?";
    params->emplace_back(filter.model);
  }
  if (filter.version) {
    *sql += " AND f.version = ?";
    params->emplace_back(*filter.version);
  }
  if (!filter.user.empty()) {
    *sql += " AND f.user_id = ?";
    params->emplace_back(filter.user);
  }
  if (!filter.kind.empty()) {
    *sql += " AND f.kind = ?";
    params->emplace_back(filter.kind);
  }
}

Status validate_text(const std::string& text, size_t max, const char* what) {
  if (text.size() > max) {
    return invalid_argument(std::string(what) + " is " + std::to_string(text.size()) + " bytes; the limit is " +
                            std::to_string(max));
  }
  if (storable_text(text) != text) return invalid_argument(std::string(what) + " must be UTF-8 text without NUL bytes");
  return Status::Ok();
}

std::string dump_line(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// What an export can do with a trace's prompt (see the header's rules).
struct PromptView {
  enum Kind { kText, kChat, kUnusable } kind = kUnusable;
  OrderedJson messages;   // kChat
  std::string group_key;  // equal for equal prompts
};

PromptView view_prompt(const std::string& endpoint, const std::string& prompt) {
  PromptView v;
  if (prompt.empty()) return v;
  if (endpoint != "chat.completions") {
    v.kind = PromptView::kText;
    v.group_key = "t" + prompt;
    return v;
  }
  OrderedJson parsed = OrderedJson::parse(prompt, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array() || parsed.empty()) return v;
  for (const auto& m : parsed) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) return v;
  }
  v.kind = PromptView::kChat;
  v.group_key = "c" + dump_line(parsed);  // one spelling for the same messages
  v.messages = std::move(parsed);
  return v;
}

OrderedJson assistant_turn(const std::string& content) {
  return OrderedJson::array({OrderedJson{{"role", "assistant"}, {"content", content}}});
}

OrderedJson sft_line(const PromptView& prompt, const std::string& corrected) {
  if (prompt.kind == PromptView::kChat) {
    OrderedJson messages = prompt.messages;
    messages.push_back(OrderedJson{{"role", "assistant"}, {"content", corrected}});
    return OrderedJson{{"messages", std::move(messages)}};
  }
  return OrderedJson{{"prompt", prompt.group_key.substr(1)}, {"response", corrected}};
}

OrderedJson dpo_line(const PromptView& prompt, const std::string& chosen, const std::string& rejected) {
  if (prompt.kind == PromptView::kChat) {
    return OrderedJson{
        {"prompt", prompt.messages}, {"chosen", assistant_turn(chosen)}, {"rejected", assistant_turn(rejected)}};
  }
  return OrderedJson{{"prompt", prompt.group_key.substr(1)}, {"chosen", chosen}, {"rejected", rejected}};
}

// One row of the export query: a feedback and its trace's text.
struct ExportRow {
  std::string id;
  int64_t created_at = 0;
  std::string kind;
  int score = 0;
  std::string corrected;
  std::string endpoint;
  std::string prompt;
  std::string response;
};

// Calls fn on every feedback row that matches filter, oldest first, reading in chunks.
Status for_each_export_row(store::Db& db, const FeedbackFilter& filter, const std::function<void(ExportRow&)>& fn) {
  constexpr int64_t kChunk = 500;
  int64_t after_at = 0;
  std::string after_id;
  bool first = true;
  for (;;) {
    std::string sql =
        "SELECT f.id, f.created_at, f.kind, f.score, f.corrected_answer, t.endpoint, t.prompt, t.response"
        " FROM feedback f JOIN traces t ON t.id = f.trace_id WHERE 1 = 1";
    std::vector<store::DbValue> params;
    add_filter(filter, &sql, &params);
    if (!first) {
      sql += " AND (f.created_at > ? OR (f.created_at = ? AND f.id > ?))";
      params.emplace_back(after_at);
      params.emplace_back(after_at);
      params.emplace_back(after_id);
    }
    sql += " ORDER BY f.created_at, f.id LIMIT ?";
    params.emplace_back(kChunk);
    KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db.query(sql, params));
    for (const auto& r : rows.rows) {
      ExportRow row{r.get_text(0), r.get_int(1),  r.get_text(2), static_cast<int>(r.get_int(3)),
                    r.get_text(4), r.get_text(5), r.get_text(6), r.get_text(7)};
      after_at = row.created_at;
      after_id = row.id;
      fn(row);
    }
    if (static_cast<int64_t>(rows.size()) < kChunk) return Status::Ok();
    first = false;
  }
}

// The DPO export's state for one prompt.
struct PromptGroup {
  PromptView prompt;
  std::vector<std::pair<std::string, std::string>> corrections;  // (corrected, original response)
  struct Answer {
    double score_sum = 0;
    int64_t count = 0;
    size_t first_seen = 0;  // feedback order, for ties
  };
  std::map<std::string, Answer> answers;  // by response text
};

}  // namespace

double normalized_score(std::string_view kind, int score) {
  if (kind == "rating") return (score - 3) / 2.0;
  return score;
}

Result<Feedback> FeedbackStore::add(const NewFeedback& in) {
  if (in.trace_id.empty()) return invalid_argument("feedback needs a trace_id (the request id of the answer)");
  std::string kind = in.kind.empty() ? "thumbs" : in.kind;
  if (kind == "thumbs") {
    if (in.score != -1 && in.score != 1) {
      return invalid_argument("a thumbs score is -1 or 1, not " + std::to_string(in.score) +
                              " (send kind \"rating\" for a 1..5 rating)");
    }
  } else if (kind == "rating") {
    if (in.score < 1 || in.score > 5) return invalid_argument("a rating is 1..5, not " + std::to_string(in.score));
  } else {
    return invalid_argument("feedback kind must be \"thumbs\" or \"rating\", not '" + kind + "'");
  }
  KEEL_RETURN_IF_ERROR(validate_text(in.comment, kMaxFeedbackCommentBytes, "the comment"));
  KEEL_RETURN_IF_ERROR(validate_text(in.corrected_answer, kMaxCorrectedAnswerBytes, "the corrected answer"));
  Feedback f;
  f.id = new_id();
  f.trace_id = in.trace_id;
  f.kind = kind;
  f.score = in.score;
  f.comment = in.comment;
  f.corrected_answer = in.corrected_answer;
  f.user = in.user;
  f.created_at = now_millis();
  Status st = db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(store::DbRows trace,
                          sql.query("SELECT model, version FROM traces WHERE id = ?", {f.trace_id}));
    if (trace.empty()) return not_found("no trace with id '" + f.trace_id + "'");
    f.model = trace.rows[0].get_text(0);
    f.version = trace.rows[0].get_int(1);
    KEEL_RETURN_IF_ERROR(
        sql.exec(std::string("INSERT INTO feedback (") + kColumns + ") VALUES " + store::sql_placeholders(10),
                 {f.id, f.trace_id, f.kind, static_cast<int64_t>(f.score), f.comment, f.corrected_answer, f.user,
                  f.created_at, f.model, f.version})
            .status());
    return store::record_audit_event(sql, f.user, "feedback.add", "trace:" + f.trace_id,
                                     {{"feedback_id", f.id}, {"kind", f.kind}, {"score", f.score}});
  });
  if (!st.ok()) return st;
  return f;
}

Result<FeedbackPage> FeedbackStore::list(const FeedbackFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) return invalid_argument("limit must be between 1 and 1000");
  std::string sql = std::string("SELECT ") + kColumns + " FROM feedback f WHERE 1 = 1";
  std::vector<store::DbValue> params;
  add_filter(filter, &sql, &params);
  if (!filter.page_token.empty()) {
    int64_t at = 0;
    std::string id;
    KEEL_RETURN_IF_ERROR(parse_page_token(filter.page_token, &at, &id));
    sql += " AND (f.created_at < ? OR (f.created_at = ? AND f.id < ?))";
    params.emplace_back(at);
    params.emplace_back(at);
    params.emplace_back(id);
  }
  sql += " ORDER BY f.created_at DESC, f.id DESC LIMIT ?";
  params.emplace_back(filter.limit + 1);
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(sql, params));
  FeedbackPage page;
  for (const auto& r : rows.rows) {
    if (static_cast<int64_t>(page.feedback.size()) == filter.limit) {
      page.next_page_token = make_page_token(page.feedback.back().created_at, page.feedback.back().id);
      break;
    }
    page.feedback.push_back(from_row(r));
  }
  return page;
}

Result<ExportSummary> FeedbackStore::export_dataset(std::string_view format, std::ostream& out,
                                                    const FeedbackFilter& filter, size_t max_pairs_per_prompt) {
  if (format != "sft" && format != "dpo") {
    return invalid_argument("export format must be sft or dpo, not '" + std::string(format) + "'");
  }
  ExportSummary summary;
  if (format == "sft") {
    KEEL_RETURN_IF_ERROR(for_each_export_row(db_, filter, [&](ExportRow& row) {
      if (row.corrected.empty()) return;
      PromptView prompt = view_prompt(row.endpoint, row.prompt);
      if (prompt.kind == PromptView::kUnusable) {
        ++summary.skipped;
        return;
      }
      out << dump_line(sft_line(prompt, row.corrected)) << '\n';
      ++summary.examples;
    }));
    if (!out) return Status(ErrorCode::kIo, "writing the dataset failed");
    return summary;
  }

  std::vector<PromptGroup> groups;         // in the order of their oldest feedback
  std::map<std::string, size_t> group_of;  // PromptView::group_key -> index in groups
  size_t order = 0;
  KEEL_RETURN_IF_ERROR(for_each_export_row(db_, filter, [&](ExportRow& row) {
    PromptView prompt = view_prompt(row.endpoint, row.prompt);
    if (prompt.kind == PromptView::kUnusable) {
      ++summary.skipped;
      return;
    }
    auto [it, inserted] = group_of.emplace(prompt.group_key, groups.size());
    if (inserted) groups.push_back(PromptGroup{std::move(prompt), {}, {}});
    PromptGroup& g = groups[it->second];
    if (!row.corrected.empty()) g.corrections.emplace_back(row.corrected, row.response);
    if (!row.response.empty()) {
      auto [a, fresh] = g.answers.emplace(row.response, PromptGroup::Answer{});
      if (fresh) a->second.first_seen = order;
      a->second.score_sum += normalized_score(row.kind, row.score);
      ++a->second.count;
    }
    ++order;
  }));

  for (const PromptGroup& g : groups) {
    std::set<std::pair<std::string_view, std::string_view>> written;
    auto emit = [&](const std::string& chosen, const std::string& rejected) {
      if (!written.emplace(chosen, rejected).second) return false;
      out << dump_line(dpo_line(g.prompt, chosen, rejected)) << '\n';
      ++summary.examples;
      return true;
    };
    for (const auto& [corrected, response] : g.corrections) {
      if (!response.empty() && corrected != response) emit(corrected, response);
    }
    struct Ranked {
      const std::string* text;
      double score;
      size_t first_seen;
    };
    std::vector<Ranked> ranked;
    for (const auto& [text, a] : g.answers) ranked.push_back({&text, a.score_sum / a.count, a.first_seen});
    std::sort(ranked.begin(), ranked.end(), [](const Ranked& x, const Ranked& y) {
      return x.score != y.score ? x.score > y.score : x.first_seen < y.first_seen;
    });
    size_t pairs = 0;
    for (size_t i = 0; i < ranked.size() && pairs < max_pairs_per_prompt; ++i) {
      for (size_t j = i + 1; j < ranked.size() && pairs < max_pairs_per_prompt; ++j) {
        if (ranked[i].score == ranked[j].score) continue;
        if (emit(*ranked[i].text, *ranked[j].text)) ++pairs;
      }
    }
  }
  if (!out) return Status(ErrorCode::kIo, "writing the dataset failed");
  return summary;
}

Json to_json(const Feedback& f) {
  return Json{{"id", f.id},          {"trace_id", f.trace_id},     {"kind", f.kind},
              {"score", f.score},    {"comment", f.comment},       {"corrected_answer", f.corrected_answer},
              {"user", f.user},      {"created_at", f.created_at}, {"model", f.model},
              {"version", f.version}};
}

}  // namespace keel::monitor
