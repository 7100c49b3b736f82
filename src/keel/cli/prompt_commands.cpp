// keel prompts create|list|show|render|diff|alias: the prompt registry from the
// terminal, with --json for scripts. Prompts are the same objects the mlflow client's
// register_prompt / load_prompt see.
#include <iostream>

#include "keel/cli/commands.h"
#include "keel/prompts/prompt_registry.h"
#include "keel/registry/model_registry.h"
#include "keel/util/file.h"

namespace keel::cli {
namespace {

struct PromptContext {
  std::unique_ptr<registry::ModelRegistry> models;
  std::unique_ptr<prompts::PromptRegistry> prompts;
};

Result<PromptContext> open_prompts(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  PromptContext pc;
  pc.models = std::make_unique<registry::ModelRegistry>(*db, *blobs);
  pc.prompts = std::make_unique<prompts::PromptRegistry>(*pc.models);
  return pc;
}

// "k=v" -> (k, v); the key must be non-empty.
Result<std::pair<std::string, std::string>> split_assignment(const std::string& text, const char* flag) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return invalid_argument(std::string(flag) + " takes KEY=VALUE, got '" + text + "'");
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

// A --param value: a JSON number, boolean or null when it reads as one, else a string.
Json param_value(const std::string& text) {
  auto parsed = parse_json(text);
  if (parsed.ok() && (parsed->is_number() || parsed->is_boolean() || parsed->is_null())) return *parsed;
  return Json(text);
}

Result<Json> read_json_file(const std::string& path, const char* what) {
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(path));
  auto parsed = parse_json(text);
  if (!parsed.ok()) return parsed.status().with_context(std::string("reading ") + what + " " + path);
  return parsed;
}

struct CreateOptions {
  std::string name;
  std::string template_text;
  std::string template_file;
  std::string messages_file;
  std::string commit_message;
  std::vector<std::string> params;
};

void print_version(const prompts::PromptVersion& v) {
  std::cout << "prompt:     " << v.name << " version " << v.version << "\n"
            << "type:       " << (v.is_chat ? "chat" : "text") << "\n"
            << "commit:     " << (v.commit_message.empty() ? "-" : v.commit_message) << "\n"
            << "created:    " << format_time(v.created_at) << " by " << (v.user_id.empty() ? "-" : v.user_id) << "\n";
  std::string variables, aliases;
  for (const auto& name : v.variables) variables += (variables.empty() ? "" : ", ") + name;
  for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
  std::cout << "variables:  " << (variables.empty() ? "-" : variables) << "\n"
            << "aliases:    " << (aliases.empty() ? "-" : aliases) << "\n";
  if (v.model_parameters.is_object() && !v.model_parameters.empty()) {
    std::cout << "parameters: " << dump_json(v.model_parameters) << "\n";
  }
  for (const auto& t : v.tags) std::cout << "tag:        " << t.key << "=" << t.value << "\n";
  if (v.is_chat) {
    for (const auto& m : v.messages) std::cout << "--- " << m.role << "\n" << m.content << "\n";
  } else {
    std::cout << "---\n" << v.template_text << (v.template_text.empty() || v.template_text.back() != '\n' ? "\n" : "");
  }
}

Status run_create(CliContext& ctx, const CreateOptions& o) {
  int sources = !o.template_text.empty() + !o.template_file.empty() + !o.messages_file.empty();
  if (sources != 1) return invalid_argument("give exactly one of --template, --template-file or --messages-file");
  prompts::NewPromptVersion spec;
  spec.commit_message = o.commit_message;
  if (!o.template_text.empty()) spec.template_text = o.template_text;
  if (!o.template_file.empty()) {
    KEEL_ASSIGN_OR_RETURN(spec.template_text, read_file(o.template_file));
  }
  if (!o.messages_file.empty()) {
    KEEL_ASSIGN_OR_RETURN(Json array, read_json_file(o.messages_file, "messages file"));
    auto messages = prompts::messages_from_json(array);
    if (!messages.ok()) return messages.status().with_context(o.messages_file);
    spec.messages = std::move(messages).value();
  }
  if (!o.params.empty()) spec.model_parameters = Json::object();
  for (const auto& p : o.params) {
    KEEL_ASSIGN_OR_RETURN(auto kv, split_assignment(p, "--param"));
    spec.model_parameters[kv.first] = param_value(kv.second);
  }
  KEEL_ASSIGN_OR_RETURN(PromptContext pc, open_prompts(ctx));
  KEEL_ASSIGN_OR_RETURN(prompts::PromptVersion v, pc.prompts->create_version(o.name, spec, ctx.actor()));
  if (ctx.json()) {
    print_json(prompts::to_json(v));
  } else {
    std::string variables;
    for (const auto& name : v.variables) variables += (variables.empty() ? "" : ", ") + name;
    std::cout << "created prompt " << v.name << " version " << v.version
              << " (variables: " << (variables.empty() ? "none" : variables) << ")\n";
  }
  return Status::Ok();
}

Status run_list(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(PromptContext pc, open_prompts(ctx));
  KEEL_ASSIGN_OR_RETURN(std::vector<prompts::PromptSummary> list, pc.prompts->list());
  if (ctx.json()) {
    Json out = Json::array();
    for (const auto& p : list) out.push_back(prompts::to_json(p));
    print_json({{"prompts", out}});
    return Status::Ok();
  }
  if (list.empty()) {
    std::cout << "no prompts yet (create one with `keel prompts create NAME --template TEXT`)\n";
    return Status::Ok();
  }
  auto pad = [](std::string s, size_t width) {
    if (s.size() >= width) return s + " ";
    s.resize(width, ' ');
    return s;
  };
  std::cout << pad("NAME", 32) << pad("LATEST", 8) << pad("UPDATED", 21) << "ALIASES\n";
  for (const auto& p : list) {
    std::string aliases;
    for (const auto& [alias, version] : p.aliases) {
      aliases += (aliases.empty() ? "" : ", ") + alias + "=" + std::to_string(version);
    }
    std::cout << pad(p.name, 32) << pad(p.latest_version == 0 ? "-" : std::to_string(p.latest_version), 8)
              << pad(format_time(p.updated_at), 21) << (aliases.empty() ? "-" : aliases) << "\n";
  }
  return Status::Ok();
}

Status run_show(CliContext& ctx, const std::string& reference) {
  auto [name, ref] = prompts::split_prompt_reference(reference);
  KEEL_ASSIGN_OR_RETURN(PromptContext pc, open_prompts(ctx));
  KEEL_ASSIGN_OR_RETURN(prompts::PromptVersion v, pc.prompts->get(name, ref));
  if (ctx.json()) {
    print_json(prompts::to_json(v));
  } else {
    print_version(v);
  }
  return Status::Ok();
}

struct RenderOptions {
  std::string reference;
  std::vector<std::string> vars;
  std::string vars_file;
};

Status run_render(CliContext& ctx, const RenderOptions& o) {
  Json variables = Json::object();
  if (!o.vars_file.empty()) {
    KEEL_ASSIGN_OR_RETURN(variables, read_json_file(o.vars_file, "variables file"));
    if (!variables.is_object()) return invalid_argument(o.vars_file + " must hold a JSON object of name: value");
  }
  for (const auto& v : o.vars) {  // --var wins over the file
    KEEL_ASSIGN_OR_RETURN(auto kv, split_assignment(v, "--var"));
    variables[kv.first] = kv.second;
  }
  auto [name, ref] = prompts::split_prompt_reference(o.reference);
  KEEL_ASSIGN_OR_RETURN(PromptContext pc, open_prompts(ctx));
  KEEL_ASSIGN_OR_RETURN(prompts::RenderedPrompt r, pc.prompts->render(name, ref, variables));
  if (ctx.json()) {
    print_json(prompts::to_json(r));
  } else if (r.is_chat) {
    for (const auto& m : r.messages) std::cout << "[" << m.role << "]\n" << m.content << "\n";
  } else {
    std::cout << r.text << (r.text.empty() || r.text.back() != '\n' ? "\n" : "");
  }
  return Status::Ok();
}

Status run_diff(CliContext& ctx, const std::string& name, const std::string& from, const std::string& to) {
  KEEL_ASSIGN_OR_RETURN(PromptContext pc, open_prompts(ctx));
  KEEL_ASSIGN_OR_RETURN(prompts::PromptDiff d, pc.prompts->diff(name, from, to));
  if (ctx.json()) {
    print_json(prompts::to_json(d));
    return Status::Ok();
  }
  if (d.template_diff.empty()) {
    std::cout << "templates of " << name << "@" << d.from_version << " and @" << d.to_version << " are the same\n";
  } else {
    std::cout << d.template_diff;
  }
  if (!d.parameter_changes.empty()) std::cout << "model parameters:\n";
  for (const auto& c : d.parameter_changes) {
    std::cout << "  " << c.key << ": " << (c.from.is_null() ? "-" : c.from.dump()) << " -> "
              << (c.to.is_null() ? "-" : c.to.dump()) << "\n";
  }
  return Status::Ok();
}

Status run_alias(CliContext& ctx, const std::string& name, const std::string& alias, int64_t version) {
  KEEL_ASSIGN_OR_RETURN(PromptContext pc, open_prompts(ctx));
  KEEL_RETURN_IF_ERROR(pc.prompts->set_alias(name, alias, version, ctx.actor()));
  if (ctx.json()) {
    print_json({{"name", name}, {"alias", alias}, {"version", version}});
  } else {
    std::cout << name << "@" << alias << " -> version " << version << "\n";
  }
  return Status::Ok();
}

}  // namespace

