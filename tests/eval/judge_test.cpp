// LLM judges: the verdict parsers (score, label, pairwise with the order swapped) on
// well-formed and garbage answers, and the judge YAML, standalone and as a task's
// judge: section, with its one-line errors.
#include "keel/eval/judge.h"

#include <gtest/gtest.h>

#include "keel/eval/task.h"
#include "keel/util/file.h"
#include "support/test_support.h"

namespace keel::eval {
namespace {

const char* kScoreJudge = R"yaml(judge: agreement
model: smollm2@1
rubric: "Expected: {{reference}}\nGiven: {{output}}\nRate 1-5:"
generation: {max_tokens: 4, stop: ["\n"]}
verdict: {type: score, min: 1, max: 5}
)yaml";

VerdictParser score_parser(double min, double max, std::string regex = "(-?[0-9]+(?:\\.[0-9]+)?)") {
  VerdictParser p;
  p.kind = VerdictParser::Kind::kScore;
  p.min = min;
  p.max = max;
  p.regex = std::move(regex);
  return p;
}

VerdictParser label_parser() {
  VerdictParser p;
  p.kind = VerdictParser::Kind::kLabel;
  p.labels = {{"correct", 1.0}, {"partly correct", 0.5}, {"wrong", 0.0}};
  return p;
}

VerdictParser pairwise_parser() {
  VerdictParser p;
  p.kind = VerdictParser::Kind::kPairwise;
  p.labels = {{"A", 1.0}, {"B", 0.0}, {"tie", 0.5}};
  p.case_sensitive = true;
  return p;
}

TEST(JudgeVerdict, ScoreIsTheFirstNumberScaledToItsRange) {
  Verdict v = parse_verdict(score_parser(1, 5), " 4, because the answer is close (2 errors)");
  ASSERT_TRUE(v.parsed) << v.error;
  EXPECT_DOUBLE_EQ(v.value, 0.75);
  EXPECT_EQ(v.label, "4");
  EXPECT_EQ(v.raw, " 4, because the answer is close (2 errors)");
  EXPECT_DOUBLE_EQ(parse_verdict(score_parser(1, 5), "1").value, 0.0);
  EXPECT_DOUBLE_EQ(parse_verdict(score_parser(1, 5), "Rating: 2.5/5").value, 0.375);
  EXPECT_DOUBLE_EQ(parse_verdict(score_parser(0, 10, "Score: ([0-9]+)"), "I think 3 things. Score: 7").value, 0.7);
}

TEST(JudgeVerdict, ScoreOutsideTheRangeOrMissingIsUnparsedNotZero) {
  Verdict high = parse_verdict(score_parser(1, 5), "9");
  EXPECT_FALSE(high.parsed);
  EXPECT_EQ(high.error, "score 9 is outside 1-5");
  EXPECT_EQ(high.value, 0);
  Json j = to_json(high);
  EXPECT_EQ(j["status"], "unparsed");
  EXPECT_TRUE(j["value"].is_null()) << "an unparsed verdict has no value, not 0";
  EXPECT_EQ(j["raw"], "9");

  Verdict garbage = parse_verdict(score_parser(1, 5), "The answer is good.");
  EXPECT_FALSE(garbage.parsed);
  EXPECT_NE(garbage.error.find("no match"), std::string::npos) << garbage.error;
  EXPECT_FALSE(parse_verdict(score_parser(1, 5), "").parsed);
  EXPECT_FALSE(parse_verdict(score_parser(1, 5), "\xff\xfe garbage \x01").parsed);
}

TEST(JudgeVerdict, LabelIsTheEarliestWholeWordAndItsValue) {
  Verdict v = parse_verdict(label_parser(), "Wrong. The correct answer is red.");
  ASSERT_TRUE(v.parsed);
  EXPECT_EQ(v.label, "wrong");
  EXPECT_DOUBLE_EQ(v.value, 0.0);
  // The longer label where two start at the same place.
  EXPECT_DOUBLE_EQ(parse_verdict(label_parser(), "partly correct").value, 0.5);
  // A label inside another word is not the label.
  EXPECT_FALSE(parse_verdict(label_parser(), "incorrectly wrongful").parsed);
  Verdict none = parse_verdict(label_parser(), "I cannot tell.");
  EXPECT_FALSE(none.parsed);
  EXPECT_EQ(none.error, "none of the labels (correct, partly correct, wrong) is in the answer");

  VerdictParser within = label_parser();
  within.regex = "Verdict: (\\w+)";
  EXPECT_EQ(parse_verdict(within, "It is wrong to say so. Verdict: correct").label, "correct");
  EXPECT_FALSE(parse_verdict(within, "correct").parsed);
}

TEST(JudgeVerdict, PairwiseIsCaseSensitiveSoTheArticleIsNoVerdict) {
  EXPECT_EQ(parse_verdict(pairwise_parser(), "a good question; B").label, "B");
  EXPECT_FALSE(parse_verdict(pairwise_parser(), "a bit of both").parsed);
}

TEST(JudgePairwise, BothOrdersAgreeingNameTheWinner) {
  // A's answer better: the first pass says "A", the swapped pass says "B".
  PairwiseVerdict p = combine_pairwise(pairwise_parser(), "A", "B is better");
  EXPECT_TRUE(p.both_parsed);
  EXPECT_TRUE(p.consistent);
  EXPECT_EQ(p.first_winner, "a");
  EXPECT_EQ(p.second_winner, "a");
  EXPECT_EQ(p.winner, "a");
  PairwiseVerdict q = combine_pairwise(pairwise_parser(), "B", "A");
  EXPECT_EQ(q.winner, "b");
  EXPECT_EQ(combine_pairwise(pairwise_parser(), "tie", "tie").winner, "tie");
}

TEST(JudgePairwise, APositionInconsistentPairIsATieAndBothPassesAreReported) {
  // A judge that always prefers the first answer shown.
  PairwiseVerdict p = combine_pairwise(pairwise_parser(), "A", "A");
  EXPECT_TRUE(p.both_parsed);
  EXPECT_FALSE(p.consistent);
  EXPECT_EQ(p.first_winner, "a");
  EXPECT_EQ(p.second_winner, "b");
  EXPECT_EQ(p.winner, "tie");
  Json j = to_json(p);
  EXPECT_EQ(j["first"]["order"], "a,b");
  EXPECT_EQ(j["first"]["winner"], "a");
  EXPECT_EQ(j["second"]["order"], "b,a");
  EXPECT_EQ(j["second"]["winner"], "b");
  EXPECT_EQ(j["second"]["raw"], "A");
  EXPECT_EQ(j["winner"], "tie");
}

TEST(JudgePairwise, AnUnparsedPassLeavesThePairUndecided) {
  PairwiseVerdict p = combine_pairwise(pairwise_parser(), "A", "I like both.");
  EXPECT_FALSE(p.both_parsed);
  EXPECT_EQ(p.winner, "unparsed");
  EXPECT_EQ(p.second_winner, "");
  EXPECT_EQ(to_json(p)["second"]["status"], "unparsed");
  EXPECT_TRUE(to_json(p)["second"]["winner"].is_null());

  std::vector<PairwiseVerdict> all = {combine_pairwise(pairwise_parser(), "A", "B"),
                                      combine_pairwise(pairwise_parser(), "B", "A"),
                                      combine_pairwise(pairwise_parser(), "A", "A"), p};
  PairwiseSummary s = summarize_pairwise(all);
  EXPECT_EQ(s.pairs, 4);
  EXPECT_EQ(s.a_wins, 1);
  EXPECT_EQ(s.b_wins, 1);
  EXPECT_EQ(s.ties, 1);
  EXPECT_EQ(s.inconsistent, 1);
  EXPECT_EQ(s.unparsed, 1);
  EXPECT_DOUBLE_EQ(*s.agreement, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(*s.b_win_rate, 0.5);
  EXPECT_FALSE(summarize_pairwise({p}).agreement.has_value());
}

TEST(JudgePairwise, PromptsSwapTheAnswers) {
  auto p = pairwise_prompts("Q: {{input}}\nA: {{output_a}}\nB: {{output_b}}", "2+2?", "4", "four", "five");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->first, "Q: 2+2?\nA: four\nB: five");
  EXPECT_EQ(p->second, "Q: 2+2?\nA: five\nB: four");
}

TEST(JudgeRun, PromptUsesTheExampleFieldsAndTheAnswer) {
  ExampleResult r;
  r.id = "q1";
  r.input = "Question: colour?";
  r.output = " red\n";
  r.filtered = "red";
  r.reference = "red";
  auto text =
      judge_prompt("{{question}} | {{output}} | {{filtered}} | {{reference}}", Json{{"question", "colour?"}}, r);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_EQ(*text, "colour? |  red\n | red | red");
  auto missing = judge_prompt("{{nope}} {{output}}", Json::object(), r);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("example q1 has no field \"nope\""), std::string::npos)
      << missing.status().message();
}

