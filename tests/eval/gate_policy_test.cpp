// Gate policies: rule parsing (absolute, relative to an alias with an offset), strict
// policy files, and evaluation against looked-up metrics, including missing results.
#include <gtest/gtest.h>

#include <map>

#include "keel/eval/gate_policy.h"

namespace keel::eval {
namespace {

TEST(GateRule, ParsesAbsoluteAndRelativeRules) {
  auto r = parse_gate_rule("t", "f1 >= 0.5");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->metric, "f1");
  EXPECT_EQ(r->op, ">=");
  EXPECT_EQ(r->alias, "");
  EXPECT_DOUBLE_EQ(r->offset, 0.5);
  r = parse_gate_rule("t", "bleu >= production - 0.5");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->alias, "production");
  EXPECT_DOUBLE_EQ(r->offset, -0.5);
  r = parse_gate_rule("t", "acc>prod-eu+1");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->op, ">");
  EXPECT_EQ(r->alias, "prod-eu");
  EXPECT_DOUBLE_EQ(r->offset, 1);
  r = parse_gate_rule("t", "perplexity <= production");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->alias, "production");
  EXPECT_DOUBLE_EQ(r->offset, 0);
  for (const char* bad : {"", "f1", "f1 >= ", ">= 0.5", "f1 ~ 0.5", "f1 >= production * 2", "f1 >= 0.5 points"}) {
    EXPECT_FALSE(parse_gate_rule("t", bad).ok()) << bad;
  }
}

TEST(GatePolicy, StrictFile) {
  auto p = parse_gate_policy("check: quality\ntasks:\n  reading: [\"f1 >= 0.5\", \"exact_match >= production - 0.1\"]\n"
                             "  capitals: \"acc >= 0.8\"\n",
                             "gate.yaml");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->check, "quality");
  ASSERT_EQ(p->rules.size(), 3u);
  EXPECT_EQ(p->rules[2].task, "capitals");
  auto err = [](const std::string& yaml) {
    auto q = parse_gate_policy(yaml, "gate.yaml");
    EXPECT_FALSE(q.ok()) << yaml;
    return q.ok() ? std::string() : q.status().message();
  };
  EXPECT_NE(err("tasks: {t: \"f1 >= 1\"}\nthreshold: 3\n").find("unknown key \"threshold\" (line 2)"), std::string::npos);
  EXPECT_NE(err("check: x\n").find("no rules"), std::string::npos);
  EXPECT_NE(err("tasks: {t: [{f1: 1}]}\n").find("a rule is a string"), std::string::npos);
  EXPECT_NE(err("tasks: {t: \"f1 about 1\"}\n").find("is not METRIC OP NUMBER"), std::string::npos);
  EXPECT_NE(err("tasks: [\n").find("not valid YAML"), std::string::npos);
}

TEST(GatePolicy, FlatRulesNameTheTaskBeforeTheFirstDot) {
  auto p = parse_gate_policy(
      "rules:\n  - \"security.pass_rate >= 0.98\"\n  - \"security.jailbreak.pass_rate >= 0.9\"\n"
      "  - bias.max_parity_gap <= 0.1\n  - \"reading.f1 >= production - 0.05\"\ntasks:\n  capitals: acc >= 0.8\n",
      "gate.yaml");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  ASSERT_EQ(p->rules.size(), 5u);
  EXPECT_EQ(p->rules[0].task, "security");
  EXPECT_EQ(p->rules[0].metric, "pass_rate");
  EXPECT_EQ(p->rules[0].text, "security.pass_rate >= 0.98");
  EXPECT_EQ(p->rules[1].task, "security");
  EXPECT_EQ(p->rules[1].metric, "jailbreak.pass_rate");
  EXPECT_EQ(p->rules[2].op, "<=");
  EXPECT_EQ(p->rules[3].alias, "production");
  EXPECT_DOUBLE_EQ(p->rules[3].offset, -0.05);
  EXPECT_EQ(p->rules[4].task, "capitals");
  for (const char* bad : {"rules: [\"pass_rate >= 0.98\"]\n", "rules: [\".pass_rate >= 1\"]\n",
                          "rules: [\"security. >= 1\"]\n", "rules: []\n", "rules: {a: b}\n", "rules: [[1]]\n",
                          "rules: [\"security.pass_rate about 1\"]\n"}) {
    auto q = parse_gate_policy(bad, "gate.yaml");
    EXPECT_FALSE(q.ok()) << bad;
  }
}

TEST(GatePolicy, EvaluatesAgainstTheCandidateAndTheAliasVersion) {
  auto p = parse_gate_policy("tasks:\n  t: [\"bleu >= production - 0.5\", \"f1 >= 0.5\", \"acc >= 0.9\"]\n", "g");
  ASSERT_TRUE(p.ok());
  std::map<std::pair<std::string, std::string>, double> values = {
      {{"bleu", ""}, 30.0}, {{"bleu", "production"}, 30.4}, {{"f1", ""}, 0.4}};
  auto outcomes = evaluate_gate(*p, [&](const std::string&, const std::string& metric, const std::string& alias,
                                        std::string* why) -> std::optional<double> {
    auto it = values.find({metric, alias});
    if (it == values.end()) {
      *why = "no " + metric;
      return std::nullopt;
    }
    return it->second;
  });
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].passed);  // 30.0 >= 30.4 - 0.5
  EXPECT_DOUBLE_EQ(*outcomes[0].threshold, 29.9);
  EXPECT_DOUBLE_EQ(*outcomes[0].baseline, 30.4);
  EXPECT_FALSE(outcomes[1].passed);
  EXPECT_FALSE(outcomes[2].passed);
  EXPECT_EQ(outcomes[2].reason, "no acc");  // a missing result fails the rule, never passes it
  EXPECT_EQ(to_json(outcomes[0])["alias"], "production");
}

}  // namespace
}  // namespace keel::eval
