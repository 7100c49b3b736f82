#include "keel/engine/jinja_methods.h"

#include <algorithm>
#include <array>

#include "keel/engine/jinja_interpreter.h"
#include "keel/engine/jinja_string.h"

namespace keel::engine::jinja {

ArgumentReader::ArgumentReader(std::string function, const ValueList& args, const KeywordArgs& kwargs,
                               std::vector<std::string> parameter_names)
    : function_(std::move(function)), args_(args), kwargs_(kwargs), names_(std::move(parameter_names)) {}

std::optional<Value> ArgumentReader::get(size_t i) const {
  if (i < args_.size()) return args_[i];
  if (i < names_.size()) {
    for (const auto& [key, value] : kwargs_) {
      if (key == names_[i]) return value;
    }
  }
  return std::nullopt;
}

Status ArgumentReader::check() const {
  if (args_.size() > names_.size()) {
    return invalid_argument(function_ + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
                            std::to_string(args_.size()) + " given)");
  }
  for (const auto& [key, value] : kwargs_) {
    auto it = std::find(names_.begin(), names_.end(), key);
    if (it == names_.end()) return invalid_argument(function_ + "() got an unexpected keyword argument '" + key + "'");
    if (static_cast<size_t>(it - names_.begin()) < args_.size()) {
      return invalid_argument(function_ + "() got multiple values for argument '" + key + "'");
    }
  }
  return Status::Ok();
}

namespace {

using Method = Result<Value> (*)(const Value& self, const ValueList& args, const KeywordArgs& kwargs);

Result<std::optional<std::string>> optional_string_arg(const ArgumentReader& reader, size_t i,
                                                       const std::string& what) {
  auto v = reader.get(i);
  if (!v || v->is_none()) return std::optional<std::string>();
  if (!v->is_string()) return invalid_argument(what + " must be str or None, not " + v->type_name());
  return std::optional<std::string>(v->as_string());
}

Result<int64_t> int_arg(const ArgumentReader& reader, size_t i, int64_t fallback, const std::string& what) {
  auto v = reader.get(i);
  if (!v) return fallback;
  if (!v->is_int() && !v->is_bool()) return invalid_argument(what + " must be an integer, not " + v->type_name());
  return v->as_int();
}

Value string_list(std::vector<std::string> parts) {
  ValueList out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::list(std::move(out));
}

Result<Value> strip_method(const Value& self, const ValueList& args, const KeywordArgs& kwargs, bool left, bool right,
                           const char* name) {
  ArgumentReader reader(name, args, kwargs, {"chars"});
  KEEL_RETURN_IF_ERROR(reader.check());
  KEEL_ASSIGN_OR_RETURN(auto chars, optional_string_arg(reader, 0, std::string(name) + " arg"));
  return Value::string(python_strip(self.as_string(), chars, left, right));
}

Result<Value> split_method(const Value& self, const ValueList& args, const KeywordArgs& kwargs, bool from_right) {
  ArgumentReader reader(from_right ? "rsplit" : "split", args, kwargs, {"sep", "maxsplit"});
  KEEL_RETURN_IF_ERROR(reader.check());
  KEEL_ASSIGN_OR_RETURN(auto sep, optional_string_arg(reader, 0, "sep"));
  if (sep && sep->empty()) return invalid_argument("empty separator");
  KEEL_ASSIGN_OR_RETURN(int64_t maxsplit, int_arg(reader, 1, -1, "maxsplit"));
  return string_list(from_right ? python_rsplit(self.as_string(), sep, maxsplit)
                                : python_split(self.as_string(), sep, maxsplit));
}

// startswith / endswith with a str or a tuple of str.
Result<Value> affix_method(const Value& self, const ValueList& args, const KeywordArgs& kwargs, bool prefix) {
  const char* name = prefix ? "startswith" : "endswith";
  ArgumentReader reader(name, args, kwargs, {"affix"});
  KEEL_RETURN_IF_ERROR(reader.check());
  auto affix = reader.get(0);
  if (!affix) return invalid_argument(std::string(name) + "() takes at least 1 argument (0 given)");
  std::vector<std::string> options;
  if (affix->is_string()) {
    options.push_back(affix->as_string());
  } else if (affix->is_tuple()) {
    for (const auto& item : affix->as_list()) {
      if (!item.is_string()) return invalid_argument(std::string(name) + "() tuple items must be str");
      options.push_back(item.as_string());
    }
  } else {
    return invalid_argument(std::string(name) + " first arg must be str or a tuple of str, not " + affix->type_name());
  }
  const std::string& s = self.as_string();
  for (const auto& o : options) {
    if (o.size() > s.size()) continue;
    if (prefix ? s.compare(0, o.size(), o) == 0 : s.compare(s.size() - o.size(), o.size(), o) == 0) {
      return Value::boolean(true);
    }
  }
  return Value::boolean(false);
}

Result<Value> find_method_impl(const Value& self, const ValueList& args, const KeywordArgs& kwargs, bool reverse,
                               bool raise) {
  ArgumentReader reader(reverse ? "rfind" : "find", args, kwargs, {"sub"});
  KEEL_RETURN_IF_ERROR(reader.check());
  auto sub = reader.get(0);
  if (!sub || !sub->is_string()) return invalid_argument("must be str");
  const std::string& s = self.as_string();
  const size_t hit = reverse ? s.rfind(sub->as_string()) : s.find(sub->as_string());
  if (hit == std::string::npos) {
    if (raise) return invalid_argument("substring not found");
    return Value::integer(-1);
  }
  return Value::integer(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, hit))));
}

