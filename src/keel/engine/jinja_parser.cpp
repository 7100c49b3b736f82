#include "keel/engine/jinja_parser.h"

#include <initializer_list>

#include "keel/engine/jinja_filters.h"
#include "keel/engine/jinja_lexer.h"

namespace keel::engine::jinja {
namespace {

template <typename Node>
ExprPtr make_expr(Location location, Node node) {
  auto e = std::make_unique<Expr>();
  e->location = location;
  e->node = std::move(node);
  return e;
}

template <typename Node>
StmtPtr make_stmt(Location location, Node node) {
  auto s = std::make_unique<Stmt>();
  s->location = location;
  s->node = std::move(node);
  return s;
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseLimits& limits) : tokens_(std::move(tokens)), limits_(limits) {}

  Result<std::unique_ptr<Template>> run() {
    auto tmpl = std::make_unique<Template>();
    KEEL_ASSIGN_OR_RETURN(tmpl->body, parse_body({}));
    if (current().kind != TokenKind::kEnd) {
      // parse_body only stops early at a block tag it was not told to expect.
      return error(std::string("unexpected '") + peek(1).text + "'");
    }
    return tmpl;
  }

 private:
  // Counts nesting for the duration of one recursive call.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser& p) : p_(p) { ++p_.depth_; }
    ~DepthGuard() { --p_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& p_;
  };

  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead) const {
    const size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : tokens_.back();
  }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  Location location() const { return {current().line, current().column}; }

