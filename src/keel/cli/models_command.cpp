#include <sys/stat.h>

#include <iostream>
#include <map>

#include <spdlog/spdlog.h>

#include "keel/cli/commands.h"
#include "keel/cli/default_model.h"
#include "keel/cli/model_files.h"
#include "keel/engine/ggml_types.h"
#include "keel/engine/gguf.h"
#include "keel/registry/adapters.h"
#include "keel/registry/model_registry.h"
#include "keel/registry/remote_models.h"

namespace keel::cli {

Result<registry::ModelFileFacts> read_model_facts(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return os_error("cannot read model file " + path, errno);
  if (S_ISDIR(st.st_mode)) return invalid_argument(path + " is a folder; give the path of a .gguf file");
  auto gguf = engine::GgufFile::open(path);
  if (!gguf.ok()) {
    return Status(gguf.status().code(), "cannot import " + path + ": " + gguf.status().message() +
                                            " (keel imports GGUF model files)");
  }
  const engine::GgufFile& f = **gguf;
  registry::ModelFileFacts facts;
  facts.format = "gguf";
  facts.architecture = f.architecture();
  facts.parameter_count = f.parameter_count();
  facts.metadata["gguf_version"] = f.version();
  facts.metadata["tensor_count"] = f.tensors().size();
  if (auto name = f.get_string("general.name")) facts.metadata["general_name"] = *name;
  if (auto ctx = f.get_int(facts.architecture + ".context_length")) facts.metadata["context_length"] = *ctx;
  if (auto tok = f.get_string("tokenizer.ggml.model")) facts.metadata["tokenizer"] = *tok;
  // The quantisation is the tensor type that holds most of the weights.
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : f.tensors()) {
    if (auto info = engine::ggml_type_info(t.type)) bytes_by_type[std::string(info->name)] += t.size_bytes;
  }
  std::string main_type;
  uint64_t most = 0;
  for (const auto& [type, bytes] : bytes_by_type) {
    if (bytes > most) {
      most = bytes;
      main_type = type;
    }
  }
  if (!main_type.empty()) facts.metadata["quantization"] = main_type;
  if (f.get_string("general.type").value_or("") == "adapter") {
    facts.metadata["kind"] = registry::kLoraAdapterKind;
    if (const engine::GgufValue* alpha = f.find("adapter.lora.alpha")) {
      if (auto a = alpha->as_double()) facts.metadata["lora_alpha"] = *a;
    }
  }
  return facts;
}

