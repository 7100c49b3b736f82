#include "keel/datasets/dataset_diff.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "keel/data/hash.h"
#include "keel/data/minhash.h"
#include "keel/data/record_text.h"

namespace keel::datasets {
namespace {

std::string cut(std::string_view text, size_t max_bytes = 300) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n)) + "\u2026";
}

std::map<std::string, std::string> schema_map(const data::ProfileJson& schema) {
  std::map<std::string, std::string> out;
  for (const auto& f : schema) out[f.value("name", "")] = f.value("type", "");
  return out;
}

// Refuses versions whose records are not comparable, naming the differences.
Status check_same_schema(const DatasetVersion& a, const DatasetVersion& b) {
  auto sa = schema_map(a.schema), sb = schema_map(b.schema);
  std::string only_a, only_b, retyped;
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (const auto& [name, type] : sa) {
    auto it = sb.find(name);
    if (it == sb.end()) {
      add(only_a, name);
    } else if (type != it->second && type != "null" && it->second != "null") {
      add(retyped, name + " (" + type + " -> " + it->second + ")");
    }
  }
  for (const auto& [name, type] : sb) {
    if (sa.count(name) == 0) add(only_b, name);
  }
  if (only_a.empty() && only_b.empty() && retyped.empty()) return Status::Ok();
  std::string msg = "cannot diff " + a.reference() + " and " + b.reference() + ": their schemas differ";
  if (!only_a.empty()) msg += "; fields only in " + a.reference() + ": " + only_a;
  if (!only_b.empty()) msg += "; fields only in " + b.reference() + ": " + only_b;
  if (!retyped.empty()) msg += "; fields of another type: " + retyped;
  msg += " (keel data show NAME@VERSION prints each schema)";
  return failed_precondition(msg);
}

bool has_field(const DatasetVersion& v, const std::string& name) {
  for (const auto& f : v.schema) {
    if (f.value("name", "") == name) return true;
  }
  return false;
}

// Streams a version's canonical JSONL: fn(line number, raw line, record).
Status for_each_record(const std::string& path, const std::string& reference,
                       const std::function<Status(uint64_t, std::string_view, const data::Record&)>& fn,
                       const std::function<void(uint64_t)>& progress = {}) {
  data::ReadOptions read;
  read.format = "jsonl";
  uint64_t bad = 0;
  read.on_reject = [&](const data::Rejection&) { ++bad; };
  KEEL_ASSIGN_OR_RETURN(auto reader, data::RecordReader::open(path, read));
  data::Record record;
  uint64_t n = 0;
  while (true) {
    KEEL_ASSIGN_OR_RETURN(bool more, reader->next(&record));
    if (!more) break;
    KEEL_RETURN_IF_ERROR(fn(++n, reader->raw_json(), record));
    if (progress && (n & 4095) == 0) progress(n);
  }
  if (progress) progress(n);
  if (bad > 0) return corrupt(reference + ": " + std::to_string(bad) + " stored records do not parse");
  return Status::Ok();
}

Result<std::string> key_of(const data::Record& record, const std::string& key, const std::string& reference,
                           uint64_t line) {
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) {
    return failed_precondition(reference + " record " + std::to_string(line) + " has no key field \"" + key +
                               "\" (choose another with --key, or --key '' to compare whole records)");
  }
  return it->dump();
}

// The added records of a whole-record diff, indexed by MinHash bands so that each
// removed record can find the added one whose text is most like its own.
class NearIndex {
 public:
  explicit NearIndex(double threshold) : hasher_(data::datatrove_preset()), threshold_(threshold) {}

  // Indexes the next added record (indices 0, 1, 2, ... in call order).
  void add(const data::Record& record, std::string_view raw) {
    auto index = static_cast<uint32_t>(paired_.size());
    paired_.push_back(false);
    const bool words = sign(record, raw);
    signatures_.insert(signatures_.end(), signature_.begin(), signature_.end());
    if (!words) return;  // in no bucket: a text without words pairs with nothing
    for (int band = 0; band < hasher_.config().bands; ++band) {
      buckets_[hasher_.band_key(signature_.data(), band)].push_back(index);
    }
  }