TEST(JudgeRun, SummaryCountsUnparsedVerdictsApartFromTheMean) {
  std::vector<ExampleResult> rows(4);
  rows[0].judge = to_json(parse_verdict(score_parser(1, 5), "5"));
  rows[1].judge = to_json(parse_verdict(score_parser(1, 5), "3"));
  rows[2].judge = to_json(parse_verdict(score_parser(1, 5), "no idea"));
  rows[2].judge["cached"] = true;
  JudgeSummary s = summarize_judge(rows);
  EXPECT_EQ(s.judged, 3);
  EXPECT_EQ(s.parsed, 2);
  EXPECT_EQ(s.unparsed, 1);
  EXPECT_EQ(s.cache_hits, 1);
  ASSERT_TRUE(s.mean.has_value());
  EXPECT_DOUBLE_EQ(*s.mean, 0.75) << "the unparsed verdict must not count as 0";
  std::vector<ExampleResult> none(1);
  none[0].judge = to_json(parse_verdict(score_parser(1, 5), "garbage"));
  EXPECT_FALSE(summarize_judge(none).mean.has_value());
  // A row's verdict survives the checkpoint's JSON.
  auto back = example_result_from_json(to_json(rows[2]));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->judge["status"], "unparsed");
  EXPECT_EQ(back->judge["raw"], "no idea");
}

