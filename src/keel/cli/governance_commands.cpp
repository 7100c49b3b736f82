// Users, API keys, review and approval, and the audit log from the terminal:
//   keel users create|list|set-role|disable|enable, keel keys create|list|revoke,
//   keel models request-promotion|approve|reject|requests|alias|archive|policy|check,
//   keel audit list.
// The acting user is $KEEL_USER (else the OS user); approving needs that user to exist
// with the reviewer (or admin) role.
#include <fstream>
#include <iostream>
#include <sstream>

#include "keel/auth/users.h"
#include "keel/cli/commands.h"
#include "keel/registry/governance.h"
#include "keel/registry/lineage.h"
#include "keel/store/audit_log.h"

namespace keel::cli {
namespace {

struct VersionRef {
  std::string name;
  int64_t version = 0;
};

Result<VersionRef> parse_version_ref(const std::string& ref) {
  size_t at = ref.rfind('@');
  std::string v = at == std::string::npos ? "" : ref.substr(at + 1);
  if (at == std::string::npos || v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    return invalid_argument("'" + ref + "' is not NAME@VERSION (a version number, e.g. chat@3)");
  }
  return VersionRef{ref.substr(0, at), std::stoll(v)};
}

struct Stores {
  store::Db* db;
  store::LocalArtifactStore* blobs;
};

Result<Stores> stores(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  return Stores{db, blobs};
}

void print_request(const registry::PromotionRequest& r) {
  std::cout << r.model_name << "@" << r.version << " -> " << r.alias << ": " << r.status << " (requested by "
            << r.requested_by << ")\n";
  for (const auto& rv : r.reviews) {
    std::cout << "  " << rv.decision << " by " << rv.reviewer << (rv.comment.empty() ? "" : ": " + rv.comment) << "\n";
  }
  for (const auto& m : r.missing) std::cout << "  still needs " << m << "\n";
}

Status output_request(CliContext& ctx, const registry::PromotionRequest& r) {
  if (ctx.json()) {
    print_json(registry::to_json(r));
  } else {
    print_request(r);
  }
  return Status::Ok();
}

Result<auth::User> acting_user(CliContext& ctx, store::Db& db) {
  auth::UserDirectory users(db);
  auto u = users.get_user(ctx.actor());
  if (!u.ok() && u.status().code() == ErrorCode::kNotFound) {
    return permission_denied("you act as '" + ctx.actor() + "' ($KEEL_USER or your login), who is not a Keel user; " +
                             "an admin can add you with `keel users create " + ctx.actor() + " --role reviewer`");
  }
  return u;
}

void add_user_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* users = app.add_subcommand("users", "Manage users and their roles (viewer, user, editor, reviewer, admin)");
  users->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>("editor");
  auto* create = users->add_subcommand("create", "Create a user");
  create->add_option("name", *name, "User name")->required();
  create->add_option("--role", *role, "viewer, user, editor, reviewer or admin")->capture_default_str();
  create->callback([&ctx, &outcome, name, role] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(auth::Role r, auth::parse_role(*role));
      KEEL_ASSIGN_OR_RETURN(auth::User u, auth::UserDirectory(*db).create_user(*name, r, ctx.actor()));
      if (ctx.json()) {
        print_json({{"name", u.name}, {"role", auth::role_name(u.role)}, {"id", u.id}});
      } else {
        std::cout << "created user " << u.name << " (" << auth::role_name(u.role) << ")\n";
      }
      return Status::Ok();
    }();
  });
  auto* list = users->add_subcommand("list", "List users");
  list->callback([&ctx, &outcome] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(std::vector<auth::User> all, auth::UserDirectory(*db).list_users());
      Json out = Json::array();
      for (const auto& u : all) {
        out.push_back({{"name", u.name}, {"role", auth::role_name(u.role)}, {"disabled", u.disabled},
                       {"created_at", u.created_at}});
        if (!ctx.json()) {
          std::cout << u.name << "  " << auth::role_name(u.role) << (u.disabled ? "  (disabled)" : "") << "\n";
        }
      }
      if (ctx.json()) print_json({{"users", out}});
      return Status::Ok();
    }();
  });
  auto* set_role = users->add_subcommand("set-role", "Change a user's role");
  set_role->add_option("name", *name, "User name")->required();
  set_role->add_option("role", *role, "viewer, user, editor, reviewer or admin")->required();
  set_role->callback([&ctx, &outcome, name, role] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(auth::Role r, auth::parse_role(*role));
      return auth::UserDirectory(*db).set_role(*name, r, ctx.actor());
    }();
  });
  for (bool disable : {true, false}) {
    auto* cmd = users->add_subcommand(disable ? "disable" : "enable",
                                      disable ? "Disable a user (their keys stop working)" : "Enable a user again");
    cmd->add_option("name", *name, "User name")->required();
    cmd->callback([&ctx, &outcome, name, disable] {
      outcome = [&]() -> Status {
        KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
        return auth::UserDirectory(*db).set_disabled(*name, disable, ctx.actor());
      }();
    });
  }

  auto* keys = app.add_subcommand("keys", "Manage API keys (Authorization: Bearer KEY on every API request)");
  keys->require_subcommand(1);
  auto user = std::make_shared<std::string>();
  auto key_name = std::make_shared<std::string>();
  auto* kcreate = keys->add_subcommand("create", "Create an API key for a user; the secret is shown once");
  auto key_role = std::make_shared<std::string>();
  auto key_rpm = std::make_shared<int64_t>(0);
  auto key_tpm = std::make_shared<int64_t>(0);
  kcreate->add_option("--user", *user, "The key's user")->required();
  kcreate->add_option("--role", *key_role,
                      "Create the user with this role first when it does not exist (viewer, user, editor, reviewer, "
                      "admin); an existing user must already have it");
  kcreate->add_option("--name", *key_name, "What the key is for");
  kcreate->add_option("--rpm", *key_rpm, "This key's own limit of requests per minute on /v1 (default: the server's)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  kcreate->add_option("--tpm", *key_tpm, "This key's own limit of tokens per minute on /v1 (default: the server's)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  kcreate->callback([&ctx, &outcome, user, key_name, key_role, key_rpm, key_tpm] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      auth::UserDirectory users(*db);
      if (!key_role->empty()) {
        KEEL_ASSIGN_OR_RETURN(auth::Role role, auth::parse_role(*key_role));
        auto existing = users.get_user(*user);
        if (existing.ok()) {
          if (existing->role != role) {
            return failed_precondition("user '" + *user + "' already exists with the role " +
                                       std::string(auth::role_name(existing->role)) +
                                       ": change it with `keel users set-role " + *user + " " + *key_role + "`");
          }
        } else if (existing.status().code() == ErrorCode::kNotFound) {
          KEEL_RETURN_IF_ERROR(users.create_user(*user, role, ctx.actor()).status());
        } else {
          return existing.status();
        }
      }
      auth::KeyLimits limits;
      if (*key_rpm > 0) limits.requests_per_minute = *key_rpm;
      if (*key_tpm > 0) limits.tokens_per_minute = *key_tpm;
      KEEL_ASSIGN_OR_RETURN(auth::NewApiKey k, users.create_key(*user, *key_name, ctx.actor(), limits));
      if (ctx.json()) {
        print_json({{"id", k.key.id}, {"user", k.key.user}, {"prefix", k.key.prefix}, {"secret", k.secret},
                    {"requests_per_minute", limits.requests_per_minute ? Json(*limits.requests_per_minute) : Json()},
                    {"tokens_per_minute", limits.tokens_per_minute ? Json(*limits.tokens_per_minute) : Json()}});
      } else {
        std::cout << k.secret << "\n";
        std::cerr << "API key " << k.key.prefix << "... for " << k.key.user
                  << " (store it now: Keel keeps only its hash)\n";
      }
      return Status::Ok();
    }();
  });
  auto* klist = keys->add_subcommand("list", "List API keys (prefixes only)");
  klist->add_option("--user", *user, "Only this user's keys");
  klist->callback([&ctx, &outcome, user] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(std::vector<auth::ApiKey> all, auth::UserDirectory(*db).list_keys(*user));
      Json out = Json::array();
      for (const auto& k : all) {
        auto limit = [](const std::optional<int64_t>& v) { return v ? Json(*v) : Json(); };
        out.push_back({{"id", k.id}, {"user", k.user}, {"prefix", k.prefix}, {"name", k.name},
                       {"created_at", k.created_at}, {"revoked", k.revoked_at.has_value()},
                       {"requests_per_minute", limit(k.limits.requests_per_minute)},
                       {"tokens_per_minute", limit(k.limits.tokens_per_minute)}});
        if (!ctx.json()) {
          std::string limits;
          if (k.limits.requests_per_minute) limits += "  " + std::to_string(*k.limits.requests_per_minute) + " rpm";
          if (k.limits.tokens_per_minute) limits += "  " + std::to_string(*k.limits.tokens_per_minute) + " tpm";
          std::cout << k.prefix << "...  " << k.user << "  " << (k.name.empty() ? "-" : k.name) << limits
                    << (k.revoked_at ? "  (revoked)" : "") << "\n";
        }
      }
      if (ctx.json()) print_json({{"keys", out}});
      return Status::Ok();
    }();
  });
  auto id = std::make_shared<std::string>();
  auto* krevoke = keys->add_subcommand("revoke", "Revoke an API key by id or prefix");
  krevoke->add_option("key", *id, "Key id or prefix")->required();
  krevoke->callback([&ctx, &outcome, id] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      return auth::UserDirectory(*db).revoke_key(*id, ctx.actor());
    }();
  });
}