  // The unpaired added record most like this one, at or above the threshold, now
  // paired; nullopt when there is none.
  std::optional<uint32_t> take_match(const data::Record& record, std::string_view raw) {
    if (!sign(record, raw)) return std::nullopt;
    const int perms = hasher_.config().num_perm();
    std::optional<uint32_t> best;
    double best_similarity = threshold_;
    for (int band = 0; band < hasher_.config().bands; ++band) {
      auto bucket = buckets_.find(hasher_.band_key(signature_.data(), band));
      if (bucket == buckets_.end()) continue;
      for (uint32_t candidate : bucket->second) {
        if (paired_[candidate]) continue;
        double similarity = data::signature_similarity(
            signature_.data(), signatures_.data() + static_cast<size_t>(candidate) * static_cast<size_t>(perms), perms);
        if (similarity > best_similarity || (similarity == best_similarity && (!best || candidate < *best))) {
          best = candidate;
          best_similarity = similarity;
        }
      }
    }
    if (best) paired_[*best] = true;
    return best;
  }

  // Whether added record i was paired with a removed one.
  bool paired(size_t i) const { return paired_[i]; }

 private:
  // The signature of a record's text (or of its JSON) into signature_; false when the
  // text has no words.
  bool sign(const data::Record& record, std::string_view raw) {
    std::string joined;
    const std::string* text = data::record_text(record, data::kDefaultTextField, &joined);
    hasher_.shingles(text != nullptr ? std::string_view(*text) : raw, &shingles_);
    signature_.resize(static_cast<size_t>(hasher_.config().num_perm()));
    hasher_.signature(shingles_, signature_.data());
    return !shingles_.empty();
  }

  data::MinHasher hasher_;
  double threshold_;
  std::vector<uint64_t> shingles_;
  std::vector<uint32_t> signature_;
  std::vector<uint32_t> signatures_;  // added-record-major
  std::vector<bool> paired_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> buckets_;  // band key -> added records
};

}  // namespace

