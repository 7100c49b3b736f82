#include "keel/data/operator.h"

#include <charconv>
#include <cmath>

namespace keel::data {

Verdict RecordOperator::apply(Record* record) {
  ++counts_.seen;
  bool changed = false;
  Verdict v = process(record, &changed);
  v.changed = v.keep && changed;
  if (v.keep) {
    ++counts_.kept;
    if (changed) ++counts_.changed;
  } else {
    ++counts_.dropped;
    ++counts_.dropped_by_reason[v.reason];
  }
  return v;
}

const ParamSet::Param* ParamSet::find(std::string_view name) const {
  for (const auto& p : params_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string_view ParamSet::type_name(const Slot& slot) {
  switch (slot.index()) {
    case 0:
      return "true or false";
    case 1:
      return "an integer";
    case 2:
      return "a number";
    case 3:
      return "a string";
    case 4:
      return "a list of strings";
    default:
      return "a list of numbers";
  }
}

namespace {

bool parse_int(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty()) return false;
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && std::isfinite(*out);
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> parts;
  if (s.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    parts.push_back(s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return parts;
}

}  // namespace

Status ParamSet::set_from_string(std::string_view name, std::string_view value) const {
  const Param* p = find(name);
  if (p == nullptr) {
    std::string known;
    for (const auto& q : params_) known += (known.empty() ? "" : ", ") + q.name;
    return invalid_argument("unknown parameter \"" + std::string(name) + "\" (known: " + known + ")");
  }
  auto bad = [&] {
    return invalid_argument("parameter \"" + p->name + "\" takes " + std::string(type_name(p->slot)) + ", not \"" +
                            std::string(value) + "\"");
  };
  switch (p->slot.index()) {
    case 0: {
      if (value == "true") {
        *std::get<bool*>(p->slot) = true;
      } else if (value == "false") {
        *std::get<bool*>(p->slot) = false;
      } else {
        return bad();
      }
      return Status::Ok();
    }
    case 1:
      return parse_int(value, std::get<int64_t*>(p->slot)) ? Status::Ok() : bad();
    case 2:
      return parse_double(value, std::get<double*>(p->slot)) ? Status::Ok() : bad();
    case 3:
      *std::get<std::string*>(p->slot) = std::string(value);
      return Status::Ok();
    case 4: {
      auto* out = std::get<std::vector<std::string>*>(p->slot);
      out->clear();
      for (auto part : split_commas(value)) out->emplace_back(part);
      return Status::Ok();
    }
    default: {
      std::vector<double> parsed;
      for (auto part : split_commas(value)) {
        double d = 0;
        if (!parse_double(part, &d)) return bad();
        parsed.push_back(d);
      }
      *std::get<std::vector<double>*>(p->slot) = std::move(parsed);
      return Status::Ok();
    }
  }
}

nlohmann::ordered_json ParamSet::to_json() const {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& p : params_) {
    std::visit([&](auto* slot) { out[p.name] = *slot; }, p.slot);
  }
  return out;
}

}  // namespace keel::data
