#include "keel/engine/jinja_filters.h"

#include <algorithm>
#include <array>
#include <cfenv>
#include <cmath>
#include <cstdlib>

#include "keel/engine/jinja_interpreter.h"
#include "keel/engine/jinja_methods.h"
#include "keel/engine/jinja_string.h"

namespace keel::engine::jinja {
namespace {

// Every filter and test jinja2 3.1 defines, so that a template jinja2 accepts also
// parses here; the few without an implementation fail when they run.
constexpr std::string_view kFilterNames[] = {
    "abs",       "attr",       "batch",       "capitalize", "center",  "count",
    "d",         "default",    "dictsort",    "e",          "escape",  "filesizeformat",
    "first",     "float",      "forceescape", "format",     "groupby", "indent",
    "int",       "join",       "last",        "length",     "list",    "lower",
    "items",     "map",        "min",         "max",        "pprint",  "random",
    "reject",    "rejectattr", "replace",     "reverse",    "round",   "safe",
    "select",    "selectattr", "slice",       "sort",       "string",  "striptags",
    "sum",       "title",      "trim",        "truncate",   "unique",  "upper",
    "urlencode", "urlize",     "wordcount",   "wordwrap",   "xmlattr", "tojson"};
constexpr std::string_view kTestNames[] = {
    "odd",     "even",   "divisibleby", "defined",  "undefined", "filter", "test",    "none",
    "boolean", "false",  "true",        "integer",  "float",     "lower",  "upper",   "string",
    "mapping", "number", "sequence",    "iterable", "callable",  "sameas", "escaped", "in",
    "==",      "eq",     "equalto",     "!=",       "ne",        ">",      "gt",      "greaterthan",
    "ge",      ">=",     "<",           "lt",       "lessthan",  "<=",     "le"};

template <size_t N>
bool contains(const std::string_view (&names)[N], std::string_view name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

Status check_size(Interpreter& in, const std::string& s) {
  return in.check_string_size(s.size());
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0, with getitem.
Result<Value> get_path(Interpreter& in, const Value& item, const std::string& path) {
  Value v = item;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    if (dot == std::string::npos) dot = path.size();
    const std::string part = path.substr(pos, dot - pos);
    Value key = Value::string(part);
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        part.size() < 18) {
      key = Value::integer(std::stoll(part));
    }
    KEEL_ASSIGN_OR_RETURN(v, in.get_item(v, key));
    pos = dot + 1;
  }
  return v;
}

Result<ValueList> items_of(Interpreter& in, const Value& value) {
  return in.iterate(value);
}

// Lowercases strings for case-insensitive sorting and comparison.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(ascii_lower(v.as_string()));
  return v;
}

Result<Value> filter_tojson(const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("tojson", args, kwargs, {"ensure_ascii", "indent", "separators", "sort_keys"});
  KEEL_RETURN_IF_ERROR(reader.check());
  JsonOptions options;
  if (auto a = reader.get(0)) options.ensure_ascii = a->truthy();
  if (auto indent = reader.get(1); indent && !indent->is_none()) {
    if (indent->is_string()) {
      options.indent = indent->as_string();
    } else if (indent->is_int() || indent->is_bool()) {
      options.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent->as_int(), 0, 256)), ' ');
    } else {
      return invalid_argument("tojson: indent must be an int or a str, not " + indent->type_name());
    }
    options.item_separator = ",";
  }
  if (auto seps = reader.get(2); seps && !seps->is_none()) {
    const auto& parts = seps->as_list();
    if (!seps->is_sequence() || parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
      return invalid_argument("tojson: separators must be a pair of strings");
    }
    options.item_separator = parts[0].as_string();
    options.key_separator = parts[1].as_string();
  }
  if (auto s = reader.get(3)) options.sort_keys = s->truthy();
  KEEL_ASSIGN_OR_RETURN(std::string json, to_json(value, options));
  return Value::string(std::move(json));
}

