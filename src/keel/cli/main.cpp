// keel: the one binary. Parses global options, registers the command groups and
// turns a command's Status into an exit code: 0 success, 1 failure (one line on
// stderr saying what is wrong and what to do), 2 a usage error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "keel/cli/commands.h"
#include "keel/cli/context.h"
#include "keel/util/file.h"
#include "keel/util/log.h"

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

// Error messages from libraries can span lines; the CLI promises one.
std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) text.pop_back();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      out += "; ";
      while (i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' ')) ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

int run(int argc, char** argv) {
  keel::cli::GlobalOptions options;
  options.home = keel::expand_home(env_or("KEEL_HOME", "~/.keel"));
  options.db_url = env_or("KEEL_DB", "");
  options.log_level = env_or("KEEL_LOG_LEVEL", "info");

  CLI::App app{"Keel: the LLMOps platform in one binary (data, prompts, fine-tuning, evaluation, registry, serving)",
               "keel"};
  app.fallthrough();  // global options are accepted after the subcommand too
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", std::string("keel ") + KEEL_VERSION);
  app.add_option("--home", options.home, "Keel's data folder (env KEEL_HOME, default ~/.keel)");
  app.add_option("--db", options.db_url,
                 "Metadata store URL: sqlite:///PATH or postgresql://USER@HOST/DB (env KEEL_DB, default "
                 "sqlite:///<home>/keel.db)");
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error or off (env KEEL_LOG_LEVEL)");
  app.add_flag("--json", options.json, "Print machine-readable JSON on stdout");

  keel::cli::CliContext ctx(options);
  keel::Status outcome;
  keel::cli::add_version_command(app, ctx, outcome);
  keel::cli::add_up_command(app, ctx, outcome);
  keel::cli::add_deploy_commands(app, ctx, outcome);
  keel::cli::add_models_commands(app, ctx, outcome);
  keel::cli::add_artifacts_commands(app, ctx, outcome);
  keel::cli::add_db_commands(app, ctx, outcome);
  keel::cli::add_eval_commands(app, ctx, outcome);
  keel::cli::add_engine_commands(app, ctx, outcome);
  keel::cli::add_bench_command(app, ctx, outcome);
  keel::cli::add_tracking_commands(app, ctx, outcome);
  keel::cli::add_governance_commands(app, ctx, outcome);
  keel::cli::add_prompt_commands(app, ctx, outcome);
  keel::cli::add_data_commands(app, ctx, outcome);
  keel::cli::add_perplexity_command(app, ctx, outcome);
  keel::cli::add_train_commands(app, ctx, outcome);
  keel::cli::add_monitor_commands(app, ctx, outcome);

  // Logging must be set up before any command runs, and commands run inside parse().
  app.parse_complete_callback([&] {
    options.home = keel::expand_home(options.home);
    keel::Status st = keel::init_logging(options.log_level);
    if (!st.ok()) throw CLI::ValidationError("--log-level", st.message());
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "keel: error: %s (see keel --help)\n", one_line(e.what()).c_str());
    return 2;
  }
  if (!outcome.ok()) {
    std::fprintf(stderr, "keel: error: %s\n", one_line(outcome.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // Exceptions are bugs (expected failures are Status values), but a user still
    // gets one line, not an abort with a stack trace.
    std::fprintf(stderr, "keel: internal error: %s (please report this)\n", e.what());
    return 1;
  }
}
