#include <iostream>

#include "keel/cli/commands.h"
#include "keel/store/migrations.h"

namespace keel::cli {
namespace {

Status run_status(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());  // opening applies pending migrations
  KEEL_ASSIGN_OR_RETURN(int version, store::schema_version(*db));
  const char* backend = db->dialect() == store::DbDialect::kSqlite ? "sqlite" : "postgresql";
  int latest = static_cast<int>(store::keel_migrations().size());
  if (ctx.json()) {
    print_json({{"url", db->display_url()}, {"backend", backend}, {"schema_version", version}, {"latest_version", latest}});
  } else {
    std::cout << "database:       " << db->display_url() << " (" << backend << ")\n"
              << "schema version: " << version << " of " << latest << "\n";
  }
  return Status::Ok();
}

}  // namespace

void add_db_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* db = app.add_subcommand("db", "The metadata store (SQLite or PostgreSQL)");
  db->require_subcommand(1);
  db->add_subcommand("migrate", "Apply pending schema migrations and print the schema version")
      ->callback([&ctx, &outcome] { outcome = run_status(ctx); });
  db->add_subcommand("status", "Print the store's URL, back end and schema version")
      ->callback([&ctx, &outcome] { outcome = run_status(ctx); });
}

}  // namespace keel::cli