struct ReviewOptions {
  std::string ref;
  std::string alias = "production";
  std::string comment;
};

void add_review_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  CLI::App* models = app.get_subcommand("models");
  auto opts = std::make_shared<ReviewOptions>();
  auto* request = models->add_subcommand("request-promotion", "Ask reviewers to approve NAME@VERSION for an alias");
  request->add_option("ref", opts->ref, "NAME@VERSION")->required();
  request->add_option("--alias", opts->alias, "The alias to move")->capture_default_str();
  request->add_option("--comment", opts->comment, "Why this version is ready");
  request->callback([&ctx, &outcome, opts] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(VersionRef ref, parse_version_ref(opts->ref));
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      registry::Governance governance(*s.db, *s.blobs);
      KEEL_ASSIGN_OR_RETURN(registry::PromotionRequest r,
                            governance.request_promotion(ref.name, ref.version, opts->alias, opts->comment, ctx.actor()));
      return output_request(ctx, r);
    }();
  });
  for (bool approve : {true, false}) {
    auto* cmd = models->add_subcommand(approve ? "approve" : "reject",
                                       approve ? "Approve a promotion request (moves the alias once the policy is met)"
                                               : "Reject a promotion request");
    cmd->add_option("ref", opts->ref, "NAME@VERSION")->required();
    cmd->add_option("--alias", opts->alias, "The alias of the request")->capture_default_str();
    cmd->add_option("--comment", opts->comment, "Review comment");
    cmd->callback([&ctx, &outcome, opts, approve] {
      outcome = [&]() -> Status {
        KEEL_ASSIGN_OR_RETURN(VersionRef ref, parse_version_ref(opts->ref));
        KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
        KEEL_ASSIGN_OR_RETURN(auth::User reviewer, acting_user(ctx, *s.db));
        registry::Governance governance(*s.db, *s.blobs);
        KEEL_ASSIGN_OR_RETURN(registry::PromotionRequest r,
                              governance.review(ref.name, ref.version, opts->alias, approve, opts->comment, reviewer));
        return output_request(ctx, r);
      }();
    });
  }
  auto name = std::make_shared<std::string>();
  auto* requests = models->add_subcommand("requests", "List a model's promotion requests and what each still needs");
  requests->add_option("name", *name, "Model name")->required();
  requests->callback([&ctx, &outcome, name] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      KEEL_ASSIGN_OR_RETURN(std::vector<registry::PromotionRequest> all,
                            registry::Governance(*s.db, *s.blobs).requests(*name));
      Json out = Json::array();
      for (const auto& r : all) {
        out.push_back(registry::to_json(r));
        if (!ctx.json()) print_request(r);
      }
      if (ctx.json()) print_json({{"requests", out}});
      return Status::Ok();
    }();
  });
  auto alias = std::make_shared<std::string>();
  auto remove = std::make_shared<bool>(false);
  auto* alias_cmd = models->add_subcommand("alias", "Point an alias at NAME@VERSION (protected aliases need the policy met)");
  alias_cmd->add_option("ref", opts->ref, "NAME@VERSION, or NAME with --delete")->required();
  alias_cmd->add_option("alias", *alias, "Alias, e.g. staging")->required();
  alias_cmd->add_flag("--delete", *remove, "Remove the alias instead");
  alias_cmd->callback([&ctx, &outcome, opts, alias, remove] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      registry::ModelRegistry models(*s.db, *s.blobs);
      if (*remove) return models.delete_alias(opts->ref, *alias, ctx.actor());
      KEEL_ASSIGN_OR_RETURN(VersionRef ref, parse_version_ref(opts->ref));
      KEEL_RETURN_IF_ERROR(models.set_alias(ref.name, *alias, ref.version, ctx.actor()));
      if (!ctx.json()) std::cout << ref.name << "@" << *alias << " -> version " << ref.version << "\n";
      return Status::Ok();
    }();
  });
  auto* archive = models->add_subcommand("archive", "Retire NAME@VERSION: no longer servable or promotable");
  archive->add_option("ref", opts->ref, "NAME@VERSION")->required();
  archive->callback([&ctx, &outcome, opts] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(VersionRef ref, parse_version_ref(opts->ref));
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      return registry::Governance(*s.db, *s.blobs).archive(ref.name, ref.version, ctx.actor());
    }();
  });
  auto policy_file = std::make_shared<std::string>();
  auto* policy = models->add_subcommand("policy", "Show a model's promotion policy, or set it from a JSON file");
  policy->add_option("name", *name, "Model name")->required();
  policy->add_option("--set", *policy_file,
                     "JSON file: {\"protected_aliases\": [...], \"required_checks\": [...], \"required_approvals\": N}");
  policy->callback([&ctx, &outcome, name, policy_file] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      registry::Governance governance(*s.db, *s.blobs);
      if (!policy_file->empty()) {
        std::ifstream in(*policy_file);
        if (!in) return not_found("cannot read policy file " + *policy_file);
        std::stringstream text;
        text << in.rdbuf();
        KEEL_ASSIGN_OR_RETURN(Json j, parse_json(text.str()));
        KEEL_ASSIGN_OR_RETURN(registry::Policy p, registry::parse_policy(j));
        KEEL_RETURN_IF_ERROR(governance.set_policy(*name, p, ctx.actor()));
      }
      KEEL_ASSIGN_OR_RETURN(registry::Policy p, governance.policy(*name));
      std::cout << dump_json(registry::to_json(p), 2) << "\n";
      return Status::Ok();
    }();
  });
  struct CheckOptions {
    std::string ref, name, details;
    bool passed = false, failed = false;
    std::optional<double> value;
  };
  auto check = std::make_shared<CheckOptions>();
  auto* check_cmd = models->add_subcommand("check", "Record a named check result on NAME@VERSION (e.g. from an eval suite)");
  check_cmd->add_option("ref", check->ref, "NAME@VERSION")->required();
  check_cmd->add_option("--name", check->name, "Check name, e.g. eval.bleu")->required();
  auto* passed = check_cmd->add_flag("--passed", check->passed, "The check passed");
  auto* failed = check_cmd->add_flag("--failed", check->failed, "The check failed");
  passed->excludes(failed);
  check_cmd->add_option("--value", check->value, "A number the check measured");
  check_cmd->add_option("--details", check->details, "Free text");
  check_cmd->callback([&ctx, &outcome, check] {
    outcome = [&]() -> Status {
      if (!check->passed && !check->failed) return invalid_argument("say --passed or --failed");
      KEEL_ASSIGN_OR_RETURN(VersionRef ref, parse_version_ref(check->ref));
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      registry::CheckResult result{check->name, check->passed, check->value, check->details, 0, ""};
      return registry::Governance(*s.db, *s.blobs).record_check(ref.name, ref.version, result, ctx.actor());
    }();
  });
}