namespace {


void print_version_details(const registry::ModelVersion& v) {
  auto meta = [&](const char* key) -> std::string {
    if (!v.metadata.contains(key)) return "-";
    const Json& j = v.metadata[key];
    return j.is_string() ? j.get<std::string>() : j.dump();
  };
  auto or_dash = [](const std::string& text) { return text.empty() ? std::string("-") : text; };
  std::cout << "name:          " << v.model_name << "\n"
            << "version:       " << v.version << (v.archived_at ? "  (archived)" : "") << "\n"
            << "format:        " << v.format << "\n";
  if (v.format == "gguf") {
    std::cout << "architecture:  " << or_dash(v.architecture) << "\n"
              << "parameters:    " << v.parameter_count << " (" << human_count(v.parameter_count) << ")\n"
              << "quantization:  " << meta("quantization") << "\n"
              << "context:       " << meta("context_length") << "\n"
              << "size:          " << v.size_bytes << " bytes (" << human_bytes(v.size_bytes) << ")\n"
              << "sha256:        " << or_dash(v.artifact_sha256) << "\n";
  } else if (registry::is_remote(v)) {
    std::cout << "upstream model:" << " " << meta("upstream_model") << "\n"
              << "API key from:  " << (meta("api_key_env") == "" ? "-" : "$" + meta("api_key_env")) << "\n";
  }
  std::cout << "source:        " << v.source << "\n";
  if (!v.run_id.empty()) std::cout << "run:           " << v.run_id << "\n";
  if (!v.description.empty()) std::cout << "description:   " << v.description << "\n";
  if (!v.aliases.empty()) {
    std::string aliases;
    for (const auto& a : v.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
    std::cout << "aliases:       " << aliases << "\n";
  }
  for (const auto& t : v.tags) std::cout << "tag:           " << t.key << " = " << t.value << "\n";
  std::cout << "registered by: " << or_dash(v.user_id) << "\n"
            << "created:       " << format_time(v.created_at) << " UTC\n";
}

Status run_import(CliContext& ctx, const std::string& path, const std::string& name, const std::string& base) {
  KEEL_RETURN_IF_ERROR(registry::validate_model_name(name));
  KEEL_ASSIGN_OR_RETURN(registry::ModelFileFacts facts, read_model_facts(path));
  const bool adapter = facts.metadata.value("kind", "") == registry::kLoraAdapterKind;
  if (adapter && base.empty()) {
    return invalid_argument(path + " is a LoRA adapter: give --base MODEL, the model it was trained on");
  }
  if (!adapter && !base.empty()) return invalid_argument("--base is for LoRA adapters; " + path + " is a model");
  if (adapter) {
    KEEL_ASSIGN_OR_RETURN(registry::ImportResult imported, register_adapter(ctx, path, name, base, ""));
    const auto& v = imported.version;
    if (ctx.json()) {
      Json out = registry::to_json(v);
      out["created"] = imported.created;
      print_json(out);
    } else {
      std::cout << "imported " << v.model_name << " version " << v.version << " (LoRA adapter, "
                << human_count(v.parameter_count) << " parameters, sha256 " << v.artifact_sha256.substr(0, 12) << ")\n";
    }
    return Status::Ok();
  }
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  struct stat st{};
  ::stat(path.c_str(), &st);
  ProgressBar bar("importing " + name, static_cast<uint64_t>(st.st_size));
  KEEL_ASSIGN_OR_RETURN(registry::ImportResult imported,
                        models.import_file(path, name, facts, ctx.actor(), [&](uint64_t done) { bar.update(done); }));
  bar.finish();
  if (ctx.json()) {
    Json out = registry::to_json(imported.version);
    out["created"] = imported.created;
    print_json(out);
    return Status::Ok();
  }
  const auto& v = imported.version;
  if (imported.created) {
    std::cout << "imported " << v.model_name << " version " << v.version << " (" << v.architecture << ", "
              << human_count(v.parameter_count) << " parameters, " << human_bytes(v.size_bytes) << ", sha256 "
              << v.artifact_sha256.substr(0, 12) << ")\n";
  } else {
    std::cout << v.model_name << " version " << v.version << " already holds this file (sha256 "
              << v.artifact_sha256.substr(0, 12) << "); nothing to do\n";
  }
  return Status::Ok();
}

struct RemoteFlags {
  std::string name;
  registry::RemoteEndpoint endpoint;
  std::string description;
};

Status run_add_remote(CliContext& ctx, const RemoteFlags& f) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v,
                        registry::register_remote_model(models, f.name, f.endpoint, f.description, ctx.actor()));
  if (ctx.json()) {
    print_json(registry::to_json(v));
    return Status::Ok();
  }
  std::cout << "registered " << v.model_name << " version " << v.version << ": the upstream " << f.endpoint.base_url
            << " (model '" << f.endpoint.upstream_model << "'"
            << (f.endpoint.api_key_env.empty() ? std::string(", no API key")
                                               : ", API key from $" + f.endpoint.api_key_env)
            << ")\n";
  return Status::Ok();
}

Status run_list(CliContext& ctx) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  KEEL_ASSIGN_OR_RETURN(auto list, models.list());
  if (ctx.json()) {
    Json out = Json::array();
    for (const auto& m : list) {
      Json j = {{"name", m.name}, {"versions", m.version_count}, {"created_at", m.created_at}};
      j["latest"] = m.latest ? registry::to_json(*m.latest) : Json(nullptr);
      out.push_back(j);
    }
    print_json(out);
    return Status::Ok();
  }
  if (list.empty()) {
    std::cout << "no models yet: import one with `keel models import PATH --name NAME`\n";
    return Status::Ok();
  }
  std::printf("%-28s %7s %-8s %-10s %8s %-7s %10s  %s\n", "NAME", "VERSION", "FORMAT", "ARCH", "PARAMS", "QUANT",
              "SIZE", "SHA256");
  for (const auto& m : list) {
    if (!m.latest) continue;
    const auto& v = *m.latest;
    std::string quant = v.metadata.value("quantization", std::string("-"));
    std::printf("%-28s %7lld %-8s %-10s %8s %-7s %10s  %s\n", m.name.c_str(), static_cast<long long>(v.version),
                v.format.c_str(), v.architecture.c_str(), human_count(v.parameter_count).c_str(), quant.c_str(),
                human_bytes(v.size_bytes).c_str(), v.artifact_sha256.substr(0, 12).c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

Status run_show(CliContext& ctx, const std::string& reference, bool all_versions) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  if (all_versions) {
    KEEL_ASSIGN_OR_RETURN(auto versions, models.versions(reference));
    if (ctx.json()) {
      Json out = Json::array();
      for (const auto& v : versions) out.push_back(registry::to_json(v));
      print_json(out);
      return Status::Ok();
    }
    for (size_t i = 0; i < versions.size(); ++i) {
      if (i > 0) std::cout << "\n";
      print_version_details(versions[i]);
    }
    return Status::Ok();
  }
  KEEL_ASSIGN_OR_RETURN(registry::ModelVersion v, models.get(reference));
  if (ctx.json()) {
    print_json(registry::to_json(v));
  } else {
    print_version_details(v);
  }
  return Status::Ok();
}

}  // namespace

