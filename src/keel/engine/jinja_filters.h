// jinja2's builtin filters ({{ x | trim }}) and tests ({% if x is string %}), with
// transformers' tojson (json.dumps with ensure_ascii=False), as the interpreter
// (jinja_interpreter.h) applies them. The parser asks has_filter / has_test so that an
// unknown name fails when the template is parsed, as in jinja2.
#pragma once

#include <string_view>

#include "keel/engine/jinja_value.h"
#include "keel/util/status.h"

namespace keel::engine::jinja {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);

// value | name(args, kwargs). Errors (a wrong argument type, too many arguments, a
// value over the interpreter's limits) are kInvalidArgument without a position; the
// interpreter adds it.
Result<Value> apply_filter(Interpreter& interpreter, std::string_view name, const Value& value, const ValueList& args,
                           const KeywordArgs& kwargs);
// value is name(args).
Result<bool> apply_test(Interpreter& interpreter, std::string_view name, const Value& value, const ValueList& args);

}  // namespace keel::engine::jinja
