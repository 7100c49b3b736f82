// keel experiments list|create|show and keel runs list|show|compare: the tracking
// store from the terminal, with --json for scripts.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "keel/cli/commands.h"
#include "keel/tracking/tracking_service.h"

namespace keel::cli {
namespace {

std::string value_text(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  return v.dump();
}

std::string pad(std::string s, size_t width) {
  if (s.size() > width) return s.substr(0, width - 1) + "~";
  s.resize(width, ' ');
  return s;
}

Result<tracking::Experiment> find_experiment(tracking::TrackingService& tracking, const std::string& ref) {
  auto e = tracking.get_experiment_by_name(ref);
  if (e.ok() || e.status().code() != ErrorCode::kNotFound) return e;
  auto by_id = tracking.get_experiment(ref);
  if (by_id.ok()) return by_id;
  return not_found("no experiment named or numbered '" + ref + "' (see `keel experiments list`)");
}

Status run_experiments_list(CliContext& ctx, bool all) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(std::vector<tracking::Experiment> list,
                        tracking.list_experiments(all ? tracking::ViewType::kAll : tracking::ViewType::kActiveOnly));
  if (ctx.json()) {
    Json out = Json::array();
    for (const auto& e : list) out.push_back(tracking::to_json(e));
    print_json({{"experiments", out}});
    return Status::Ok();
  }
  std::cout << pad("ID", 6) << pad("NAME", 32) << pad("CREATED", 21) << "STAGE\n";
  for (const auto& e : list) {
    std::cout << pad(e.id, 6) << pad(e.name, 32) << pad(e.created_at > 0 ? format_time(e.created_at) : "-", 21)
              << e.lifecycle_stage << "\n";
  }
  return Status::Ok();
}

Status run_experiments_create(CliContext& ctx, const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Experiment e, tracking.create_experiment(name, "", {}, ctx.actor()));
  if (ctx.json()) {
    print_json(tracking::to_json(e));
  } else {
    std::cout << "created experiment " << e.name << " (id " << e.id << ")\n";
  }
  return Status::Ok();
}

struct RunsListOptions {
  std::string experiment;
  std::string filter;
  std::string order_by;
  int64_t limit = 50;
};

Status run_runs_list(CliContext& ctx, const RunsListOptions& opts) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  tracking::SearchRunsRequest request;
  if (opts.experiment.empty()) {
    KEEL_ASSIGN_OR_RETURN(std::vector<tracking::Experiment> all, tracking.list_experiments(tracking::ViewType::kActiveOnly));
    for (const auto& e : all) request.experiment_ids.push_back(e.id);
  } else {
    KEEL_ASSIGN_OR_RETURN(tracking::Experiment e, find_experiment(tracking, opts.experiment));
    request.experiment_ids = {e.id};
  }
  request.filter = opts.filter;
  if (!opts.order_by.empty()) request.order_by = {opts.order_by};
  request.max_results = opts.limit;
  KEEL_ASSIGN_OR_RETURN(tracking::RunPage page, tracking.search_runs(request));
  if (ctx.json()) {
    Json out = Json::array();
    for (const auto& r : page.runs) out.push_back(tracking::to_json(r));
    print_json({{"runs", out}});
    return Status::Ok();
  }
  std::cout << pad("RUN ID", 34) << pad("NAME", 24) << pad("STATUS", 10) << pad("STARTED", 21) << "METRICS\n";
  for (const auto& r : page.runs) {
    std::string metrics;
    for (const auto& m : r.latest_metrics) {
      if (metrics.size() > 60) {
        metrics += " ...";
        break;
      }
      metrics += (metrics.empty() ? "" : " ") + m.key + "=" + value_text(tracking::number_json(m.value));
    }
    std::cout << pad(r.id, 34) << pad(r.name, 24) << pad(std::string(tracking::run_status_name(r.status)), 10)
              << pad(format_time(r.start_time), 21) << metrics << "\n";
  }
  if (!page.next_page_token.empty()) std::cout << "(more runs: raise --limit)\n";
  return Status::Ok();
}

