#include "keel/server/mlflow_json.h"

#include <cmath>
#include <limits>

namespace keel::server::mlflow {

HttpResponse error_response(int http_status, std::string_view error_code, std::string_view message) {
  return HttpResponse::json(http_status, Json{{"error_code", error_code}, {"message", message}});
}

HttpResponse error_response(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kNotFound: return error_response(404, "RESOURCE_DOES_NOT_EXIST", status.message());
    case ErrorCode::kInvalidArgument: return error_response(400, "INVALID_PARAMETER_VALUE", status.message());
    case ErrorCode::kAlreadyExists: return error_response(400, "RESOURCE_ALREADY_EXISTS", status.message());
    case ErrorCode::kFailedPrecondition: return error_response(400, "INVALID_STATE", status.message());
    case ErrorCode::kPermissionDenied: return error_response(403, "PERMISSION_DENIED", status.message());
    case ErrorCode::kResourceExhausted: return error_response(429, "REQUEST_LIMIT_EXCEEDED", status.message());
    case ErrorCode::kUnavailable: return error_response(503, "TEMPORARILY_UNAVAILABLE", status.message());
    default: return error_response(500, "INTERNAL_ERROR", status.message());
  }
}

Result<RequestFields> RequestFields::from(const HttpRequest& request) {
  RequestFields fields;
  if (!request.user.empty()) fields.actor_ = request.user;
  bool has_body = !request.body.empty() && request.method != "GET";
  if (has_body) {
    KEEL_ASSIGN_OR_RETURN(Json body, request.json_body());
    if (!body.is_object()) return invalid_argument("the request body must be a JSON object");
    fields.json_ = std::move(body);
  }
  // Query parameters fill what the body lacks (GET requests carry everything there).
  for (const auto& [k, v] : request.query) {
    if (!fields.json_.contains(k)) fields.json_[k] = v;
  }
  for (const auto& [k, v] : request.path_params) {
    if (!fields.json_.contains(k)) fields.json_[k] = v;
  }
  return fields;
}

bool RequestFields::has(const std::string& name) const { return json_.contains(name) && !json_[name].is_null(); }

Result<std::string> RequestFields::string(const std::string& name, bool required) const {
  if (!has(name)) {
    if (required) return invalid_argument("Missing value for required parameter '" + name + "'");
    return std::string();
  }
  const Json& v = json_[name];
  if (!v.is_string()) return invalid_argument("Invalid value for parameter '" + name + "': expected a string");
  return v.get<std::string>();
}

Result<std::optional<int64_t>> RequestFields::int64(const std::string& name) const {
  if (!has(name)) return std::optional<int64_t>();
  const Json& v = json_[name];
  if (v.is_number_integer()) return std::optional<int64_t>(v.get<int64_t>());
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9.2e18) return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    size_t start = !s.empty() && s[0] == '-' ? 1 : 0;
    if (s.size() > start && s.size() <= 19 + start && s.find_first_not_of("0123456789", start) == std::string::npos) {
      return std::optional<int64_t>(std::stoll(s));
    }
  }
  return invalid_argument("Invalid value for parameter '" + name + "': expected an integer");
}

Result<std::optional<double>> RequestFields::number(const std::string& name) const {
  if (!has(name)) return std::optional<double>();
  KEEL_ASSIGN_OR_RETURN(double d, double_from_json(json_[name], name));
  return std::optional<double>(d);
}

Result<Json> RequestFields::array(const std::string& name) const {
  if (!has(name)) return Json::array();
  const Json& v = json_[name];
  if (!v.is_array()) return invalid_argument("Invalid value for parameter '" + name + "': expected an array");
  return v;
}

