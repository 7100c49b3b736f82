// The syntax tree of a Jinja template: expressions and statements as the parser
// (jinja_parser.h) builds them and the interpreter (jinja_interpreter.h) walks them.
// A tree is immutable once parsed, so one template may be rendered by many threads.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "keel/engine/jinja_value.h"

namespace keel::engine::jinja {

struct Location {
  int line = 1;
  int column = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct CallArguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat, kAnd, kOr, kIn, kNotIn };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };
enum class UnaryOp { kNeg, kPos, kNot };

struct LiteralExpr {
  Value value;
};
struct NameExpr {
  std::string name;
};
struct ListExpr {
  std::vector<ExprPtr> items;
  bool tuple = false;
};
struct DictExpr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};
struct AttributeExpr {  // object.name
  ExprPtr object;
  std::string name;
};
struct ItemExpr {  // object[index]
  ExprPtr object;
  ExprPtr index;
};
struct SliceExpr {  // object[start:stop:step]; an omitted part is null
  ExprPtr object;
  ExprPtr start, stop, step;
};
struct UnaryExpr {
  UnaryOp op;
  ExprPtr operand;
};
struct BinaryExpr {
  BinaryOp op;
  ExprPtr left, right;
};
struct CompareExpr {  // a < b <= c, chained as in Python
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};
struct ConditionalExpr {  // then_value if condition else else_value (else may be null)
  ExprPtr condition, then_value, else_value;
};
struct CallExpr {
  ExprPtr callee;
  CallArguments arguments;
};
struct FilterExpr {  // operand | name(arguments)
  ExprPtr operand;
  std::string name;
  CallArguments arguments;
};
struct TestExpr {  // operand is [not] name(arguments)
  ExprPtr operand;
  std::string name;
  bool negated = false;
  CallArguments arguments;
};

struct Expr {
  Location location;
  std::variant<LiteralExpr, NameExpr, ListExpr, DictExpr, AttributeExpr, ItemExpr, SliceExpr, UnaryExpr, BinaryExpr,
               CompareExpr, ConditionalExpr, CallExpr, FilterExpr, TestExpr>
      node;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct TextStmt {  // template data
  std::string text;
};
struct PrintStmt {  // {{ expr }}
  ExprPtr expr;
};
struct IfStmt {
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, then each elif
  Body else_body;
};
struct ForStmt {
  std::vector<std::string> targets;  // one name, or several to unpack
  bool unpack = false;               // targets came as a tuple ("for k, v in ...")
  ExprPtr iterable;
  ExprPtr filter;  // "for x in xs if cond": may be null
  Body body;
  Body else_body;  // runs when no item was iterated
};
// {% set a = x %}, {% set a, b = x %}, {% set ns.attr = x %}.
struct SetStmt {
  std::vector<std::string> targets;
  bool unpack = false;
  std::string attribute;  // non-empty: targets[0] is a namespace and this its attribute
  ExprPtr value;
};
// {% set name %}body{% endset %}, optionally with filters ({% set x | trim %}).
struct SetBlockStmt {
  std::string target;
  std::vector<ExprPtr> filters;  // FilterExpr nodes with a null operand
  Body body;
};
struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};
struct MacroStmt {
  std::string name;
  std::vector<MacroParam> params;
  Body body;
};
// {% filter upper %}body{% endfilter %}
struct FilterBlockStmt {
  std::vector<ExprPtr> filters;
  Body body;
};
// A body in its own scope: {% generation %} (transformers' assistant marker) and {% with %}.
struct ScopeStmt {
  std::vector<std::pair<std::string, ExprPtr>> assignments;  // {% with a = 1 %}
  Body body;
};
struct BreakStmt {};
struct ContinueStmt {};

struct Stmt {
  Location location;
  std::variant<TextStmt, PrintStmt, IfStmt, ForStmt, SetStmt, SetBlockStmt, MacroStmt, FilterBlockStmt, ScopeStmt,
               BreakStmt, ContinueStmt>
      node;
};

struct Template {
  Body body;
};

}  // namespace keel::engine::jinja
