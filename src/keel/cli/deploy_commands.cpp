// keel deploy: serving deployments (registry/deployments.h). A running `keel serve` or
// `keel up` sees a change on its next request.
#include <iostream>

#include "keel/cli/commands.h"
#include "keel/registry/deployments.h"

namespace keel::cli {
namespace {

struct SetOptions {
  std::string name;
  std::string model;
  int64_t version = 0;
  int64_t weight = 100;
};

void print_deployment(const registry::Deployment& d) {
  int64_t total = 0;
  for (const auto& t : d.targets) total += t.weight;
  std::cout << d.name << " -> " << d.model << "\n";
  for (const auto& t : d.targets) {
    std::cout << "  version " << t.version << "  weight " << t.weight << "  ("
              << (total > 0 ? 100.0 * static_cast<double>(t.weight) / static_cast<double>(total) : 0.0) << "%)\n";
  }
  if (d.targets.empty()) std::cout << "  (no targets: removed)\n";
}

Status run_set(CliContext& ctx, const SetOptions& o) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::DeploymentRegistry deployments(*db, *blobs);
  std::string model = o.model;
  if (model.empty()) {
    auto existing = deployments.get(o.name);
    model = existing.ok() ? existing->model : o.name;
  }
  KEEL_ASSIGN_OR_RETURN(registry::Deployment d, deployments.set_target(o.name, model, o.version, o.weight, ctx.actor()));
  if (ctx.json()) {
    print_json(registry::to_json(d));
  } else {
    print_deployment(d);
  }
  return Status::Ok();
}

}  // namespace

void add_deploy_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* deploy = app.add_subcommand("deploy", "Serving deployments: a served name over weighted model versions (canary, blue-green)");
  deploy->require_subcommand(1);

  auto set = std::make_shared<SetOptions>();
  auto* s = deploy->add_subcommand("set", "Give a model version a weight in a deployment (0 removes it)");
  s->add_option("name", set->name, "Deployment name (what clients send as `model`)")->required();
  s->add_option("--model", set->model, "Registered model (default: the deployment's, or its name)");
  s->add_option("--version", set->version, "Model version")->required()->check(CLI::PositiveNumber);
  s->add_option("--weight", set->weight, "Relative weight, e.g. 90 and 10 for a canary")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, registry::kMaxDeploymentWeight));
  s->callback([&ctx, &outcome, set] { outcome = run_set(ctx, *set); });

  auto* list = deploy->add_subcommand("list", "List deployments and their splits");
  list->callback([&ctx, &outcome] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
      KEEL_ASSIGN_OR_RETURN(std::vector<registry::Deployment> all, registry::DeploymentRegistry(*db, *blobs).list());
      if (ctx.json()) {
        Json out = Json::array();
        for (const auto& d : all) out.push_back(registry::to_json(d));
        print_json(Json{{"deployments", out}});
      } else {
        for (const auto& d : all) print_deployment(d);
        if (all.empty()) std::cout << "no deployments (`keel deploy set NAME --version N`)\n";
      }
      return Status::Ok();
    }();
  });

  auto name = std::make_shared<std::string>();
  auto* rm = deploy->add_subcommand("rm", "Remove a deployment (clients naming it get 404)");
  rm->add_option("name", *name, "Deployment name")->required();
  rm->callback([&ctx, &outcome, name] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
      return registry::DeploymentRegistry(*db, *blobs).remove(*name, ctx.actor());
    }();
  });
}

}  // namespace keel::cli
