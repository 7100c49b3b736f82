// The prompt registry on both store back ends: versions as tagged registered-model
// versions (MLflow's conventions), rendering, aliases, diffs, and refusing models that
// are not prompts.
#include "keel/prompts/prompt_registry.h"

#include "store/store_test_base.h"

namespace keel::prompts {
namespace {

class PromptRegistryTest : public store::StoreWithBlobsTest {
 protected:
  void SetUp() override {
    StoreWithBlobsTest::SetUp();
    if (IsSkipped()) return;
    models_ = std::make_unique<registry::ModelRegistry>(*db_, *blobs_);
    prompts_ = std::make_unique<PromptRegistry>(*models_);
  }
  PromptVersion create(const std::string& name, const std::string& text, const std::string& commit = "",
                       Json params = nullptr) {
    NewPromptVersion spec;
    spec.template_text = text;
    spec.commit_message = commit;
    spec.model_parameters = std::move(params);
    auto v = prompts_->create_version(name, spec, "tester");
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    return v.ok() ? *v : PromptVersion{};
  }
  std::string tag(const registry::ModelVersion& v, const std::string& key) {
    for (const auto& t : v.tags)
      if (t.key == key) return t.value;
    return "<absent>";
  }

  std::unique_ptr<registry::ModelRegistry> models_;
  std::unique_ptr<PromptRegistry> prompts_;
};
INSTANTIATE_STORE_TEST(PromptRegistryTest);

TEST_P(PromptRegistryTest, VersionsAreRegistryVersionsWithMlflowPromptTags) {
  PromptVersion v1 = create("greet", "Hello {{ name }}, from {{city}} ({{name}})", "first", {{"temperature", 0.2}});
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.variables, (std::vector<std::string>{"name", "city"}));
  PromptVersion v2 = create("greet", "Hi {{name}}!", "shorter");
  EXPECT_EQ(v2.version, 2);

  auto model = models_->get_model("greet");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->description, "first");
  ASSERT_EQ(model->tags.size(), 1u);
  EXPECT_EQ(model->tags[0].key, kIsPromptTag);
  EXPECT_EQ(model->tags[0].value, "true");
  auto mv = models_->get_version("greet", 1);
  ASSERT_TRUE(mv.ok());
  EXPECT_EQ(mv->source, "dummy-source");
  EXPECT_EQ(mv->description, "first");
  EXPECT_EQ(tag(*mv, kIsPromptTag), "true");
  EXPECT_EQ(tag(*mv, kPromptTypeTag), "text");
  EXPECT_EQ(tag(*mv, kPromptTextTag), "Hello {{ name }}, from {{city}} ({{name}})");
  EXPECT_EQ(tag(*mv, kVariablesTag), "[\"name\",\"city\"]");
  EXPECT_EQ(tag(*mv, kModelConfigTag), "{\"temperature\":0.2}");
  EXPECT_EQ(tag(*models_->get_version("greet", 2), kModelConfigTag), "<absent>");

  auto latest = prompts_->get("greet");
  ASSERT_TRUE(latest.ok()) << latest.status().to_string();
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(latest->template_text, "Hi {{name}}!");
  auto first = prompts_->get("greet", "1");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->commit_message, "first");
  EXPECT_EQ(first->model_parameters, Json({{"temperature", 0.2}}));
  EXPECT_EQ(prompts_->get("greet", "3").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(prompts_->get("nope").status().code(), ErrorCode::kNotFound);

  create("other", "x");
  auto list = prompts_->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "greet");
  EXPECT_EQ((*list)[0].latest_version, 2);
  EXPECT_EQ((*list)[1].name, "other");
}