void add_lineage_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  CLI::App* models = app.get_subcommand("models");
  auto ref = std::make_shared<std::string>();
  auto* lineage = models->add_subcommand("lineage", "Where NAME@VERSION came from: run, datasets, base model");
  lineage->add_option("ref", *ref, "NAME@VERSION")->required();
  lineage->callback([&ctx, &outcome, ref] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(VersionRef r, parse_version_ref(*ref));
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      KEEL_ASSIGN_OR_RETURN(Json trace, registry::Lineage(*s.db, *s.blobs).trace(r.name, r.version));
      if (ctx.json()) {
        print_json(trace);
        return Status::Ok();
      }
      const Json* node = &trace;
      std::string indent;
      while (node != nullptr && node->contains("model")) {
        std::cout << indent << (*node)["model"].get<std::string>() << "@" << (*node)["version"].get<int64_t>() << "  ("
                  << (*node)["format"].get<std::string>() << ", by "
                  << ((*node)["author"].get<std::string>().empty() ? "-" : (*node)["author"].get<std::string>()) << ")\n";
        const Json& run = (*node)["run"];
        if (!run.is_null()) {
          std::cout << indent << "  run " << run["id"].get<std::string>()
                    << (run.contains("name") ? " (" + run["name"].get<std::string>() + ")" : " (missing)") << "\n";
        }
        for (const auto& d : (*node)["datasets"]) {
          std::cout << indent << "  dataset " << d["name"].get<std::string>() << " digest " << d["digest"].get<std::string>()
                    << "\n";
        }
        const Json& base = (*node)["base_model"];
        if (base.is_null()) break;
        std::cout << indent << "  base model " << base["reference"].get<std::string>() << "\n";
        node = &base;
        indent += "    ";
      }
      return Status::Ok();
    }();
  });
  auto out_path = std::make_shared<std::string>();
  auto* card = models->add_subcommand("card", "Write the model card (Markdown) of NAME@VERSION");
  card->add_option("ref", *ref, "NAME@VERSION")->required();
  card->add_option("--out", *out_path, "Write to this file instead of stdout");
  card->callback([&ctx, &outcome, ref, out_path] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(VersionRef r, parse_version_ref(*ref));
      KEEL_ASSIGN_OR_RETURN(Stores s, stores(ctx));
      KEEL_ASSIGN_OR_RETURN(std::string markdown, registry::Lineage(*s.db, *s.blobs).model_card(r.name, r.version));
      if (out_path->empty()) {
        std::cout << markdown;
        return Status::Ok();
      }
      std::ofstream f(*out_path);
      f << markdown;
      f.close();
      if (!f) return os_error("cannot write " + *out_path, errno);
      return Status::Ok();
    }();
  });
}

