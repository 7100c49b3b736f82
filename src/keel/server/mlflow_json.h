// The JSON conventions of MLflow's REST API, shared by the MLflow-compatible routes:
// MLflow's error shape ({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": ...}),
// request fields read from the JSON body (POST) or the query string (GET) with type
// checks, doubles that may arrive as "NaN" / "Infinity" strings (protobuf's JSON
// mapping), and empty repeated fields left out of responses as protobuf does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "keel/server/http.h"
#include "keel/tracking/tracking_service.h"

namespace keel::server::mlflow {

// MLflow's error codes by Keel's: kNotFound -> RESOURCE_DOES_NOT_EXIST (404),
// kInvalidArgument -> INVALID_PARAMETER_VALUE (400), kAlreadyExists ->
// RESOURCE_ALREADY_EXISTS (400), kFailedPrecondition -> INVALID_STATE (400),
// kPermissionDenied -> PERMISSION_DENIED (403), others -> INTERNAL_ERROR (500).
HttpResponse error_response(const Status& status);
HttpResponse error_response(int http_status, std::string_view error_code, std::string_view message);

// A request's fields: the parsed JSON body for POST/PATCH/DELETE with a body, the
// query string otherwise (where every value is a string).
class RequestFields {
 public:
  static Result<RequestFields> from(const HttpRequest& request);

  bool has(const std::string& name) const;
  // A string field; kInvalidArgument when present with another type, or when required and missing.
  Result<std::string> string(const std::string& name, bool required = false) const;
  Result<std::optional<int64_t>> int64(const std::string& name) const;
  // A number, or one of "NaN", "Infinity", "-Infinity".
  Result<std::optional<double>> number(const std::string& name) const;
  // An array field (JSON bodies only); missing gives an empty array.
  Result<Json> array(const std::string& name) const;
  // A list of strings: a JSON array, or repeated/comma-free query values.
  Result<std::vector<std::string>> strings(const std::string& name) const;
  const Json& json() const { return json_; }
  // Who is acting (the router guard's user), for the audit log.
  const std::string& actor() const { return actor_; }

 private:
  Json json_ = Json::object();
  std::string actor_ = "anonymous";
};

// [{"key": k, "value": v}, ...] -> KeyValue list; non-string values are refused.
Result<std::vector<tracking::KeyValue>> key_values(const Json& array, std::string_view what);
Json key_values_json(const std::vector<tracking::KeyValue>& kvs);
// A double as protobuf's JSON writes it: NaN and infinities as strings.
Json double_json(double value);
Result<double> double_from_json(const Json& value, std::string_view field);

Json run_info_json(const tracking::Run& run);
Json run_json(const tracking::Run& run);
Json metric_json(const tracking::Metric& m);
Json experiment_json(const tracking::Experiment& e);

// A handler that returns a JSON body or an error; mlflow_route registers it under
// /api/2.0/mlflow/<path> and /ajax-api/2.0/mlflow/<path> (the path MLflow's web UI
// uses), turning errors into MLflow's error shape.
using JsonHandler = std::function<Result<Json>(const RequestFields&)>;
void mlflow_route(Router& router, const std::string& method, const std::string& path, JsonHandler fn);

}  // namespace keel::server::mlflow
