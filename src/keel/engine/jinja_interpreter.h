// The Jinja interpreter: walks a parsed template (jinja_ast.h) with a set of global
// variables and writes its output, with the semantics of jinja2's
// ImmutableSandboxedEnvironment as transformers uses it: Python values and
// operators, jinja2's scoping (a for loop's body and a macro have their own scope;
// namespace() crosses them), Undefined for missing names, lists and dicts that the
// template cannot change. Every render is bounded (output bytes, loop iterations,
// call depth), so a hostile template ends with an error, never a hang or a crash.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "keel/engine/jinja_ast.h"
#include "keel/engine/jinja_value.h"
#include "keel/util/status.h"

namespace keel::engine::jinja {

struct RenderLimits {
  size_t max_output_bytes = 16u << 20;      // the output and any string the template builds
  uint64_t max_loop_iterations = 1u << 20;  // all for loops of one render together
  int max_call_depth = 400;                 // nested expression evaluations and macro calls
  int64_t max_range = 100000;               // range() length (jinja2's sandbox MAX_RANGE)
};

// A variable scope: a for body, a macro call, the template's top level.
class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent = nullptr) : parent_(std::move(parent)) {}
  const Value* find(const std::string& name) const;
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  std::shared_ptr<Scope> parent_;
  std::unordered_map<std::string, Value> vars_;
};

class Interpreter {
 public:
  // globals: the render's variables (messages, add_generation_prompt, ...), on top of
  // the builtins (range, namespace, dict, raise_exception, strftime_now). now: the
  // local time strftime_now() formats (unset: the current time).
  Interpreter(const RenderLimits& limits, std::optional<std::tm> now);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  void set_global(const std::string& name, Value value) { globals_[name] = std::move(value); }
  Result<std::string> render(const Template& tmpl);

  const RenderLimits& limits() const { return limits_; }
  // An error when a string of this many bytes would pass the output limit.
  Status check_string_size(size_t bytes) const;
  // Calls a callable value (macro, builtin, bound method).
  Result<Value> call(const Value& callee, ValueList& args, KeywordArgs& kwargs);
  // jinja2's getattr(obj, name) (x.name) and getitem(obj, key) (x[key]): attributes
  // (methods) and items, in the order jinja2 tries them.
  Result<Value> get_attribute(const Value& object, const std::string& name);
  Result<Value> get_item(const Value& object, const Value& key);
  // Items a for loop over value visits (a dict's keys, a string's characters).
  Result<ValueList> iterate(const Value& value);
  // Counts one loop iteration (also used by filters that loop).
  Status count_iteration();
  // Time formatting for strftime_now().
  Result<std::string> strftime_now(const std::string& format) const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Result<Flow> exec_body(const Body& body, const std::shared_ptr<Scope>& scope);
  Result<Flow> exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Result<Flow> exec_for(const ForStmt& node, const std::shared_ptr<Scope>& scope, Location at);
  Status exec_set(const SetStmt& node, const std::shared_ptr<Scope>& scope, Location at);
  Result<std::string> capture(const Body& body, const std::shared_ptr<Scope>& scope);
  Result<Value> apply_filters(const std::vector<ExprPtr>& filters, Value value, const std::shared_ptr<Scope>& scope);
  Value make_macro(const MacroStmt& node, const std::shared_ptr<Scope>& scope);

  Result<Value> eval(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Result<Value> eval_node(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Result<Value> eval_binary(const BinaryExpr& node, const std::shared_ptr<Scope>& scope);
  Result<Value> eval_slice(const SliceExpr& node, const std::shared_ptr<Scope>& scope);
  Status eval_arguments(const CallArguments& arguments, const std::shared_ptr<Scope>& scope, ValueList& args,
                        KeywordArgs& kwargs);
  Value lookup(const std::string& name, const Scope& scope) const;

  Status write(std::string_view text);
  // Prefixes an error that has no position yet with "line L, column C: ".
  static Status at_location(const Status& status, Location at);

  RenderLimits limits_;
  std::optional<std::tm> now_;
  std::unordered_map<std::string, Value> globals_;
  std::string* out_ = nullptr;  // where output goes now (the render, or a capture)
  size_t bytes_written_ = 0;    // all output of this render, captures included
  uint64_t iterations_ = 0;
  int depth_ = 0;
  // Every namespace() made in this render: cleared at the end, so namespaces that
  // hold each other (a reference cycle) do not outlive the render.
  std::vector<std::shared_ptr<Object>> namespaces_;
};

}  // namespace keel::engine::jinja
