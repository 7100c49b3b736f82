// `keel up` (the whole platform on one port: platform, prompts, MLflow and the
// OpenAI-compatible API for the default model) and `keel serve` (the OpenAI-compatible
// API for registered models). Both load models on first use and share the serving flags.
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>

#include "keel/auth/users.h"
#include "keel/cli/commands.h"
#include "keel/cli/model_files.h"
#include "keel/cli/default_model.h"
#include "keel/server/auth_guard.h"
#include "keel/server/http.h"
#include "keel/server/mlflow_routes.h"
#include "keel/monitor/trace_writer.h"
#include "keel/monitor/traces.h"
#include "keel/server/monitor_routes.h"
#include "keel/server/openai_routes.h"
#include "keel/server/platform_routes.h"
#include "keel/server/prompt_routes.h"
#include "keel/server/served_models.h"
#include "keel/server/serving_metrics.h"

namespace keel::cli {
namespace {

struct ServeFlags {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  int io_threads = 2;
  std::string auth = "auto";
  std::vector<std::string> models;
  int threads = 0;  // 0: every core
  int parallel = 8;
  int queue = 64;
  int64_t context = 0;
  int64_t batch_tokens = 512;
  int64_t kv_cache_mib = 1024;
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
  std::string trace_text = "store";
};

void add_serve_flags(CLI::App* app, ServeFlags& f) {
  app->add_option("--host", f.host, "Address to listen on")->capture_default_str();
  app->add_option("--port", f.port, "Port to listen on (0 picks a free one)")->capture_default_str();
  app->add_option("--io-threads", f.io_threads, "HTTP I/O threads")->capture_default_str()->check(CLI::Range(1, 256));
  app->add_option("--auth", f.auth,
                  "API keys: auto (required once users exist, and whenever --host is not loopback), required, or off")
      ->capture_default_str()
      ->envname("KEEL_AUTH");
  app->add_option("-t,--threads", f.threads, "Compute threads per model (0: every core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 512));
  app->add_option("--parallel", f.parallel, "Requests decoded at once per model (continuous batching slots)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app->add_option("--queue", f.queue, "Requests that may wait for a slot; past it the answer is 429")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app->add_option("--ctx", f.context, "Context length per request (0: the model's, at most 4096)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  app->add_option("--batch-tokens", f.batch_tokens, "Tokens per forward pass (decode steps and prompt chunks)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  app->add_option("--kv-cache-mb", f.kv_cache_mib, "KV-cache budget per model in MiB (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  app->add_option("--rpm", f.requests_per_minute, "Requests per minute per API key (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app->add_option("--trace-text", f.trace_text,
                  "What request traces keep of prompts and answers: store, redact_pii or drop")
      ->capture_default_str();
  app->add_option("--tpm", f.tokens_per_minute, "Prompt + completion tokens per minute per API key (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
}

server::ServingOptions serving_options(const CliContext& ctx, const ServeFlags& f) {
  server::ServingOptions o;
  o.models = f.models;
  o.fold_adapter = [scratch = ctx.options().home + "/tmp"](const std::string& base, const std::string& adapter) {
    return fold_adapter_file(scratch, base, adapter);
  };
  o.session.threads = f.threads > 0 ? f.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.session.context_length = f.context;
  o.scheduler.max_sequences = f.parallel;
  o.scheduler.max_queue = f.queue;
  o.scheduler.max_batch_tokens = f.batch_tokens;
  o.scheduler.kv_cache_budget_bytes = static_cast<size_t>(f.kv_cache_mib) << 20;
  return o;
}

// Starts the server on `router` and blocks until SIGINT / SIGTERM.
Status serve_until_signal(CliContext& ctx, const ServeFlags& f, std::shared_ptr<server::Router> router,
                          server::AuthMode mode, const std::function<void(const std::string& url)>& announce) {
  server::ServerOptions options;
  options.host = f.host;
  options.port = f.port;
  options.io_threads = f.io_threads;
  server::HttpServer http(options, std::move(router));
  KEEL_RETURN_IF_ERROR(http.start());
  const std::string url = "http://" + f.host + ":" + std::to_string(http.port());
  if (ctx.json()) {
    KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
    print_json({{"url", url},
                {"database", db->display_url()},
                {"home", ctx.options().home},
                {"auth", mode == server::AuthMode::kRequired ? "required" : "off"}});
  } else {
    announce(url);
    std::cout << (mode == server::AuthMode::kRequired
                      ? "  API keys required (Authorization: Bearer KEY; `keel keys create --user NAME`)\n"
                      : "  No API keys required: anyone who can reach this address may use it. Create a user "
                        "(`keel users create NAME --role admin`) to require keys.\n")
              << "Press Ctrl-C to stop.\n";
  }
  std::cout.flush();
  http.wait_for_shutdown_signal();
  spdlog::info("stopped");
  return Status::Ok();
}

Status run_up(CliContext& ctx, const ServeFlags& flags, const std::string& default_model) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  const std::string model_path = default_model.empty() ? default_model_cache_path() : default_model;
  KEEL_RETURN_IF_ERROR(ensure_default_model(ctx, model_path));
  KEEL_ASSIGN_OR_RETURN(server::AuthMode mode, server::resolve_auth_mode(*db, flags.auth, flags.host));
  server::raise_open_file_limit();

  ServeFlags f = flags;
  f.models = {kDefaultModelName};
  // The metrics, the limiter and the trace writer outlive the models: schedulers end
  // their last requests when the models go, and those requests still report.
  KEEL_ASSIGN_OR_RETURN(monitor::TextPolicy text_policy, monitor::parse_text_policy(f.trace_text));
  monitor::TraceStore trace_store(*db);
  monitor::TraceWriter traces(trace_store, {.text = text_policy});
  server::ServingMetrics metrics;
  server::RateLimiter limiter({f.requests_per_minute, f.tokens_per_minute});
  server::ServedModels models(*db, *blobs, serving_options(ctx, f));
  auto router = std::make_shared<server::Router>();
  router->set_guard(server::make_auth_guard(*db, mode));
  server::add_core_routes(*router);
  server::add_platform_routes(*router, *db, *blobs);
  server::add_prompt_routes(*router, *db, *blobs);
  server::add_mlflow_routes(*router, *db, *blobs);
  server::add_monitor_routes(*router, *db);
  server::add_deployment_routes(*router, *db, *blobs);
  server::add_openai_routes(*router, models, metrics, limiter, &traces);
  return serve_until_signal(ctx, f, router, mode, [&](const std::string& url) {
    std::cout << "Keel is up at " << url << "  (database " << db->display_url() << ", default model "
              << kDefaultModelName << ")\n"
              << "  " << url << "/health\n  " << url << "/api/models\n"
              << "  OPENAI_BASE_URL=" << url << "/v1  (model \"" << kDefaultModelName << "\")\n"
              << "  MLFLOW_TRACKING_URI=" << url << "  (the mlflow client works against Keel)\n";
  });
}

Status run_serve(CliContext& ctx, const ServeFlags& f) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  KEEL_ASSIGN_OR_RETURN(server::AuthMode mode, server::resolve_auth_mode(*db, f.auth, f.host));
  server::raise_open_file_limit();
  // The metrics, the limiter and the trace writer outlive the models: schedulers end
  // their last requests when the models go, and those requests still report.
  KEEL_ASSIGN_OR_RETURN(monitor::TextPolicy text_policy, monitor::parse_text_policy(f.trace_text));
  monitor::TraceStore trace_store(*db);
  monitor::TraceWriter traces(trace_store, {.text = text_policy});
  server::ServingMetrics metrics;
  server::RateLimiter limiter({f.requests_per_minute, f.tokens_per_minute});
  server::ServedModels models(*db, *blobs, serving_options(ctx, f));
  KEEL_ASSIGN_OR_RETURN(std::vector<registry::ModelSummary> served, models.list());
  for (const std::string& name : f.models) {
    if (std::none_of(served.begin(), served.end(), [&](const auto& m) { return m.name == name; })) {
      return not_found("no registered model is named '" + name + "' (see `keel models list`)");
    }
  }
  auto router = std::make_shared<server::Router>();
  router->set_guard(server::make_auth_guard(*db, mode));
  server::add_core_routes(*router);
  server::add_monitor_routes(*router, *db);
  server::add_deployment_routes(*router, *db, *blobs);
  server::add_openai_routes(*router, models, metrics, limiter, &traces);
  return serve_until_signal(ctx, f, router, mode, [&](const std::string& url) {
    std::cout << "Keel serves " << served.size() << " model" << (served.size() == 1 ? "" : "s") << " at " << url
              << "/v1  (OPENAI_BASE_URL=" << url << "/v1)\n";
    for (const auto& m : served) std::cout << "  " << m.name << "\n";
  });
}

}  // namespace

void add_up_command(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto flags = std::make_shared<ServeFlags>();
  auto default_model = std::make_shared<std::string>();
  auto* up = app.add_subcommand(
      "up", "Start Keel on this machine: migrate the store, import the default model, serve the API and the model");
  add_serve_flags(up, *flags);
  up->add_option("--default-model", *default_model,
                 "Default model file to import when the registry lacks it (default: the set-up cache)")
      ->envname("KEEL_DEFAULT_MODEL");
  up->callback([&ctx, &outcome, flags, default_model] { outcome = run_up(ctx, *flags, *default_model); });

  auto serve_flags = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand(
      "serve", "Serve registered models behind the OpenAI-compatible API (/v1), each loaded on first use");
  add_serve_flags(serve, *serve_flags);
  serve->add_option("-m,--model", serve_flags->models, "Serve only these registered models (repeatable; default: all)");
  serve->callback([&ctx, &outcome, serve_flags] { outcome = run_serve(ctx, *serve_flags); });
}

}  // namespace keel::cli