TEST(JudgeYaml, ParsesAStandaloneJudge) {
  auto j = parse_judge(kScoreJudge, "j.yaml");
  ASSERT_TRUE(j.ok()) << j.status().to_string();
  EXPECT_EQ(j->name, "agreement");
  EXPECT_EQ(j->model.reference, "smollm2@1");
  EXPECT_TRUE(j->model.endpoint.empty());
  EXPECT_EQ(j->verdict.kind, VerdictParser::Kind::kScore);
  EXPECT_DOUBLE_EQ(j->verdict.min, 1);
  EXPECT_DOUBLE_EQ(j->verdict.max, 5);
  EXPECT_EQ(j->generation.max_tokens, 4);
  EXPECT_EQ(j->generation.temperature, 0) << "a judge is greedy unless told otherwise";
  EXPECT_EQ(j->generation.stop, std::vector<std::string>{"\n"});

  auto remote = parse_judge(R"yaml(model: {name: gpt-judge, endpoint: "http://127.0.0.1:8080/v1", api_key_env: KEY}
rubric: {registry: judge-prompt@2}
verdict:
  type: label
  labels: {good: 1, bad: 0}
)yaml",
                            "r.yaml");
  ASSERT_TRUE(remote.ok()) << remote.status().to_string();
  EXPECT_EQ(remote->name, "judge");
  EXPECT_EQ(remote->model.endpoint, "http://127.0.0.1:8080/v1");
  EXPECT_EQ(remote->model.api_key_env, "KEY");
  EXPECT_EQ(remote->rubric_reference, "judge-prompt@2");
  EXPECT_EQ(remote->generation.max_tokens, 16);
  ASSERT_EQ(remote->verdict.labels.size(), 2u);
  EXPECT_EQ(remote->verdict.labels[0].first, "good");
  EXPECT_DOUBLE_EQ(remote->verdict.labels[1].second, 0);

  auto pairwise = parse_judge(
      "model: m\nrubric: \"{{output_a}} or {{output_b}}?\"\nverdict: {type: pairwise, tie: same}\n", "p.yaml");
  ASSERT_TRUE(pairwise.ok()) << pairwise.status().to_string();
  EXPECT_EQ(pairwise->verdict.labels[2].first, "same");
  EXPECT_TRUE(pairwise->verdict.case_sensitive);
}

