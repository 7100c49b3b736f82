#include "keel/data/split_operator.h"

#include <cmath>
#include <set>

#include "keel/data/hash.h"

namespace keel::data {

void SplitOptions::describe(ParamSet* p) {
  p->add("ratios", &ratios, "Share of each split, summing to 1 (0.8,0.1,0.1)");
  p->add("names", &names, "Split names, one per ratio");
  p->add("key", &key, "Field whose value decides the split (empty: the whole record)");
  p->add("seed", &seed, "Seed of the hash");
  p->add("tag_field", &tag_field, "Field to write the split name into (empty: none)");
}

Status SplitOptions::validate() const {
  if (ratios.empty()) return invalid_argument("split needs at least one ratio");
  if (names.size() != ratios.size()) {
    return invalid_argument("split has " + std::to_string(ratios.size()) + " ratios but " +
                            std::to_string(names.size()) + " names");
  }
  double sum = 0;
  for (double r : ratios) {
    if (!(r >= 0)) return invalid_argument("split ratios must not be negative");
    sum += r;
  }
  if (std::fabs(sum - 1.0) > 1e-6) return invalid_argument("split ratios must sum to 1, not " + std::to_string(sum));
  std::set<std::string> unique;
  for (const auto& n : names) {
    if (n.empty() || n.find_first_of("/\\") != std::string::npos) {
      return invalid_argument("split name \"" + n + "\" must be non-empty, without slashes");
    }
    if (!unique.insert(n).second) return invalid_argument("split name \"" + n + "\" appears twice");
  }
  return Status::Ok();
}

size_t split_index(std::string_view key, const SplitOptions& o) {
  uint64_t h = hash_bytes(key, hash_bytes(o.seed));
  double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  double cumulative = 0;
  size_t last_nonzero = 0;
  for (size_t i = 0; i < o.ratios.size(); ++i) {
    if (o.ratios[i] <= 0) continue;
    last_nonzero = i;
    cumulative += o.ratios[i];
    if (u < cumulative) return i;
  }
  return last_nonzero;  // rounding: ratios summing to 0.9999999
}

Result<std::unique_ptr<SplitOperator>> SplitOperator::create(SplitOptions options) {
  KEEL_RETURN_IF_ERROR(options.validate());
  return std::unique_ptr<SplitOperator>(new SplitOperator(std::move(options)));
}

Verdict SplitOperator::process(Record* record, bool* changed) {
  std::string key;
  if (options_.key.empty()) {
    key = record->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    auto it = record->find(options_.key);
    if (it == record->end() || it->is_null()) return Verdict::Drop("no_key_field");
    key = it->is_string() ? it->get<std::string>() : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  last_split_ = split_index(key, options_);
  ++split_counts_[last_split_];
  if (!options_.tag_field.empty()) {
    (*record)[options_.tag_field] = options_.names[last_split_];
    *changed = true;
  }
  note(options_.names[last_split_]);  // where records went, per split
  return Verdict::Keep();
}

}  // namespace keel::data
