// /api/prompts through the router (no sockets), on both store back ends: the request
// and response shapes the REST API promises, and its errors.
#include "keel/server/prompt_routes.h"

#include "store/store_test_base.h"

namespace keel::server {
namespace {

class PromptRoutesTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    add_prompt_routes(router_, *db_, *blobs_);
  }
  HttpResponse call(const std::string& method, const std::string& target, const Json& body = nullptr) {
    HttpRequest req;
    req.method = method;
    req.set_target(target);
    if (!body.is_null()) req.body = body.dump();
    return router_.dispatch(req);
  }
  Json body(const HttpResponse& r) {
    auto j = parse_json(r.body);
    EXPECT_TRUE(j.ok()) << r.body;
    return j.ok() ? *j : Json();
  }

  Router router_;
};
INSTANTIATE_STORE_TEST(PromptRoutesTest);

TEST_P(PromptRoutesTest, CreateGetRenderDiffAlias) {
  auto created = call("POST", "/api/prompts/qa/versions",
                      {{"template", "Q: {{q}}"}, {"commit_message", "c1"}, {"model_parameters", {{"temperature", 0.1}}}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(body(created)["variables"], Json::array({"q"}));
  ASSERT_EQ(call("POST", "/api/prompts/qa/versions", {{"template", "Question: {{q}}"}}).status, 201);

  auto listed = call("GET", "/api/prompts");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(body(listed)["prompts"][0]["latest_version"], 2);
  auto latest = call("GET", "/api/prompts/qa");
  ASSERT_EQ(latest.status, 200);
  EXPECT_EQ(body(latest)["template"], "Question: {{q}}");
  auto v1 = call("GET", "/api/prompts/qa/versions/1");
  ASSERT_EQ(v1.status, 200);
  EXPECT_EQ(body(v1)["model_parameters"]["temperature"], 0.1);

  auto rendered = call("POST", "/api/prompts/qa/render", {{"version", 1}, {"variables", {{"q", "why"}}}});
  ASSERT_EQ(rendered.status, 200) << rendered.body;
  EXPECT_EQ(body(rendered)["text"], "Q: why");
  auto missing = call("POST", "/api/prompts/qa/render", {{"variables", Json::object()}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(body(missing)["error"]["code"], "invalid_argument");
  EXPECT_NE(body(missing)["error"]["message"].get<std::string>().find("missing variables: q"), std::string::npos);

  auto diff = call("GET", "/api/prompts/qa/diff?from=1&to=2");
  ASSERT_EQ(diff.status, 200) << diff.body;
  EXPECT_EQ(body(diff)["template_diff"], "--- qa@1\n+++ qa@2\n@@ -1 +1 @@\n-Q: {{q}}\n+Question: {{q}}\n");
  EXPECT_EQ(body(diff)["parameter_changes"][0]["key"], "temperature");
  EXPECT_EQ(call("GET", "/api/prompts/qa/diff?from=1").status, 400);

  auto aliased = call("PUT", "/api/prompts/qa/aliases/staging", {{"version", 1}});
  ASSERT_EQ(aliased.status, 200) << aliased.body;
  EXPECT_EQ(body(aliased)["version"], 1);
  auto by_alias = call("POST", "/api/prompts/qa/render", {{"version", "staging"}, {"variables", {{"q", "x"}}}});
  EXPECT_EQ(body(by_alias)["text"], "Q: x");
  EXPECT_EQ(call("GET", "/api/prompts/qa/versions/staging").status, 200);
  EXPECT_EQ(call("DELETE", "/api/prompts/qa/aliases/staging").status, 200);
  EXPECT_EQ(call("GET", "/api/prompts/qa/versions/staging").status, 404);
}

TEST_P(PromptRoutesTest, ChatPromptsAndErrors) {
  Json messages = Json::array({{{"role", "user"}, {"content", "Hi {{who}}"}}});
  auto created = call("POST", "/api/prompts/chat/versions", {{"messages", messages}});
  ASSERT_EQ(created.status, 201) << created.body;
  auto rendered = call("POST", "/api/prompts/chat/render", {{"variables", {{"who", "Bo"}}}});
  ASSERT_EQ(rendered.status, 200);
  EXPECT_EQ(body(rendered)["messages"], Json::array({{{"role", "user"}, {"content", "Hi Bo"}}}));

  EXPECT_EQ(call("POST", "/api/prompts/x/versions", {{"commit_message", "no template"}}).status, 400);
  EXPECT_EQ(call("POST", "/api/prompts/x/versions", {{"template", "a"}, {"messages", messages}}).status, 400);
  EXPECT_EQ(call("POST", "/api/prompts/x/versions", {{"template", 3}}).status, 400);
  EXPECT_EQ(call("GET", "/api/prompts/nope").status, 404);
  EXPECT_EQ(call("GET", "/api/prompts/chat/versions/5").status, 404);
  EXPECT_EQ(call("PUT", "/api/prompts/chat/aliases/a", {{"version", "one"}}).status, 400);
  EXPECT_EQ(call("POST", "/api/prompts/chat/render", {{"variables", {{"who", Json::array()}}}}).status, 400);
}

}  // namespace
}  // namespace keel::server