void expect_error(const Result<Judge>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected an error with: " << needle;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
}

TEST(JudgeYaml, BadInputIsAClearError) {
  const std::string rubric = "rubric: \"{{output}}\"\n";
  expect_error(parse_judge(std::string(kScoreJudge) + "temperature: 0\n", "j.yaml"),
               "j.yaml: unknown key \"temperature\" (line 6); expected one of: judge, description, model");
  expect_error(parse_judge(rubric + "verdict: {type: score, min: 1, max: 5}\n", "j.yaml"), "missing \"model\"");
  expect_error(parse_judge("model: m\nverdict: {type: score, min: 1, max: 5}\n", "j.yaml"), "missing \"rubric\"");
  expect_error(parse_judge("model: m\n" + rubric, "j.yaml"), "missing \"verdict\"");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {min: 1}\n", "j.yaml"), "verdict: missing \"type\"");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: stars}\n", "j.yaml"),
               "type \"stars\" (line 3) is not one of score, label, pairwise");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: score}\n", "j.yaml"),
               "needs its scale: min and max");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: score, min: 5, max: 1}\n", "j.yaml"),
               "max 1 must be above min 5");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: score, min: 1, max: ten}\n", "j.yaml"),
               "max: expected a number, got \"ten\"");
  expect_error(
      parse_judge("model: m\n" + rubric + "verdict: {type: score, min: 1, max: 5, regex: \"([0-9\"}\n", "j.yaml"),
      "is not a valid pattern");
  expect_error(
      parse_judge("model: m\n" + rubric + "verdict: {type: score, min: 1, max: 5, labels: {a: 1}}\n", "j.yaml"),
      "unknown key \"labels\"");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: label}\n", "j.yaml"), "missing \"labels\"");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: label, labels: [yes, no]}\n", "j.yaml"),
               "labels: expected a map of label: value");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: label, labels: {yes: high}}\n", "j.yaml"),
               "labels: yes: expected a number, got \"high\"");
  expect_error(parse_judge("model: m\n" + rubric + "verdict: {type: label, labels: {Yes: 1, yes: 0}}\n", "j.yaml"),
               "label \"yes\" (line 3) is given twice");
  expect_error(parse_judge("model: m\nrubric: \"Is it good?\"\nverdict: {type: score, min: 1, max: 5}\n", "j.yaml"),
               "the rubric never shows the answer to judge");
  expect_error(parse_judge("model: m\nrubric: \"{{output}}\"\nverdict: {type: pairwise}\n", "j.yaml"),
               "a pairwise rubric must show both answers");
  expect_error(parse_judge("model: m\nrubric: \"{{question}} {{output_a}} {{output_b}}\"\nverdict: {type: pairwise}\n",
                           "j.yaml"),
               "not {{ question }}");
  expect_error(parse_judge("model: {endpoint: \"http://x/v1\"}\n" + rubric + "verdict: {type: score, min: 1, max: 5}\n",
                           "j.yaml"),
               "model: missing \"name\"");
  expect_error(parse_judge("model: [a]\n" + rubric, "j.yaml"), "model: expected NAME[@VERSION|@ALIAS]");
  expect_error(
      parse_judge("model: m\n" + rubric + "generation: {max_tokens: 0}\nverdict: {type: score, min: 1, max: 5}\n",
                  "j.yaml"),
      "generation: max_tokens must be between 1 and 32768 (line 3)");
  expect_error(parse_judge("model: m\n" + rubric + "generation: {until: [x]}\nverdict: {type: score, min: 1, max: 5}\n",
                           "j.yaml"),
               "generation: unknown key \"until\"");
  expect_error(parse_judge("[1, 2]", "j.yaml"), "a judge is a YAML map");
  expect_error(parse_judge("model: m\n  bad: [", "j.yaml"), "not valid YAML");
  keel::testing::TempDir dir;
  expect_error(load_judge(dir.path()), "is a folder");
  auto absent = load_judge(dir.file("absent.yaml"));
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.status().message().find("absent.yaml"), std::string::npos);
}

