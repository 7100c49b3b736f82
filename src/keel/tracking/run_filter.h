// MLflow's run search language: a filter ("metrics.acc > 0.9 and params.opt = 'adam'")
// and order-by clauses ("metrics.acc DESC"), parsed once and applied to runs in memory.
// A malformed filter is kInvalidArgument naming the token that is wrong, never a
// silently empty result.
#pragma once

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "keel/tracking/tracking_service.h"

namespace keel::tracking {

enum class FilterEntity { kMetric, kParam, kTag, kAttribute, kDataset };

struct FilterClause {
  FilterEntity entity;
  std::string key;         // "acc", "opt"; for attributes the canonical name ("status", "run_name", ...)
  std::string comparator;  // "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"
  std::vector<std::string> values;  // one value, several for IN / NOT IN, none for IS [NOT] NULL
  bool numeric = false;             // the value is a number (metrics and time attributes)
};

struct OrderClause {
  FilterEntity entity;
  std::string key;
  bool ascending = true;
};

// What a search language accepts besides metrics., params., tags. and datasets.:
// the attribute names (bare or after "attributes.") and which of them are numbers.
struct FilterSchema {
  std::vector<std::string> attributes;
  std::vector<std::string> numeric_attributes;
};

const FilterSchema& run_filter_schema();

Result<std::vector<FilterClause>> parse_filter(const std::string& filter, const FilterSchema& schema);
Result<std::vector<FilterClause>> parse_run_filter(const std::string& filter);
Result<OrderClause> parse_order_by(const std::string& clause, const FilterSchema& schema);
Result<OrderClause> parse_order_by(const std::string& clause);

// Whether one clause holds for a value: text for strings, number for numeric keys,
// neither when the object lacks the key. missing_is_not_equal: a missing key satisfies
// "!=" (the model registry's rule; runs follow SQL and say no).
bool clause_holds(const FilterClause& clause, const std::optional<std::string>& text, std::optional<double> number,
                  bool missing_is_not_equal = false);

bool run_matches(const Run& run, const std::vector<FilterClause>& clauses);
// Sorts by the clauses, then start_time descending, then run id; runs lacking an
// ordering key come last, as in MLflow.
void sort_runs(std::vector<Run>& runs, const std::vector<OrderClause>& order);

// A search request parsed against a schema: filter clauses, order, and the offset its
// page token encodes (tokens are plain offsets into the sorted result).
struct ParsedSearch {
  std::vector<FilterClause> clauses;
  std::vector<OrderClause> order;
  int64_t offset = 0;
};
Result<ParsedSearch> parse_search(const FilterSchema& schema, const std::string& filter,
                                  const std::vector<std::string>& order_by, const std::string& page_token);
Result<int64_t> parse_page_token(const std::string& token);

// The search every listing shares: keeps the items that satisfy every clause, sorts them
// by the order clauses (missing values last; attributes the schema calls numeric compare
// as numbers) and then by `tie_break`, and returns one page. value_of(item, entity, key)
// gives an item's field as text, or nullopt when it has none.
template <typename T, typename ValueOf, typename TieBreak>
std::vector<T> search_page(std::vector<T> items, const ParsedSearch& search, const FilterSchema& schema,
                           ValueOf value_of, TieBreak tie_break, bool missing_is_not_equal, int64_t max_results,
                           std::string* next_page_token) {
  std::vector<T> matching;
  for (auto& item : items) {
    bool ok = true;
    for (const auto& c : search.clauses) {
      ok = ok && clause_holds(c, value_of(item, c.entity, c.key), std::nullopt, missing_is_not_equal);
    }
    if (ok) matching.push_back(std::move(item));
  }
  auto numeric = [&](const OrderClause& o) {
    return o.entity == FilterEntity::kAttribute &&
           std::find(schema.numeric_attributes.begin(), schema.numeric_attributes.end(), o.key) !=
               schema.numeric_attributes.end();
  };
  std::stable_sort(matching.begin(), matching.end(), [&](const T& a, const T& b) {
    for (const auto& o : search.order) {
      auto va = value_of(a, o.entity, o.key), vb = value_of(b, o.entity, o.key);
      if (va == vb) continue;
      if (!va || !vb) return va.has_value();
      bool less = numeric(o) ? std::stod(*va) < std::stod(*vb) : *va < *vb;
      return o.ascending ? less : !less;
    }
    return tie_break(a, b);
  });
  size_t begin = std::min(static_cast<size_t>(search.offset), matching.size());
  size_t end = std::min(begin + static_cast<size_t>(max_results), matching.size());
  std::vector<T> page(std::make_move_iterator(matching.begin() + static_cast<std::ptrdiff_t>(begin)),
                      std::make_move_iterator(matching.begin() + static_cast<std::ptrdiff_t>(end)));
  if (next_page_token) *next_page_token = end < matching.size() ? std::to_string(end) : "";
  return page;
}

// SQL LIKE on UTF-8 bytes: '%' any run, '_' one character; case-folded (ASCII) when !case_sensitive.
bool like_match(std::string_view text, std::string_view pattern, bool case_sensitive);

}  // namespace keel::tracking
