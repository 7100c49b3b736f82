#include "keel/cli/model_files.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include <unistd.h>

#include "keel/registry/adapters.h"
#include "keel/registry/model_registry.h"
#include "keel/train/adapter_gguf.h"
#include "keel/train/merge.h"
#include "keel/util/file.h"
#include "keel/util/id.h"

namespace keel::cli {

Result<std::string> resolve_model_path(CliContext& ctx, const std::string& model) {
  struct stat st {};
  if (::stat(model.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return model;
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  auto version = models.get(model);
  if (!version.ok()) {
    return Status(version.status().code(), "'" + model + "' is neither a model file nor a registered model (" +
                                               version.status().message() + ")");
  }
  auto path = blobs->local_path(version->artifact_sha256);
  if (!path) {
    return not_found("the file of " + model + " is missing from the artifact store (run `keel artifacts verify`)");
  }
  return *path;
}

Result<std::unique_ptr<engine::GgufFile>> fold_adapter_file(const std::string& scratch_dir, const std::string& base_file,
                                                            const std::string& adapter_file) {
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> base, engine::GgufFile::open(base_file));
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::Model> model, engine::Model::load(*base));
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> adapter, engine::GgufFile::open(adapter_file));
  auto lora = train::read_lora_adapter(*adapter, *model);
  if (!lora.ok()) return Status(lora.status().code(), adapter_file + ": " + lora.status().message());
  KEEL_RETURN_IF_ERROR(make_dirs(scratch_dir));
  const std::string merged = scratch_dir + "/merged-" + new_id() + ".gguf";
  KEEL_RETURN_IF_ERROR(train::write_merged_model(merged, *base, *model, *lora, engine::GgmlType::kF16));
  auto file = engine::GgufFile::open(merged);
  ::unlink(merged.c_str());  // the mapping keeps the bytes
  return file;
}

namespace {

// The model in `file`: its tokenizer, and its weights when with_weights.
Result<LoadedModel> model_of(std::unique_ptr<engine::GgufFile> file, bool with_weights) {
  LoadedModel m;
  m.file = std::move(file);
  KEEL_ASSIGN_OR_RETURN(m.tokenizer, engine::Tokenizer::from_gguf(*m.file));
  if (with_weights) {
    KEEL_ASSIGN_OR_RETURN(m.model, engine::Model::load(*m.file));
  }
  return m;
}

}  // namespace

Result<LoadedModel> load_model(CliContext& ctx, const std::string& reference, bool with_weights) {
  KEEL_ASSIGN_OR_RETURN(std::string path, resolve_model_path(ctx, reference));
  if (path != reference) {  // a registered version: an adapter runs folded into its base
    KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
    KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
    KEEL_ASSIGN_OR_RETURN(registry::ModelVersion version, registry::ModelRegistry(*db, *blobs).get(reference));
    if (registry::is_lora_adapter(version)) {
      const std::optional<std::string> base = registry::adapter_base(version);
      if (!base) return failed_precondition(reference + " is a LoRA adapter without a base_model tag naming its base");
      KEEL_ASSIGN_OR_RETURN(std::string base_path, resolve_model_path(ctx, *base));
      auto folded = fold_adapter_file(ctx.options().home + "/tmp", base_path, path);
      if (!folded.ok()) return folded.status().with_context(reference + " on its base " + *base);
      return model_of(std::move(*folded), with_weights);
    }
  }
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file, engine::GgufFile::open(path));
  return model_of(std::move(file), with_weights);
}

Result<registry::ImportResult> register_adapter(CliContext& ctx, const std::string& adapter, const std::string& name,
                                                const std::string& base, const std::string& run_id) {
  KEEL_RETURN_IF_ERROR(registry::validate_model_name(name));
  KEEL_ASSIGN_OR_RETURN(registry::ModelFileFacts facts, read_model_facts(adapter));
  if (facts.metadata.value("kind", "") != registry::kLoraAdapterKind) {
    return invalid_argument(adapter + " is not a LoRA adapter (general.type is not \"adapter\")");
  }
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  // The base by its exact version (or absolute path), and the adapter checked against it.
  std::string pinned = base;
  struct stat st {};
  if (::stat(base.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    char resolved[PATH_MAX];
    if (::realpath(base.c_str(), resolved) != nullptr) pinned = resolved;
  } else {
    auto version = models.resolve(base);
    if (!version.ok()) return Status(version.status().code(), "the base " + base + ": " + version.status().message());
    pinned = version->model_name + "@" + std::to_string(version->version);
  }
  auto base_model = load_model(ctx, pinned, true);
  if (!base_model.ok()) return base_model.status().with_context("the base " + pinned);
  LoadedModel& m = *base_model;
  if (m.file->get_string("general.type").value_or("model") == "adapter") {
    return invalid_argument("the base " + base + " is itself an adapter");
  }
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file, engine::GgufFile::open(adapter));
  auto fits = train::read_lora_adapter(*file, *m.model);
  if (!fits.ok()) return invalid_argument(adapter + " does not fit " + pinned + ": " + fits.status().message());
  KEEL_ASSIGN_OR_RETURN(registry::ImportResult imported, models.import_file(adapter, name, facts, ctx.actor()));
  const registry::ModelVersion& v = imported.version;
  KEEL_RETURN_IF_ERROR(models.set_version_tag(v.model_name, v.version, {"base_model", pinned}, ctx.actor()));
  if (!run_id.empty()) KEEL_RETURN_IF_ERROR(models.set_version_run(v.model_name, v.version, run_id, ctx.actor()));
  return imported;
}

Result<LoadedModel> load_model_with_lora(CliContext& ctx, const std::string& reference, const std::string& adapter) {
  KEEL_ASSIGN_OR_RETURN(std::string path, resolve_model_path(ctx, reference));
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> folded,
                        fold_adapter_file(ctx.options().home + "/tmp", path, adapter));
  return model_of(std::move(folded), true);
}

}  // namespace keel::cli
