// Parsing of the OpenAI-compatible API's request bodies: OpenAI's defaults, every
// parameter's type and range, the prompt and input forms, and message checks.
#include "keel/server/openai_request.h"

#include <gtest/gtest.h>

namespace keel::server {
namespace {

Json chat_body(Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  body.update(extra);
  return body;
}

// The error of a body that must not parse.
ApiError chat_error(const Json& body) {
  auto parsed = parse_chat_request(body);
  EXPECT_TRUE(std::holds_alternative<ApiError>(parsed)) << body.dump();
  return std::holds_alternative<ApiError>(parsed) ? std::get<ApiError>(parsed) : ApiError{};
}

TEST(OpenaiRequest, AChatRequestGetsOpenAisDefaults) {
  auto parsed = parse_chat_request(chat_body());
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed));
  const ChatRequest& r = std::get<ChatRequest>(parsed);
  EXPECT_EQ(r.model, "m");
  EXPECT_DOUBLE_EQ(r.temperature, 1.0);
  EXPECT_DOUBLE_EQ(r.top_p, 1.0);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.logprobs);
  ASSERT_EQ(r.messages.size(), 1u);
}

TEST(OpenaiRequest, ReadsEveryParameter) {
  auto parsed = parse_chat_request(chat_body({{"max_completion_tokens", 12},
                                              {"max_tokens", 99},
                                              {"temperature", 0},
                                              {"top_p", 0.5},
                                              {"n", 3},
                                              {"stop", {"a", "b"}},
                                              {"seed", -1},
                                              {"presence_penalty", -2},
                                              {"frequency_penalty", 1.5},
                                              {"logit_bias", {{"42", -100}}},
                                              {"stream", true},
                                              {"stream_options", {{"include_usage", true}}},
                                              {"logprobs", true},
                                              {"top_logprobs", 5},
                                              {"user", "ana"},
                                              {"some_future_field", {1, 2}}}));
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed));
  const ChatRequest& r = std::get<ChatRequest>(parsed);
  EXPECT_EQ(r.max_tokens, 12);  // max_completion_tokens wins over the deprecated name
  EXPECT_DOUBLE_EQ(r.temperature, 0);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.seed, static_cast<uint64_t>(-1));
  EXPECT_EQ(r.logit_bias.at(42), -100.0f);
  EXPECT_TRUE(r.stream && r.include_usage && r.logprobs);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_EQ(r.user, "ana");
}

TEST(OpenaiRequest, NullMeansNotGiven) {
  auto parsed = parse_chat_request(chat_body({{"temperature", nullptr}, {"stop", nullptr}, {"max_tokens", nullptr}}));
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed));
  EXPECT_DOUBLE_EQ(std::get<ChatRequest>(parsed).temperature, 1.0);
}

TEST(OpenaiRequest, WrongTypesAndRangesNameTheParameter) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"temperature", "hot"}}, "temperature"},
      {{{"temperature", 2.5}}, "temperature"},
      {{{"top_p", -0.1}}, "top_p"},
      {{{"max_tokens", -5}}, "max_tokens"},
      {{{"max_tokens", 0}}, "max_tokens"},
      {{{"max_tokens", 1e30}}, "max_tokens"},
      {{{"max_tokens", 2.5}}, "max_tokens"},
      {{{"n", 0}}, "n"},
      {{{"n", 1000}}, "n"},
      {{{"stop", 5}}, "stop"},
      {{{"stop", {"a", "b", "c", "d", "e"}}}, "stop"},
      {{{"stop", {""}}}, "stop"},
      {{{"stream", "yes"}}, "stream"},
      {{{"seed", "x"}}, "seed"},
      {{{"logit_bias", {{"abc", 1}}}}, "logit_bias"},
      {{{"logit_bias", {{"5", 500}}}}, "logit_bias"},
      {{{"top_logprobs", 3}}, "top_logprobs"},  // without logprobs
      {{{"logprobs", true}, {"top_logprobs", 21}}, "top_logprobs"},
      {{{"model", 7}}, "model"},
      {{{"messages", "hi"}}, "messages"},
      {{{"messages", Json::array()}}, "messages"},
      {{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"role", "user"}}}}}, "messages[0].content"},
      {{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "messages[0].content"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}, "messages[0].content"},
  };
  for (const auto& [extra, param] : cases) {
    const ApiError e = chat_error(chat_body(extra));
    EXPECT_EQ(e.status, 400) << extra.dump();
    EXPECT_EQ(e.param, param) << extra.dump() << " -> " << e.message;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_FALSE(e.message.empty());
  }
  EXPECT_EQ(chat_error(Json::array()).status, 400);
  EXPECT_EQ(chat_error(Json{{"messages", Json::array()}}).param, "model");
}

