#include <iostream>

#include <spdlog/spdlog.h>

#include "keel/cli/commands.h"
#include "keel/cli/default_model.h"
#include "keel/server/http.h"
#include "keel/auth/users.h"
#include "keel/server/auth_guard.h"
#include "keel/server/mlflow_routes.h"
#include "keel/server/monitor_routes.h"
#include "keel/server/platform_routes.h"
#include "keel/server/prompt_routes.h"

namespace keel::cli {
namespace {

struct UpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string default_model;
  int io_threads = 2;
  std::string auth = "auto";
};

// "auto" requires API keys once the store has users; "required" and "off" say so.
Result<server::AuthMode> auth_mode(store::Db& db, const std::string& setting) {
  if (setting == "required") return server::AuthMode::kRequired;
  if (setting == "off") return server::AuthMode::kOff;
  if (setting != "auto") return invalid_argument("--auth must be auto, required or off, not '" + setting + "'");
  KEEL_ASSIGN_OR_RETURN(bool has_users, auth::UserDirectory(db).has_users());
  return has_users ? server::AuthMode::kRequired : server::AuthMode::kOff;
}

Status run_up(CliContext& ctx, const UpOptions& opts) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  std::string model_path = opts.default_model.empty() ? default_model_cache_path() : opts.default_model;
  KEEL_RETURN_IF_ERROR(ensure_default_model(ctx, model_path));

  KEEL_ASSIGN_OR_RETURN(server::AuthMode mode, auth_mode(*db, opts.auth));
  server::raise_open_file_limit();
  auto router = std::make_shared<server::Router>();
  router->set_guard(server::make_auth_guard(*db, mode));
  server::add_core_routes(*router);
  server::add_platform_routes(*router, *db, *blobs);
  server::add_prompt_routes(*router, *db, *blobs);
  server::add_mlflow_routes(*router, *db, *blobs);
  server::add_monitor_routes(*router, *db);
  server::ServerOptions options;
  options.host = opts.host;
  options.port = opts.port;
  options.io_threads = opts.io_threads;
  server::HttpServer http(options, router);
  KEEL_RETURN_IF_ERROR(http.start());
  std::string url = "http://" + opts.host + ":" + std::to_string(http.port());
  if (ctx.json()) {
    print_json({{"url", url},
                {"database", db->display_url()},
                {"home", ctx.options().home},
                {"auth", mode == server::AuthMode::kRequired ? "required" : "off"}});
  } else {
    std::cout << "Keel is up at " << url << "  (database " << db->display_url() << ", default model "
              << kDefaultModelName << ")\n"
              << "  " << url << "/health\n  " << url << "/api/models\n"
              << "  MLFLOW_TRACKING_URI=" << url << "  (the mlflow client works against Keel)\n"
              << (mode == server::AuthMode::kRequired
                      ? "  API keys required (Authorization: Bearer KEY; `keel keys create --user NAME`)\n"
                      : "  No API keys required: anyone who can reach this address may write. Create a user "
                        "(`keel users create NAME --role admin`) to require keys.\n")
              << "Press Ctrl-C to stop.\n";
  }
  std::cout.flush();
  http.wait_for_shutdown_signal();
  spdlog::info("stopped");
  return Status::Ok();
}

}  // namespace

void add_up_command(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto opts = std::make_shared<UpOptions>();
  auto* up = app.add_subcommand("up", "Start Keel on this machine: migrate the store, import the default model, serve the API");
  up->add_option("--host", opts->host, "Address to listen on")->capture_default_str();
  up->add_option("--port", opts->port, "Port to listen on (0 picks a free one)")->capture_default_str();
  up->add_option("--default-model", opts->default_model,
                 "Default model file to import when the registry lacks it (default: the set-up cache)")
      ->envname("KEEL_DEFAULT_MODEL");
  up->add_option("--io-threads", opts->io_threads, "HTTP I/O threads")->capture_default_str()->check(CLI::Range(1, 256));
  up->add_option("--auth", opts->auth,
                 "API keys: auto (required once users exist), required, or off")
      ->capture_default_str()
      ->envname("KEEL_AUTH");
  up->callback([&ctx, &outcome, opts] { outcome = run_up(ctx, *opts); });
}

}  // namespace keel::cli
