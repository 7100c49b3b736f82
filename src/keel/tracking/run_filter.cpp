#include "keel/tracking/run_filter.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>

namespace keel::tracking {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Splits a filter into tokens: identifiers (with dots and quoted parts), strings,
// numbers, comparison operators, parentheses and commas.
struct Token {
  enum Kind { kWord, kString, kOperator, kOpen, kClose, kComma } kind;
  std::string text;
};

Result<std::vector<Token>> tokenize(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0;
  auto is_word_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '+' || c == ':' ||
           c == '/';
  };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '\'' || c == '"') {
      size_t end = s.find(c, i + 1);
      if (end == std::string::npos) return invalid_argument("unterminated string in filter at position " + std::to_string(i));
      out.push_back({Token::kString, s.substr(i + 1, end - i - 1)});
      i = end + 1;
    } else if (c == '(') {
      out.push_back({Token::kOpen, "("});
      ++i;
    } else if (c == ')') {
      out.push_back({Token::kClose, ")"});
      ++i;
    } else if (c == ',') {
      out.push_back({Token::kComma, ","});
      ++i;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      std::string op(1, c);
      if (i + 1 < s.size() && s[i + 1] == '=') op += '=';
      if (op == "!") return invalid_argument("'!' must be followed by '=' in filter");
      i += op.size();
      if (op == "==") op = "=";
      out.push_back({Token::kOperator, op});
    } else if (c == '`' || is_word_char(c)) {
      // An identifier such as metrics.`my metric` or params."lr": quoted parts join the word.
      std::string word;
      while (i < s.size()) {
        if (s[i] == '`' || ((s[i] == '"') && !word.empty() && word.back() == '.')) {
          char q = s[i];
          size_t end = s.find(q, i + 1);
          if (end == std::string::npos) return invalid_argument("unterminated quoted name in filter");
          word += s.substr(i + 1, end - i - 1);
          i = end + 1;
        } else if (is_word_char(s[i])) {
          word += s[i++];
        } else {
          break;
        }
      }
      out.push_back({Token::kWord, word});
    } else {
      return invalid_argument(std::string("unexpected character '") + c + "' in filter");
    }
  }
  return out;
}

struct Identifier {
  FilterEntity entity;
  std::string key;
};

Result<Identifier> parse_identifier(const std::string& word, const FilterSchema& schema) {
  size_t dot = word.find('.');
  std::string prefix = dot == std::string::npos ? "" : word.substr(0, dot);
  std::string rest = dot == std::string::npos ? word : word.substr(dot + 1);
  std::string p = upper(prefix);
  if (p == "METRIC" || p == "METRICS") return Identifier{FilterEntity::kMetric, rest};
  if (p == "PARAM" || p == "PARAMS" || p == "PARAMETER" || p == "PARAMETERS") return Identifier{FilterEntity::kParam, rest};
  if (p == "TAG" || p == "TAGS") return Identifier{FilterEntity::kTag, rest};
  if (p == "DATASET" || p == "DATASETS") return Identifier{FilterEntity::kDataset, rest};
  std::string attr = rest;
  if (!(p == "ATTRIBUTE" || p == "ATTRIBUTES" || p == "ATTR" || p == "RUN" || p.empty())) {
    // A bare key with a dot in it ("name.x") is not an attribute either.
    return invalid_argument("invalid identifier '" + word +
                            "' in filter: use metrics., params., tags., attributes. or datasets. before the key");
  }
  if (attr == "run_uuid") attr = "run_id";
  if (attr == "created" && std::find(schema.attributes.begin(), schema.attributes.end(), "start_time") != schema.attributes.end()) {
    attr = "start_time";
  }
  if (std::find(schema.attributes.begin(), schema.attributes.end(), attr) == schema.attributes.end()) {
    std::string valid;
    for (const auto& a : schema.attributes) valid += (valid.empty() ? "" : ", ") + a;
    return invalid_argument("invalid attribute key '" + rest + "' in filter (valid: " + valid + ")");
  }
  return Identifier{FilterEntity::kAttribute, attr};
}

bool is_numeric_attribute(const FilterSchema& schema, const std::string& key) {
  return std::find(schema.numeric_attributes.begin(), schema.numeric_attributes.end(), key) !=
         schema.numeric_attributes.end();
}

