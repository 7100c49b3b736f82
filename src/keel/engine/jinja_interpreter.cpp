#include "keel/engine/jinja_interpreter.h"

#include <cmath>
#include <cstring>

#include "keel/engine/jinja_filters.h"
#include "keel/engine/jinja_methods.h"
#include "keel/engine/jinja_string.h"

namespace keel::engine::jinja {
namespace {

// namespace(): the one mutable object a template can make ({% set ns.x = 1 %}).
class Namespace : public Object {
 public:
  std::string type_name() const override { return "Namespace"; }
  std::optional<Value> attribute(std::string_view name) const override {
    const Value* v = attrs_.find(name);
    if (v == nullptr) return std::nullopt;
    return *v;
  }
  std::string repr() const override {
    if (in_repr_) return "<Namespace {...}>";  // a namespace that holds itself
    in_repr_ = true;
    std::string out = "<Namespace " + Value::dict(std::make_shared<Dict>(attrs_)).repr() + ">";
    in_repr_ = false;
    return out;
  }
  bool is_namespace() const override { return true; }
  void set_attribute(const std::string& name, const Value& value) override { attrs_.set(Value::string(name), value); }
  // Drops what the namespace holds, so namespaces that hold each other are freed.
  void clear() { attrs_ = Dict(); }

 private:
  Dict attrs_;
  mutable bool in_repr_ = false;
};

// The `loop` variable of a for loop.
class LoopContext : public Object {
 public:
  LoopContext(std::shared_ptr<const ValueList> items, size_t index) : items_(std::move(items)), index_(index) {}
  std::string type_name() const override { return "LoopContext"; }
  std::optional<Value> attribute(std::string_view name) const override {
    const auto n = static_cast<int64_t>(items_->size());
    const auto i = static_cast<int64_t>(index_);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem") {
      if (i == 0) return Value::undefined("previtem", "there is no previous item");
      return (*items_)[index_ - 1];
    }
    if (name == "nextitem") {
      if (i == n - 1) return Value::undefined("nextitem", "there is no next item");
      return (*items_)[index_ + 1];
    }
    if (name == "cycle") {
      const size_t index = index_;
      return Value::callable("cycle", [index](Interpreter&, ValueList& args, KeywordArgs&) -> Result<Value> {
        if (args.empty()) return invalid_argument("no items for cycling given");
        return args[index % args.size()];
      });
    }
    return std::nullopt;
  }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_->size()) + ">";
  }

 private:
  std::shared_ptr<const ValueList> items_;
  size_t index_;
};

// Python's "'dict object'" wording in Undefined messages.
std::string object_description(const Value& v) {
  if (v.is_none()) return "None";
  return v.type_name() + " object";
}

Status undefined_error(const Value& v) {
  if (!v.undefined_hint().empty()) return invalid_argument(v.undefined_hint());
  if (v.undefined_name().empty()) return invalid_argument("value is undefined");
  return invalid_argument("'" + v.undefined_name() + "' is undefined");
}