void add_audit_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* audit = app.add_subcommand("audit", "Read the append-only audit log");
  audit->require_subcommand(1);
  auto q = std::make_shared<store::AuditQuery>();
  auto* list = audit->add_subcommand("list", "Audit events, newest first");
  list->add_option("--actor", q->actor, "Only this user's events");
  list->add_option("--action", q->action_prefix, "Action or prefix, e.g. model.alias");
  list->add_option("--target", q->target, "Object, e.g. model:chat (a trailing * matches a prefix)");
  list->add_option("--since", q->since, "Epoch milliseconds");
  list->add_option("--limit", q->limit, "Most events to show")->capture_default_str();
  list->callback([&ctx, &outcome, q] {
    outcome = [&]() -> Status {
      KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
      KEEL_ASSIGN_OR_RETURN(std::vector<store::AuditEvent> events, store::list_audit_events(*db, *q));
      if (ctx.json()) {
        Json out = Json::array();
        for (const auto& e : events) out.push_back(store::to_json(e));
        print_json({{"events", out}});
        return Status::Ok();
      }
      for (const auto& e : events) {
        std::cout << format_time(e.at) << "  " << e.actor << "  " << e.action << "  " << e.target << "  "
                  << dump_json(e.details) << "\n";
      }
      return Status::Ok();
    }();
  });
}

}  // namespace

void add_governance_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  add_user_commands(app, ctx, outcome);
  add_review_commands(app, ctx, outcome);
  add_lineage_commands(app, ctx, outcome);
  add_audit_commands(app, ctx, outcome);
}

}  // namespace keel::cli
