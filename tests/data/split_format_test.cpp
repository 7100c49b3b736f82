// The split step (deterministic, key-stable, near its ratios) and the format step
// (templates, prompt/response and chat shapes, missing fields counted per field).
#include <gtest/gtest.h>

#include <cmath>

#include "keel/data/format_operator.h"
#include "keel/data/split_operator.h"

namespace keel::data {
namespace {

TEST(SplitOperator, SameKeySameSplitWhateverTheOrder) {
  SplitOptions o;
  o.key = "id";
  o.tag_field = "split";
  auto a = SplitOperator::create(o);
  auto b = SplitOperator::create(o);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::string> forward;
  for (int i = 0; i < 1000; ++i) {
    Record r = {{"id", "doc-" + std::to_string(i)}, {"text", "t"}};
    ASSERT_TRUE((*a)->apply(&r).keep);
    forward.push_back(r["split"]);
  }
  for (int i = 999; i >= 0; --i) {
    Record r = {{"id", "doc-" + std::to_string(i)}, {"text", "different text, same key"}};
    ASSERT_TRUE((*b)->apply(&r).keep);
    EXPECT_EQ(r["split"], forward[static_cast<size_t>(i)]) << i;
  }
}

TEST(SplitOperator, SharesApproachTheRatios) {
  SplitOptions o;  // 0.8 / 0.1 / 0.1 over the whole record
  auto s = SplitOperator::create(o);
  ASSERT_TRUE(s.ok());
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    Record r = {{"n", i}};
    (*s)->apply(&r);
  }
  const auto& counts = (*s)->split_counts();
  ASSERT_EQ(counts.size(), 3u);
  // Binomial standard deviation at 0.1 of 20000 is ~42; allow 5 of them.
  EXPECT_NEAR(static_cast<double>(counts[0]), 0.8 * n, 5 * 57);
  EXPECT_NEAR(static_cast<double>(counts[1]), 0.1 * n, 5 * 42);
  EXPECT_NEAR(static_cast<double>(counts[2]), 0.1 * n, 5 * 42);
  EXPECT_EQ((*s)->counts().notes.at("train"), counts[0]);
}

TEST(SplitOperator, SeedsZeroRatiosAndErrors) {
  SplitOptions o;
  o.ratios = {0.5, 0, 0.5};
  auto s = SplitOperator::create(o);
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 500; ++i) {
    Record r = {{"n", i}};
    (*s)->apply(&r);
  }
  EXPECT_EQ((*s)->split_counts()[1], 0u);
  // Another seed moves records.
  SplitOptions other = o;
  other.seed = "other";
  int moved = 0;
  for (int i = 0; i < 200; ++i) {
    std::string key = std::to_string(i);
    moved += split_index(key, o) != split_index(key, other);
  }
  EXPECT_GT(moved, 50);
  SplitOptions missing;
  missing.key = "id";
  auto m = SplitOperator::create(missing);
  Record no_id = {{"text", "x"}};
  EXPECT_EQ((*m)->apply(&no_id).reason, "no_key_field");
  Record numeric = {{"id", 42}};
  EXPECT_TRUE((*m)->apply(&numeric).keep);
  SplitOptions bad;
  bad.ratios = {0.8, 0.1};
  EXPECT_NE(SplitOperator::create(bad).status().message().find("2 ratios but 3 names"), std::string::npos);
  bad.names = {"train", "test"};
  EXPECT_NE(SplitOperator::create(bad).status().message().find("sum to 1"), std::string::npos);
  bad.ratios = {0.5, 0.5};
  bad.names = {"a", "a"};
  EXPECT_FALSE(SplitOperator::create(bad).ok());
}

TEST(FieldTemplate, SubstitutesFieldsPathsAndEscapes) {
  auto t = FieldTemplate::parse("Q: {question} ({meta.source}, {{literal}}) n={n}");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  Record r = {{"question", "Why?"}, {"meta", {{"source", "faq"}}}, {"n", 3}};
  std::string out, missing;
  ASSERT_TRUE(t->render(r, &out, &missing));
  EXPECT_EQ(out, "Q: Why? (faq, {literal}) n=3");
  Record lacking = {{"question", "Why?"}, {"n", nullptr}};
  EXPECT_FALSE(t->render(lacking, &out, &missing));
  EXPECT_EQ(missing, "meta.source");
  EXPECT_FALSE(FieldTemplate::parse("open {brace").ok());
  EXPECT_FALSE(FieldTemplate::parse("stray } brace").ok());
  EXPECT_FALSE(FieldTemplate::parse("empty {}").ok());
}

TEST(FormatOperator, PromptResponsePairsWithKeptFields) {
  FormatOptions o;
  o.prompt = "Summarise:\n{text}";
  o.response = "{summary}";
  o.keep_fields = {"id"};
  auto f = FormatOperator::create(o);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  Record r = {{"id", 9}, {"text", "Long text."}, {"summary", "Short."}, {"other", true}};
  ASSERT_TRUE((*f)->apply(&r).keep);
  EXPECT_EQ(r.dump(), R"({"prompt":"Summarise:\nLong text.","response":"Short.","id":9})");
  Record no_summary = {{"id", 10}, {"text", "x"}};
  Record no_text = {{"id", 11}, {"summary", "y"}};
  Record no_text2 = {{"id", 12}, {"summary", "y"}};
  EXPECT_EQ((*f)->apply(&no_summary).reason, "missing_field_summary");
  EXPECT_EQ((*f)->apply(&no_text).reason, "missing_field_text");
  (*f)->apply(&no_text2);
  EXPECT_EQ((*f)->counts().dropped_by_reason.at("missing_field_text"), 2u);
  EXPECT_EQ((*f)->counts().dropped_by_reason.at("missing_field_summary"), 1u);
  EXPECT_EQ((*f)->counts().kept, 1u);
}

TEST(FormatOperator, ChatMessages) {
  FormatOptions o;
  o.style = "chat";
  o.system = "You answer questions about {topic}.";
  o.user = "{question}";
  o.assistant = "{answer}";
  auto f = FormatOperator::create(o);
  ASSERT_TRUE(f.ok());
  Record r = {{"topic", "rivers"}, {"question", "How long is the Nile?"}, {"answer", "About 6,650 km."}};
  ASSERT_TRUE((*f)->apply(&r).keep);
  EXPECT_EQ(r.dump(),
            R"({"messages":[{"role":"system","content":"You answer questions about rivers."},)"
            R"({"role":"user","content":"How long is the Nile?"},{"role":"assistant","content":"About 6,650 km."}]})");
  FormatOptions mixed = o;
  mixed.prompt = "{x}";
  EXPECT_FALSE(FormatOperator::create(mixed).ok());
  FormatOptions style;
  style.style = "alpaca";
  EXPECT_NE(FormatOperator::create(style).status().message().find("prompt_response or chat"), std::string::npos);
  FormatOptions bad_template;
  bad_template.prompt = "{unclosed";
  bad_template.response = "{r}";
  auto b = FormatOperator::create(bad_template);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("prompt"), std::string::npos);
}

}  // namespace
}  // namespace keel::data