TEST_P(PromptRegistryTest, RejectsBadInput) {
  NewPromptVersion spec;
  EXPECT_EQ(prompts_->create_version("p", spec, "t").status().code(), ErrorCode::kInvalidArgument);  // empty
  spec.template_text = "x";
  spec.messages = std::vector<ChatMessage>{{"user", "y"}};
  EXPECT_EQ(prompts_->create_version("p", spec, "t").status().code(), ErrorCode::kInvalidArgument);  // both
  spec.messages.reset();
  spec.model_parameters = Json::array({1});
  EXPECT_EQ(prompts_->create_version("p", spec, "t").status().code(), ErrorCode::kInvalidArgument);
  spec.model_parameters = nullptr;
  spec.tags = {{kPromptTextTag, "sneaky"}};
  EXPECT_EQ(prompts_->create_version("p", spec, "t").status().code(), ErrorCode::kInvalidArgument);
  spec.tags.clear();
  EXPECT_EQ(prompts_->create_version("bad name", spec, "t").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(prompts_->list()->size(), 0u);  // nothing was half-created
}

TEST_P(PromptRegistryTest, RefusesRegisteredModelsThatAreNotPrompts) {
  ASSERT_TRUE(models_->create_model("classifier", "", {}, "tester").ok());
  registry::NewVersion nv;
  nv.source = "runs:/abc/model";
  ASSERT_TRUE(models_->create_version("classifier", nv, "tester").ok());
  NewPromptVersion spec;
  spec.template_text = "x";
  auto created = prompts_->create_version("classifier", spec, "tester");
  EXPECT_EQ(created.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(created.status().message().find("not a prompt"), std::string::npos) << created.status().message();
  EXPECT_EQ(prompts_->get("classifier").status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(prompts_->render("classifier", "1", Json::object()).status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(prompts_->set_alias("classifier", "prod", 1, "t").code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(models_->versions("classifier")->size(), 1u);
  EXPECT_TRUE(prompts_->list()->empty());
}

TEST_P(PromptRegistryTest, RenderSubstitutesAndNamesWrongVariables) {
  create("qa", "Q: {{ question }}\nAnswer in {{n}} words. {{question}}");
  auto r = prompts_->render("qa", "", {{"question", "why?"}, {"n", 5}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->text, "Q: why?\nAnswer in 5 words. why?");

  auto missing = prompts_->render("qa", "1", {{"question", "why?"}});
  EXPECT_EQ(missing.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("missing variables: n"), std::string::npos) << missing.status().message();
  auto extra = prompts_->render("qa", "1", {{"question", "q"}, {"n", 1}, {"tone", "dry"}});
  EXPECT_EQ(extra.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(extra.status().message().find("unknown variables: tone"), std::string::npos) << extra.status().message();
  auto object = prompts_->render("qa", "1", {{"question", {{"a", 1}}}, {"n", 1}});
  EXPECT_EQ(object.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(object.status().message().find("question"), std::string::npos);
}

TEST_P(PromptRegistryTest, AliasesPickTheVersion) {
  create("a", "one");
  create("a", "two");
  ASSERT_TRUE(prompts_->set_alias("a", "staging", 1, "tester").ok());
  auto v = prompts_->get("a", "staging");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->version, 1);
  EXPECT_EQ(v->aliases, std::vector<std::string>{"staging"});
  EXPECT_EQ(prompts_->render("a", "staging", Json::object())->text, "one");
  ASSERT_TRUE(prompts_->set_alias("a", "staging", 2, "tester").ok());
  EXPECT_EQ(prompts_->get("a", "staging")->version, 2);
  EXPECT_EQ(prompts_->set_alias("a", "staging", 9, "tester").code(), ErrorCode::kNotFound);
  ASSERT_TRUE(prompts_->delete_alias("a", "staging", "tester").ok());
  EXPECT_EQ(prompts_->get("a", "staging").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(prompts_->list()->at(0).aliases.size(), 0u);
}

TEST_P(PromptRegistryTest, DiffShowsTemplateLinesAndParameterChanges) {
  create("d", "You are helpful.\nAnswer: {{q}}\nBe brief.\n", "", {{"temperature", 0.2}, {"max_tokens", 100}});
  create("d", "You are helpful.\nAnswer carefully: {{q}}\nBe brief.\n", "", {{"temperature", 0.7}, {"top_p", 0.9}});
  auto d = prompts_->diff("d", "1", "2");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->template_diff,
            "--- d@1\n+++ d@2\n@@ -1,3 +1,3 @@\n You are helpful.\n-Answer: {{q}}\n+Answer carefully: {{q}}\n Be brief.\n");
  ASSERT_EQ(d->parameter_changes.size(), 3u);
  EXPECT_EQ(d->parameter_changes[0].key, "max_tokens");
  EXPECT_EQ(d->parameter_changes[0].from, 100);
  EXPECT_TRUE(d->parameter_changes[0].to.is_null());
  EXPECT_EQ(d->parameter_changes[1].key, "temperature");
  EXPECT_EQ(d->parameter_changes[2].key, "top_p");
  auto same = prompts_->diff("d", "2", "latest");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->template_diff, "");
  EXPECT_TRUE(same->parameter_changes.empty());
  EXPECT_EQ(prompts_->diff("d", "1", "7").status().code(), ErrorCode::kNotFound);
}

TEST_P(PromptRegistryTest, ChatPromptsStoreMessagesAsMlflowDoes) {
  NewPromptVersion spec;
  spec.messages = std::vector<ChatMessage>{{"system", "You are {{ persona }}."}, {"user", "{{question}}"}};
  spec.commit_message = "chat";
  auto v = prompts_->create_version("chat", spec, "tester");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_TRUE(v->is_chat);
  EXPECT_EQ(v->variables, (std::vector<std::string>{"persona", "question"}));
  auto mv = models_->get_version("chat", 1);
  ASSERT_TRUE(mv.ok());
  EXPECT_EQ(tag(*mv, kPromptTypeTag), "chat");
  auto stored = parse_json(tag(*mv, kPromptTextTag));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, Json::parse(R"([{"role":"system","content":"You are {{ persona }}."},
                                     {"role":"user","content":"{{question}}"}])"));
  auto r = prompts_->render("chat", "1", {{"persona", "a pirate"}, {"question", "where?"}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].content, "You are a pirate.");
  EXPECT_EQ(r->messages[1].role, "user");
  EXPECT_EQ(r->messages[1].content, "where?");
  EXPECT_EQ(prompts_->render("chat", "1", {{"persona", "x"}}).status().code(), ErrorCode::kInvalidArgument);

  spec.messages = std::vector<ChatMessage>{{"system", "You are {{ persona }}."}, {"user", "{{question}}!"}};
  ASSERT_TRUE(prompts_->create_version("chat", spec, "tester").ok());
  auto d = prompts_->diff("chat", "1", "2");
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->template_diff.find("-{{question}}\n+{{question}}!\n"), std::string::npos) << d->template_diff;
}

TEST_P(PromptRegistryTest, PromptsRegisteredTheMlflowWayAreReadable) {
  // What mlflow.genai.register_prompt sends: no keel.prompt.variables tag.
  ASSERT_TRUE(models_->create_model("ml", "c1", {{kIsPromptTag, "true"}}, "mlflow-api").ok());
  registry::NewVersion nv;
  nv.source = "dummy-source";
  nv.description = "c1";
  nv.tags = {{kIsPromptTag, "true"}, {kPromptTypeTag, "text"}, {kPromptTextTag, "Hello {{name}}"}, {"t", "1"}};
  ASSERT_TRUE(models_->create_version("ml", nv, "mlflow-api").ok());
  auto v = prompts_->get("ml", "1");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->variables, std::vector<std::string>{"name"});
  ASSERT_EQ(v->tags.size(), 1u);
  EXPECT_EQ(v->tags[0].key, "t");
  EXPECT_EQ(prompts_->render("ml", "", {{"name", "x"}})->text, "Hello x");
}

}  // namespace
}  // namespace keel::prompts