Status overflow_error() {
  return invalid_argument("integer overflow (Keel's template integers are 64-bit)");
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Result<Value> repeat(Interpreter& in, const Value& seq, int64_t times) {
  if (times <= 0) return seq.is_string() ? Value::string("") : Value::list({});
  if (seq.is_string()) {
    const size_t size = seq.as_string().size();
    if (size > 0 && static_cast<uint64_t>(times) > in.limits().max_output_bytes / size) {
      return resource_exhausted("string repetition would exceed " + std::to_string(in.limits().max_output_bytes) +
                                " bytes");
    }
    std::string out;
    out.reserve(size * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  const auto& items = seq.as_list();
  if (!items.empty() && static_cast<uint64_t>(times) > in.limits().max_loop_iterations / items.size()) {
    return resource_exhausted("list repetition would exceed " + std::to_string(in.limits().max_loop_iterations) +
                              " items");
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Status unsupported_operands(const char* op, const Value& a, const Value& b) {
  return invalid_argument(std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() + "' and '" +
                          b.type_name() + "'");
}

Result<Value> arithmetic(Interpreter& in, BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  const bool numbers = a.is_number() && b.is_number();
  const bool floats = numbers && (a.is_float() || b.is_float());
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (floats) return Value::floating(a.as_double() + b.as_double());
      if (numbers) {
        if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) return overflow_error();
        return Value::integer(r);
      }
      if (a.is_string() && b.is_string()) {
        KEEL_RETURN_IF_ERROR(in.check_string_size(a.as_string().size() + b.as_string().size()));
        return Value::string(a.as_string() + b.as_string());
      }
      if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
        ValueList items = a.as_list();
        items.insert(items.end(), b.as_list().begin(), b.as_list().end());
        return a.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      if (a.is_string()) {
        return invalid_argument("can only concatenate str (not \"" + b.type_name() + "\") to str");
      }
      if (a.is_list()) return invalid_argument("can only concatenate list (not \"" + b.type_name() + "\") to list");
      return unsupported_operands("+", a, b);
    case BinaryOp::kSub:
      if (floats) return Value::floating(a.as_double() - b.as_double());
      if (numbers) {
        if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) return overflow_error();
        return Value::integer(r);
      }
      return unsupported_operands("-", a, b);
    case BinaryOp::kMul:
      if (floats) return Value::floating(a.as_double() * b.as_double());
      if (numbers) {
        if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) return overflow_error();
        return Value::integer(r);
      }
      if ((a.is_string() || a.is_sequence()) && (b.is_int() || b.is_bool())) return repeat(in, a, b.as_int());
      if ((b.is_string() || b.is_sequence()) && (a.is_int() || a.is_bool())) return repeat(in, b, a.as_int());
      return unsupported_operands("*", a, b);
    case BinaryOp::kDiv:
      if (!numbers) return unsupported_operands("/", a, b);
      if (b.as_double() == 0.0) return invalid_argument("division by zero");
      return Value::floating(a.as_double() / b.as_double());
    case BinaryOp::kFloorDiv:
      if (!numbers) return unsupported_operands("//", a, b);
      if (floats) {
        if (b.as_double() == 0.0) return invalid_argument("float floor division by zero");
        return Value::floating(std::floor(a.as_double() / b.as_double()));
      }
      if (b.as_int() == 0) return invalid_argument("integer division or modulo by zero");
      if (a.as_int() == INT64_MIN && b.as_int() == -1) return overflow_error();
      return Value::integer(floor_div(a.as_int(), b.as_int()));
    case BinaryOp::kMod:
      if (a.is_string()) return invalid_argument("printf-style string formatting ('%') is not supported");
      if (!numbers) return unsupported_operands("%", a, b);
      if (floats) {
        if (b.as_double() == 0.0) return invalid_argument("float modulo");
        double m = std::fmod(a.as_double(), b.as_double());
        if (m != 0.0 && ((m < 0) != (b.as_double() < 0))) m += b.as_double();
        return Value::floating(m);
      }
      if (b.as_int() == 0) return invalid_argument("integer division or modulo by zero");
      if (b.as_int() == -1) return Value::integer(0);
      return Value::integer(floor_mod(a.as_int(), b.as_int()));
    case BinaryOp::kPow:
      if (!numbers) return unsupported_operands("** or pow()", a, b);
      if (!floats && b.as_int() >= 0) {
        int64_t result = 1, base = a.as_int(), exp = b.as_int();
        while (exp > 0) {
          if ((exp & 1) && __builtin_mul_overflow(result, base, &result)) return overflow_error();
          exp >>= 1;
          if (exp > 0 && __builtin_mul_overflow(base, base, &base)) return overflow_error();
        }
        return Value::integer(result);
      }
      if (a.as_double() == 0.0 && b.as_double() < 0) {
        return invalid_argument("0.0 cannot be raised to a negative power");
      }
      return Value::floating(std::pow(a.as_double(), b.as_double()));
    default:
      return internal_error("not an arithmetic operator");
  }
}

Result<bool> contains(Interpreter& in, const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) {
      return invalid_argument("'in <string>' requires string as left operand, not " + item.type_name());
    }
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict()) return container.as_dict().find(item) != nullptr;
  if (container.is_undefined()) return false;
  if (!container.is_sequence()) {
    return invalid_argument("argument of type '" + container.type_name() + "' is not iterable");
  }
  for (const auto& v : container.as_list()) {
    if (values_equal(v, item)) return true;
  }
  (void)in;
  return false;
}

// Python's slice.indices(): start/stop/step clamped for a sequence of this length.
Result<std::vector<size_t>> slice_indices(int64_t length, const Value& start_v, const Value& stop_v,
                                          const Value& step_v) {
  auto as_index = [](const Value& v, std::optional<int64_t>& out) -> Status {
    if (v.is_none()) return Status::Ok();
    if (!v.is_int() && !v.is_bool()) {
      return invalid_argument("slice indices must be integers or None, not " + v.type_name());
    }
    out = v.as_int();
    return Status::Ok();
  };
  std::optional<int64_t> start, stop, step;
  KEEL_RETURN_IF_ERROR(as_index(start_v, start));
  KEEL_RETURN_IF_ERROR(as_index(stop_v, stop));
  KEEL_RETURN_IF_ERROR(as_index(step_v, step));
  const int64_t s = step.value_or(1);
  if (s == 0) return invalid_argument("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t x = *v;
    if (x < 0) x += length;
    if (s > 0) return std::clamp<int64_t>(x, 0, length);
    return std::clamp<int64_t>(x, -1, length - 1);
  };
  const int64_t lo = clamp(start, s > 0 ? 0 : length - 1);
  const int64_t hi = clamp(stop, s > 0 ? length : -1);
  std::vector<size_t> out;
  // 128-bit: a huge step must not overflow past the end.
  for (__int128 i = lo; s > 0 ? i < hi : i > hi; i += s) out.push_back(static_cast<size_t>(i));
  return out;
}

