#include <iostream>

#include "keel/cli/commands.h"

namespace keel::cli {

void add_version_command(CLI::App& app, CliContext& ctx, Status& outcome) {
  app.add_subcommand("version", "Print Keel's version and build")->callback([&ctx, &outcome] {
    Json info = {{"name", "keel"},
                 {"version", KEEL_VERSION},
                 {"compiler", __VERSION__},
                 {"build_type", KEEL_BUILD_TYPE},
                 {"cpu_target", KEEL_CPU_TARGET}};
    if (ctx.json()) {
      print_json(info);
    } else {
      std::cout << "keel " << KEEL_VERSION << " (" << KEEL_BUILD_TYPE << ", " << KEEL_CPU_TARGET << ", g++ "
                << __VERSION__ << ")\n";
    }
    outcome = Status::Ok();
  });
}

}  // namespace keel::cli
