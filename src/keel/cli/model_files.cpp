#include "keel/cli/model_files.h"

#include <sys/stat.h>

#include "keel/registry/model_registry.h"

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

}  // namespace keel::cli