// range(start, stop, step) with count items (already checked against the limit), in
// 128-bit arithmetic so that no step crosses the int64 range.
Value range_list(int64_t start, int64_t step, int64_t count) {
  ValueList out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    out.push_back(Value::integer(static_cast<int64_t>(static_cast<__int128>(start) + static_cast<__int128>(k) * step)));
  }
  return Value::list(std::move(out));
}

}  // namespace

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(const RenderLimits& limits, std::optional<std::tm> now) : limits_(limits), now_(now) {
  globals_["range"] =
      Value::callable("range", [](Interpreter& in, ValueList& args, KeywordArgs& kwargs) -> Result<Value> {
        if (!kwargs.empty()) return invalid_argument("range() takes no keyword arguments");
        if (args.empty() || args.size() > 3) return invalid_argument("range expected 1 to 3 arguments");
        for (const auto& a : args) {
          if (!a.is_int() && !a.is_bool()) {
            return invalid_argument("'" + a.type_name() + "' object cannot be interpreted as an integer");
          }
        }
        const int64_t start = args.size() == 1 ? 0 : args[0].as_int();
        const int64_t stop = args.size() == 1 ? args[0].as_int() : args[1].as_int();
        const int64_t step = args.size() == 3 ? args[2].as_int() : 1;
        if (step == 0) return invalid_argument("range() arg 3 must not be zero");
        // Python's length: ceil((stop - start) / step), or 0.
        const __int128 span = static_cast<__int128>(stop) - start;
        __int128 count = 0;
        if (step > 0 && span > 0) count = (span + step - 1) / step;
        if (step < 0 && span < 0) count = (-span - step - 1) / -static_cast<__int128>(step);
        if (count > in.limits().max_range) {
          return resource_exhausted("Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                                    std::to_string(in.limits().max_range) + ").");
        }
        return range_list(start, step, static_cast<int64_t>(count));
      });
  globals_["namespace"] =
      Value::callable("namespace", [this](Interpreter&, ValueList& args, KeywordArgs& kwargs) -> Result<Value> {
        auto ns = std::make_shared<Namespace>();
        for (const auto& a : args) {
          if (!a.is_dict()) return invalid_argument("namespace() takes a dict or keyword arguments");
          for (const auto& [k, v] : a.as_dict().items) ns->set_attribute(k.str(), v);
        }
        for (const auto& [k, v] : kwargs) ns->set_attribute(k, v);
        namespaces_.push_back(ns);
        return Value::object(ns);
      });
  globals_["dict"] = Value::callable("dict", [](Interpreter&, ValueList& args, KeywordArgs& kwargs) -> Result<Value> {
    auto d = std::make_shared<Dict>();
    for (const auto& a : args) {
      if (!a.is_dict()) return invalid_argument("dict() takes a dict or keyword arguments");
      for (const auto& [k, v] : a.as_dict().items) d->set(k, v);
    }
    for (const auto& [k, v] : kwargs) d->set(Value::string(k), v);
    return Value::dict(std::move(d));
  });
  globals_["raise_exception"] =
      Value::callable("raise_exception", [](Interpreter&, ValueList& args, KeywordArgs&) -> Result<Value> {
        return invalid_argument(args.empty() ? std::string("raise_exception() called") : args[0].str());
      });
  globals_["strftime_now"] =
      Value::callable("strftime_now", [](Interpreter& in, ValueList& args, KeywordArgs&) -> Result<Value> {
        if (args.size() != 1 || !args[0].is_string()) return invalid_argument("strftime_now() takes one format string");
        KEEL_ASSIGN_OR_RETURN(std::string text, in.strftime_now(args[0].as_string()));
        return Value::string(std::move(text));
      });
}

Interpreter::~Interpreter() {
  for (auto& ns : namespaces_) static_cast<Namespace&>(*ns).clear();
}

