#include "keel/prompts/prompt_template.h"

#include <gtest/gtest.h>

namespace keel::prompts {
namespace {

using Names = std::vector<std::string>;

TEST(TemplateVariables, InOrderOfFirstAppearanceEachOnce) {
  EXPECT_EQ(template_variables("{{b}} and {{a}}, again {{b}}"), (Names{"b", "a"}));
}

TEST(TemplateVariables, WhitespaceInsideBracesAndDottedNames) {
  EXPECT_EQ(template_variables("{{ name }} {{\tuser.city\n}} {{x}}"), (Names{"name", "user.city", "x"}));
}

TEST(TemplateVariables, IgnoresWhatIsNotAVariable) {
  EXPECT_EQ(template_variables("{single} {{1abc}} {{a b}} {{}} {{ a. }} {{{inner}}}"), (Names{"inner"}));
  EXPECT_TRUE(template_variables("no variables").empty());
}

TEST(TemplateVariables, ChatMessagesInMessageOrder) {
  std::vector<ChatMessage> messages{{"system", "You are {{ persona }}."}, {"user", "{{question}} ({{persona}})"}};
  EXPECT_EQ(template_variables(messages), (Names{"persona", "question"}));
}

TEST(Substitute, ReplacesEveryFormAndPrintsScalars) {
  Json values = {{"name", "Ada"}, {"n", 3}, {"p", 0.5}, {"ok", true}};
  EXPECT_EQ(substitute("Hi {{name}}/{{ name }}: {{n}} {{p}} {{ok}} {x}", values), "Hi Ada/Ada: 3 0.5 true {x}");
}

TEST(CheckVariables, NamesMissingExtraAndWrongTypes) {
  Names declared{"a", "b", "c"};
  EXPECT_TRUE(check_variables(declared, {{"a", "1"}, {"b", 2}, {"c", false}}).ok());
  Status st = check_variables(declared, {{"a", "1"}, {"c", Json::object()}, {"zzz", "x"}});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("missing variables: b"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unknown variables: zzz"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("must be a string, number or boolean: c"), std::string::npos) << st.message();
  EXPECT_EQ(check_variables(declared, Json::array()).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(check_variables({"a"}, {{"a", nullptr}}).code(), ErrorCode::kInvalidArgument);
}

TEST(ChatMessages, RoundTripThroughMlflowText) {
  std::vector<ChatMessage> messages{{"system", "be brief"}, {"user", "{{q}}"}};
  auto text = messages_to_text(messages);
  auto parsed = parse_json(text);
  ASSERT_TRUE(parsed.ok());
  auto back = messages_from_json(*parsed);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].role, "user");
  EXPECT_EQ((*back)[1].content, "{{q}}");
  EXPECT_FALSE(messages_from_json(Json::array()).ok());
  EXPECT_FALSE(messages_from_json(Json::array({{{"role", ""}, {"content", "x"}}})).ok());
  EXPECT_FALSE(messages_from_json(Json::array({{{"role", "user"}}})).ok());
}

}  // namespace
}  // namespace keel::prompts