const char* kTask = R"yaml(task: judged
dataset: data.jsonl
output_type: generate_until
prompt: "{{question}}"
target: "{{answer}}"
)yaml";

TEST(JudgeYaml, ATaskTakesAJudgeInlineOrFromAFile) {
  keel::testing::TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("judge.yaml"), kScoreJudge).ok());
  auto from_file =
      parse_task(std::string(kTask) + "judge: judge.yaml\nthresholds: {judge: \">= 0.5\"}\n", "t.yaml", dir.path());
  ASSERT_TRUE(from_file.ok()) << from_file.status().to_string();
  ASSERT_TRUE(from_file->judge);
  EXPECT_EQ(from_file->judge->name, "agreement");
  EXPECT_EQ(from_file->judge_file, dir.file("judge.yaml"));
  EXPECT_TRUE(from_file->metrics.empty()) << "a judge alone is enough";
  ASSERT_EQ(from_file->thresholds.size(), 1u);
  EXPECT_EQ(from_file->thresholds[0].metric, "judge");

  auto inline_judge = parse_task(std::string(kTask) +
                                     "metrics: [exact_match]\njudge:\n  model: m\n  rubric: \"{{output}}\"\n"
                                     "  verdict: {type: label, labels: {yes: 1, no: 0}}\n",
                                 "t.yaml", dir.path());
  ASSERT_TRUE(inline_judge.ok()) << inline_judge.status().to_string();
  EXPECT_EQ(inline_judge->judge->verdict.kind, VerdictParser::Kind::kLabel);
  EXPECT_TRUE(inline_judge->judge_file.empty());
}

TEST(JudgeYaml, ATaskJudgeRefusesWhatItCannotDo) {
  keel::testing::TempDir dir;
  auto task = [&](const std::string& extra) { return parse_task(std::string(kTask) + extra, "t.yaml", dir.path()); };
  auto expect = [](const Result<Task>& r, const std::string& needle) {
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  };
  expect(
      task("judge:\n  model: m\n  rubric: \"{{output}}\"\n  verdict: {type: score, min: 0, max: 1}\n  model_name: x\n"),
      "t.yaml: judge: unknown key \"model_name\" (line 10)");
  expect(task("judge:\n  rubric: \"{{output}}\"\n  verdict: {type: score, min: 0, max: 1}\n"),
         "t.yaml: judge: missing \"model\"");
  expect(task("judge:\n  model: m\n  rubric: \"{{output_a}} {{output_b}}\"\n  verdict: {type: pairwise}\n"),
         "use it with `keel eval compare RUN_A RUN_B --judge FILE`");
  expect(task("judge: nowhere.yaml\n"), "t.yaml: judge (line 6): reading the judge file");
  expect(task("judge: [a]\n"), "judge: expected a judge file or a map");
  expect(
      task(
          "metrics: [judge]\njudge:\n  model: m\n  rubric: \"{{output}}\"\n  verdict: {type: score, min: 0, max: 1}\n"),
      "comes from the task's judge: section");
  expect(task("metrics: [f1]\nthresholds: {judge: \">= 0.5\"}\n"),
         "threshold on \"judge\" (line 7), which is not in metrics");
  expect(task(""), "missing \"metrics\"");
  auto mc = parse_task(
      "task: x\noutput_type: multiple_choice\nprompt: p\ntarget: \"0\"\nchoices: [a, b]\n"
      "metrics: [acc]\njudge:\n  model: m\n  rubric: \"{{output}}\"\n  verdict: {type: score, min: 0, max: 1}\n",
      "mc.yaml", dir.path());
  expect(mc, "judges generated answers (output_type generate_until)");
}

}  // namespace
}  // namespace keel::eval
