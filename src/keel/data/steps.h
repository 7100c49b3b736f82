// The steps a recipe or a command can name ("normalize", "gopher_quality", "dedup",
// ...), each built from named parameters (operator.h's ParamSet), so YAML recipes and
// command-line flags configure them the same way, with the same checks. Who sets the
// parameters passes a callback that receives the step's ParamSet.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/data/dedup.h"
#include "keel/data/operator.h"

namespace keel::data {

struct PipelineStep {
  std::string type;
  nlohmann::ordered_json params;  // the parameters as configured, for summaries
  // A streaming step; null for near-duplicate removal, which needs passes of its own.
  std::unique_ptr<RecordOperator> op;
  // Near-duplicate removal: every option but the files (the runner sets those).
  std::optional<DedupOptions> near_dedup;
};

// "normalize", "length", "language", "gopher_quality", "gopher_repetition", "c4",
// "dedup", "pii", "split", "format".
const std::vector<std::string>& step_types();

using ParamSetter = std::function<Status(const ParamSet& params)>;

// Builds a step of the given type: its options start at their defaults with the text
// field `default_field`, then `set` may change any of them.
Result<PipelineStep> build_step(std::string_view type, const std::string& default_field, const ParamSetter& set);

// The parameter names and help of a step type, for --help texts and errors.
Result<std::vector<std::pair<std::string, std::string>>> step_parameters(std::string_view type);

}  // namespace keel::data