std::vector<std::pair<std::string, double>> profile_metrics(const data::ProfileJson& p) {
  std::vector<std::pair<std::string, double>> out;
  if (!p.is_object()) return out;
  auto num = [](const data::ProfileJson& j, const char* key) -> double {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  out.emplace_back("records", num(p, "records"));
  for (const auto& f : p.value("fields", data::ProfileJson::array())) {
    std::string name = "field " + f.value("name", "") + ": ";
    out.emplace_back(name + "missing", num(f, "missing"));
    out.emplace_back(name + "null", num(f, "null"));
    out.emplace_back(name + "empty", num(f, "empty"));
    if (f.contains("lengths")) {
      for (const auto& [unit, dist] : f["lengths"].items()) {
        out.emplace_back(name + unit + " mean", num(dist, "mean"));
        if (dist.contains("percentiles")) {
          for (const char* q : {"p50", "p90", "p99"}) out.emplace_back(name + unit + " " + q, num(dist["percentiles"], q));
        }
      }
    }
  }
  if (p.contains("languages")) {
    for (const auto& l : p["languages"].value("mix", data::ProfileJson::array())) {
      out.emplace_back("language " + l.value("code", "") + " share", num(l, "share"));
    }
  }
  if (p.contains("duplicates")) {
    out.emplace_back("exact duplicate rate", num(p["duplicates"]["exact"], "rate"));
    out.emplace_back("near-duplicate rate", num(p["duplicates"]["near"], "rate"));
    out.emplace_back("near-duplicate clusters", num(p["duplicates"]["near"], "clusters"));
  }
  if (p.contains("pii")) {
    out.emplace_back("pii records", num(p["pii"], "records"));
    for (const auto& [type, n] : p["pii"]["by_type"].items()) {
      out.emplace_back("pii " + type, n.is_number() ? n.get<double>() : 0);
    }
  }
  if (p.contains("quality")) {
    for (const auto& [filter, q] : p["quality"].items()) out.emplace_back(filter + " would remove (rate)", num(q, "rate"));
  }
  return out;
}

Result<DatasetDiff> diff_datasets(DatasetRegistry& registry, std::string_view from, std::string_view to,
                                  const DiffOptions& options) {
  KEEL_ASSIGN_OR_RETURN(LocalDataset a, registry.local_file(from, options.cache_dir));
  KEEL_ASSIGN_OR_RETURN(LocalDataset b, registry.local_file(to, options.cache_dir));
  KEEL_ASSIGN_OR_RETURN(a.version, registry.get(a.version.name, a.version.version, true));
  KEEL_ASSIGN_OR_RETURN(b.version, registry.get(b.version.name, b.version.version, true));
  KEEL_RETURN_IF_ERROR(check_same_schema(a.version, b.version));
  DatasetDiff d;
  d.from = a.version.reference();
  d.to = b.version.reference();
  d.from_records = a.version.record_count;
  d.to_records = b.version.record_count;
  if (options.key) {
    d.key = *options.key;
  } else if (has_field(a.version, "id") && has_field(b.version, "id")) {
    d.key = "id";
  }
  if (!d.key.empty() && (!has_field(a.version, d.key) || !has_field(b.version, d.key))) {
    return invalid_argument("--key " + d.key + ": not a field of both " + d.from + " and " + d.to);
  }
  // Progress over the two passes that compare: all of `from`, then all of `to`.
  auto in_from = [&](uint64_t n) {
    if (options.progress) options.progress(n);
  };
  auto in_to = [&](uint64_t n) {
    if (options.progress) options.progress(d.from_records + n);
  };
  auto example = [&](std::vector<RecordExample>& list, uint64_t line, std::string_view json) {
    if (list.size() < options.examples) list.push_back({line, cut(json)});
  };

  if (!d.key.empty()) {
    std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> in_a;  // key -> (hash, line)
    KEEL_RETURN_IF_ERROR(for_each_record(a.path, d.from, [&](uint64_t line, std::string_view raw, const data::Record& r) {
      KEEL_ASSIGN_OR_RETURN(std::string k, key_of(r, d.key, d.from, line));
      if (!in_a.emplace(std::move(k), std::make_pair(data::hash_bytes(raw), line)).second) {
        return failed_precondition("key field \"" + d.key + "\" is not unique in " + d.from + " (record " +
                                   std::to_string(line) + " repeats one; --key '' compares whole records)");
      }
      return Status::Ok();
    }, in_from));
    std::unordered_set<std::string> seen_b;
    KEEL_RETURN_IF_ERROR(for_each_record(b.path, d.to, [&](uint64_t line, std::string_view raw, const data::Record& r) {
      KEEL_ASSIGN_OR_RETURN(std::string k, key_of(r, d.key, d.to, line));
      if (!seen_b.insert(k).second) {
        return failed_precondition("key field \"" + d.key + "\" is not unique in " + d.to + " (record " +
                                   std::to_string(line) + " repeats one; --key '' compares whole records)");
      }
      auto it = in_a.find(k);
      if (it == in_a.end()) {
        ++d.added;
        example(d.added_examples, line, raw);
      } else {
        if (it->second.first == data::hash_bytes(raw)) {
          ++d.unchanged;
        } else {
          ++d.changed;
          example(d.changed_examples, line, raw);
        }
        in_a.erase(it);
      }
      return Status::Ok();
    }, in_to));
    d.removed = in_a.size();
    // The keys left are the removed records: read `from` again for the first of them.
    std::vector<uint64_t> removed_lines;
    for (const auto& [k, v] : in_a) removed_lines.push_back(v.second);
    std::sort(removed_lines.begin(), removed_lines.end());
    if (removed_lines.size() > options.examples) removed_lines.resize(options.examples);
    if (!removed_lines.empty()) {
      std::set<uint64_t> wanted(removed_lines.begin(), removed_lines.end());
      KEEL_RETURN_IF_ERROR(for_each_record(a.path, d.from, [&](uint64_t line, std::string_view raw, const data::Record&) {
        if (wanted.count(line) > 0) d.removed_examples.push_back({line, cut(raw)});
        return Status::Ok();
      }));
    }
  } else {
    std::unordered_map<uint64_t, uint64_t> in_a;  // record hash -> occurrences not yet matched
    KEEL_RETURN_IF_ERROR(for_each_record(a.path, d.from, [&](uint64_t, std::string_view raw, const data::Record&) {
      ++in_a[data::hash_bytes(raw)];
      return Status::Ok();
    }, in_from));
    // Null when the pairing is off or was given up.
    std::unique_ptr<NearIndex> index;
    if (options.near_threshold > 0) {
      d.near_threshold = options.near_threshold;
      index = std::make_unique<NearIndex>(options.near_threshold);
    }
    std::vector<uint64_t> added_lines;  // in `to`
    KEEL_RETURN_IF_ERROR(for_each_record(b.path, d.to, [&](uint64_t line, std::string_view raw, const data::Record& r) {
      auto it = in_a.find(data::hash_bytes(raw));
      if (it != in_a.end() && it->second > 0) {
        --it->second;
        ++d.unchanged;
        return Status::Ok();
      }
      added_lines.push_back(line);
      // Until pairing changes which added records are left, the first are the examples.
      example(d.added_examples, line, raw);
      if (index && added_lines.size() > options.max_near_pairs) {
        // About 1 KiB of index per added record: past the limit the pairing is skipped.
        index.reset();
        d.near_threshold = 0;
        d.near_skipped = "more than " + std::to_string(options.max_near_pairs) + " added records";
      }
      if (index) index->add(r, raw);
      return Status::Ok();
    }, in_to));
    for (const auto& [h, n] : in_a) d.removed += n;
    // Which occurrences count as removed is a choice: the first ones. Each is paired
    // with the added record most like it, if any is like it enough.
    std::vector<uint64_t> changed_lines;  // in `to`
    if (d.removed > 0) {
      KEEL_RETURN_IF_ERROR(for_each_record(a.path, d.from, [&](uint64_t line, std::string_view raw, const data::Record& r) {
        auto it = in_a.find(data::hash_bytes(raw));
        if (it == in_a.end() || it->second == 0) return Status::Ok();
        --it->second;
        std::optional<uint32_t> match = index && !added_lines.empty() ? index->take_match(r, raw) : std::nullopt;
        if (match) {
          changed_lines.push_back(added_lines[*match]);
          --d.removed;
          ++d.changed;
        } else {
          example(d.removed_examples, line, raw);
        }
        return Status::Ok();
      }));
    }
    d.added = added_lines.size() - d.changed;
    if (d.changed > 0) {
      // The examples from `to` again: the first added records left unpaired, the first changed.
      std::sort(changed_lines.begin(), changed_lines.end());
      if (changed_lines.size() > options.examples) changed_lines.resize(options.examples);
      std::set<uint64_t> added_wanted;
      for (size_t i = 0; i < added_lines.size() && added_wanted.size() < options.examples; ++i) {
        if (!index->paired(i)) added_wanted.insert(added_lines[i]);
      }
      std::set<uint64_t> changed_wanted(changed_lines.begin(), changed_lines.end());
      d.added_examples.clear();
      KEEL_RETURN_IF_ERROR(for_each_record(b.path, d.to, [&](uint64_t line, std::string_view raw, const data::Record&) {
        if (added_wanted.count(line) > 0) d.added_examples.push_back({line, cut(raw)});
        if (changed_wanted.count(line) > 0) d.changed_examples.push_back({line, cut(raw)});
        return Status::Ok();
      }));
    }
  }

  auto ma = profile_metrics(a.version.profile), mb = profile_metrics(b.version.profile);
  std::map<std::string, double> va(ma.begin(), ma.end()), vb(mb.begin(), mb.end());
  std::vector<std::string> order;
  std::set<std::string> listed;
  for (const auto& m : {ma, mb}) {
    for (const auto& [name, value] : m) {
      if (listed.insert(name).second) order.push_back(name);
    }
  }
  for (const auto& name : order) {
    double x = va.count(name) ? va[name] : 0, y = vb.count(name) ? vb[name] : 0;
    if (x != y) d.profile.push_back({name, x, y});
  }
  return d;
}

data::ProfileJson to_json(const DatasetDiff& d) {
  auto examples = [](const std::vector<RecordExample>& list) {
    data::ProfileJson out = data::ProfileJson::array();
    for (const auto& e : list) out.push_back({{"line", e.line}, {"record", e.json}});
    return out;
  };
  data::ProfileJson profile = data::ProfileJson::array();
  for (const auto& p : d.profile) profile.push_back({{"metric", p.metric}, {"from", p.from}, {"to", p.to}, {"delta", p.to - p.from}});
  return {{"from", d.from},
          {"to", d.to},
          {"key", d.key.empty() ? data::ProfileJson(nullptr) : data::ProfileJson(d.key)},
          {"near_threshold", d.near_threshold > 0 ? data::ProfileJson(d.near_threshold) : data::ProfileJson(nullptr)},
          {"near_pairing_skipped", d.near_skipped.empty() ? data::ProfileJson(nullptr) : data::ProfileJson(d.near_skipped)},
          {"from_records", d.from_records},
          {"to_records", d.to_records},
          {"unchanged", d.unchanged},
          {"added", d.added},
          {"removed", d.removed},
          {"changed", d.changed},
          {"examples", {{"added", examples(d.added_examples)},
                        {"removed", examples(d.removed_examples)},
                        {"changed", examples(d.changed_examples)}}},
          {"profile", std::move(profile)}};
}

}  // namespace keel::datasets