std::optional<double> to_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

const std::string* find_value(const std::vector<KeyValue>& kvs, const std::string& key) {
  for (const auto& kv : kvs)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const Metric* find_metric(const Run& run, const std::string& key) {
  for (const auto& m : run.latest_metrics)
    if (m.key == key) return &m;
  return nullptr;
}

// The value an attribute has on a run, as text (or nullopt when unset).
std::optional<std::string> attribute_text(const Run& run, const std::string& key) {
  if (key == "run_id") return run.id;
  if (key == "run_name") return run.name;
  if (key == "status") return std::string(run_status_name(run.status));
  if (key == "user_id") return run.user_id;
  if (key == "artifact_uri") return run.artifact_uri;
  if (key == "lifecycle_stage") return run.lifecycle_stage;
  if (key == "start_time") return std::to_string(run.start_time);
  if (key == "end_time") return run.end_time ? std::optional<std::string>(std::to_string(*run.end_time)) : std::nullopt;
  return std::nullopt;
}

bool compare_numbers(double a, const std::string& op, double b) {
  if (op == "=") return a == b;
  if (op == "!=") return a != b;
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  if (op == ">=") return a >= b;
  return false;
}

bool compare_text(const std::string& a, const FilterClause& c) {
  const std::string& op = c.comparator;
  if (op == "IN" || op == "NOT IN") {
    bool in = std::find(c.values.begin(), c.values.end(), a) != c.values.end();
    return op == "IN" ? in : !in;
  }
  const std::string& b = c.values.at(0);
  if (op == "=") return a == b;
  if (op == "!=") return a != b;
  if (op == "LIKE") return like_match(a, b, true);
  if (op == "ILIKE") return like_match(a, b, false);
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  if (op == ">=") return a >= b;
  return false;
}

bool clause_matches(const Run& run, const FilterClause& c) {
  std::optional<std::string> text;
  std::optional<double> number;
  switch (c.entity) {
    case FilterEntity::kMetric:
      if (const Metric* m = find_metric(run, c.key)) number = m->value;
      break;
    case FilterEntity::kParam:
      if (const std::string* v = find_value(run.params, c.key)) text = *v;
      break;
    case FilterEntity::kTag:
      if (const std::string* v = find_value(run.tags, c.key)) text = *v;
      break;
    case FilterEntity::kAttribute:
      text = attribute_text(run, c.key);
      if (text && c.numeric) number = to_number(*text);
      break;
    case FilterEntity::kDataset: {
      // True when any input dataset satisfies the clause.
      for (const auto& d : run.inputs) {
        std::string v = c.key == "name" ? d.name : c.key == "digest" ? d.digest : "";
        if (c.key == "context") {
          const std::string* ctx = find_value(d.tags, "mlflow.data.context");
          v = ctx ? *ctx : "";
        }
        if (clause_holds(c, v, std::nullopt)) return true;
      }
      return false;
    }
  }
  return clause_holds(c, text, number);
}

}  // namespace

bool clause_holds(const FilterClause& c, const std::optional<std::string>& text, std::optional<double> number,
                  bool missing_is_not_equal) {
  if (c.comparator == "IS NULL") return !text && !number;
  if (c.comparator == "IS NOT NULL") return text || number;
  if (c.numeric) {
    if (!number && text) number = to_number(*text);
    if (!number) return missing_is_not_equal && c.comparator == "!=";
    return compare_numbers(*number, c.comparator, *to_number(c.values.at(0)));
  }
  if (!text) return missing_is_not_equal && (c.comparator == "!=" || c.comparator == "NOT IN");
  return compare_text(*text, c);
}

bool like_match(std::string_view text, std::string_view pattern, bool case_sensitive) {
  auto eq = [&](char a, char b) {
    if (case_sensitive) return a == b;
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  // Iterative wildcard match with backtracking to the last '%'.
  size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
  auto char_len = [](std::string_view s, size_t i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return std::min(n, s.size() - i);
  };
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '_') {
      t += char_len(text, t);
      ++p;
    } else if (p < pattern.size() && pattern[p] == '%') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && eq(pattern[p], text[t])) {
      ++t;
      ++p;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      mark += char_len(text, mark);
      t = mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '%') ++p;
  return p == pattern.size();
}

