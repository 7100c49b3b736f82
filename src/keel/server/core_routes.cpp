// The routes every Keel server has, and the open-file limit a server needs to hold
// thousands of connections.
#include <sys/resource.h>

#include <algorithm>
#include <fstream>

#include "keel/server/http.h"

namespace keel::server {

void add_core_routes(Router& router) {
  router.get("/health", [](const HttpRequest&) { return HttpResponse::json(200, Json{{"status", "ok"}}); });
  router.get("/version", [](const HttpRequest&) {
    return HttpResponse::json(200, Json{{"name", "keel"}, {"version", KEEL_VERSION}});
  });
}

uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  rlim_t target = limit.rlim_max;
  // An unlimited hard limit cannot be the soft limit for files; the kernel caps it at nr_open.
  if (target == RLIM_INFINITY) {
    rlim_t nr_open = 1u << 20;
    std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
    target = nr_open;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < target) {
    rlimit raised = limit;
    raised.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return static_cast<uint64_t>(target);
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace keel::server