// jinja2's do_indent (3.1): indents every line after the first; blank lines stay
// empty unless blank=True.
Result<Value> filter_indent(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("indent", args, kwargs, {"width", "first", "blank"});
  KEEL_RETURN_IF_ERROR(reader.check());
  std::string indention = "    ";
  if (auto w = reader.get(0)) {
    if (w->is_string()) {
      indention = w->as_string();
    } else if (w->is_int()) {
      indention = std::string(static_cast<size_t>(std::clamp<int64_t>(w->as_int(), 0, 4096)), ' ');
    } else {
      return invalid_argument("indent: width must be an int or a str");
    }
  }
  const bool first = reader.get(1) && reader.get(1)->truthy();
  const bool blank = reader.get(2) && reader.get(2)->truthy();
  const std::string s = value.str() + "\n";
  auto lines = python_splitlines(s, false);
  std::string out;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + indention;
      out += lines[i];
    }
  } else if (!lines.empty()) {
    out = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      out += "\n";
      if (!lines[i].empty()) out += indention + lines[i];
      KEEL_RETURN_IF_ERROR(check_size(in, out));
    }
  }
  if (first) out = indention + out;
  KEEL_RETURN_IF_ERROR(check_size(in, out));
  return Value::string(std::move(out));
}

// jinja2's do_title: each word (split at whitespace and -({[<) gets an upper first
// letter and lower rest.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (const auto& c : utf8_chars(s)) {
    const bool real_char = c.bytes.size() > 1 || c.code_point < 0x80;
    const bool separator =
        real_char && (is_python_space(c.code_point) ||
                      (c.code_point < 0x80 &&
                       std::string_view("-({[<").find(static_cast<char>(c.code_point)) != std::string_view::npos));
    std::string piece(c.bytes);
    if (separator) {
      word_start = true;
    } else if (word_start) {
      piece = ascii_upper(piece);
      word_start = false;
    } else {
      piece = ascii_lower(piece);
    }
    out += piece;
  }
  return out;
}

Result<int64_t> value_length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(utf8_length(v.as_string()));
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.as_dict().items.size());
    default:
      return invalid_argument("object of type '" + v.type_name() + "' has no len()");
  }
}

