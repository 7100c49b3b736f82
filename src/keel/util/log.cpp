#include "keel/util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace keel {

Status init_logging(std::string_view level) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  // spdlog maps unknown names to "off"; only accept "off" when asked for it.
  if (parsed == spdlog::level::off && level != "off") {
    return invalid_argument("unknown log level '" + std::string(level) +
                            "' (use trace, debug, info, warn, error, critical or off)");
  }
  auto logger = spdlog::get("keel");
  if (!logger) {
    logger = spdlog::stderr_color_mt("keel");
    spdlog::set_default_logger(logger);
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(parsed);
  return Status::Ok();
}

}  // namespace keel