  bool at_operator(std::string_view op) const { return current().kind == TokenKind::kOperator && current().text == op; }
  bool at_name(std::string_view name) const { return current().kind == TokenKind::kName && current().text == name; }
  bool skip_operator(std::string_view op) {
    if (!at_operator(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kData:
        return "template text";
      case TokenKind::kBlockEnd:
        return "'%}'";
      case TokenKind::kVariableEnd:
        return "'}}'";
      case TokenKind::kString:
        return "string literal";
      default:
        return "'" + t.text + "'";
    }
  }

  Status error(const std::string& message) const { return error_at(location(), message); }
  static Status error_at(Location at, const std::string& message) {
    return invalid_argument("line " + std::to_string(at.line) + ", column " + std::to_string(at.column) + ": " +
                            message);
  }

  Status check_depth() const {
    if (depth_ > limits_.max_nesting) {
      return error("template nested too deeply (more than " + std::to_string(limits_.max_nesting) + " levels)");
    }
    return Status::Ok();
  }

  Status expect_operator(std::string_view op) {
    if (skip_operator(op)) return Status::Ok();
    return error("expected '" + std::string(op) + "', got " + describe(current()));
  }
  Result<std::string> expect_name() {
    if (current().kind != TokenKind::kName) return error("expected a name, got " + describe(current()));
    std::string name = current().text;
    advance();
    return name;
  }
  Status expect_block_end() {
    if (current().kind == TokenKind::kBlockEnd) {
      advance();
      return Status::Ok();
    }
    return error("expected '%}', got " + describe(current()));
  }

  // ---- statements ----

  // Statements until a {% name %} with name in end_names (left unconsumed: current()
  // is then its kBlockBegin), or the end of the template when end_names is empty.
  Result<Body> parse_body(std::initializer_list<std::string_view> end_names) {
    DepthGuard guard(*this);
    KEEL_RETURN_IF_ERROR(check_depth());
    Body body;
    while (true) {
      const Token& t = current();
      if (t.kind == TokenKind::kEnd) {
        if (end_names.size() == 0) return body;
        std::string expected;
        for (auto n : end_names) expected += (expected.empty() ? "'" : " or '") + std::string(n) + "'";
        return error("unexpected end of template: expected " + expected);
      }
      if (t.kind == TokenKind::kData) {
        body.push_back(make_stmt(location(), TextStmt{t.text}));
        advance();
        continue;
      }
      if (t.kind == TokenKind::kVariableBegin) {
        const Location at = location();
        advance();
        KEEL_ASSIGN_OR_RETURN(ExprPtr e, parse_tuple(true, {}, false));
        if (current().kind != TokenKind::kVariableEnd) return error("expected '}}', got " + describe(current()));
        advance();
        body.push_back(make_stmt(at, PrintStmt{std::move(e)}));
        continue;
      }
      if (t.kind == TokenKind::kBlockBegin) {
        const Token& name = peek(1);
        if (name.kind != TokenKind::kName) {
          advance();
          return error("expected a statement name after '{%', got " + describe(current()));
        }
        for (auto n : end_names) {
          if (name.text == n) return body;
        }
        KEEL_ASSIGN_OR_RETURN(StmtPtr s, parse_statement());
        body.push_back(std::move(s));
        continue;
      }
      return error("unexpected " + describe(t));
    }
  }

  // Consumes "{% name" where name must be the given end tag.
  Status expect_tag(std::string_view name) {
    if (current().kind != TokenKind::kBlockBegin || peek(1).kind != TokenKind::kName || peek(1).text != name) {
      return error("expected '{% " + std::string(name) + " %}'");
    }
    advance();
    advance();
    return Status::Ok();
  }

  Result<StmtPtr> parse_statement() {
    advance();  // {%
    const Location at = location();
    const std::string name = current().text;
    advance();
    if (name == "if") return parse_if(at);
    if (name == "for") return parse_for(at);
    if (name == "set") return parse_set(at);
    if (name == "macro") return parse_macro(at);
    if (name == "filter") return parse_filter_block(at);
    if (name == "generation" || name == "with") return parse_scope(at, name);
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) return error_at(at, "'" + name + "' outside of a for loop");
      KEEL_RETURN_IF_ERROR(expect_block_end());
      if (name == "break") return make_stmt(at, BreakStmt{});
      return make_stmt(at, ContinueStmt{});
    }
    if (name == "include" || name == "import" || name == "from" || name == "extends" || name == "block" ||
        name == "call") {
      return error_at(at, "'{% " + name + " %}' is not supported in chat templates");
    }
    return error_at(at, "unknown tag '" + name + "'");
  }

  Result<StmtPtr> parse_if(Location at) {
    IfStmt node;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(ExprPtr cond, parse_tuple(false, {}, false));
      KEEL_RETURN_IF_ERROR(expect_block_end());
      KEEL_ASSIGN_OR_RETURN(Body body, parse_body({"elif", "else", "endif"}));
      node.branches.emplace_back(std::move(cond), std::move(body));
      advance();  // {%
      const std::string tag = current().text;
      advance();
      if (tag == "elif") continue;
      if (tag == "else") {
        KEEL_RETURN_IF_ERROR(expect_block_end());
        KEEL_ASSIGN_OR_RETURN(node.else_body, parse_body({"endif"}));
        KEEL_RETURN_IF_ERROR(expect_tag("endif"));
      }
      KEEL_RETURN_IF_ERROR(expect_block_end());
      return make_stmt(at, std::move(node));
    }
  }

  // A name, or names separated by commas (optionally in parentheses).
  Status parse_target_names(std::vector<std::string>& names, bool& unpack) {
    const bool parens = skip_operator("(");
    while (true) {
      KEEL_ASSIGN_OR_RETURN(std::string n, expect_name());
      names.push_back(std::move(n));
      if (!skip_operator(",")) break;
      unpack = true;
      if (parens && at_operator(")")) break;
      if (!parens && (at_name("in") || at_operator("="))) break;
    }
    if (parens) {
      unpack = true;
      KEEL_RETURN_IF_ERROR(expect_operator(")"));
    }
    return Status::Ok();
  }

  Result<StmtPtr> parse_for(Location at) {
    ForStmt node;
    KEEL_RETURN_IF_ERROR(parse_target_names(node.targets, node.unpack));
    if (!skip_name("in")) return error("expected 'in' in for loop, got " + describe(current()));
    KEEL_ASSIGN_OR_RETURN(node.iterable, parse_tuple(false, {"recursive"}, false));
    if (skip_name("if")) {
      KEEL_ASSIGN_OR_RETURN(node.filter, parse_expression(true));
    }
    if (at_name("recursive")) return error("recursive for loops are not supported");
    KEEL_RETURN_IF_ERROR(expect_block_end());
    ++loop_depth_;
    auto body = parse_body({"endfor", "else"});
    --loop_depth_;
    if (!body.ok()) return body.status();
    node.body = std::move(body).value();
    advance();
    const std::string tag = current().text;
    advance();
    if (tag == "else") {
      KEEL_RETURN_IF_ERROR(expect_block_end());
      KEEL_ASSIGN_OR_RETURN(node.else_body, parse_body({"endfor"}));
      KEEL_RETURN_IF_ERROR(expect_tag("endfor"));
    }
    KEEL_RETURN_IF_ERROR(expect_block_end());
    return make_stmt(at, std::move(node));
  }

  Result<std::vector<ExprPtr>> parse_filter_chain() {
    std::vector<ExprPtr> filters;
    do {
      KEEL_ASSIGN_OR_RETURN(ExprPtr f, parse_filter(nullptr));
      filters.push_back(std::move(f));
    } while (skip_operator("|"));
    return filters;
  }

  Result<StmtPtr> parse_set(Location at) {
    if (current().kind == TokenKind::kName && peek(1).kind == TokenKind::kOperator && peek(1).text == "." &&
        peek(2).kind == TokenKind::kName) {
      SetStmt node;
      node.targets.push_back(current().text);
      node.attribute = peek(2).text;
      advance();
      advance();
      advance();
      KEEL_RETURN_IF_ERROR(expect_operator("="));
      KEEL_ASSIGN_OR_RETURN(node.value, parse_tuple(true, {}, false));
      KEEL_RETURN_IF_ERROR(expect_block_end());
      return make_stmt(at, std::move(node));
    }
    SetStmt node;
    KEEL_RETURN_IF_ERROR(parse_target_names(node.targets, node.unpack));
    if (skip_operator("=")) {
      KEEL_ASSIGN_OR_RETURN(node.value, parse_tuple(true, {}, false));
      KEEL_RETURN_IF_ERROR(expect_block_end());
      return make_stmt(at, std::move(node));
    }
    if (node.unpack) return error("a block set takes one name");
    SetBlockStmt block;
    block.target = node.targets[0];
    if (skip_operator("|")) {
      KEEL_ASSIGN_OR_RETURN(block.filters, parse_filter_chain());
    }
    KEEL_RETURN_IF_ERROR(expect_block_end());
    KEEL_ASSIGN_OR_RETURN(block.body, parse_body({"endset"}));
    KEEL_RETURN_IF_ERROR(expect_tag("endset"));
    KEEL_RETURN_IF_ERROR(expect_block_end());
    return make_stmt(at, std::move(block));
  }

  Result<StmtPtr> parse_macro(Location at) {
    MacroStmt node;
    KEEL_ASSIGN_OR_RETURN(node.name, expect_name());
    KEEL_RETURN_IF_ERROR(expect_operator("("));
    while (!at_operator(")")) {
      if (!node.params.empty()) KEEL_RETURN_IF_ERROR(expect_operator(","));
      MacroParam param;
      KEEL_ASSIGN_OR_RETURN(param.name, expect_name());
      if (skip_operator("=")) {
        KEEL_ASSIGN_OR_RETURN(param.default_value, parse_expression(true));
      } else if (!node.params.empty() && node.params.back().default_value) {
        return error("non-default argument follows default argument");
      }
      node.params.push_back(std::move(param));
    }
    advance();  // )
    KEEL_RETURN_IF_ERROR(expect_block_end());
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;  // break/continue do not reach through a macro
    auto body = parse_body({"endmacro"});
    loop_depth_ = saved_loops;
    if (!body.ok()) return body.status();
    node.body = std::move(body).value();
    KEEL_RETURN_IF_ERROR(expect_tag("endmacro"));
    if (current().kind == TokenKind::kName) advance();  // {% endmacro name %}
    KEEL_RETURN_IF_ERROR(expect_block_end());
    return make_stmt(at, std::move(node));
  }

  Result<StmtPtr> parse_filter_block(Location at) {
    FilterBlockStmt node;
    KEEL_ASSIGN_OR_RETURN(node.filters, parse_filter_chain());
    KEEL_RETURN_IF_ERROR(expect_block_end());
    KEEL_ASSIGN_OR_RETURN(node.body, parse_body({"endfilter"}));
    KEEL_RETURN_IF_ERROR(expect_tag("endfilter"));
    KEEL_RETURN_IF_ERROR(expect_block_end());
    return make_stmt(at, std::move(node));
  }

  Result<StmtPtr> parse_scope(Location at, const std::string& name) {
    ScopeStmt node;
    if (name == "with") {
      while (current().kind != TokenKind::kBlockEnd) {
        if (!node.assignments.empty()) KEEL_RETURN_IF_ERROR(expect_operator(","));
        KEEL_ASSIGN_OR_RETURN(std::string target, expect_name());
        KEEL_RETURN_IF_ERROR(expect_operator("="));
        KEEL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
        node.assignments.emplace_back(std::move(target), std::move(value));
      }
    }
    KEEL_RETURN_IF_ERROR(expect_block_end());
    const std::string end = "end" + name;
    KEEL_ASSIGN_OR_RETURN(node.body, parse_body({end}));
    KEEL_RETURN_IF_ERROR(expect_tag(end));
    KEEL_RETURN_IF_ERROR(expect_block_end());
    return make_stmt(at, std::move(node));
  }

  // ---- expressions (jinja2's precedence, loosest first) ----

  bool at_tuple_end(std::initializer_list<std::string_view> extra_end_names) const {
    const Token& t = current();
    if (t.kind == TokenKind::kVariableEnd || t.kind == TokenKind::kBlockEnd || t.kind == TokenKind::kEnd) return true;
    if (t.kind == TokenKind::kOperator && t.text == ")") return true;
    if (t.kind == TokenKind::kName) {
      for (auto n : extra_end_names) {
        if (t.text == n) return true;
      }
    }
    return false;
  }

  // Comma-separated expressions: one without a trailing comma is itself, else a tuple.
  Result<ExprPtr> parse_tuple(bool with_condexpr, std::initializer_list<std::string_view> extra_end_names,
                              bool explicit_parentheses) {
    const Location at = location();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) KEEL_RETURN_IF_ERROR(expect_operator(","));
      if (at_tuple_end(extra_end_names)) break;
      KEEL_ASSIGN_OR_RETURN(ExprPtr e, with_condexpr ? parse_expression(true) : parse_or());
      items.push_back(std::move(e));
      if (at_operator(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) return error("expected an expression, got " + describe(current()));
    }
    return make_expr(at, ListExpr{std::move(items), true});
  }

  Result<ExprPtr> parse_expression(bool with_condexpr) {
    if (!with_condexpr) return parse_or();
    DepthGuard guard(*this);
    KEEL_RETURN_IF_ERROR(check_depth());
    KEEL_ASSIGN_OR_RETURN(ExprPtr expr, parse_or());
    while (at_name("if")) {
      const Location at = location();
      advance();
      ConditionalExpr cond;
      cond.then_value = std::move(expr);
      KEEL_ASSIGN_OR_RETURN(cond.condition, parse_or());
      if (skip_name("else")) {
        KEEL_ASSIGN_OR_RETURN(cond.else_value, parse_expression(true));
      }
      expr = make_expr(at, std::move(cond));
    }
    return expr;
  }

  Result<ExprPtr> parse_or() {
    KEEL_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
    while (at_name("or")) {
      const Location at = location();
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
      left = make_expr(at, BinaryExpr{BinaryOp::kOr, std::move(left), std::move(right)});
    }
    return left;
  }

  Result<ExprPtr> parse_and() {
    KEEL_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
    while (at_name("and")) {
      const Location at = location();
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
      left = make_expr(at, BinaryExpr{BinaryOp::kAnd, std::move(left), std::move(right)});
    }
    return left;
  }

  Result<ExprPtr> parse_not() {
    if (at_name("not")) {
      DepthGuard guard(*this);
      KEEL_RETURN_IF_ERROR(check_depth());
      const Location at = location();
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr operand, parse_not());
      return make_expr(at, UnaryExpr{UnaryOp::kNot, std::move(operand)});
    }
    return parse_compare();
  }

  Result<ExprPtr> parse_compare() {
    const Location at = location();
    KEEL_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
    CompareExpr cmp;
    std::vector<std::pair<BinaryOp, ExprPtr>> memberships;
    while (true) {
      const Token& t = current();
      std::optional<CompareOp> op;
      if (t.kind == TokenKind::kOperator) {
        if (t.text == "==") op = CompareOp::kEq;
        if (t.text == "!=") op = CompareOp::kNe;
        if (t.text == "<") op = CompareOp::kLt;
        if (t.text == "<=") op = CompareOp::kLe;
        if (t.text == ">") op = CompareOp::kGt;
        if (t.text == ">=") op = CompareOp::kGe;
      }
      if (op) {
        advance();
        KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_math1());
        cmp.rest.emplace_back(*op, std::move(right));
        continue;
      }
      // "in" / "not in" chain like comparisons in jinja2; templates only use them
      // alone, so a chain mixing them with comparisons is refused.
      bool is_in = at_name("in");
      bool is_not_in = at_name("not") && peek(1).kind == TokenKind::kName && peek(1).text == "in";
      if (!is_in && !is_not_in) break;
      if (!cmp.rest.empty()) return error("mixing 'in' with comparisons in one chain is not supported");
      const Location op_at = location();
      advance();
      if (is_not_in) advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_math1());
      first =
          make_expr(op_at, BinaryExpr{is_in ? BinaryOp::kIn : BinaryOp::kNotIn, std::move(first), std::move(right)});
    }
    if (cmp.rest.empty()) return first;
    cmp.first = std::move(first);
    return make_expr(at, std::move(cmp));
  }

  Result<ExprPtr> parse_math1() {
    KEEL_ASSIGN_OR_RETURN(ExprPtr left, parse_concat());
    while (at_operator("+") || at_operator("-")) {
      const Location at = location();
      const BinaryOp op = at_operator("+") ? BinaryOp::kAdd : BinaryOp::kSub;
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_concat());
      left = make_expr(at, BinaryExpr{op, std::move(left), std::move(right)});
    }
    return left;
  }

  Result<ExprPtr> parse_concat() {
    KEEL_ASSIGN_OR_RETURN(ExprPtr left, parse_math2());
    while (at_operator("~")) {
      const Location at = location();
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_math2());
      left = make_expr(at, BinaryExpr{BinaryOp::kConcat, std::move(left), std::move(right)});
    }
    return left;
  }

  Result<ExprPtr> parse_math2() {
    KEEL_ASSIGN_OR_RETURN(ExprPtr left, parse_pow());
    while (true) {
      std::optional<BinaryOp> op;
      if (at_operator("*")) op = BinaryOp::kMul;
      if (at_operator("/")) op = BinaryOp::kDiv;
      if (at_operator("//")) op = BinaryOp::kFloorDiv;
      if (at_operator("%")) op = BinaryOp::kMod;
      if (!op) break;
      const Location at = location();
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_pow());
      left = make_expr(at, BinaryExpr{*op, std::move(left), std::move(right)});
    }
    return left;
  }

  Result<ExprPtr> parse_pow() {
    KEEL_ASSIGN_OR_RETURN(ExprPtr left, parse_unary(true));
    while (at_operator("**")) {
      const Location at = location();
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr right, parse_unary(true));
      left = make_expr(at, BinaryExpr{BinaryOp::kPow, std::move(left), std::move(right)});
    }
    return left;
  }

  Result<ExprPtr> parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    KEEL_RETURN_IF_ERROR(check_depth());
    const Location at = location();
    ExprPtr node;
    if (at_operator("-") || at_operator("+")) {
      const UnaryOp op = at_operator("-") ? UnaryOp::kNeg : UnaryOp::kPos;
      advance();
      KEEL_ASSIGN_OR_RETURN(ExprPtr operand, parse_unary(false));
      node = make_expr(at, UnaryExpr{op, std::move(operand)});
    } else {
      KEEL_ASSIGN_OR_RETURN(node, parse_primary());
    }
    KEEL_ASSIGN_OR_RETURN(node, parse_postfix(std::move(node)));
    if (with_filter) {
      KEEL_ASSIGN_OR_RETURN(node, parse_filter_expr(std::move(node)));
    }
    return node;
  }

  Result<ExprPtr> parse_primary() {
    const Location at = location();
    const Token& t = current();
    switch (t.kind) {
      case TokenKind::kName: {
        const std::string name = t.text;
        advance();
        if (name == "true" || name == "True") return make_expr(at, LiteralExpr{Value::boolean(true)});
        if (name == "false" || name == "False") return make_expr(at, LiteralExpr{Value::boolean(false)});
        if (name == "none" || name == "None") return make_expr(at, LiteralExpr{Value::none()});
        return make_expr(at, NameExpr{name});
      }
      case TokenKind::kString: {
        std::string s = t.text;
        advance();
        while (current().kind == TokenKind::kString) {  // "a" "b" is "ab"
          s += current().text;
          advance();
        }
        return make_expr(at, LiteralExpr{Value::string(std::move(s))});
      }
      case TokenKind::kInteger: {
        const int64_t v = t.int_value;
        advance();
        return make_expr(at, LiteralExpr{Value::integer(v)});
      }
      case TokenKind::kFloat: {
        const double v = t.float_value;
        advance();
        return make_expr(at, LiteralExpr{Value::floating(v)});
      }
      case TokenKind::kOperator:
        if (t.text == "(") {
          advance();
          KEEL_ASSIGN_OR_RETURN(ExprPtr e, parse_tuple(true, {}, true));
          KEEL_RETURN_IF_ERROR(expect_operator(")"));
          return e;
        }
        if (t.text == "[") {
          advance();
          ListExpr list;
          while (!at_operator("]")) {
            if (!list.items.empty()) {
              KEEL_RETURN_IF_ERROR(expect_operator(","));
              if (at_operator("]")) break;
            }
            KEEL_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
            list.items.push_back(std::move(item));
          }
          advance();
          return make_expr(at, std::move(list));
        }
        if (t.text == "{") {
          advance();
          DictExpr dict;
          while (!at_operator("}")) {
            if (!dict.items.empty()) {
              KEEL_RETURN_IF_ERROR(expect_operator(","));
              if (at_operator("}")) break;
            }
            KEEL_ASSIGN_OR_RETURN(ExprPtr key, parse_expression(true));
            KEEL_RETURN_IF_ERROR(expect_operator(":"));
            KEEL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
            dict.items.emplace_back(std::move(key), std::move(value));
          }
          advance();
          return make_expr(at, std::move(dict));
        }
        break;
      default:
        break;
    }
    return error("unexpected " + describe(t) + " in expression");
  }

  Result<ExprPtr> parse_postfix(ExprPtr node) {
    while (true) {
      const Location at = location();
      if (at_operator(".")) {
        advance();
        if (current().kind == TokenKind::kName) {
          node = make_expr(at, AttributeExpr{std::move(node), current().text});
          advance();
        } else if (current().kind == TokenKind::kInteger) {
          node =
              make_expr(at, ItemExpr{std::move(node), make_expr(at, LiteralExpr{Value::integer(current().int_value)})});
          advance();
        } else {
          return error("expected an attribute name after '.', got " + describe(current()));
        }
      } else if (at_operator("[")) {
        advance();
        KEEL_ASSIGN_OR_RETURN(node, parse_subscript(std::move(node), at));
      } else if (at_operator("(")) {
        // A call reports errors (raise_exception's among them) where its callee starts.
        const Location callee_at = node->location;
        KEEL_ASSIGN_OR_RETURN(CallArguments args, parse_call_arguments());
        node = make_expr(callee_at, CallExpr{std::move(node), std::move(args)});
      } else {
        return node;
      }
    }
  }

  // After "[": an index or a slice, then "]".
  Result<ExprPtr> parse_subscript(ExprPtr object, Location at) {
    ExprPtr parts[3];
    int colons = 0;
    if (!at_operator(":")) {
      KEEL_ASSIGN_OR_RETURN(parts[0], parse_expression(true));
      if (at_operator(",")) return error("tuple subscripts are not supported");
      if (!at_operator(":")) {
        KEEL_RETURN_IF_ERROR(expect_operator("]"));
        return make_expr(at, ItemExpr{std::move(object), std::move(parts[0])});
      }
    }
    while (colons < 2 && skip_operator(":")) {
      ++colons;
      if (!at_operator(":") && !at_operator("]")) {
        KEEL_ASSIGN_OR_RETURN(parts[colons], parse_expression(true));
      }
    }
    KEEL_RETURN_IF_ERROR(expect_operator("]"));
    return make_expr(at, SliceExpr{std::move(object), std::move(parts[0]), std::move(parts[1]), std::move(parts[2])});
  }

  Result<CallArguments> parse_call_arguments() {
    KEEL_RETURN_IF_ERROR(expect_operator("("));
    CallArguments args;
    bool need_comma = false;
    while (!at_operator(")")) {
      if (need_comma) {
        KEEL_RETURN_IF_ERROR(expect_operator(","));
        if (at_operator(")")) break;
      }
      if (at_operator("*") || at_operator("**")) return error("*args and **kwargs in calls are not supported");
      if (current().kind == TokenKind::kName && peek(1).kind == TokenKind::kOperator && peek(1).text == "=") {
        std::string key = current().text;
        advance();
        advance();
        KEEL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
        args.keyword.emplace_back(std::move(key), std::move(value));
      } else {
        if (!args.keyword.empty()) return error("positional argument follows keyword argument");
        KEEL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
        args.positional.push_back(std::move(value));
      }
      need_comma = true;
    }
    advance();  // )
    return args;
  }

  Result<std::string> parse_dotted_name() {
    KEEL_ASSIGN_OR_RETURN(std::string name, expect_name());
    while (at_operator(".") && peek(1).kind == TokenKind::kName) {
      advance();
      name += "." + current().text;
      advance();
    }
    return name;
  }

  // After "|": name [ (args) ]. operand may be null (filter blocks, block sets).
  Result<ExprPtr> parse_filter(ExprPtr operand) {
    const Location at = location();
    KEEL_ASSIGN_OR_RETURN(std::string name, parse_dotted_name());
    if (!has_filter(name)) return error_at(at, "no filter named '" + name + "'");
    FilterExpr f;
    f.operand = std::move(operand);
    f.name = std::move(name);
    if (at_operator("(")) {
      KEEL_ASSIGN_OR_RETURN(f.arguments, parse_call_arguments());
    }
    return make_expr(at, std::move(f));
  }

  Result<ExprPtr> parse_filter_expr(ExprPtr node) {
    while (true) {
      if (at_operator("|")) {
        advance();
        KEEL_ASSIGN_OR_RETURN(node, parse_filter(std::move(node)));
      } else if (at_name("is")) {
        KEEL_ASSIGN_OR_RETURN(node, parse_test(std::move(node)));
      } else if (at_operator("(")) {
        const Location at = location();
        KEEL_ASSIGN_OR_RETURN(CallArguments args, parse_call_arguments());
        node = make_expr(at, CallExpr{std::move(node), std::move(args)});
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> parse_test(ExprPtr operand) {
    advance();  // is
    TestExpr test;
    test.operand = std::move(operand);
    if (skip_name("not")) test.negated = true;
    const Location at = location();
    KEEL_ASSIGN_OR_RETURN(test.name, parse_dotted_name());
    if (!has_test(test.name)) return error_at(at, "no test named '" + test.name + "'");
    const Token& t = current();
    if (at_operator("(")) {
      KEEL_ASSIGN_OR_RETURN(test.arguments, parse_call_arguments());
    } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString || t.kind == TokenKind::kInteger ||
                t.kind == TokenKind::kFloat || at_operator("[") || at_operator("{")) &&
               !at_name("else") && !at_name("or") && !at_name("and")) {
      if (at_name("is")) return error("tests cannot be chained with 'is'");
      // "x is divisibleby 3", "x is sameas none": one argument without parentheses.
      KEEL_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
      KEEL_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
      test.arguments.positional.push_back(std::move(arg));
    }
    return make_expr(at, std::move(test));
  }

  std::vector<Token> tokens_;
  const ParseLimits& limits_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Result<std::unique_ptr<Template>> parse_template(std::string_view source, const ParseLimits& limits) {
  KEEL_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(source));
  return Parser(std::move(tokens), limits).run();
}

}  // namespace keel::engine::jinja