// Python's int(str): optional sign, digits with single underscores, surrounding whitespace.
std::optional<int64_t> parse_python_int(const std::string& text, int base) {
  std::string s = python_strip(text, std::nullopt, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_' && s[i + 1] != '_') continue;
    digits += s[i];
  }
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || end == digits.c_str() || *end != '\0') return std::nullopt;
  if (digits[0] == ' ' || digits[0] == '\t') return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> parse_python_float(const std::string& text) {
  std::string s = python_strip(text, std::nullopt, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') return std::nullopt;
  // strtod also reads hex floats ("0x1p3"), which Python's float() refuses.
  if (s.find_first_of("xX") != std::string::npos) return std::nullopt;
  return d;
}

Result<Value> filter_int(const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("int", args, kwargs, {"default", "base"});
  KEEL_RETURN_IF_ERROR(reader.check());
  const Value fallback = reader.get(0).value_or(Value::integer(0));
  int base = 10;
  if (auto b = reader.get(1); b && b->is_int()) base = static_cast<int>(b->as_int());
  if (value.is_int() || value.is_bool()) return Value::integer(value.as_int());
  if (value.is_float()) {
    const double d = value.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (value.is_string()) {
    if (auto i = parse_python_int(value.as_string(), base)) return Value::integer(*i);
    if (auto d = parse_python_float(value.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
      return Value::integer(static_cast<int64_t>(*d));
    }
  }
  return fallback;
}

Result<Value> filter_float(const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("float", args, kwargs, {"default"});
  KEEL_RETURN_IF_ERROR(reader.check());
  const Value fallback = reader.get(0).value_or(Value::floating(0.0));
  if (value.is_number()) return Value::floating(value.as_double());
  if (value.is_string()) {
    if (auto d = parse_python_float(value.as_string())) return Value::floating(*d);
  }
  return fallback;
}

Result<Value> filter_round(const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("round", args, kwargs, {"precision", "method"});
  KEEL_RETURN_IF_ERROR(reader.check());
  if (!value.is_number()) return invalid_argument("round: value must be a number, not " + value.type_name());
  int64_t precision = 0;
  if (auto p = reader.get(0)) precision = p->as_int();
  const std::string method = reader.get(1) ? reader.get(1)->str() : "common";
  const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  const double x = value.as_double() * scale;
  double r = 0;
  if (method == "common") {
    std::fesetround(FE_TONEAREST);
    r = std::nearbyint(x);  // Python's round(): half to even
  } else if (method == "floor") {
    r = std::floor(x);
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else {
    return invalid_argument("round: method must be 'common', 'ceil' or 'floor'");
  }
  return Value::floating(r / scale);
}

Result<Value> filter_join(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("join", args, kwargs, {"d", "attribute"});
  KEEL_RETURN_IF_ERROR(reader.check());
  const std::string sep = reader.get(0) ? reader.get(0)->str() : "";
  auto attribute = reader.get(1);
  KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = items[i];
    if (attribute && !attribute->is_none()) {
      KEEL_ASSIGN_OR_RETURN(item, get_path(in, item, attribute->str()));
    }
    if (i > 0) out += sep;
    out += item.str();
    KEEL_RETURN_IF_ERROR(check_size(in, out));
  }
  return Value::string(std::move(out));
}

// select / reject / selectattr / rejectattr.
Result<Value> filter_select(Interpreter& in, const Value& value, const ValueList& args, bool by_attribute,
                            bool keep_matches) {
  KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.empty()) return invalid_argument("selectattr/rejectattr need an attribute name");
    attribute = args[next++].str();
  }
  std::optional<std::string> test;
  if (next < args.size()) test = args[next++].str();
  if (test && !has_test(*test)) return invalid_argument("no test named '" + *test + "'");
  const ValueList test_args(args.begin() + static_cast<std::ptrdiff_t>(next), args.end());
  ValueList out;
  for (const auto& item : items) {
    KEEL_RETURN_IF_ERROR(in.count_iteration());
    Value subject = item;
    if (by_attribute) {
      KEEL_ASSIGN_OR_RETURN(subject, get_path(in, item, attribute));
    }
    bool pass = false;
    if (test) {
      KEEL_ASSIGN_OR_RETURN(pass, apply_test(in, *test, subject, test_args));
    } else {
      pass = subject.truthy();
    }
    if (pass == keep_matches) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Result<Value> filter_map(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
  std::optional<std::string> attribute;
  std::optional<Value> fallback;
  for (const auto& [key, v] : kwargs) {
    if (key == "attribute") {
      attribute = v.str();
    } else if (key == "default") {
      fallback = v;
    } else if (args.empty()) {
      return invalid_argument("map() got an unexpected keyword argument '" + key + "'");
    }
  }
  ValueList out;
  out.reserve(items.size());
  if (attribute) {
    for (const auto& item : items) {
      KEEL_RETURN_IF_ERROR(in.count_iteration());
      KEEL_ASSIGN_OR_RETURN(Value v, get_path(in, item, *attribute));
      if (v.is_undefined() && fallback) v = *fallback;
      out.push_back(std::move(v));
    }
    return Value::list(std::move(out));
  }
  if (args.empty()) return invalid_argument("map: give a filter name or attribute=");
  const std::string filter = args[0].str();
  if (!has_filter(filter)) return invalid_argument("no filter named '" + filter + "'");
  const ValueList filter_args(args.begin() + 1, args.end());
  for (const auto& item : items) {
    KEEL_RETURN_IF_ERROR(in.count_iteration());
    KEEL_ASSIGN_OR_RETURN(Value v, apply_filter(in, filter, item, filter_args, kwargs));
    out.push_back(std::move(v));
  }
  return Value::list(std::move(out));
}

Result<ValueList> keyed_items(Interpreter& in, const Value& value, const std::optional<Value>& attribute,
                              bool case_sensitive, std::vector<Value>& keys) {
  KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
  keys.clear();
  for (const auto& item : items) {
    Value key = item;
    if (attribute && !attribute->is_none()) {
      KEEL_ASSIGN_OR_RETURN(key, get_path(in, item, attribute->str()));
    }
    keys.push_back(sort_key(key, case_sensitive));
  }
  return items;
}

Result<Value> filter_sort(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("sort", args, kwargs, {"reverse", "case_sensitive", "attribute"});
  KEEL_RETURN_IF_ERROR(reader.check());
  const bool reverse = reader.get(0) && reader.get(0)->truthy();
  const bool case_sensitive = reader.get(1) && reader.get(1)->truthy();
  std::vector<Value> keys;
  KEEL_ASSIGN_OR_RETURN(ValueList items, keyed_items(in, value, reader.get(2), case_sensitive, keys));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Status failure;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (!failure.ok()) return false;
    auto less = reverse ? value_less(keys[b], keys[a]) : value_less(keys[a], keys[b]);
    if (!less.ok()) {
      failure = less.status();
      return false;
    }
    return *less;
  });
  KEEL_RETURN_IF_ERROR(failure);
  ValueList out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Result<Value> filter_unique(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("unique", args, kwargs, {"case_sensitive", "attribute"});
  KEEL_RETURN_IF_ERROR(reader.check());
  const bool case_sensitive = reader.get(0) && reader.get(0)->truthy();
  std::vector<Value> keys;
  KEEL_ASSIGN_OR_RETURN(ValueList items, keyed_items(in, value, reader.get(1), case_sensitive, keys));
  ValueList out;
  std::vector<Value> seen;
  for (size_t i = 0; i < items.size(); ++i) {
    KEEL_RETURN_IF_ERROR(in.count_iteration());
    bool dup = std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, keys[i]); });
    if (dup) continue;
    seen.push_back(keys[i]);
    out.push_back(items[i]);
  }
  return Value::list(std::move(out));
}