void add_prompt_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* group = app.add_subcommand("prompts", "Versioned prompt templates: create, list, show, render, diff, alias");
  group->require_subcommand(1);

  auto c = std::make_shared<CreateOptions>();
  auto* create = group->add_subcommand("create", "Create a prompt, or its next version");
  create->add_option("name", c->name, "Prompt name")->required();
  create->add_option("--template,-t", c->template_text, "Template text with {{ variable }} placeholders");
  create->add_option("--template-file", c->template_file, "Read the template from this file");
  create->add_option("--messages-file", c->messages_file,
                     "Chat prompt: a JSON file with a list of {\"role\": ..., \"content\": ...}");
  create->add_option("--message,-m", c->commit_message, "Commit message for this version");
  create->add_option("--param", c->params, "Default model parameter KEY=VALUE (repeatable), e.g. temperature=0.2");
  create->callback([&ctx, &outcome, c] { outcome = run_create(ctx, *c); });

  auto* list = group->add_subcommand("list", "List prompts with their latest version and aliases");
  list->callback([&ctx, &outcome] { outcome = run_list(ctx); });

  auto show_ref = std::make_shared<std::string>();
  auto* show = group->add_subcommand("show", "Show a prompt version (latest, NAME@VERSION or NAME@ALIAS)");
  show->add_option("reference", *show_ref, "NAME, NAME@VERSION or NAME@ALIAS")->required();
  show->callback([&ctx, &outcome, show_ref] { outcome = run_show(ctx, *show_ref); });

  auto r = std::make_shared<RenderOptions>();
  auto* render = group->add_subcommand("render", "Fill a prompt's variables and print the result");
  render->add_option("reference", r->reference, "NAME, NAME@VERSION or NAME@ALIAS")->required();
  render->add_option("--var", r->vars, "Variable NAME=VALUE (repeatable)");
  render->add_option("--vars-file", r->vars_file, "A JSON object of variables");
  render->callback([&ctx, &outcome, r] { outcome = run_render(ctx, *r); });

  auto d = std::make_shared<std::vector<std::string>>();
  auto* diff = group->add_subcommand("diff", "Diff two versions: template lines and model parameters");
  diff->add_option("args", *d, "NAME V1 V2 (versions or aliases)")->required()->expected(3);
  diff->callback([&ctx, &outcome, d] { outcome = run_diff(ctx, (*d)[0], (*d)[1], (*d)[2]); });

  auto a_name = std::make_shared<std::string>();
  auto a_alias = std::make_shared<std::string>();
  auto a_version = std::make_shared<int64_t>(0);
  auto* alias = group->add_subcommand("alias", "Point an alias (e.g. production) at a version");
  alias->add_option("name", *a_name, "Prompt name")->required();
  alias->add_option("alias", *a_alias, "Alias")->required();
  alias->add_option("version", *a_version, "Version number")->required()->check(CLI::PositiveNumber);
  alias->callback([&ctx, &outcome, a_name, a_alias, a_version] {
    outcome = run_alias(ctx, *a_name, *a_alias, *a_version);
  });
}

}  // namespace keel::cli