Result<std::string> Interpreter::strftime_now(const std::string& format) const {
  if (format.size() > 1024) return invalid_argument("strftime_now(): format longer than 1024 bytes");
  std::tm tm{};
  if (now_) {
    // Normalize the given calendar fields, filling in the weekday and day of year.
    std::tm fields = *now_;
    const std::time_t t = timegm(&fields);
    gmtime_r(&t, &tm);
  } else {
    const std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  if (format.empty()) return std::string();
  // strftime returns 0 both for "does not fit" and for an empty result; a marker
  // character tells them apart.
  const std::string marked = format + "\x01";
  std::string buf(format.size() * 16 + 64, '\0');
  const size_t n = std::strftime(buf.data(), buf.size(), marked.c_str(), &tm);
  if (n == 0) return invalid_argument("strftime_now(): formatted time too long");
  buf.resize(n - 1);
  return buf;
}

Status Interpreter::check_string_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    return resource_exhausted("template built a string over the limit of " + std::to_string(limits_.max_output_bytes) +
                              " bytes");
  }
  return Status::Ok();
}

Status Interpreter::count_iteration() {
  if (++iterations_ > limits_.max_loop_iterations) {
    return resource_exhausted("template ran more than " + std::to_string(limits_.max_loop_iterations) +
                              " loop iterations");
  }
  return Status::Ok();
}

Status Interpreter::write(std::string_view text) {
  bytes_written_ += text.size();
  if (bytes_written_ > limits_.max_output_bytes) {
    return resource_exhausted("template output over the limit of " + std::to_string(limits_.max_output_bytes) +
                              " bytes");
  }
  out_->append(text);
  return Status::Ok();
}

Status Interpreter::at_location(const Status& status, Location at) {
  if (status.ok() || status.message().rfind("line ", 0) == 0) return status;
  return Status(status.code(),
                "line " + std::to_string(at.line) + ", column " + std::to_string(at.column) + ": " + status.message());
}

Result<std::string> Interpreter::render(const Template& tmpl) {
  std::string out;
  out_ = &out;
  auto top = std::make_shared<Scope>();
  auto flow = exec_body(tmpl.body, top);
  out_ = nullptr;
  if (!flow.ok()) return flow.status();
  return out;
}

Value Interpreter::lookup(const std::string& name, const Scope& scope) const {
  if (const Value* v = scope.find(name)) return *v;
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::undefined(name);
}

Result<Interpreter::Flow> Interpreter::exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& stmt : body) {
    KEEL_ASSIGN_OR_RETURN(Flow flow, exec(*stmt, scope));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Result<std::string> Interpreter::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  auto flow = exec_body(body, scope);
  out_ = saved;
  if (!flow.ok()) return flow.status();
  return buffer;
}

Result<Value> Interpreter::apply_filters(const std::vector<ExprPtr>& filters, Value value,
                                         const std::shared_ptr<Scope>& scope) {
  for (const auto& f : filters) {
    const auto& node = std::get<FilterExpr>(f->node);
    ValueList args;
    KeywordArgs kwargs;
    KEEL_RETURN_IF_ERROR(eval_arguments(node.arguments, scope, args, kwargs));
    auto result = apply_filter(*this, node.name, value, args, kwargs);
    if (!result.ok()) return at_location(result.status(), f->location);
    value = std::move(result).value();
  }
  return value;
}

