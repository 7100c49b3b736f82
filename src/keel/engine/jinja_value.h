// The values a Jinja template computes with, with Python's semantics where a chat
// template can see them: none, bool, 64-bit int, float, string (UTF-8 bytes), list,
// tuple, dict (insertion ordered), callable, and native objects (namespace, loop), plus
// jinja2's default Undefined. Used by the Jinja interpreter (jinja_interpreter.h).
// Lists, dicts and strings are shared and immutable once built; only a namespace
// object changes after creation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keel/util/status.h"

namespace keel::engine::jinja {

class Value;
class Interpreter;

using ValueList = std::vector<Value>;
using KeywordArgs = std::vector<std::pair<std::string, Value>>;

// A function a template can call: a builtin global, a bound method, a macro.
using NativeFunction = std::function<Result<Value>(Interpreter&, ValueList& args, KeywordArgs& kwargs)>;
struct Callable;

// A native object with attributes (namespace(), the loop variable).
class Object {
 public:
  virtual ~Object() = default;
  // Python's type name, for error messages ("Namespace", "LoopContext").
  virtual std::string type_name() const = 0;
  // The attribute, or nullopt when it has none.
  virtual std::optional<Value> attribute(std::string_view name) const = 0;
  virtual std::string repr() const = 0;
  // Only namespaces accept assignment ({% set ns.x = 1 %}).
  virtual bool is_namespace() const { return false; }
  virtual void set_attribute(const std::string& /*name*/, const Value& /*value*/) {}
};

struct Dict;

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kCallable,
    kObject
  };

  Value() = default;  // undefined
  static Value undefined(std::string name = "", std::string hint = "");
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(ValueList items);
  static Value tuple(ValueList items);
  static Value dict(std::shared_ptr<const Dict> dict);
  static Value callable(std::string name, NativeFunction fn);
  static Value object(std::shared_ptr<Object> object);
  // A JSON value as the template sees it (objects keep their key order).
  static Value from_json(const nlohmann::ordered_json& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_callable() const { return kind_ == Kind::kCallable; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bools count as ints
  double as_double() const { return kind_ == Kind::kFloat ? d_ : static_cast<double>(as_int()); }
  const std::string& as_string() const;  // "" unless a string
  const ValueList& as_list() const;      // empty unless a list or tuple
  const Dict& as_dict() const;           // empty unless a dict
  const Callable& as_callable() const;   // REQUIRES: is_callable()
  Object& as_object() const;             // REQUIRES: is_object()
  // For undefined: the name that was looked up, and an error to report when used.
  const std::string& undefined_name() const { return as_string(); }
  const std::string& undefined_hint() const { return hint_ ? *hint_ : empty_string(); }

  // Python's bool(x).
  bool truthy() const;
  // Python's str(x) (jinja's print): None -> "None", True -> "True", 1.0 -> "1.0",
  // lists and dicts as repr. Undefined prints as "".
  std::string str() const;
  // Python's repr(x): strings quoted as Python quotes them.
  std::string repr() const;
  // Python's type name ("str", "int", "list", "dict", "NoneType", "Undefined").
  std::string type_name() const;

 private:
  static const std::string& empty_string();
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0.0;
  std::shared_ptr<const std::string> s_;  // string; undefined: the name
  std::shared_ptr<const std::string> hint_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<const Dict> dict_;
  std::shared_ptr<const Callable> callable_;
  std::shared_ptr<Object> object_;
};

struct Callable {
  std::string name;
  NativeFunction call;
};

// An insertion-ordered dict. Keys are hashable scalars (string, int, float, bool,
// none); string keys are indexed, others are compared as Python compares them.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  std::unordered_map<std::string, size_t> string_index;

  // Sets key to value: replaces an existing entry in place or appends.
  void set(Value key, Value value);
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
};

// Python's == (1 == 1.0 == True; lists elementwise; dicts regardless of order).
bool values_equal(const Value& a, const Value& b);
// Python's < for numbers, strings, lists and tuples; a TypeError message otherwise.
Result<bool> value_less(const Value& a, const Value& b);
// Python's repr of a float ("1.0", "0.1", "1e+16", "1.5e-05", "inf", "nan").
std::string python_float_repr(double d);
// Python's repr of a string.
std::string python_string_repr(std::string_view s);

struct JsonOptions {
  std::optional<std::string> indent;  // nullopt: one line
  std::string item_separator = ", ";  // (", ", ": ") as json.dumps chooses by indent
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// json.dumps(value, ...) as Python writes it; a TypeError for what JSON cannot hold.
Result<std::string> to_json(const Value& value, const JsonOptions& options);

}  // namespace keel::engine::jinja
