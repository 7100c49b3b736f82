#include "keel/registry/routing_changes.h"

#include <atomic>

namespace keel::registry {
namespace {

std::atomic<uint64_t> generation{0};

}  // namespace

uint64_t routing_generation() { return generation.load(std::memory_order_acquire); }

RoutingChange::~RoutingChange() { generation.fetch_add(1, std::memory_order_acq_rel); }

}  // namespace keel::registry