Result<Interpreter::Flow> Interpreter::exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  if (++depth_ > limits_.max_call_depth) {
    --depth_;
    return at_location(resource_exhausted("template nested too deeply (more than " +
                                          std::to_string(limits_.max_call_depth) + " levels)"),
                       stmt.location);
  }
  struct DepthRestore {
    int& depth;
    ~DepthRestore() { --depth; }
  } restore{depth_};

  if (const auto* text = std::get_if<TextStmt>(&stmt.node)) {
    KEEL_RETURN_IF_ERROR(at_location(write(text->text), stmt.location));
    return Flow::kNormal;
  }
  if (const auto* print = std::get_if<PrintStmt>(&stmt.node)) {
    KEEL_ASSIGN_OR_RETURN(Value v, eval(*print->expr, scope));
    KEEL_RETURN_IF_ERROR(at_location(write(v.str()), stmt.location));
    return Flow::kNormal;
  }
  if (const auto* node = std::get_if<IfStmt>(&stmt.node)) {
    for (const auto& [cond, body] : node->branches) {
      KEEL_ASSIGN_OR_RETURN(Value c, eval(*cond, scope));
      if (c.truthy()) return exec_body(body, scope);
    }
    return exec_body(node->else_body, scope);
  }
  if (const auto* node = std::get_if<ForStmt>(&stmt.node)) return exec_for(*node, scope, stmt.location);
  if (const auto* node = std::get_if<SetStmt>(&stmt.node)) {
    KEEL_RETURN_IF_ERROR(exec_set(*node, scope, stmt.location));
    return Flow::kNormal;
  }
  if (const auto* node = std::get_if<SetBlockStmt>(&stmt.node)) {
    KEEL_ASSIGN_OR_RETURN(std::string text, capture(node->body, std::make_shared<Scope>(scope)));
    KEEL_ASSIGN_OR_RETURN(Value v, apply_filters(node->filters, Value::string(std::move(text)), scope));
    scope->set(node->target, std::move(v));
    return Flow::kNormal;
  }
  if (const auto* node = std::get_if<MacroStmt>(&stmt.node)) {
    scope->set(node->name, make_macro(*node, scope));
    return Flow::kNormal;
  }
  if (const auto* node = std::get_if<FilterBlockStmt>(&stmt.node)) {
    KEEL_ASSIGN_OR_RETURN(std::string text, capture(node->body, std::make_shared<Scope>(scope)));
    KEEL_ASSIGN_OR_RETURN(Value v, apply_filters(node->filters, Value::string(std::move(text)), scope));
    KEEL_RETURN_IF_ERROR(at_location(write(v.str()), stmt.location));
    return Flow::kNormal;
  }
  if (const auto* node = std::get_if<ScopeStmt>(&stmt.node)) {
    auto inner = std::make_shared<Scope>(scope);
    for (const auto& [name, expr] : node->assignments) {
      KEEL_ASSIGN_OR_RETURN(Value v, eval(*expr, scope));
      inner->set(name, std::move(v));
    }
    KEEL_ASSIGN_OR_RETURN(Flow flow, exec_body(node->body, inner));
    return flow;
  }
  if (std::holds_alternative<BreakStmt>(stmt.node)) return Flow::kBreak;
  if (std::holds_alternative<ContinueStmt>(stmt.node)) return Flow::kContinue;
  return internal_error("unknown statement");
}

namespace {

// Binds a for or set target: one name, or several unpacked from an iterable.
Status bind_targets(Interpreter& in, const std::vector<std::string>& targets, bool unpack, const Value& value,
                    Scope& scope) {
  if (!unpack) {
    scope.set(targets[0], value);
    return Status::Ok();
  }
  KEEL_ASSIGN_OR_RETURN(ValueList parts, in.iterate(value));
  if (parts.size() < targets.size()) {
    return invalid_argument("not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
                            std::to_string(parts.size()) + ")");
  }
  if (parts.size() > targets.size()) {
    return invalid_argument("too many values to unpack (expected " + std::to_string(targets.size()) + ")");
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], parts[i]);
  return Status::Ok();
}

}  // namespace