const FilterSchema& run_filter_schema() {
  static const FilterSchema schema{{"run_id", "run_name", "status", "start_time", "end_time", "user_id", "artifact_uri",
                                    "lifecycle_stage"},
                                   {"start_time", "end_time"}};
  return schema;
}

Result<std::vector<FilterClause>> parse_run_filter(const std::string& filter) {
  return parse_filter(filter, run_filter_schema());
}

Result<OrderClause> parse_order_by(const std::string& clause) { return parse_order_by(clause, run_filter_schema()); }

Result<std::vector<FilterClause>> parse_filter(const std::string& filter, const FilterSchema& schema) {
  std::vector<FilterClause> clauses;
  KEEL_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(filter));
  size_t i = 0;
  auto at_end = [&] { return i >= tokens.size(); };
  while (!at_end()) {
    if (!clauses.empty()) {
      if (tokens[i].kind != Token::kWord || upper(tokens[i].text) != "AND") {
        return invalid_argument("expected AND between filter clauses, got '" + tokens[i].text +
                                "' (OR is not supported, as in MLflow)");
      }
      ++i;
      if (at_end()) return invalid_argument("filter ends after AND");
    }
    if (tokens[i].kind != Token::kWord) return invalid_argument("expected a key in filter, got '" + tokens[i].text + "'");
    KEEL_ASSIGN_OR_RETURN(Identifier id, parse_identifier(tokens[i].text, schema));
    ++i;
    if (at_end()) return invalid_argument("filter ends after '" + id.key + "': expected a comparison");
    FilterClause c{id.entity, id.key, "", {}, false};
    c.numeric = id.entity == FilterEntity::kMetric ||
                (id.entity == FilterEntity::kAttribute && is_numeric_attribute(schema, id.key));
    const Token& op = tokens[i];
    std::string word = upper(op.text);
    if (op.kind == Token::kOperator) {
      c.comparator = op.text;
      ++i;
    } else if (op.kind == Token::kWord && (word == "LIKE" || word == "ILIKE" || word == "IN")) {
      c.comparator = word;
      ++i;
    } else if (op.kind == Token::kWord && word == "NOT" && i + 1 < tokens.size() && upper(tokens[i + 1].text) == "IN") {
      c.comparator = "NOT IN";
      i += 2;
    } else if (op.kind == Token::kWord && word == "IS") {
      ++i;
      bool negated = !at_end() && upper(tokens[i].text) == "NOT";
      if (negated) ++i;
      if (at_end() || upper(tokens[i].text) != "NULL") return invalid_argument("expected NULL after IS in filter");
      ++i;
      c.comparator = negated ? "IS NOT NULL" : "IS NULL";
      clauses.push_back(std::move(c));
      continue;
    } else {
      return invalid_argument("invalid comparator '" + op.text + "' in filter");
    }
    if (c.numeric && (c.comparator == "LIKE" || c.comparator == "ILIKE" || c.comparator == "IN" || c.comparator == "NOT IN")) {
      return invalid_argument("comparator " + c.comparator + " does not apply to numeric key '" + c.key + "'");
    }
    if (at_end()) return invalid_argument("filter ends after the comparator " + c.comparator);
    if (c.comparator == "IN" || c.comparator == "NOT IN") {
      if (tokens[i].kind != Token::kOpen) return invalid_argument("expected '(' after " + c.comparator);
      ++i;
      while (!at_end() && tokens[i].kind != Token::kClose) {
        if (tokens[i].kind != Token::kString) return invalid_argument("IN lists take quoted strings");
        c.values.push_back(tokens[i].text);
        ++i;
        if (!at_end() && tokens[i].kind == Token::kComma) ++i;
      }
      if (at_end()) return invalid_argument("unclosed '(' in filter");
      ++i;
    } else {
      const Token& v = tokens[i];
      if (c.numeric) {
        std::string number = v.text;
        if (v.kind == Token::kString && id.entity == FilterEntity::kAttribute) number = v.text;
        if (!to_number(number)) {
          return invalid_argument("expected a number to compare with '" + c.key + "', got '" + v.text + "'");
        }
        c.values.push_back(number);
      } else {
        if (v.kind != Token::kString) {
          return invalid_argument("expected a quoted string to compare with '" + c.key + "', got " + v.text +
                                  " (strings need quotes: params.p = 'x')");
        }
        c.values.push_back(v.text);
      }
      ++i;
    }
    clauses.push_back(std::move(c));
  }
  return clauses;
}

