// The pieces of an error message about a YAML document that recipes and tasks share:
// where a node is, and what it is, as a user reads them.
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

namespace keel {

// " (line N)" for a node read from a file, "" when it has no position.
std::string yaml_where(const YAML::Node& node);

// The node as an error shows it: "\"text\"" for a scalar, else "a list", "a map" or
// "nothing".
std::string yaml_shown(const YAML::Node& node);

}  // namespace keel