Result<Interpreter::Flow> Interpreter::exec_for(const ForStmt& node, const std::shared_ptr<Scope>& scope, Location at) {
  KEEL_ASSIGN_OR_RETURN(Value iterable, eval(*node.iterable, scope));
  auto all = iterate(iterable);
  if (!all.ok()) return at_location(all.status(), node.iterable->location);
  ValueList items = std::move(all).value();
  if (node.filter) {
    // "for x in xs if cond": cond sees x (not loop); loop counts the kept items.
    ValueList kept;
    for (auto& item : items) {
      KEEL_RETURN_IF_ERROR(at_location(count_iteration(), at));
      auto probe = std::make_shared<Scope>(scope);
      KEEL_RETURN_IF_ERROR(at_location(bind_targets(*this, node.targets, node.unpack, item, *probe), at));
      KEEL_ASSIGN_OR_RETURN(Value keep, eval(*node.filter, probe));
      if (keep.truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(node.else_body, std::make_shared<Scope>(scope));
  auto shared_items = std::make_shared<const ValueList>(std::move(items));
  for (size_t i = 0; i < shared_items->size(); ++i) {
    KEEL_RETURN_IF_ERROR(at_location(count_iteration(), at));
    // Each iteration has a fresh scope: a {% set %} in the body lasts one iteration.
    auto inner = std::make_shared<Scope>(scope);
    KEEL_RETURN_IF_ERROR(at_location(bind_targets(*this, node.targets, node.unpack, (*shared_items)[i], *inner), at));
    inner->set("loop", Value::object(std::make_shared<LoopContext>(shared_items, i)));
    KEEL_ASSIGN_OR_RETURN(Flow flow, exec_body(node.body, inner));
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Status Interpreter::exec_set(const SetStmt& node, const std::shared_ptr<Scope>& scope, Location at) {
  KEEL_ASSIGN_OR_RETURN(Value value, eval(*node.value, scope));
  if (!node.attribute.empty()) {
    Value target = lookup(node.targets[0], *scope);
    if (!target.is_object() || !target.as_object().is_namespace()) {
      return at_location(invalid_argument("cannot assign attribute on non-namespace object"), at);
    }
    target.as_object().set_attribute(node.attribute, std::move(value));
    return Status::Ok();
  }
  return at_location(bind_targets(*this, node.targets, node.unpack, value, *scope), at);
}

Value Interpreter::make_macro(const MacroStmt& node, const std::shared_ptr<Scope>& scope) {
  // The closure is weak: the scope holds the macro, and a strong reference back would
  // keep both alive forever. A macro only runs while its render (and scope) lives.
  std::weak_ptr<Scope> closure = scope;
  const MacroStmt* macro = &node;
  return Value::callable(
      node.name, [macro, closure](Interpreter& in, ValueList& args, KeywordArgs& kwargs) -> Result<Value> {
        auto parent = closure.lock();
        if (!parent) return invalid_argument("macro '" + macro->name + "' called after its scope ended");
        if (args.size() > macro->params.size()) {
          return invalid_argument("macro '" + macro->name + "' takes not more than " +
                                  std::to_string(macro->params.size()) + " argument(s)");
        }
        auto inner = std::make_shared<Scope>(parent);
        std::vector<bool> bound(macro->params.size(), false);
        for (size_t i = 0; i < args.size(); ++i) {
          inner->set(macro->params[i].name, args[i]);
          bound[i] = true;
        }
        for (auto& [key, value] : kwargs) {
          size_t i = 0;
          while (i < macro->params.size() && macro->params[i].name != key) ++i;
          if (i == macro->params.size()) {
            return invalid_argument("macro '" + macro->name + "' takes no keyword argument '" + key + "'");
          }
          inner->set(key, value);
          bound[i] = true;
        }
        for (size_t i = 0; i < macro->params.size(); ++i) {
          if (bound[i]) continue;
          if (macro->params[i].default_value) {
            KEEL_ASSIGN_OR_RETURN(Value v, in.eval(*macro->params[i].default_value, inner));
            inner->set(macro->params[i].name, std::move(v));
          } else {
            inner->set(macro->params[i].name, Value::undefined(macro->params[i].name));
          }
        }
        KEEL_ASSIGN_OR_RETURN(std::string text, in.capture(macro->body, inner));
        return Value::string(std::move(text));
      });
}

Result<Value> Interpreter::call(const Value& callee, ValueList& args, KeywordArgs& kwargs) {
  if (callee.is_undefined()) return undefined_error(callee);
  if (!callee.is_callable()) return invalid_argument("'" + callee.type_name() + "' object is not callable");
  if (++depth_ > limits_.max_call_depth) {
    --depth_;
    return resource_exhausted("template calls nested too deeply (more than " + std::to_string(limits_.max_call_depth) +
                              " levels)");
  }
  auto result = callee.as_callable().call(*this, args, kwargs);
  --depth_;
  return result;
}

Result<ValueList> Interpreter::iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined:
      return ValueList{};
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return value.as_list();
    case Value::Kind::kDict: {
      ValueList keys;
      keys.reserve(value.as_dict().items.size());
      for (const auto& [k, v] : value.as_dict().items) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      ValueList chars;
      for (const auto& c : utf8_chars(value.as_string())) chars.push_back(Value::string(std::string(c.bytes)));
      return chars;
    }
    default:
      return invalid_argument("'" + value.type_name() + "' object is not iterable");
  }
}

Result<Value> Interpreter::get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) return undefined_error(object);
  if (!name.empty() && name[0] == '_') {
    return Value::undefined(name,
                            "access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.");
  }
  if (object.is_object()) {
    if (auto v = object.as_object().attribute(name)) return *v;
    return Value::undefined(name, "'" + object.type_name() + " object' has no attribute '" + name + "'");
  }
  Value method;
  switch (find_method(object, name, method)) {
    case MethodLookup::kFound:
      return method;
    case MethodLookup::kUnsafe:
      return Value::undefined(name,
                              "access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.");
    case MethodLookup::kNone:
      break;
  }
  if (object.is_dict()) {
    if (const Value* v = object.as_dict().find(name)) return *v;
  }
  return Value::undefined(name, "'" + object_description(object) + "' has no attribute '" + name + "'");
}

Result<Value> Interpreter::get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) return undefined_error(object);
  if (object.is_dict()) {
    if (const Value* v = object.as_dict().find(key)) return *v;
  } else if ((object.is_sequence() || object.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t length = object.is_string() ? static_cast<int64_t>(utf8_length(object.as_string()))
                                              : static_cast<int64_t>(object.as_list().size());
    int64_t i = key.as_int();
    if (i < 0) i += length;
    if (i >= 0 && i < length) {
      if (!object.is_string()) return object.as_list()[static_cast<size_t>(i)];
      const auto chars = utf8_chars(object.as_string());
      return Value::string(std::string(chars[static_cast<size_t>(i)].bytes));
    }
    return Value::undefined(key.str(), "'" + object_description(object) + "' has no element " + key.repr());
  }
  if (key.is_string()) {
    if (object.is_dict()) {
      // A missing key may still name a method (d['items']).
      Value method;
      if (find_method(object, key.as_string(), method) == MethodLookup::kFound) return method;
      return Value::undefined(key.as_string(),
                              "'" + object_description(object) + "' has no attribute '" + key.as_string() + "'");
    }
    return get_attribute(object, key.as_string());
  }
  return Value::undefined(key.str(), "'" + object_description(object) + "' has no element " + key.repr());
}