Result<std::vector<std::string>> RequestFields::strings(const std::string& name) const {
  std::vector<std::string> out;
  if (!has(name)) return out;
  const Json& v = json_[name];
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array()) return invalid_argument("Invalid value for parameter '" + name + "': expected a list of strings");
  for (const auto& item : v) {
    if (!item.is_string()) return invalid_argument("Invalid value for parameter '" + name + "': expected strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<std::vector<tracking::KeyValue>> key_values(const Json& array, std::string_view what) {
  std::vector<tracking::KeyValue> out;
  if (array.is_null()) return out;
  if (!array.is_array()) return invalid_argument(std::string(what) + " must be a list of {key, value} objects");
  for (const auto& item : array) {
    if (!item.is_object() || !item.contains("key") || !item["key"].is_string()) {
      return invalid_argument(std::string(what) + " entries need a string 'key'");
    }
    const Json& value = item.contains("value") ? item["value"] : Json("");
    if (!value.is_string() && !value.is_null()) {
      return invalid_argument(std::string(what) + " '" + item["key"].get<std::string>() + "' needs a string value");
    }
    out.push_back({item["key"].get<std::string>(), value.is_null() ? "" : value.get<std::string>()});
  }
  return out;
}

Json key_values_json(const std::vector<tracking::KeyValue>& kvs) {
  Json out = Json::array();
  for (const auto& kv : kvs) out.push_back({{"key", kv.key}, {"value", kv.value}});
  return out;
}

Json double_json(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

Result<double> double_from_json(const Json& value, std::string_view field) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const std::string s = value.get<std::string>();
    if (s == "NaN" || s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity" || s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
    try {
      size_t used = 0;
      double d = std::stod(s, &used);
      if (used == s.size()) return d;
    } catch (...) {
    }
  }
  return invalid_argument("Invalid value for parameter '" + std::string(field) + "': expected a number");
}

Json metric_json(const tracking::Metric& m) {
  return Json{{"key", m.key}, {"value", double_json(m.value)}, {"timestamp", m.timestamp}, {"step", m.step}};
}

Json run_info_json(const tracking::Run& run) {
  Json info = {{"run_uuid", run.id},
               {"experiment_id", run.experiment_id},
               {"run_name", run.name},
               {"user_id", run.user_id},
               {"status", tracking::run_status_name(run.status)},
               {"start_time", run.start_time},
               {"artifact_uri", run.artifact_uri},
               {"lifecycle_stage", run.lifecycle_stage},
               {"run_id", run.id}};
  if (run.end_time) info["end_time"] = *run.end_time;
  return info;
}

Json run_json(const tracking::Run& run) {
  Json data = Json::object();
  if (!run.latest_metrics.empty()) {
    Json metrics = Json::array();
    for (const auto& m : run.latest_metrics) metrics.push_back(metric_json(m));
    data["metrics"] = std::move(metrics);
  }
  if (!run.params.empty()) data["params"] = key_values_json(run.params);
  if (!run.tags.empty()) data["tags"] = key_values_json(run.tags);
  Json inputs = Json::object();
  if (!run.inputs.empty()) {
    Json list = Json::array();
    for (const auto& d : run.inputs) {
      Json dataset = {{"name", d.name}, {"digest", d.digest}, {"source_type", d.source_type}, {"source", d.source}};
      if (!d.schema.empty()) dataset["schema"] = d.schema;
      if (!d.profile.empty()) dataset["profile"] = d.profile;
      Json item = {{"dataset", dataset}};
      if (!d.tags.empty()) item["tags"] = key_values_json(d.tags);
      list.push_back(std::move(item));
    }
    inputs["dataset_inputs"] = std::move(list);
  }
  return Json{{"info", run_info_json(run)}, {"data", data}, {"inputs", inputs}, {"outputs", Json::object()}};
}

Json experiment_json(const tracking::Experiment& e) {
  Json j = {{"experiment_id", e.id},
            {"name", e.name},
            {"artifact_location", e.artifact_location},
            {"lifecycle_stage", e.lifecycle_stage},
            {"last_update_time", e.updated_at},
            {"creation_time", e.created_at}};
  if (!e.tags.empty()) j["tags"] = key_values_json(e.tags);
  return j;
}

void mlflow_route(Router& router, const std::string& method, const std::string& path, JsonHandler fn) {
  Handler handler = [fn = std::move(fn)](const HttpRequest& request) {
    auto fields = RequestFields::from(request);
    if (!fields.ok()) return error_response(fields.status());
    auto out = fn(*fields);
    if (!out.ok()) return error_response(out.status());
    return HttpResponse::json(200, *out);
  };
  router.add(method, "/api/2.0/mlflow/" + path, handler);
  router.add(method, "/ajax-api/2.0/mlflow/" + path, handler);
}

}  // namespace keel::server::mlflow