Result<Value> filter_min_max(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs,
                             bool want_max) {
  ArgumentReader reader(want_max ? "max" : "min", args, kwargs, {"case_sensitive", "attribute"});
  KEEL_RETURN_IF_ERROR(reader.check());
  const bool case_sensitive = reader.get(0) && reader.get(0)->truthy();
  std::vector<Value> keys;
  KEEL_ASSIGN_OR_RETURN(ValueList items, keyed_items(in, value, reader.get(1), case_sensitive, keys));
  if (items.empty()) return Value::undefined("", "No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    KEEL_ASSIGN_OR_RETURN(bool less, want_max ? value_less(keys[best], keys[i]) : value_less(keys[i], keys[best]));
    if (less) best = i;
  }
  return items[best];
}

Result<Value> filter_sum(Interpreter& in, const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("sum", args, kwargs, {"attribute", "start"});
  KEEL_RETURN_IF_ERROR(reader.check());
  std::vector<Value> keys;
  auto attribute = reader.get(0);
  KEEL_ASSIGN_OR_RETURN(ValueList items, keyed_items(in, value, attribute, true, keys));
  Value total = reader.get(1).value_or(Value::integer(0));
  for (const auto& k : keys) {
    if (!k.is_number() || !total.is_number()) {
      return invalid_argument("unsupported operand type(s) for +: '" + total.type_name() + "' and '" + k.type_name() +
                              "'");
    }
    if (total.is_float() || k.is_float()) {
      total = Value::floating(total.as_double() + k.as_double());
    } else {
      int64_t r = 0;
      if (__builtin_add_overflow(total.as_int(), k.as_int(), &r)) return invalid_argument("integer overflow in sum");
      total = Value::integer(r);
    }
  }
  return total;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Result<Value> filter_dictsort(const Value& value, const ValueList& args, const KeywordArgs& kwargs) {
  ArgumentReader reader("dictsort", args, kwargs, {"case_sensitive", "by", "reverse"});
  KEEL_RETURN_IF_ERROR(reader.check());
  if (!value.is_dict()) return invalid_argument("dictsort: value must be a dict");
  const bool case_sensitive = reader.get(0) && reader.get(0)->truthy();
  const bool by_value = reader.get(1) && reader.get(1)->str() == "value";
  const bool reverse = reader.get(2) && reader.get(2)->truthy();
  auto items = value.as_dict().items;
  Status failure;
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    const Value ka = sort_key(by_value ? a.second : a.first, case_sensitive);
    const Value kb = sort_key(by_value ? b.second : b.first, case_sensitive);
    auto less = reverse ? value_less(kb, ka) : value_less(ka, kb);
    if (!less.ok()) {
      failure = less.status();
      return false;
    }
    return *less;
  });
  KEEL_RETURN_IF_ERROR(failure);
  ValueList out;
  for (auto& [k, v] : items) out.push_back(Value::tuple({k, v}));
  return Value::list(std::move(out));
}

}  // namespace

bool has_filter(std::string_view name) {
  return contains(kFilterNames, name);
}
bool has_test(std::string_view name) {
  return contains(kTestNames, name);
}

