#include <iostream>

#include "keel/cli/commands.h"
#include "keel/store/artifact_catalog.h"

namespace keel::cli {
namespace {

Status run_verify(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  store::ArtifactCatalog catalog(*db, *blobs);
  KEEL_ASSIGN_OR_RETURN(store::VerifyReport report, catalog.verify());
  if (ctx.json()) {
    Json corrupt = Json::array();
    for (const auto& c : report.corrupt) corrupt.push_back({{"sha256", c.sha256}, {"problem", c.problem}});
    print_json({{"ok", report.ok()},
                {"checked", report.checked},
                {"bytes_checked", report.bytes_checked},
                {"corrupt", corrupt},
                {"missing", report.missing},
                {"unreferenced", report.unreferenced}});
  } else {
    std::cout << "checked " << report.checked << " blobs (" << human_bytes(report.bytes_checked) << ")\n";
    for (const auto& c : report.corrupt) std::cout << "CORRUPT  " << c.sha256 << ": " << c.problem << "\n";
    for (const auto& m : report.missing) std::cout << "MISSING  " << m << ": recorded in the store, no blob on disk\n";
    for (const auto& u : report.unreferenced) std::cout << "unreferenced  " << u << " (no record points to it)\n";
    if (report.ok()) std::cout << "all artifacts are intact\n";
  }
  if (!report.ok()) {
    return corrupt(std::to_string(report.corrupt.size()) + " corrupt and " + std::to_string(report.missing.size()) +
                   " missing artifacts; restore them from a backup or re-import what they held");
  }
  return Status::Ok();
}

Status run_list(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db->query("SELECT sha256, size_bytes, created_at FROM artifacts ORDER BY created_at"));
  if (ctx.json()) {
    Json out = Json::array();
    for (const auto& r : rows.rows) {
      out.push_back({{"sha256", r.get_text(0)}, {"size_bytes", r.get_int(1)}, {"created_at", r.get_int(2)}});
    }
    print_json(out);
    return Status::Ok();
  }
  if (rows.empty()) std::cout << "no artifacts yet\n";
  for (const auto& r : rows.rows) {
    std::printf("%s  %10s  %s\n", r.get_text(0).c_str(), human_bytes(static_cast<uint64_t>(r.get_int(1))).c_str(),
                format_time(r.get_int(2)).c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

void add_artifacts_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* artifacts = app.add_subcommand("artifacts", "Inspect and check the content-addressed artifact store");
  artifacts->require_subcommand(1);
  artifacts->add_subcommand("verify", "Re-hash every blob; report corrupt, missing and unreferenced ones")
      ->callback([&ctx, &outcome] { outcome = run_verify(ctx); });
  artifacts->add_subcommand("list", "List recorded artifacts")->callback([&ctx, &outcome] { outcome = run_list(ctx); });
}

}  // namespace keel::cli
