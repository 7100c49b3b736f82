// MLflow's run search language: a filter ("metrics.acc > 0.9 and params.opt = 'adam'")
// and order-by clauses ("metrics.acc DESC"), parsed once and applied to runs in memory.
// A malformed filter is kInvalidArgument naming the token that is wrong, never a
// silently empty result.
#pragma once

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

// SQL LIKE on UTF-8 bytes: '%' any run, '_' one character; case-folded (ASCII) when !case_sensitive.
bool like_match(std::string_view text, std::string_view pattern, bool case_sensitive);

}  // namespace keel::tracking
