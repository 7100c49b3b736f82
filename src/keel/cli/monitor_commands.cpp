// keel traces list|show, keel feedback add|list|export and keel monitor summary: the
// monitor's traces, human feedback and per-version health from the terminal, with
// --json for scripts. Feedback given here is given as the CLI's actor ($KEEL_USER).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "keel/cli/commands.h"
#include "keel/monitor/feedback.h"
#include "keel/monitor/summary.h"
#include "keel/monitor/time_window.h"
#include "keel/monitor/traces.h"
#include "keel/util/file.h"
#include "keel/util/id.h"

namespace keel::cli {
namespace {

std::string pad(std::string s, size_t width) {
  if (s.size() >= width) return s.substr(0, width - 1) + " ";
  s.resize(width, ' ');
  return s;
}

std::string number(double v, const char* format = "%.1f") {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string model_ref(const std::string& model, int64_t version) {
  if (model.empty()) return "-";
  return version > 0 ? model + "@" + std::to_string(version) : model;
}

struct TracesListOptions {
  std::string model;
  int64_t version = 0;
  std::string user;
  std::string endpoint;
  int status = 0;
  std::string since;
  int64_t limit = 20;
  std::string page_token;
};

Status run_traces_list(CliContext& ctx, const TracesListOptions& o) {
  monitor::TraceFilter f;
  f.model = o.model;
  if (o.version > 0) f.version = o.version;
  f.user = o.user;
  f.endpoint = o.endpoint;
  if (o.status > 0) f.status = o.status;
  if (!o.since.empty()) {
    // A window ("1h") reaches back from now; anything else is an instant.
    auto window = monitor::parse_window_ms(o.since);
    if (window.ok()) {
      f.since_ms = now_millis() - *window;
    } else {
      KEEL_ASSIGN_OR_RETURN(int64_t at, monitor::parse_time_ms(o.since));
      f.since_ms = at;
    }
  }
  f.limit = o.limit;
  f.page_token = o.page_token;
  f.include_text = ctx.json();
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(monitor::TracePage page, monitor::TraceStore(*db).list(f));
  if (ctx.json()) {
    Json traces = Json::array();
    for (const auto& t : page.traces) traces.push_back(monitor::to_json(t));
    print_json({{"traces", traces},
                {"next_page_token", page.next_page_token.empty() ? Json(nullptr) : Json(page.next_page_token)}});
    return Status::Ok();
  }
  if (page.traces.empty()) {
    std::cout << "no traces (requests to the /v1 API served by `keel up` are recorded here)\n";
    return Status::Ok();
  }
  std::cout << pad("STARTED", 21) << pad("ID", 38) << pad("USER", 12) << pad("MODEL", 28) << pad("ENDPOINT", 18)
            << pad("STATUS", 7) << pad("LATENCY", 10) << "TOKENS\n";
  for (const auto& t : page.traces) {
    std::cout << pad(format_time(t.started_at), 21) << pad(t.id, 38) << pad(t.user.empty() ? "-" : t.user, 12)
              << pad(model_ref(t.model, t.version), 28) << pad(t.endpoint.empty() ? "-" : t.endpoint, 18)
              << pad(std::to_string(t.status), 7) << pad(number(t.latency_ms) + "ms", 10) << t.prompt_tokens << "+"
              << t.completion_tokens << "\n";
  }
  if (!page.next_page_token.empty()) std::cout << "(more: --page-token " << page.next_page_token << ")\n";
  return Status::Ok();
}

Status run_traces_show(CliContext& ctx, const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(monitor::Trace t, monitor::TraceStore(*db).get(id));
  monitor::FeedbackFilter filter;
  filter.trace_id = id;
  filter.limit = 1000;
  KEEL_ASSIGN_OR_RETURN(monitor::FeedbackPage feedback, monitor::FeedbackStore(*db).list(filter));
  if (ctx.json()) {
    Json out = monitor::to_json(t);
    out["feedback"] = Json::array();
    for (const auto& f : feedback.feedback) out["feedback"].push_back(monitor::to_json(f));
    print_json(out);
    return Status::Ok();
  }
  std::cout << "trace:      " << t.id << "\n"
            << "started:    " << format_time(t.started_at) << " by " << (t.user.empty() ? "-" : t.user) << "\n"
            << "endpoint:   " << (t.endpoint.empty() ? "-" : t.endpoint) << "\n"
            << "model:      " << model_ref(t.model, t.version)
            << (t.served_name.empty() ? "" : " (requested as " + t.served_name + ")") << "\n"
            << "status:     " << t.status << (t.error.empty() ? "" : " " + t.error) << "\n"
            << "finish:     " << (t.finish_reason.empty() ? "-" : t.finish_reason) << "\n"
            << "tokens:     " << t.prompt_tokens << " prompt, " << t.completion_tokens << " completion\n"
            << "latency:    " << number(t.latency_ms) << " ms"
            << (t.time_to_first_token_ms ? ", first token " + number(*t.time_to_first_token_ms) + " ms" : "") << ", "
            << number(t.tokens_per_second) << " tokens/s\n";
  if (t.upstream_ms) {
    std::cout << "upstream:   " << number(*t.upstream_ms) << " ms (Keel added " << number(t.latency_ms - *t.upstream_ms)
              << " ms)\n";
  }
  for (const auto& f : feedback.feedback) {
    std::cout << "feedback:   " << f.kind << " " << f.score << " by " << (f.user.empty() ? "-" : f.user) << " at "
              << format_time(f.created_at) << (f.comment.empty() ? "" : ": " + f.comment)
              << (f.corrected_answer.empty() ? "" : " (with a corrected answer)") << "\n";
  }
  auto block = [](const char* title, const std::string& text) {
    std::cout << "--- " << title << "\n"
              << (text.empty() ? "(not stored)" : text) << (text.empty() || text.back() != '\n' ? "\n" : "");
  };
  block("prompt", t.prompt);
  block("response", t.response);
  return Status::Ok();
}

struct FeedbackAddOptions {
  std::string trace_id;
  int score = 0;
  std::string kind = "thumbs";
  std::string comment;
  std::string corrected_file;
};

Status run_feedback_add(CliContext& ctx, const FeedbackAddOptions& o) {
  monitor::NewFeedback f;
  f.trace_id = o.trace_id;
  f.score = o.score;
  f.kind = o.kind;
  f.comment = o.comment;
  if (!o.corrected_file.empty()) {
    KEEL_ASSIGN_OR_RETURN(f.corrected_answer, read_file(o.corrected_file, monitor::kMaxCorrectedAnswerBytes));
  }
  f.user = ctx.actor();
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(monitor::Feedback added, monitor::FeedbackStore(*db).add(f));
  if (ctx.json()) {
    print_json(monitor::to_json(added));
  } else {
    std::cout << "added " << added.kind << " " << added.score << " on trace " << added.trace_id << " ("
              << model_ref(added.model, added.version) << "), feedback " << added.id << "\n";
  }
  return Status::Ok();
}

struct FeedbackListOptions {
  std::string trace_id;
  std::string model;
  std::string user;
  int64_t limit = 20;
};

Status run_feedback_list(CliContext& ctx, const FeedbackListOptions& o) {
  monitor::FeedbackFilter f;
  f.trace_id = o.trace_id;
  f.model = o.model;
  f.user = o.user;
  f.limit = o.limit;
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(monitor::FeedbackPage page, monitor::FeedbackStore(*db).list(f));
  if (ctx.json()) {
    Json out = Json::array();
    for (const auto& x : page.feedback) out.push_back(monitor::to_json(x));
    print_json({{"feedback", out},
                {"next_page_token", page.next_page_token.empty() ? Json(nullptr) : Json(page.next_page_token)}});
    return Status::Ok();
  }
  if (page.feedback.empty()) {
    std::cout << "no feedback (give some with `keel feedback add TRACE_ID --score 1`)\n";
    return Status::Ok();
  }
  std::cout << pad("CREATED", 21) << pad("TRACE", 38) << pad("MODEL", 28) << pad("KIND", 8) << pad("SCORE", 7)
            << pad("USER", 12) << "CORRECTED\n";
  for (const auto& x : page.feedback) {
    std::cout << pad(format_time(x.created_at), 21) << pad(x.trace_id, 38) << pad(model_ref(x.model, x.version), 28)
              << pad(x.kind, 8) << pad(std::to_string(x.score), 7) << pad(x.user.empty() ? "-" : x.user, 12)
              << (x.corrected_answer.empty() ? "no" : "yes") << "\n";
  }
  if (!page.next_page_token.empty()) std::cout << "(more: raise --limit)\n";
  return Status::Ok();
}

struct FeedbackExportOptions {
  std::string format;
  std::string out;
  std::string model;
  int64_t version = 0;
};

Status run_feedback_export(CliContext& ctx, const FeedbackExportOptions& o) {
  monitor::FeedbackFilter f;
  f.model = o.model;
  if (o.version > 0) f.version = o.version;
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  monitor::FeedbackStore feedback(*db);
  if (o.out.empty() || o.out == "-") {
    KEEL_ASSIGN_OR_RETURN(monitor::ExportSummary s, feedback.export_dataset(o.format, std::cout, f));
    std::cout.flush();
    std::fprintf(stderr, "%llu %s example(s) (%llu feedback skipped: prompt not stored)\n",
                 static_cast<unsigned long long>(s.examples), o.format.c_str(),
                 static_cast<unsigned long long>(s.skipped));
    return Status::Ok();
  }
  // Written whole, then renamed into place: a failed export never leaves half a file.
  std::ostringstream text;
  KEEL_ASSIGN_OR_RETURN(monitor::ExportSummary s, feedback.export_dataset(o.format, text, f));
  KEEL_RETURN_IF_ERROR(write_file_atomic(o.out, text.str()));
  if (ctx.json()) {
    print_json({{"path", o.out}, {"format", o.format}, {"examples", s.examples}, {"skipped", s.skipped}});
  } else {
    std::cout << "wrote " << s.examples << " " << o.format << (s.examples == 1 ? " example" : " examples") << " to "
              << o.out;
    if (s.skipped > 0) std::cout << " (" << s.skipped << " feedback skipped: prompt not stored)";
    std::cout << "\n";
  }
  return Status::Ok();
}

struct SummaryOptions {
  std::string model;
  int64_t version = 0;
  std::string window = "1h";
};

Status run_monitor_summary(CliContext& ctx, const SummaryOptions& o) {
  monitor::SummaryRequest request;
  request.model = o.model;
  if (o.version > 0) request.version = o.version;
  KEEL_ASSIGN_OR_RETURN(request.window_ms, monitor::parse_window_ms(o.window));
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(monitor::MonitorSummary s, monitor::summarize(*db, request));
  if (ctx.json()) {
    Json out = monitor::to_json(s);
    out["window"] = o.window;
    print_json(out);
    return Status::Ok();
  }
  if (s.versions.empty()) {
    std::cout << "no requests or feedback in the last " << o.window << "\n";
    return Status::Ok();
  }
  auto ms = [](const std::optional<monitor::Percentiles>& p, double monitor::Percentiles::*field) {
    return p ? number((*p).*field, "%.0f") : std::string("-");
  };
  std::cout << pad("MODEL", 28) << pad("REQUESTS", 10) << pad("ERRORS", 9) << pad("P50 MS", 8) << pad("P95 MS", 8)
            << pad("P99 MS", 8) << pad("TTFT P50", 10) << pad("TOK/S", 8) << pad("TOKENS IN/OUT", 16) << "FEEDBACK\n";
  for (const auto& v : s.versions) {
    std::string feedback = "-";
    if (v.feedback_count > 0) {
      feedback = std::to_string(v.feedback_count) + " (" + std::to_string(v.thumbs_up) + " up, " +
                 std::to_string(v.thumbs_down) + " down" +
                 (v.mean_rating ? ", rating " + number(*v.mean_rating) : std::string()) + ")";
    }
    std::cout << pad(model_ref(v.model, v.version), 28) << pad(std::to_string(v.requests), 10)
              << pad(number(v.error_rate * 100) + "%", 9) << pad(ms(v.latency_ms, &monitor::Percentiles::p50), 8)
              << pad(ms(v.latency_ms, &monitor::Percentiles::p95), 8)
              << pad(ms(v.latency_ms, &monitor::Percentiles::p99), 8)
              << pad(ms(v.time_to_first_token_ms, &monitor::Percentiles::p50), 10)
              << pad(v.mean_tokens_per_second ? number(*v.mean_tokens_per_second) : "-", 8)
              << pad(std::to_string(v.prompt_tokens) + "/" + std::to_string(v.completion_tokens), 16) << feedback
              << "\n";
  }
  std::cout << "(last " << o.window << ", " << s.traces_scanned << " requests read"
            << (s.truncated ? "; the window held more, the oldest were left out" : "") << ")\n";
  return Status::Ok();
}

}  // namespace

void add_monitor_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* traces = app.add_subcommand("traces", "Recorded requests: list and show");
  traces->require_subcommand(1);
  auto l = std::make_shared<TracesListOptions>();
  auto* list = traces->add_subcommand("list", "List traces, newest first");
  list->add_option("--model", l->model, "Registered model name");
  list->add_option("--version", l->version, "Model version")->check(CLI::PositiveNumber);
  list->add_option("--user", l->user, "Caller");
  list->add_option("--endpoint", l->endpoint, "Endpoint: chat.completions, completions, embeddings, eval.judge");
  list->add_option("--status", l->status, "HTTP status, e.g. 500")->check(CLI::Range(100, 599));
  list->add_option("--since", l->since, "A window back from now (1h, 15m) or a time (ISO-8601, epoch ms)");
  list->add_option("--limit", l->limit, "Traces to show")->capture_default_str()->check(CLI::Range(1, 1000));
  list->add_option("--page-token", l->page_token, "Continue after the page that printed this token");
  list->callback([&ctx, &outcome, l] { outcome = run_traces_list(ctx, *l); });

