// The Python methods a chat template may call on its values ("x".strip(),
// message.get("content"), tools.items(), ...), as bound callables for the interpreter
// (jinja_interpreter.h). Methods that would change a list or dict in place (append,
// pop, update, ...) are refused, as jinja2's ImmutableSandboxedEnvironment refuses them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "keel/engine/jinja_value.h"
#include "keel/util/status.h"

namespace keel::engine::jinja {

enum class MethodLookup { kNone, kFound, kUnsafe };

// Looks up object.name among str, dict and list methods. kFound: method holds a
// callable bound to object. kUnsafe: the method exists but modifies its object.
MethodLookup find_method(const Value& object, const std::string& name, Value& method);

// Argument checking shared by methods, filters and globals: positional arguments,
// then keywords by parameter name, with a Python-like TypeError for extra or unknown ones.
class ArgumentReader {
 public:
  ArgumentReader(std::string function, const ValueList& args, const KeywordArgs& kwargs,
                 std::vector<std::string> parameter_names);
  // The i-th parameter, given by position or by name; nullopt when absent.
  std::optional<Value> get(size_t i) const;
  Status check() const;

 private:
  std::string function_;
  const ValueList& args_;
  const KeywordArgs& kwargs_;
  std::vector<std::string> names_;
};

}  // namespace keel::engine::jinja
