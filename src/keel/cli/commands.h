// The CLI's command groups. Each add_*_commands() registers its subcommands on the
// app; a command's callback stores its outcome in `outcome`, which main() turns into
// an exit code and one line on stderr. Commands are thin: parse, call a service, print.
#pragma once

#include <CLI/CLI.hpp>

#include "keel/cli/context.h"

namespace keel::cli {

void add_version_command(CLI::App& app, CliContext& ctx, Status& outcome);
void add_models_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_artifacts_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_db_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_up_command(CLI::App& app, CliContext& ctx, Status& outcome);
void add_eval_commands(CLI::App& app, CliContext& ctx, Status& outcome);
// keel eval run / show, under the `eval` group (both called by add_eval_commands).
void add_eval_run_commands(CLI::App& eval, CliContext& ctx, Status& outcome);
// keel eval compare / gate, under the `eval` group.
void add_eval_review_commands(CLI::App& eval, CliContext& ctx, Status& outcome);
// `keel eval probe security|bias` (eval_probe_command.cpp).
void add_eval_probe_commands(CLI::App& eval, CliContext& ctx, Status& outcome);
void add_engine_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_bench_command(CLI::App& app, CliContext& ctx, Status& outcome);
void add_tracking_commands(CLI::App& app, CliContext& ctx, Status& outcome);
// Adds to the `models` group too: call after add_models_commands.
void add_governance_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_prompt_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_data_commands(CLI::App& app, CliContext& ctx, Status& outcome);
// keel data import|list|show|diff|export|profile, added to the `data` group.
void add_dataset_commands(CLI::App* data_cmd, CliContext& ctx, Status& outcome);
void add_perplexity_command(CLI::App& app, CliContext& ctx, Status& outcome);
// keel train sft (LoRA fine-tuning on the local engine).
void add_train_commands(CLI::App& app, CliContext& ctx, Status& outcome);
void add_deploy_commands(CLI::App& app, CliContext& ctx, Status& outcome);
// keel traces, keel feedback and keel monitor.
void add_monitor_commands(CLI::App& app, CliContext& ctx, Status& outcome);

// Imports the default model from the set-up cache when the registry lacks it.
// Shared by `keel up` and `keel models import-default`.
Status ensure_default_model(CliContext& ctx, const std::string& path);

}  // namespace keel::cli
