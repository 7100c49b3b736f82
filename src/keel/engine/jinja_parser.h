// The Jinja parser: a recursive-descent parser from the lexer's tokens
// (jinja_lexer.h) to the syntax tree (jinja_ast.h), with jinja2's grammar and operator
// precedence. It checks filter and test names against the interpreter's builtins, as
// jinja2 does when it compiles, and caps nesting so hostile input cannot exhaust the
// stack. Errors are kInvalidArgument naming line:column.
#pragma once

#include <memory>
#include <string_view>

#include "keel/engine/jinja_ast.h"
#include "keel/util/status.h"

namespace keel::engine::jinja {

struct ParseLimits {
  int max_nesting = 200;  // nested blocks plus nested expressions
};

Result<std::unique_ptr<Template>> parse_template(std::string_view source, const ParseLimits& limits = {});

}  // namespace keel::engine::jinja