Status Interpreter::eval_arguments(const CallArguments& arguments, const std::shared_ptr<Scope>& scope, ValueList& args,
                                   KeywordArgs& kwargs) {
  for (const auto& a : arguments.positional) {
    KEEL_ASSIGN_OR_RETURN(Value v, eval(*a, scope));
    args.push_back(std::move(v));
  }
  for (const auto& [name, e] : arguments.keyword) {
    KEEL_ASSIGN_OR_RETURN(Value v, eval(*e, scope));
    kwargs.emplace_back(name, std::move(v));
  }
  return Status::Ok();
}

Result<Value> Interpreter::eval(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  if (++depth_ > limits_.max_call_depth) {
    --depth_;
    return at_location(resource_exhausted("template nested too deeply (more than " +
                                          std::to_string(limits_.max_call_depth) + " levels)"),
                       expr.location);
  }
  auto result = eval_node(expr, scope);
  --depth_;
  if (!result.ok()) return at_location(result.status(), expr.location);
  return result;
}

Result<Value> Interpreter::eval_slice(const SliceExpr& node, const std::shared_ptr<Scope>& scope) {
  KEEL_ASSIGN_OR_RETURN(Value object, eval(*node.object, scope));
  Value parts[3] = {Value::none(), Value::none(), Value::none()};
  const ExprPtr* exprs[3] = {&node.start, &node.stop, &node.step};
  for (int i = 0; i < 3; ++i) {
    if (*exprs[i]) {
      KEEL_ASSIGN_OR_RETURN(parts[i], eval(**exprs[i], scope));
    }
  }
  if (object.is_undefined()) return undefined_error(object);
  if (object.is_string()) {
    const auto chars = utf8_chars(object.as_string());
    KEEL_ASSIGN_OR_RETURN(auto indices,
                          slice_indices(static_cast<int64_t>(chars.size()), parts[0], parts[1], parts[2]));
    std::string out;
    for (size_t i : indices) out += chars[i].bytes;
    return Value::string(std::move(out));
  }
  if (object.is_sequence()) {
    const auto& items = object.as_list();
    KEEL_ASSIGN_OR_RETURN(auto indices,
                          slice_indices(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2]));
    ValueList out;
    out.reserve(indices.size());
    for (size_t i : indices) out.push_back(items[i]);
    return object.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
  }
  return Value::undefined("", "'" + object_description(object) + "' cannot be sliced");
}

Result<Value> Interpreter::eval_binary(const BinaryExpr& node, const std::shared_ptr<Scope>& scope) {
  KEEL_ASSIGN_OR_RETURN(Value left, eval(*node.left, scope));
  if (node.op == BinaryOp::kAnd) {
    if (!left.truthy()) return left;
    return eval(*node.right, scope);
  }
  if (node.op == BinaryOp::kOr) {
    if (left.truthy()) return left;
    return eval(*node.right, scope);
  }
  KEEL_ASSIGN_OR_RETURN(Value right, eval(*node.right, scope));
  switch (node.op) {
    case BinaryOp::kConcat: {
      std::string l = left.str();
      const std::string r = right.str();
      KEEL_RETURN_IF_ERROR(check_string_size(l.size() + r.size()));
      return Value::string(l + r);
    }
    case BinaryOp::kIn:
    case BinaryOp::kNotIn: {
      KEEL_ASSIGN_OR_RETURN(bool found, contains(*this, right, left));
      return Value::boolean(node.op == BinaryOp::kIn ? found : !found);
    }
    default:
      return arithmetic(*this, node.op, left, right);
  }
}

