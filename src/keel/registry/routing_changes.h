// A count of the changes, made in this process, to what a model reference resolves to:
// versions added or archived, aliases moved, deployments changed. A server keeps its
// resolutions while the count stays put (served_models.h); the registry functions that
// make such changes mark them with a RoutingChange.
#pragma once

#include <cstdint>

namespace keel::registry {

uint64_t routing_generation();

// Marks a change when it goes out of scope, that is after the function's transaction
// has committed (or failed: a needless mark costs a server one fresh lookup).
class RoutingChange {
 public:
  RoutingChange() = default;
  ~RoutingChange();
  RoutingChange(const RoutingChange&) = delete;
  RoutingChange& operator=(const RoutingChange&) = delete;
};

}  // namespace keel::registry