TEST(OpenaiRequest, MessagesKeepTheirFieldsAndDeveloperReadsAsSystem) {
  auto parsed = parse_chat_request(chat_body(
      {{"messages",
        {{{"role", "developer"}, {"content", "be brief"}},
         {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
         {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", Json::array()}}}}}));
  ASSERT_TRUE(std::holds_alternative<ChatRequest>(parsed));
  const auto& m = std::get<ChatRequest>(parsed).messages;
  EXPECT_EQ(m[0]["role"], "system");
  EXPECT_EQ(m[1]["content"].size(), 2u);
  EXPECT_TRUE(m[2].contains("tool_calls"));
}

TEST(OpenaiRequest, PromptsComeAsTextOrTokens) {
  auto one = parse_completion_request({{"model", "m"}, {"prompt", "hello"}});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(one));
  EXPECT_EQ(std::get<std::string>(std::get<CompletionRequest>(one).prompts.at(0)), "hello");

  auto mixed = parse_completion_request({{"model", "m"}, {"prompt", Json{"a", Json{1, 2, 3}}}, {"logprobs", 2}});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(mixed));
  const auto& r = std::get<CompletionRequest>(mixed);
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(std::get<std::vector<int32_t>>(r.prompts[1]), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.logprobs, 2);

  auto tokens = parse_completion_request({{"model", "m"}, {"prompt", Json{5, 6}}});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(tokens));
  EXPECT_EQ(std::get<CompletionRequest>(tokens).prompts.size(), 1u);

  for (const Json& bad : {Json(nullptr), Json(5), Json::array(), Json{Json{1, -2}}, Json{1.5}, Json{Json::object()},
                          Json(std::vector<std::string>(65, "x"))}) {
    auto parsed = parse_completion_request({{"model", "m"}, {"prompt", bad}});
    ASSERT_TRUE(std::holds_alternative<ApiError>(parsed)) << bad.dump();
    EXPECT_EQ(std::get<ApiError>(parsed).param, "prompt") << bad.dump();
  }
  auto logprobs = parse_completion_request({{"model", "m"}, {"prompt", "x"}, {"logprobs", 6}});
  EXPECT_TRUE(std::holds_alternative<ApiError>(logprobs));
  auto too_many = parse_completion_request({{"model", "m"}, {"prompt", std::vector<std::string>(10, "x")}, {"n", 8}});
  EXPECT_TRUE(std::holds_alternative<ApiError>(too_many));
}

TEST(OpenaiRequest, EmbeddingsTakeInputsAndAnEncoding) {
  auto parsed = parse_embeddings_request({{"model", "m"}, {"input", {"a", "b"}}, {"encoding_format", "base64"}});
  ASSERT_TRUE(std::holds_alternative<EmbeddingsRequest>(parsed));
  EXPECT_EQ(std::get<EmbeddingsRequest>(parsed).inputs.size(), 2u);
  EXPECT_TRUE(std::get<EmbeddingsRequest>(parsed).base64);
  for (const Json& extra : {Json{{"encoding_format", "int8"}}, Json{{"dimensions", 64}}, Json{{"input", 3}}}) {
    Json body = {{"model", "m"}, {"input", "x"}};
    body.update(extra);
    EXPECT_TRUE(std::holds_alternative<ApiError>(parse_embeddings_request(body))) << body.dump();
  }
}

TEST(OpenaiRequest, ErrorsHaveOpenAisShape) {
  const Json j = api_error_json({.status = 404, .message = "no", .param = "model", .code = "model_not_found"});
  EXPECT_EQ(j["error"]["message"], "no");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  EXPECT_TRUE(api_error_json({.message = "x"})["error"]["code"].is_null());
}

}  // namespace
}  // namespace keel::server
