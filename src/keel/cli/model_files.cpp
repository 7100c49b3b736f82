#include "keel/cli/model_files.h"

#include <sys/stat.h>

#include <unistd.h>

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

Result<LoadedModel> load_model(CliContext& ctx, const std::string& reference, bool with_weights) {
  KEEL_ASSIGN_OR_RETURN(std::string path, resolve_model_path(ctx, reference));
  LoadedModel m;
  KEEL_ASSIGN_OR_RETURN(m.file, engine::GgufFile::open(path));
  KEEL_ASSIGN_OR_RETURN(m.tokenizer, engine::Tokenizer::from_gguf(*m.file));
  if (with_weights) {
    KEEL_ASSIGN_OR_RETURN(m.model, engine::Model::load(*m.file));
  }
  return m;
}

Result<LoadedModel> load_model_with_lora(CliContext& ctx, const std::string& reference, const std::string& adapter) {
  KEEL_ASSIGN_OR_RETURN(LoadedModel base, load_model(ctx, reference, true));
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> adapter_file, engine::GgufFile::open(adapter));
  auto lora = train::read_lora_adapter(*adapter_file, *base.model);
  if (!lora.ok()) return Status(lora.status().code(), adapter + ": " + lora.status().message());
  const std::string dir = ctx.options().home + "/tmp";
  KEEL_RETURN_IF_ERROR(make_dirs(dir));
  const std::string merged = dir + "/merged-" + new_id() + ".gguf";
  KEEL_RETURN_IF_ERROR(train::write_merged_model(merged, *base.file, *base.model, *lora, engine::GgmlType::kF16));
  LoadedModel m;
  auto file = engine::GgufFile::open(merged);
  ::unlink(merged.c_str());  // the mapping keeps the bytes
  KEEL_ASSIGN_OR_RETURN(m.file, std::move(file));
  KEEL_ASSIGN_OR_RETURN(m.tokenizer, engine::Tokenizer::from_gguf(*m.file));
  KEEL_ASSIGN_OR_RETURN(m.model, engine::Model::load(*m.file));
  return m;
}

}  // namespace keel::cli