  auto show_id = std::make_shared<std::string>();
  auto* show = traces->add_subcommand("show", "Show one trace: timings, tokens, prompt, response and feedback");
  show->add_option("id", *show_id, "Trace id (the request's x-request-id)")->required();
  show->callback([&ctx, &outcome, show_id] { outcome = run_traces_show(ctx, *show_id); });

  auto* feedback = app.add_subcommand("feedback", "Human feedback on answers: add, list, export datasets");
  feedback->require_subcommand(1);
  auto a = std::make_shared<FeedbackAddOptions>();
  auto* add = feedback->add_subcommand("add", "Give feedback on a trace");
  add->add_option("trace_id", a->trace_id, "Trace id (the request's x-request-id)")->required();
  add->add_option("--score", a->score, "thumbs: -1 or 1; rating: 1..5")->required();
  add->add_option("--kind", a->kind, "thumbs or rating")->capture_default_str();
  add->add_option("--comment", a->comment, "Free text (up to 64 KiB)");
  add->add_option("--corrected", a->corrected_file, "A file holding the answer the model should have given");
  add->callback([&ctx, &outcome, a] { outcome = run_feedback_add(ctx, *a); });

  auto fl = std::make_shared<FeedbackListOptions>();
  auto* flist = feedback->add_subcommand("list", "List feedback, newest first");
  flist->add_option("--trace", fl->trace_id, "Trace id");
  flist->add_option("--model", fl->model, "Registered model name");
  flist->add_option("--user", fl->user, "Who gave it");
  flist->add_option("--limit", fl->limit, "Entries to show")->capture_default_str()->check(CLI::Range(1, 1000));
  flist->callback([&ctx, &outcome, fl] { outcome = run_feedback_list(ctx, *fl); });