Result<OrderClause> parse_order_by(const std::string& clause, const FilterSchema& schema) {
  KEEL_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(clause));
  if (tokens.empty() || tokens[0].kind != Token::kWord) return invalid_argument("invalid order_by clause '" + clause + "'");
  KEEL_ASSIGN_OR_RETURN(Identifier id, parse_identifier(tokens[0].text, schema));
  OrderClause o{id.entity, id.key, true};
  if (tokens.size() == 2) {
    std::string dir = upper(tokens[1].text);
    if (dir == "DESC") {
      o.ascending = false;
    } else if (dir != "ASC") {
      return invalid_argument("invalid order_by direction '" + tokens[1].text + "' (use ASC or DESC)");
    }
  } else if (tokens.size() > 2) {
    return invalid_argument("invalid order_by clause '" + clause + "'");
  }
  return o;
}

Result<int64_t> parse_page_token(const std::string& token) {
  if (token.empty()) return int64_t{0};
  if (token.size() > 12 || token.find_first_not_of("0123456789") != std::string::npos) {
    return invalid_argument("invalid page_token '" + token + "'");
  }
  return std::stoll(token);
}

Result<ParsedSearch> parse_search(const FilterSchema& schema, const std::string& filter,
                                  const std::vector<std::string>& order_by, const std::string& page_token) {
  ParsedSearch out;
  KEEL_ASSIGN_OR_RETURN(out.clauses, parse_filter(filter, schema));
  for (const auto& o : order_by) {
    KEEL_ASSIGN_OR_RETURN(OrderClause clause, parse_order_by(o, schema));
    out.order.push_back(std::move(clause));
  }
  KEEL_ASSIGN_OR_RETURN(out.offset, parse_page_token(page_token));
  return out;
}

bool run_matches(const Run& run, const std::vector<FilterClause>& clauses) {
  for (const auto& c : clauses)
    if (!clause_matches(run, c)) return false;
  return true;
}

void sort_runs(std::vector<Run>& runs, const std::vector<OrderClause>& order) {
  struct Key {
    bool present;
    bool numeric;
    double number;
    std::string text;
  };
  auto key_of = [](const Run& run, const OrderClause& o) -> Key {
    switch (o.entity) {
      case FilterEntity::kMetric:
        if (const Metric* m = find_metric(run, o.key)) return {true, true, m->value, ""};
        return {false, true, 0, ""};
      case FilterEntity::kParam:
        if (const std::string* v = find_value(run.params, o.key)) return {true, false, 0, *v};
        return {false, false, 0, ""};
      case FilterEntity::kTag:
        if (const std::string* v = find_value(run.tags, o.key)) return {true, false, 0, *v};
        return {false, false, 0, ""};
      case FilterEntity::kAttribute: {
        auto t = attribute_text(run, o.key);
        if (!t) return {false, false, 0, ""};
        if (is_numeric_attribute(run_filter_schema(), o.key)) return {true, true, static_cast<double>(std::stoll(*t)), ""};
        return {true, false, 0, *t};
      }
      case FilterEntity::kDataset:
        return {false, false, 0, ""};
    }
    return {false, false, 0, ""};
  };
  std::stable_sort(runs.begin(), runs.end(), [&](const Run& a, const Run& b) {
    for (const auto& o : order) {
      Key ka = key_of(a, o), kb = key_of(b, o);
      if (ka.present != kb.present) return ka.present;  // missing values last
      if (!ka.present) continue;
      if (ka.numeric) {
        bool a_nan = std::isnan(ka.number), b_nan = std::isnan(kb.number);
        if (a_nan != b_nan) return b_nan;  // NaN after numbers
        if (a_nan || ka.number == kb.number) continue;
        return o.ascending ? ka.number < kb.number : ka.number > kb.number;
      }
      if (ka.text == kb.text) continue;
      return o.ascending ? ka.text < kb.text : ka.text > kb.text;
    }
    if (a.start_time != b.start_time) return a.start_time > b.start_time;
    return a.id < b.id;
  });
}

}  // namespace keel::tracking