Status ensure_default_model(CliContext& ctx, const std::string& path) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  auto existing = models.get(kDefaultModelName);
  if (existing.ok()) return Status::Ok();
  if (existing.status().code() != ErrorCode::kNotFound) return existing.status();
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    return failed_precondition("the default model " + std::string(kDefaultModelName) + " is not imported and " + path +
                               " does not exist: run `make run` (or scripts/fetch-default-model) to fetch it, "
                               "or pass --default-model PATH");
  }
  KEEL_ASSIGN_OR_RETURN(registry::ModelFileFacts facts, read_model_facts(path));
  ProgressBar bar(std::string("importing ") + kDefaultModelName, static_cast<uint64_t>(st.st_size));
  KEEL_ASSIGN_OR_RETURN(registry::ImportResult imported,
                        models.import_file(path, kDefaultModelName, facts, ctx.actor(), [&](uint64_t d) { bar.update(d); }));
  bar.finish();
  if (imported.version.artifact_sha256 != kDefaultModelSha256) {
    spdlog::warn("the default model file {} has sha256 {}, not the expected {}", path, imported.version.artifact_sha256,
                 kDefaultModelSha256);
  }
  return Status::Ok();
}

void add_models_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* models = app.add_subcommand("models", "Import, list and inspect models in the registry");
  models->require_subcommand(1);

  auto* import = models->add_subcommand("import", "Copy a model file (GGUF) into the artifact store and register it");
  auto path = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  import->add_option("path", *path, "Model file (.gguf)")->required();
  import->add_option("--name", *name, "Registry name (letters, digits, '.', '_', '-')")->required();
  auto base = std::make_shared<std::string>();
  import->add_option("--base", *base, "For a LoRA adapter: the model it was trained on (registered NAME[@VERSION] or file)");
  import->callback([&ctx, &outcome, path, name, base] { outcome = run_import(ctx, *path, *name, *base); });

  auto* remote = models->add_subcommand(
      "add-remote", "Register an OpenAI-compatible endpoint (vLLM, llama.cpp's server, another Keel, a hosted API) as a "
                    "model version that keel serve proxies to");
  auto rf = std::make_shared<RemoteFlags>();
  remote->add_option("name", rf->name, "Registry name (created when it does not exist; a new version otherwise)")
      ->required();
  remote->add_option("--url", rf->endpoint.base_url, "The upstream's base URL, up to /v1: http://host:8000/v1")
      ->required();
  remote->add_option("--upstream-model", rf->endpoint.upstream_model, "The model name the upstream knows")
      ->required();
  remote->add_option("--api-key-env", rf->endpoint.api_key_env,
                     "Environment variable of the serving process that holds the upstream's API key (the key itself "
                     "is never stored)");
  remote->add_option("--description", rf->description, "What this version is");
  remote->callback([&ctx, &outcome, rf] { outcome = run_add_remote(ctx, *rf); });

  auto* list = models->add_subcommand("list", "List registered models with their latest version");
  list->callback([&ctx, &outcome] { outcome = run_list(ctx); });

  auto* show = models->add_subcommand("show", "Show a model version: NAME (latest) or NAME@VERSION");
  auto reference = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  show->add_option("model", *reference, "NAME or NAME@VERSION")->required();
  show->add_flag("--all-versions", *all, "Show every version of the model");
  show->callback([&ctx, &outcome, reference, all] { outcome = run_show(ctx, *reference, *all); });
}

}  // namespace keel::cli
