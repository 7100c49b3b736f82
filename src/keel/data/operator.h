// A data operator: one step of a pipeline that looks at one record at a time and keeps
// it (possibly rewritten) or drops it with a reason. Operators count what they did, per
// reason, so that every command and recipe can say what each step changed or removed.
// Contract: apply() is deterministic (same record, same options, same result) and
// never fails on content; an error is for what the caller must fix (a bad option).
// An operator is not thread-safe; use one per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "keel/data/records.h"
#include "keel/util/status.h"

namespace keel::data {

struct StepCounts {
  uint64_t seen = 0;
  uint64_t kept = 0;
  uint64_t changed = 0;  // kept records this step rewrote
  uint64_t dropped = 0;
  std::map<std::string, uint64_t> dropped_by_reason;
  // Tallies of kept records by what the step did to them ("unicode", "html"; for
  // split, the split; for c4, lines removed per rule): one record may count under several.
  std::map<std::string, uint64_t> notes;
};

// What apply() decided. A dropped record's reason is a short snake_case name
// ("too_short", "gopher_short_doc"), the key it is counted under.
struct Verdict {
  bool keep = true;
  std::string reason;
  bool changed = false;  // set by apply(): the step rewrote the record
  static Verdict Keep() { return {}; }
  static Verdict Drop(std::string reason) { return {false, std::move(reason)}; }
};

class RecordOperator {
 public:
  virtual ~RecordOperator() = default;
  // The step's name as a recipe spells it ("normalize", "gopher_quality").
  virtual std::string_view name() const = 0;
  // Decides on one record, rewriting it in place when the step changes text.
  Verdict apply(Record* record);
  const StepCounts& counts() const { return counts_; }

 protected:
  // Sets *changed when the record was rewritten and tallies what it did with note().
  virtual Verdict process(Record* record, bool* changed) = 0;
  void note(const std::string& reason, uint64_t n = 1) { counts_.notes[reason] += n; }

 private:
  StepCounts counts_;
};

// A step's parameters as named, typed slots that point into its options struct, so
// that a recipe (YAML) and the command line (--set name=value) set the same things
// with the same checks. A parameter set to a value of the wrong type is an error that
// names it.
class ParamSet {
 public:
  using Slot = std::variant<bool*, int64_t*, double*, std::string*, std::vector<std::string>*, std::vector<double>*>;
  struct Param {
    std::string name;
    Slot slot;
    std::string help;
  };

  void add(std::string name, Slot slot, std::string help) {
    params_.push_back({std::move(name), slot, std::move(help)});
  }
  const std::vector<Param>& params() const { return params_; }
  const Param* find(std::string_view name) const;
  // "true"/"false", integers, decimals, strings; lists comma-separated.
  Status set_from_string(std::string_view name, std::string_view value) const;
  // The type a parameter takes, in words ("an integer"), for error messages.
  static std::string_view type_name(const Slot& slot);
  // {"name": value, ...}: the parameters as they stand, for summaries.
  nlohmann::ordered_json to_json() const;

 private:
  std::vector<Param> params_;
};

}  // namespace keel::data
