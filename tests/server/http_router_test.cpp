// Router matching, URL decoding and the request/response helpers, without a network.
#include <gtest/gtest.h>

#include <stdexcept>

#include "keel/server/http.h"

namespace keel::server {
namespace {

HttpRequest make_request(std::string method, std::string target) {
  HttpRequest request;
  request.method = std::move(method);
  request.set_target(std::move(target));
  return request;
}

// A handler that answers with its own name and the parameters it was given.
Handler named(std::string name) {
  return [name](const HttpRequest& request) {
    Json params = Json::object();
    for (const auto& [key, value] : request.path_params) params[key] = value;
    return HttpResponse::json(200, Json{{"route", name}, {"params", params}});
  };
}

Json body_of(const HttpResponse& response) { return parse_json(response.body).value(); }

TEST(PercentDecode, DecodesEscapesAndKeepsMalformedOnes) {
  EXPECT_EQ(percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(percent_decode("%e2%9C%93"), "\xe2\x9c\x93");
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%4"), "%4");
  EXPECT_EQ(percent_decode("%zz1"), "%zz1");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
}

TEST(ParseQuery, DecodesPairsAndLastRepeatWins) {
  auto query = parse_query("limit=3&name=a%20b+c&flag&x=1&x=2&&empty=");
  EXPECT_EQ(query.size(), 5u);
  EXPECT_EQ(query["limit"], "3");
  EXPECT_EQ(query["name"], "a b c");
  EXPECT_EQ(query["flag"], "");
  EXPECT_EQ(query["x"], "2");
  EXPECT_EQ(query["empty"], "");
  EXPECT_TRUE(parse_query("").empty());
}

TEST(HttpRequest, SetTargetSplitsPathAndQuery) {
  HttpRequest request = make_request("GET", "/api/models/my%20model?limit=3&q=a%26b#frag");
  EXPECT_EQ(request.path, "/api/models/my model");
  EXPECT_EQ(request.query.at("limit"), "3");
  EXPECT_EQ(request.query.at("q"), "a&b");

  HttpRequest absolute = make_request("GET", "http://example.com:8080/health?x=1");
  EXPECT_EQ(absolute.path, "/health");
  EXPECT_EQ(absolute.query.at("x"), "1");
}

TEST(HttpRequest, HeadersAreCaseInsensitive) {
  HttpRequest request;
  request.headers["Content-Type"] = "application/json";
  EXPECT_EQ(request.header("content-type"), "application/json");
  EXPECT_EQ(request.header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(request.header("accept"), std::nullopt);
  CaseInsensitiveLess less;
  EXPECT_FALSE(less("ABC", "abc"));
  EXPECT_FALSE(less("abc", "ABC"));
  EXPECT_TRUE(less("abc", "ABD"));
}

TEST(HttpRequest, JsonBodyRejectsEmptyAndMalformedBodies) {
  HttpRequest request;
  EXPECT_EQ(request.json_body().status().code(), ErrorCode::kInvalidArgument);
  request.body = "{not json";
  EXPECT_EQ(request.json_body().status().code(), ErrorCode::kInvalidArgument);
  request.body = R"({"a": [1, 2]})";
  auto json = request.json_body();
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["a"][1], 2);
}

TEST(HttpResponse, ErrorHasTheErrorShape) {
  HttpResponse response = HttpResponse::error(404, "not_found", "no model 'x'");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_EQ(body_of(response), (Json{{"error", {{"code", "not_found"}, {"message", "no model 'x'"}}}}));
}

TEST(HttpResponse, FromStatusMapsCodesToHttpStatuses) {
  EXPECT_EQ(HttpResponse::from_status(not_found("x")).status, 404);
  EXPECT_EQ(HttpResponse::from_status(invalid_argument("x")).status, 400);
  EXPECT_EQ(HttpResponse::from_status(already_exists("x")).status, 409);
  EXPECT_EQ(HttpResponse::from_status(permission_denied("x")).status, 403);
  EXPECT_EQ(HttpResponse::from_status(resource_exhausted("x")).status, 429);
  EXPECT_EQ(HttpResponse::from_status(unavailable("x")).status, 503);
  EXPECT_EQ(HttpResponse::from_status(internal_error("x")).status, 500);
  HttpResponse response = HttpResponse::from_status(not_found("no model 'x'"));
  EXPECT_EQ(body_of(response)["error"]["code"], "not_found");
  EXPECT_EQ(body_of(response)["error"]["message"], "no model 'x'");
}

TEST(HttpResponse, TextKeepsBodyAndContentType) {
  HttpResponse response = HttpResponse::text(201, "hello", "text/html");
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, "hello");
  EXPECT_EQ(response.content_type, "text/html");
}

TEST(Router, MatchesLiteralsAndFillsParameters) {
  Router router;
  router.get("/api/models", named("list"));
  router.get("/api/models/{name}/versions/{version}", named("version"));
  HttpRequest request = make_request("GET", "/api/models/llama/versions/3");
  HttpResponse response = router.dispatch(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response)["route"], "version");
  EXPECT_EQ(request.path_params.at("name"), "llama");
  EXPECT_EQ(request.path_params.at("version"), "3");

