#include "keel/cli/default_model.h"

#include <cstdlib>

#include "keel/util/file.h"

namespace keel::cli {

std::string default_model_cache_path() {
  std::string cache;
  if (const char* c = std::getenv("KEEL_CACHE_DIR"); c && *c) {
    cache = c;
  } else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    cache = std::string(x) + "/keel";
  } else {
    cache = expand_home("~/.cache/keel");
  }
  return cache + "/models/" + kDefaultModelFile;
}

}  // namespace keel::cli