Result<Value> no_args(const char* name, const ValueList& args, const KeywordArgs& kwargs) {
  if (!args.empty() || !kwargs.empty()) return invalid_argument(std::string(name) + "() takes no arguments");
  return Value();
}

template <typename Pred>
Value str_predicate(const Value& self, Pred pred) {
  const std::string& s = self.as_string();
  if (s.empty()) return Value::boolean(false);
  return Value::boolean(std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)); }));
}

Result<Value> call_str_method(const std::string& name, const Value& self, const ValueList& args,
                              const KeywordArgs& kwargs) {
  const std::string& s = self.as_string();
  if (name == "strip") return strip_method(self, args, kwargs, true, true, "strip");
  if (name == "lstrip") return strip_method(self, args, kwargs, true, false, "lstrip");
  if (name == "rstrip") return strip_method(self, args, kwargs, false, true, "rstrip");
  if (name == "split") return split_method(self, args, kwargs, false);
  if (name == "rsplit") return split_method(self, args, kwargs, true);
  if (name == "startswith") return affix_method(self, args, kwargs, true);
  if (name == "endswith") return affix_method(self, args, kwargs, false);
  if (name == "find") return find_method_impl(self, args, kwargs, false, false);
  if (name == "rfind") return find_method_impl(self, args, kwargs, true, false);
  if (name == "index") return find_method_impl(self, args, kwargs, false, true);
  if (name == "splitlines") {
    ArgumentReader reader("splitlines", args, kwargs, {"keepends"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto keep = reader.get(0);
    return string_list(python_splitlines(s, keep && keep->truthy()));
  }
  if (name == "replace") {
    ArgumentReader reader("replace", args, kwargs, {"old", "new", "count"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto old_text = reader.get(0);
    auto new_text = reader.get(1);
    if (!old_text || !new_text || !old_text->is_string() || !new_text->is_string()) {
      return invalid_argument("replace() arguments must be str");
    }
    KEEL_ASSIGN_OR_RETURN(int64_t count, int_arg(reader, 2, -1, "count"));
    return Value::string(python_replace(s, old_text->as_string(), new_text->as_string(), count));
  }
  if (name == "count") {
    ArgumentReader reader("count", args, kwargs, {"sub"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto sub = reader.get(0);
    if (!sub || !sub->is_string()) return invalid_argument("must be str");
    return Value::integer(python_count(s, sub->as_string()));
  }
  if (name == "join") {
    ArgumentReader reader("join", args, kwargs, {"iterable"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto items = reader.get(0);
    if (!items) return invalid_argument("join() takes exactly one argument (0 given)");
    ValueList parts;
    if (items->is_sequence()) {
      parts = items->as_list();
    } else if (items->is_string()) {
      for (const auto& c : utf8_chars(items->as_string())) parts.push_back(Value::string(std::string(c.bytes)));
    } else {
      return invalid_argument("can only join an iterable");
    }
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].is_string()) {
        return invalid_argument("sequence item " + std::to_string(i) + ": expected str instance, " +
                                parts[i].type_name() + " found");
      }
      if (i > 0) out += s;
      out += parts[i].as_string();
    }
    return Value::string(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    ArgumentReader reader(name, args, kwargs, {"affix"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto affix = reader.get(0);
    if (!affix || !affix->is_string()) return invalid_argument(name + "() argument must be str");
    const std::string& a = affix->as_string();
    if (a.size() <= s.size()) {
      if (name == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value::string(s.substr(a.size()));
      if (name == "removesuffix" && s.compare(s.size() - a.size(), a.size(), a) == 0) {
        return Value::string(s.substr(0, s.size() - a.size()));
      }
    }
    return self;
  }
  KEEL_RETURN_IF_ERROR(no_args(name.c_str(), args, kwargs).status());
  if (name == "upper") return Value::string(ascii_upper(s));
  if (name == "lower") return Value::string(ascii_lower(s));
  if (name == "title") return Value::string(python_title(s));
  if (name == "capitalize") return Value::string(python_capitalize(s));
  if (name == "isdigit") return str_predicate(self, [](unsigned char c) { return c >= '0' && c <= '9'; });
  if (name == "isalpha") {
    return str_predicate(self, [](unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; });
  }
  if (name == "isalnum") {
    return str_predicate(
        self, [](unsigned char c) { return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9'); });
  }
  if (name == "isspace") {
    if (s.empty()) return Value::boolean(false);
    for (const auto& c : utf8_chars(s)) {
      if (!is_python_space(c.code_point)) return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  if (name == "islower") return Value::boolean(ascii_lower(s) == s && ascii_upper(s) != s);
  if (name == "isupper") return Value::boolean(ascii_upper(s) == s && ascii_lower(s) != s);
  return internal_error("unknown str method " + name);
}

Value items_list(const Dict& d) {
  ValueList out;
  out.reserve(d.items.size());
  for (const auto& [k, v] : d.items) out.push_back(Value::tuple({k, v}));
  return Value::list(std::move(out));
}

Result<Value> call_dict_method(const std::string& name, const Value& self, const ValueList& args,
                               const KeywordArgs& kwargs) {
  const Dict& d = self.as_dict();
  if (name == "get") {
    ArgumentReader reader("get", args, kwargs, {"key", "default"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto key = reader.get(0);
    if (!key) return invalid_argument("get expected at least 1 argument, got 0");
    const Value* found = d.find(*key);
    if (found != nullptr) return *found;
    auto fallback = reader.get(1);
    return fallback ? *fallback : Value::none();
  }
  KEEL_RETURN_IF_ERROR(no_args(name.c_str(), args, kwargs).status());
  if (name == "items") return items_list(d);
  if (name == "copy") return self;
  ValueList out;
  out.reserve(d.items.size());
  for (const auto& [k, v] : d.items) out.push_back(name == "keys" ? k : v);
  return Value::list(std::move(out));
}

Result<Value> call_list_method(const std::string& name, const Value& self, const ValueList& args,
                               const KeywordArgs& kwargs) {
  ArgumentReader reader(name, args, kwargs, {"value"});
  KEEL_RETURN_IF_ERROR(reader.check());
  if (name == "copy") return Value::list(self.as_list());
  auto needle = reader.get(0);
  if (!needle) return invalid_argument(name + "() takes exactly one argument (0 given)");
  const auto& items = self.as_list();
  if (name == "count") {
    return Value::integer(static_cast<int64_t>(
        std::count_if(items.begin(), items.end(), [&](const Value& v) { return values_equal(v, *needle); })));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (values_equal(items[i], *needle)) return Value::integer(static_cast<int64_t>(i));
  }
  return invalid_argument(needle->repr() + " is not in list");
}

constexpr std::array<const char*, 26> kStrMethods = {
    "strip",   "lstrip",  "rstrip",  "split",   "rsplit",  "splitlines", "startswith",   "endswith",    "find",
    "rfind",   "index",   "replace", "count",   "join",    "upper",      "lower",        "title",       "capitalize",
    "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper",    "removeprefix", "removesuffix"};
constexpr std::array<const char*, 5> kDictMethods = {"get", "items", "keys", "values", "copy"};
constexpr std::array<const char*, 6> kDictUnsafe = {"pop", "popitem", "setdefault", "update", "clear", "fromkeys"};
constexpr std::array<const char*, 3> kListMethods = {"index", "count", "copy"};
constexpr std::array<const char*, 8> kListUnsafe = {"append", "extend",  "insert", "pop",
                                                    "remove", "reverse", "sort",   "clear"};

template <size_t N>
bool contains(const std::array<const char*, N>& names, const std::string& name) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

}  // namespace

MethodLookup find_method(const Value& object, const std::string& name, Value& method) {
  using Impl = Result<Value> (*)(const std::string&, const Value&, const ValueList&, const KeywordArgs&);
  Impl impl = nullptr;
  if (object.is_string() && contains(kStrMethods, name)) impl = call_str_method;
  if (object.is_dict()) {
    if (contains(kDictUnsafe, name)) return MethodLookup::kUnsafe;
    if (contains(kDictMethods, name)) impl = call_dict_method;
  }
  if (object.is_sequence()) {
    if (object.is_list() && contains(kListUnsafe, name)) return MethodLookup::kUnsafe;
    if (contains(kListMethods, name)) impl = call_list_method;
  }
  if (impl == nullptr) return MethodLookup::kNone;
  method = Value::callable(name, [impl, name, object](Interpreter&, ValueList& args, KeywordArgs& kwargs) {
    return impl(name, object, args, kwargs);
  });
  return MethodLookup::kFound;
}

}  // namespace keel::engine::jinja