  HttpRequest list = make_request("GET", "/api/models?limit=2");
  EXPECT_EQ(body_of(router.dispatch(list))["route"], "list");
}

TEST(Router, DecodesParametersSegmentBySegment) {
  Router router;
  router.get("/api/models/{name}", named("model"));
  // %2F inside a parameter is part of the name, not a path separator.
  HttpRequest request = make_request("GET", "/api/models/org%2Fmy%20model");
  EXPECT_EQ(router.dispatch(request).status, 200);
  EXPECT_EQ(request.path_params.at("name"), "org/my model");
}

TEST(Router, RestParameterCapturesTheRemainder) {
  Router router;
  router.get("/files/{path...}", named("files"));
  HttpRequest nested = make_request("GET", "/files/a/b%20c/d.txt");
  EXPECT_EQ(router.dispatch(nested).status, 200);
  EXPECT_EQ(nested.path_params.at("path"), "a/b c/d.txt");

  HttpRequest empty_rest = make_request("GET", "/files/");
  EXPECT_EQ(router.dispatch(empty_rest).status, 200);
  EXPECT_EQ(empty_rest.path_params.at("path"), "");

  HttpRequest none = make_request("GET", "/files");
  EXPECT_EQ(router.dispatch(none).status, 404);
}

TEST(Router, LiteralSegmentsWinOverParameters) {
  Router router;
  // Registered parameter-first on purpose: precedence must not depend on order.
  router.get("/api/models/{name}", named("by-name"));
  router.get("/api/models/search", named("search"));
  router.get("/api/{kind}/search", named("kind-search"));
  router.get("/api/{rest...}", named("catch-all"));

  HttpRequest search = make_request("GET", "/api/models/search");
  EXPECT_EQ(body_of(router.dispatch(search))["route"], "search");
  HttpRequest by_name = make_request("GET", "/api/models/llama");
  EXPECT_EQ(body_of(router.dispatch(by_name))["route"], "by-name");
  HttpRequest kind = make_request("GET", "/api/datasets/search");
  EXPECT_EQ(body_of(router.dispatch(kind))["route"], "kind-search");
  HttpRequest other = make_request("GET", "/api/datasets/x/y");
  EXPECT_EQ(body_of(router.dispatch(other))["route"], "catch-all");
}

TEST(Router, UnknownPathIs404WithErrorShape) {
  Router router;
  router.get("/health", named("health"));
  HttpRequest request = make_request("GET", "/nope");
  HttpResponse response = router.dispatch(request);
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(body_of(response)["error"]["code"], "not_found");
  HttpRequest trailing = make_request("GET", "/health/");
  EXPECT_EQ(router.dispatch(trailing).status, 404);
  HttpRequest root = make_request("GET", "/");
  EXPECT_EQ(router.dispatch(root).status, 404);
}

TEST(Router, WrongMethodIs405WithAllowHeader) {
  Router router;
  router.get("/api/models/{name}", named("get"));
  router.del("/api/models/{name}", named("delete"));
  router.post("/api/models", named("create"));
  HttpRequest request = make_request("PUT", "/api/models/x");
  HttpResponse response = router.dispatch(request);
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.headers.at("allow"), "DELETE, GET, HEAD");
  EXPECT_EQ(body_of(response)["error"]["code"], "method_not_allowed");
}

TEST(Router, HeadFallsBackToGet) {
  Router router;
  router.get("/health", named("health"));
  HttpRequest request = make_request("HEAD", "/health");
  EXPECT_EQ(router.dispatch(request).status, 200);
}

TEST(Router, RootPatternMatchesOnlyRoot) {
  Router router;
  router.get("/", named("root"));
  HttpRequest root = make_request("GET", "/");
  EXPECT_EQ(body_of(router.dispatch(root))["route"], "root");
  HttpRequest other = make_request("GET", "/x");
  EXPECT_EQ(router.dispatch(other).status, 404);
}

TEST(Router, RequestWithoutTargetMatchesOnDecodedPath) {
  Router router;
  router.get("/api/models/{name}", named("model"));
  HttpRequest request;
  request.method = "GET";
  request.path = "/api/models/a%20b";  // already decoded: must not be decoded again
  EXPECT_EQ(router.dispatch(request).status, 200);
  EXPECT_EQ(request.path_params.at("name"), "a%20b");
}

TEST(Router, HandlerExceptionBecomes500) {
  Router router;
  router.get("/boom", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("kaput"); });
  router.get("/weird", [](const HttpRequest&) -> HttpResponse { throw 42; });
  HttpRequest boom = make_request("GET", "/boom");
  HttpResponse response = router.dispatch(boom);
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(body_of(response)["error"]["code"], "internal");
  EXPECT_NE(body_of(response)["error"]["message"].get<std::string>().find("kaput"), std::string::npos);
  HttpRequest weird = make_request("GET", "/weird");
  EXPECT_EQ(router.dispatch(weird).status, 500);
}

TEST(CoreRoutes, HealthAndVersion) {
  Router router;
  add_core_routes(router);
  HttpRequest health = make_request("GET", "/health");
  EXPECT_EQ(body_of(router.dispatch(health)), (Json{{"status", "ok"}}));
  HttpRequest version = make_request("GET", "/version");
  Json body = body_of(router.dispatch(version));
  EXPECT_EQ(body["name"], "keel");
  EXPECT_EQ(body["version"], KEEL_VERSION);
}

}  // namespace
}  // namespace keel::server
