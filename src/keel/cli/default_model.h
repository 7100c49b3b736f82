// The embedded default model (SmolLM2-135M-Instruct Q4_1): its registry name, the
// file the set-up script caches, and the sha256 that file must have. The values come
// from scripts/default-model.conf at build time, the one place they are written.
#pragma once

#include <string>

namespace keel::cli {

inline constexpr const char* kDefaultModelName = KEEL_DEFAULT_MODEL_NAME;
inline constexpr const char* kDefaultModelFile = KEEL_DEFAULT_MODEL_FILE;
inline constexpr const char* kDefaultModelSha256 = KEEL_DEFAULT_MODEL_SHA256;

// Where scripts/fetch-default-model leaves the file:
// $KEEL_CACHE_DIR, else $XDG_CACHE_HOME/keel, else ~/.cache/keel; then models/<file>.
std::string default_model_cache_path();

}  // namespace keel::cli
