// keel prompts end to end: create (text, file and chat forms), list, show, render,
// diff and alias through the binary, on both store back ends.
#include <gtest/gtest.h>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "cli/backend_cli_test.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;

class PromptCliTest : public BackendCliTest {};
INSTANTIATE_BACKEND_CLI_TEST(PromptCliTest);

TEST_P(PromptCliTest, CreateShowRenderDiffAlias) {
  Json v1 = keel_json({"prompts", "create", "summarize", "--template", "Summarize {{ text }} in {{n}} words.", "-m",
                       "first", "--param", "temperature=0.2", "--param", "model=smol"});
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["variables"], Json::array({"text", "n"}));
  EXPECT_EQ(v1["model_parameters"], Json({{"temperature", 0.2}, {"model", "smol"}}));
  Json v2 = keel_json({"prompts", "create", "summarize", "--template-file",
                       write("t.txt", "Summarize {{ text }} in at most {{n}} words.\n"), "-m", "tighter"});
  EXPECT_EQ(v2["version"], 2);

  Json listed = keel_json({"prompts", "list"});
  ASSERT_EQ(listed["prompts"].size(), 1u);
  EXPECT_EQ(listed["prompts"][0]["name"], "summarize");
  EXPECT_EQ(listed["prompts"][0]["latest_version"], 2);

  Json shown = keel_json({"prompts", "show", "summarize@1"});
  EXPECT_EQ(shown["template"], "Summarize {{ text }} in {{n}} words.");
  EXPECT_EQ(shown["commit_message"], "first");
  auto text = keel({"prompts", "show", "summarize"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("at most {{n}}"), std::string::npos) << text.out;

  auto rendered = keel({"prompts", "render", "summarize@1", "--var", "text=the news", "--var", "n=10"});
  EXPECT_EQ(rendered.exit_code, 0) << rendered.err;
  EXPECT_EQ(rendered.out, "Summarize the news in 10 words.\n");
  Json from_file = keel_json({"prompts", "render", "summarize", "--vars-file",
                              write("vars.json", R"({"text": "a", "n": 3})"), "--var", "text=b"});
  EXPECT_EQ(from_file["text"], "Summarize b in at most 3 words.\n");

  Json diff = keel_json({"prompts", "diff", "summarize", "1", "2"});
  EXPECT_EQ(diff["template_diff"],
            "--- summarize@1\n+++ summarize@2\n@@ -1 +1 @@\n-Summarize {{ text }} in {{n}} words.\n"
            "+Summarize {{ text }} in at most {{n}} words.\n");
  ASSERT_EQ(diff["parameter_changes"].size(), 2u);
  auto diff_text = keel({"prompts", "diff", "summarize", "1", "2"});
  EXPECT_NE(diff_text.out.find("temperature: 0.2 -> -"), std::string::npos) << diff_text.out;

  Json aliased = keel_json({"prompts", "alias", "summarize", "staging", "1"});
  EXPECT_EQ(aliased["version"], 1);
  EXPECT_EQ(keel_json({"prompts", "show", "summarize@staging"})["version"], 1);

  Json chat = keel_json({"prompts", "create", "chat", "--messages-file",
                         write("m.json", R"([{"role": "system", "content": "Be {{tone}}."},
                                             {"role": "user", "content": "{{q}}"}])")});
  EXPECT_EQ(chat["type"], "chat");
  Json chat_rendered = keel_json({"prompts", "render", "chat", "--var", "tone=brief", "--var", "q=hi"});
  EXPECT_EQ(chat_rendered["messages"][0]["content"], "Be brief.");
  EXPECT_EQ(chat_rendered["messages"][1]["content"], "hi");

  struct Bad {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& bad : std::vector<Bad>{
           {{"prompts", "render", "summarize", "--var", "text=x"}, "missing variables: n"},
           {{"prompts", "render", "summarize", "--var", "text=x", "--var", "n=1", "--var", "z=1"}, "unknown variables: z"},
           {{"prompts", "show", "nope"}, "no prompt named 'nope'"},
           {{"prompts", "show", "summarize@9"}, "no version 9"},
           {{"prompts", "create", "x"}, "exactly one of"},
           {{"prompts", "create", "x", "--template", "a", "--param", "=1"}, "KEY=VALUE"},
           {{"prompts", "alias", "summarize", "staging", "7"}, "not found"}}) {
    auto r = keel(bad.args);
    EXPECT_EQ(r.exit_code, 1) << bad.args[1] << " " << r.out;
    EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(bad.says), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace keel::cli