  auto e = std::make_shared<FeedbackExportOptions>();
  auto* exp = feedback->add_subcommand("export", "Write a fine-tuning dataset (JSONL) from the feedback");
  exp->add_option("--format", e->format, "sft (corrected answers) or dpo (preference pairs)")
      ->required()
      ->check(CLI::IsMember({"sft", "dpo"}));
  exp->add_option("--out", e->out, "Output file (default: stdout)");
  exp->add_option("--model", e->model, "Only feedback on this model's traces");
  exp->add_option("--version", e->version, "Only this model version")->check(CLI::PositiveNumber);
  exp->callback([&ctx, &outcome, e] { outcome = run_feedback_export(ctx, *e); });

  auto* mon = app.add_subcommand("monitor", "Serving health per model version");
  mon->require_subcommand(1);
  auto s = std::make_shared<SummaryOptions>();
  auto* summary = mon->add_subcommand("summary", "Requests, errors, latency percentiles, tokens and feedback");
  summary->add_option("--model", s->model, "Registered model name (default: every model)");
  summary->add_option("--version", s->version, "Model version")->check(CLI::PositiveNumber);
  summary->add_option("--window", s->window, "How far back: 15m, 1h, 24h, 7d")->capture_default_str();
  summary->callback([&ctx, &outcome, s] { outcome = run_monitor_summary(ctx, *s); });
}

}  // namespace keel::cli