Result<Value> Interpreter::eval_node(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  return std::visit(
      [&](const auto& node) -> Result<Value> {
        using T = std::decay_t<decltype(node)>;
        if constexpr (std::is_same_v<T, LiteralExpr>) {
          return node.value;
        } else if constexpr (std::is_same_v<T, NameExpr>) {
          return lookup(node.name, *scope);
        } else if constexpr (std::is_same_v<T, ListExpr>) {
          ValueList items;
          for (const auto& item : node.items) {
            KEEL_ASSIGN_OR_RETURN(Value v, eval(*item, scope));
            items.push_back(std::move(v));
          }
          return node.tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
        } else if constexpr (std::is_same_v<T, DictExpr>) {
          auto d = std::make_shared<Dict>();
          for (const auto& [k, v] : node.items) {
            KEEL_ASSIGN_OR_RETURN(Value key, eval(*k, scope));
            if (key.is_sequence() || key.is_dict() || key.is_object() || key.is_callable()) {
              return invalid_argument("unhashable type: '" + key.type_name() + "'");
            }
            KEEL_ASSIGN_OR_RETURN(Value value, eval(*v, scope));
            d->set(std::move(key), std::move(value));
          }
          return Value::dict(std::move(d));
        } else if constexpr (std::is_same_v<T, AttributeExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value object, eval(*node.object, scope));
          return get_attribute(object, node.name);
        } else if constexpr (std::is_same_v<T, ItemExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value object, eval(*node.object, scope));
          KEEL_ASSIGN_OR_RETURN(Value key, eval(*node.index, scope));
          return get_item(object, key);
        } else if constexpr (std::is_same_v<T, SliceExpr>) {
          return eval_slice(node, scope);
        } else if constexpr (std::is_same_v<T, UnaryExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value v, eval(*node.operand, scope));
          if (node.op == UnaryOp::kNot) return Value::boolean(!v.truthy());
          if (v.is_undefined()) return undefined_error(v);
          if (v.is_float()) return Value::floating(node.op == UnaryOp::kNeg ? -v.as_double() : v.as_double());
          if (v.is_int() || v.is_bool()) {
            if (node.op == UnaryOp::kPos) return Value::integer(v.as_int());
            if (v.as_int() == INT64_MIN) return overflow_error();
            return Value::integer(-v.as_int());
          }
          return invalid_argument(std::string("bad operand type for unary ") + (node.op == UnaryOp::kNeg ? "-" : "+") +
                                  ": '" + v.type_name() + "'");
        } else if constexpr (std::is_same_v<T, BinaryExpr>) {
          return eval_binary(node, scope);
        } else if constexpr (std::is_same_v<T, CompareExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value left, eval(*node.first, scope));
          for (const auto& [op, e] : node.rest) {
            KEEL_ASSIGN_OR_RETURN(Value right, eval(*e, scope));
            bool result = false;
            if (op == CompareOp::kEq || op == CompareOp::kNe) {
              result = values_equal(left, right) == (op == CompareOp::kEq);
            } else {
              if (left.is_undefined()) return undefined_error(left);
              if (right.is_undefined()) return undefined_error(right);
              const bool swap = op == CompareOp::kGt || op == CompareOp::kGe;
              KEEL_ASSIGN_OR_RETURN(bool less, swap ? value_less(right, left) : value_less(left, right));
              result = less;
              if (!less && (op == CompareOp::kLe || op == CompareOp::kGe)) result = values_equal(left, right);
            }
            if (!result) return Value::boolean(false);
            left = std::move(right);
          }
          return Value::boolean(true);
        } else if constexpr (std::is_same_v<T, ConditionalExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value c, eval(*node.condition, scope));
          if (c.truthy()) return eval(*node.then_value, scope);
          if (node.else_value) return eval(*node.else_value, scope);
          return Value::undefined("", "the inline if-expression evaluated to false and no else section was defined.");
        } else if constexpr (std::is_same_v<T, CallExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value callee, eval(*node.callee, scope));
          ValueList args;
          KeywordArgs kwargs;
          KEEL_RETURN_IF_ERROR(eval_arguments(node.arguments, scope, args, kwargs));
          return call(callee, args, kwargs);
        } else if constexpr (std::is_same_v<T, FilterExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value operand, eval(*node.operand, scope));
          ValueList args;
          KeywordArgs kwargs;
          KEEL_RETURN_IF_ERROR(eval_arguments(node.arguments, scope, args, kwargs));
          return apply_filter(*this, node.name, operand, args, kwargs);
        } else if constexpr (std::is_same_v<T, TestExpr>) {
          KEEL_ASSIGN_OR_RETURN(Value operand, eval(*node.operand, scope));
          ValueList args;
          KeywordArgs kwargs;
          KEEL_RETURN_IF_ERROR(eval_arguments(node.arguments, scope, args, kwargs));
          if (!kwargs.empty()) return invalid_argument("tests take no keyword arguments");
          KEEL_ASSIGN_OR_RETURN(bool pass, apply_test(*this, node.name, operand, args));
          return Value::boolean(pass != node.negated);
        }
      },
      expr.node);
}

}  // namespace keel::engine::jinja