Status run_runs_show(CliContext& ctx, const std::string& id) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run r, tracking.get_run(id));
  if (ctx.json()) {
    print_json(tracking::to_json(r));
    return Status::Ok();
  }
  std::cout << "run:        " << r.id << "\n"
            << "name:       " << r.name << "\n"
            << "experiment: " << r.experiment_id << "\n"
            << "status:     " << tracking::run_status_name(r.status) << "\n"
            << "user:       " << (r.user_id.empty() ? "-" : r.user_id) << "\n"
            << "started:    " << format_time(r.start_time) << "\n"
            << "ended:      " << (r.end_time ? format_time(*r.end_time) : "-") << "\n"
            << "parent:     " << (r.parent_run_id.empty() ? "-" : r.parent_run_id) << "\n"
            << "artifacts:  " << r.artifact_uri << "\n";
  if (!r.params.empty()) std::cout << "params:\n";
  for (const auto& p : r.params) std::cout << "  " << pad(p.key, 28) << p.value << "\n";
  if (!r.latest_metrics.empty()) std::cout << "metrics (latest):\n";
  for (const auto& m : r.latest_metrics) {
    std::cout << "  " << pad(m.key, 28) << pad(value_text(tracking::number_json(m.value)), 14) << "step " << m.step << "\n";
  }
  if (!r.inputs.empty()) std::cout << "inputs:\n";
  for (const auto& d : r.inputs) std::cout << "  " << d.name << " (digest " << d.digest << ")\n";
  if (!r.tags.empty()) std::cout << "tags:\n";
  for (const auto& t : r.tags) std::cout << "  " << pad(t.key, 28) << t.value << "\n";
  return Status::Ok();
}

Status run_runs_compare(CliContext& ctx, const std::vector<std::string>& ids) {
  if (ids.size() < 2) return invalid_argument("give two or more run ids to compare");
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);
  std::vector<tracking::Run> runs;
  for (const auto& id : ids) {
    KEEL_ASSIGN_OR_RETURN(tracking::Run r, tracking.get_run(id));
    runs.push_back(std::move(r));
  }
  Json table = tracking::compare_json(runs);
  if (ctx.json()) {
    print_json(table);
    return Status::Ok();
  }
  std::cout << pad("", 24);
  for (const auto& r : runs) std::cout << pad(r.name, 20);
  std::cout << "\n";
  auto section = [&](const char* title, const Json& rows, bool mark_differences) {
    if (rows.empty()) return;
    std::cout << title << "\n";
    for (const auto& [key, values] : rows.items()) {
      bool differs = false;
      for (const auto& v : values) differs |= v != values[0];
      std::cout << (mark_differences && differs ? "* " : "  ") << pad(key, 22);
      for (const auto& v : values) std::cout << pad(value_text(v), 20);
      std::cout << "\n";
    }
  };
  section("params (* differs)", table["params"], true);
  section("metrics (latest)", table["metrics"], false);
  return Status::Ok();
}

}  // namespace

void add_tracking_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* experiments = app.add_subcommand("experiments", "List and create experiments (groups of runs)");
  experiments->require_subcommand(1);
  auto all = std::make_shared<bool>(false);
  auto* elist = experiments->add_subcommand("list", "List experiments");
  elist->add_flag("--all", *all, "Include deleted experiments");
  elist->callback([&ctx, &outcome, all] { outcome = run_experiments_list(ctx, *all); });
  auto name = std::make_shared<std::string>();
  auto* ecreate = experiments->add_subcommand("create", "Create an experiment");
  ecreate->add_option("name", *name, "Experiment name")->required();
  ecreate->callback([&ctx, &outcome, name] { outcome = run_experiments_create(ctx, *name); });

  auto* runs = app.add_subcommand("runs", "List, inspect and compare tracked runs");
  runs->require_subcommand(1);
  auto opts = std::make_shared<RunsListOptions>();
  auto* rlist = runs->add_subcommand("list", "List runs, newest first (or by --order-by)");
  rlist->add_option("--experiment,-e", opts->experiment, "Experiment name or id (default: all)");
  rlist->add_option("--filter", opts->filter, "MLflow filter, e.g. \"metrics.acc > 0.9 and params.opt = 'adam'\"");
  rlist->add_option("--order-by", opts->order_by, "e.g. \"metrics.acc DESC\"");
  rlist->add_option("--limit", opts->limit, "Most runs to show")->capture_default_str()->check(CLI::Range(1, 50000));
  rlist->callback([&ctx, &outcome, opts] { outcome = run_runs_list(ctx, *opts); });
  auto id = std::make_shared<std::string>();
  auto* rshow = runs->add_subcommand("show", "Show a run: params, latest metrics, inputs, tags");
  rshow->add_option("run_id", *id, "Run id")->required();
  rshow->callback([&ctx, &outcome, id] { outcome = run_runs_show(ctx, *id); });
  auto ids = std::make_shared<std::vector<std::string>>();
  auto* rcompare = runs->add_subcommand("compare", "Compare runs side by side (params that differ are marked)");
  rcompare->add_option("run_ids", *ids, "Two or more run ids")->required();
  rcompare->callback([&ctx, &outcome, ids] { outcome = run_runs_compare(ctx, *ids); });
}

}  // namespace keel::cli