Result<Value> apply_filter(Interpreter& in, std::string_view name, const Value& value, const ValueList& args,
                           const KeywordArgs& kwargs) {
  const std::string n(name);
  if (n == "tojson") return filter_tojson(value, args, kwargs);
  if (n == "indent") return filter_indent(in, value, args, kwargs);
  if (n == "join") return filter_join(in, value, args, kwargs);
  if (n == "map") return filter_map(in, value, args, kwargs);
  if (n == "select" || n == "reject" || n == "selectattr" || n == "rejectattr") {
    if (!kwargs.empty()) return invalid_argument(n + "() takes no keyword arguments");
    return filter_select(in, value, args, n.size() > 6, n[0] == 's');
  }
  if (n == "sort") return filter_sort(in, value, args, kwargs);
  if (n == "unique") return filter_unique(in, value, args, kwargs);
  if (n == "min" || n == "max") return filter_min_max(in, value, args, kwargs, n == "max");
  if (n == "sum") return filter_sum(in, value, args, kwargs);
  if (n == "int") return filter_int(value, args, kwargs);
  if (n == "float") return filter_float(value, args, kwargs);
  if (n == "round") return filter_round(value, args, kwargs);
  if (n == "dictsort") return filter_dictsort(value, args, kwargs);
  if (n == "default" || n == "d") {
    ArgumentReader reader(n, args, kwargs, {"default_value", "boolean"});
    KEEL_RETURN_IF_ERROR(reader.check());
    const bool boolean = reader.get(1) && reader.get(1)->truthy();
    if (value.is_undefined() || (boolean && !value.truthy())) return reader.get(0).value_or(Value::string(""));
    return value;
  }
  if (n == "trim") {
    ArgumentReader reader("trim", args, kwargs, {"chars"});
    KEEL_RETURN_IF_ERROR(reader.check());
    std::optional<std::string> chars;
    if (auto c = reader.get(0); c && !c->is_none()) chars = c->str();
    return Value::string(python_strip(value.str(), chars, true, true));
  }
  if (n == "replace") {
    ArgumentReader reader("replace", args, kwargs, {"old", "new", "count"});
    KEEL_RETURN_IF_ERROR(reader.check());
    auto old_text = reader.get(0);
    auto new_text = reader.get(1);
    if (!old_text || !new_text) return invalid_argument("replace() needs old and new");
    int64_t count = -1;
    if (auto c = reader.get(2); c && !c->is_none()) count = c->as_int();
    std::string out = python_replace(value.str(), old_text->str(), new_text->str(), count);
    KEEL_RETURN_IF_ERROR(check_size(in, out));
    return Value::string(std::move(out));
  }
  if (n == "attr") {
    if (args.size() != 1 || !kwargs.empty()) return invalid_argument("attr() takes one argument");
    return in.get_attribute(value, args[0].str());
  }
  if (n == "format") return invalid_argument("the 'format' filter is not supported");
  // The rest take no arguments.
  if (!args.empty() || !kwargs.empty()) {
    if (n == "center" || n == "truncate" || n == "wordwrap" || n == "batch" || n == "slice" || n == "groupby" ||
        n == "random" || n == "urlize" || n == "xmlattr" || n == "filesizeformat" || n == "pprint") {
      return invalid_argument("the '" + n + "' filter is not supported");
    }
    return invalid_argument(n + "() takes no arguments");
  }
  if (n == "length" || n == "count") {
    KEEL_ASSIGN_OR_RETURN(int64_t len, value_length(value));
    return Value::integer(len);
  }
  if (n == "string") return Value::string(value.str());
  if (n == "safe") return value.is_string() ? value : Value::string(value.str());
  if (n == "lower") return Value::string(ascii_lower(value.str()));
  if (n == "upper") return Value::string(ascii_upper(value.str()));
  if (n == "title") return Value::string(jinja_title(value.str()));
  if (n == "capitalize") return Value::string(python_capitalize(value.str()));
  if (n == "e" || n == "escape" || n == "forceescape") return Value::string(html_escape(value.str()));
  if (n == "abs") {
    if (value.is_float()) return Value::floating(std::fabs(value.as_double()));
    if (value.is_int() || value.is_bool()) {
      if (value.as_int() == INT64_MIN) return invalid_argument("integer overflow in abs");
      return Value::integer(std::llabs(value.as_int()));
    }
    return invalid_argument("bad operand type for abs(): '" + value.type_name() + "'");
  }
  if (n == "wordcount") {
    int64_t words = 0;
    bool in_word = false;
    for (const auto& c : utf8_chars(value.str())) {
      const bool word_char =
          c.bytes.size() > 1 ||
          (c.code_point < 0x80 && (std::isalnum(static_cast<int>(c.code_point)) || c.code_point == '_'));
      if (word_char && !in_word) ++words;
      in_word = word_char;
    }
    return Value::integer(words);
  }
  if (n == "list") {
    KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
    return Value::list(std::move(items));
  }
  if (n == "first" || n == "last") {
    KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
    if (items.empty()) return Value::undefined("", "No " + n + " item, sequence was empty.");
    return n == "first" ? items.front() : items.back();
  }
  if (n == "reverse") {
    if (value.is_string()) {
      auto chars = utf8_chars(value.as_string());
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->bytes;
      return Value::string(std::move(out));
    }
    KEEL_ASSIGN_OR_RETURN(ValueList items, items_of(in, value));
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (n == "items") {
    if (value.is_undefined()) return Value::list({});
    if (!value.is_dict()) return invalid_argument("Can only get item pairs from a mapping.");
    ValueList out;
    for (const auto& [k, v] : value.as_dict().items) out.push_back(Value::tuple({k, v}));
    return Value::list(std::move(out));
  }
  return invalid_argument("the '" + n + "' filter is not supported");
}

Result<bool> apply_test(Interpreter& in, std::string_view name, const Value& value, const ValueList& args) {
  const std::string n(name);
  auto arg = [&]() -> Result<Value> {
    if (args.size() != 1) return invalid_argument("test '" + n + "' takes one argument");
    return args[0];
  };
  if (n == "defined") return !value.is_undefined();
  if (n == "undefined") return value.is_undefined();
  if (n == "none") return value.is_none();
  if (n == "boolean") return value.is_bool();
  if (n == "true") return value.is_bool() && value.as_bool();
  if (n == "false") return value.is_bool() && !value.as_bool();
  if (n == "integer") return value.is_int();
  if (n == "float") return value.is_float();
  if (n == "number") return value.is_number();
  if (n == "string") return value.is_string();
  if (n == "mapping") return value.is_dict();
  // Python: anything with __iter__ (jinja2's Undefined included) / __len__ and __getitem__.
  if (n == "iterable" || n == "sequence") {
    return value.is_string() || value.is_sequence() || value.is_dict() || value.is_undefined();
  }
  if (n == "callable") return value.is_callable();
  if (n == "escaped") return false;
  if (n == "lower") return value.is_string() && ascii_lower(value.as_string()) == value.as_string();
  if (n == "upper") return value.is_string() && ascii_upper(value.as_string()) == value.as_string();
  if (n == "filter") return value.is_string() && has_filter(value.as_string());
  if (n == "test") return value.is_string() && has_test(value.as_string());
  if (n == "odd" || n == "even") {
    if (!value.is_int() && !value.is_bool()) return invalid_argument("test '" + n + "' needs an integer");
    const bool odd = (value.as_int() % 2) != 0;
    return n == "odd" ? odd : !odd;
  }
  KEEL_ASSIGN_OR_RETURN(Value other, arg());
  if (n == "divisibleby") {
    if (!value.is_int() || !other.is_int()) return invalid_argument("divisibleby needs integers");
    if (other.as_int() == 0) return invalid_argument("integer division or modulo by zero");
    return value.as_int() % other.as_int() == 0;
  }
  if (n == "sameas") {
    if (value.kind() != other.kind()) return false;
    if (value.is_none() || value.is_undefined()) return true;
    if (value.is_bool()) return value.as_bool() == other.as_bool();
    if (value.is_sequence()) return &value.as_list() == &other.as_list();
    if (value.is_dict()) return &value.as_dict() == &other.as_dict();
    if (value.is_string()) return &value.as_string() == &other.as_string();
    return values_equal(value, other);
  }
  if (n == "==" || n == "eq" || n == "equalto") return values_equal(value, other);
  if (n == "!=" || n == "ne") return !values_equal(value, other);
  if (n == "<" || n == "lt" || n == "lessthan") return value_less(value, other);
  if (n == ">" || n == "gt" || n == "greaterthan") return value_less(other, value);
  if (n == "<=" || n == "le") {
    KEEL_ASSIGN_OR_RETURN(bool less, value_less(value, other));
    return less || values_equal(value, other);
  }
  if (n == ">=" || n == "ge") {
    KEEL_ASSIGN_OR_RETURN(bool less, value_less(other, value));
    return less || values_equal(value, other);
  }
  if (n == "in") {
    if (other.is_string()) {
      if (!value.is_string()) return invalid_argument("'in <string>' requires string as left operand");
      return other.as_string().find(value.as_string()) != std::string::npos;
    }
    if (other.is_dict()) return other.as_dict().find(value) != nullptr;
    KEEL_ASSIGN_OR_RETURN(ValueList items, in.iterate(other));
    return std::any_of(items.begin(), items.end(), [&](const Value& v) { return values_equal(v, value); });
  }
  return invalid_argument("the '" + n + "' test is not supported");
}

}  // namespace keel::engine::jinja
