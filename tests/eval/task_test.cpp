// Tasks (YAML) and their runs over a Generator: strict parsing with errors that name
// the key and line, the shipped example tasks, filters, dataset reading errors, prompt
// rendering with few-shot examples, lm-eval's acc / acc_norm, and aggregation. A fake
// Generator stands in for the model, so these run in milliseconds.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "keel/eval/bleu.h"
#include "keel/eval/task.h"
#include "keel/eval/task_run.h"
#include "keel/util/file.h"
#include "support/test_support.h"

namespace keel::eval {
namespace {

using keel::testing::TempDir;

Task parse_ok(const std::string& yaml) {
  auto t = parse_task(yaml, "task.yaml", "/data");
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? *t : Task{};
}

void expect_error(const std::string& yaml, const std::string& needle) {
  auto t = parse_task(yaml, "task.yaml", "/data");
  ASSERT_FALSE(t.ok()) << "accepted: " << yaml;
  EXPECT_EQ(t.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("task.yaml"), std::string::npos) << t.status().message();
}

const char* kMinimal = "task: t\noutput_type: generate_until\nprompt: \"Q: {{q}}\"\ntarget: \"{{a}}\"\nmetrics: [exact_match]\n";

TEST(TaskParse, ReadsEveryField) {
  Task t = parse_ok(R"yaml(task: qa
description: Answer briefly.
dataset: {path: qa.jsonl, split: test}
output_type: generate_until
prompt: "Q: {{q}}\nA:"
target: "{{a}}"
fewshot: {num: 1, split: train}
generation: {max_tokens: 5, temperature: 0.5, top_p: 0.9, seed: 3, until: ["\n"], chat: true}
filters: [strip, lowercase, {regex: "([0-9]+)", select: last}]
metrics: [exact_match, f1, bleu]
thresholds: {f1: "> 0.5", bleu: 10}
)yaml");
  EXPECT_EQ(t.name, "qa");
  EXPECT_EQ(t.dataset, "/data/qa.jsonl");
  EXPECT_EQ(t.split, "test");
  EXPECT_EQ(t.prompt, "Q: {{q}}\nA:");
  EXPECT_EQ(t.num_fewshot, 1);
  EXPECT_EQ(t.fewshot_split, "train");
  EXPECT_EQ(t.generation.max_tokens, 5);
  EXPECT_DOUBLE_EQ(t.generation.temperature, 0.5);
  EXPECT_EQ(t.generation.seed, 3u);
  EXPECT_EQ(t.generation.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(t.generation.chat);
  ASSERT_EQ(t.filters.size(), 3u);
  EXPECT_TRUE(t.filters[2].last);
  ASSERT_EQ(t.thresholds.size(), 2u);
  EXPECT_EQ(t.thresholds[0].metric, "f1");  // in the file's order
  EXPECT_EQ(t.thresholds[0].op, ">");
  EXPECT_DOUBLE_EQ(t.thresholds[0].value, 0.5);
  EXPECT_EQ(t.thresholds[1].metric, "bleu");
  EXPECT_EQ(t.thresholds[1].op, ">=");  // a bare number means >=
  EXPECT_DOUBLE_EQ(t.thresholds[1].value, 10);
}

TEST(TaskParse, RefusesUnknownKeysMissingFieldsAndWrongTypes) {
  expect_error(std::string(kMinimal) + "promt: x\n", "unknown key \"promt\" (line 6)");
  expect_error("output_type: generate_until\nprompt: x\ntarget: y\nmetrics: [f1]\n", "missing \"task\"");
  expect_error("task: t\nprompt: x\ntarget: y\nmetrics: [f1]\n", "missing \"output_type\"");
  expect_error("task: t\noutput_type: generate_until\ntarget: y\nmetrics: [f1]\n", "missing \"prompt\"");
  expect_error("task: t\noutput_type: generate_until\nprompt: x\nmetrics: [f1]\n", "missing \"target\"");
  expect_error("task: t\noutput_type: generate_until\nprompt: x\ntarget: y\n", "missing \"metrics\"");
  expect_error("task: t\noutput_type: guess\nprompt: x\ntarget: y\nmetrics: [f1]\n", "output_type \"guess\"");
  expect_error("task: [a]\noutput_type: generate_until\nprompt: x\ntarget: y\nmetrics: [f1]\n",
               "task: expected a string, got a list");
  expect_error(std::string(kMinimal) + "generation: {max_tokens: many}\n", "max_tokens: expected an integer");
  expect_error(std::string(kMinimal) + "generation: {max_tokens: 0}\n", "max_tokens must be between 1");
  expect_error(std::string(kMinimal) + "generation: {chat: yes}\n", "chat: expected true or false");
  expect_error(std::string(kMinimal) + "generation: {stop: \"x\"}\n", "stop: expected a list of strings");
  expect_error(std::string(kMinimal) + "generation: {temp: 1}\n", "unknown key \"temp\"");
  expect_error(std::string(kMinimal) + "filters: [{regex: \"(\"}]\n", "is not a valid pattern");
  expect_error(std::string(kMinimal) + "filters: [upper]\n", "unknown filter \"upper\"");
  expect_error(std::string(kMinimal) + "thresholds: {f1: \">= 1\"}\n", "not in metrics");
  expect_error(std::string(kMinimal) + "thresholds: {exact_match: \"about half\"}\n", "is not OP NUMBER");
  expect_error(std::string(kMinimal) + "fewshot: {num: 2}\n", "needs a split or examples");
  expect_error("task: t\noutput_type: generate_until\nprompt: x\ntarget: y\nmetrics: []\n", "metrics (line 5) is empty");
  expect_error("task: t\noutput_type: generate_until\nprompt: x\ntarget: y\nmetrics: [acc]\n",
               "metric \"acc\" (line 5) is not available for generate_until");
  expect_error("task: t\noutput_type: multiple_choice\nprompt: x\ntarget: y\nmetrics: [acc]\n", "missing \"choices\"");
  expect_error("task: t\noutput_type: loglikelihood\nprompt: x\ntarget: y\nmetrics: [acc]\ngeneration: {max_tokens: 3}\n",
               "is for output_type generate_until");
  expect_error("task: my task\noutput_type: generate_until\nprompt: x\ntarget: y\nmetrics: [f1]\n",
               "task name \"my task\" (line 1) must be letters");
  expect_error("- a\n- b\n", "a task is a YAML map");
  expect_error("task: [unclosed\n", "not valid YAML");
}

TEST(TaskParse, ShippedExampleTasksParse) {
  for (const char* name : {"arithmetic", "capitals", "copy", "reading", "sentences"}) {
    auto t = load_task(keel::testing::source_dir() + "/examples/eval/" + name + ".yaml");
    ASSERT_TRUE(t.ok()) << name << ": " << t.status().to_string();
    EXPECT_EQ(t->name, name);
    auto records = read_jsonl_examples(t->dataset);
    ASSERT_TRUE(records.ok()) << records.status().to_string();
    auto examples = prepare_examples(*t, t->prompt, *records, t->dataset);
    ASSERT_TRUE(examples.ok()) << examples.status().to_string();
    EXPECT_GE(examples->size(), 20u) << name;
  }
}

TEST(AnswerFilters, RegexFirstLastGroupFallbackStripLowercase) {
  AnswerFilter first{AnswerFilter::Kind::kRegex, "-?[0-9]+"};
  AnswerFilter last = first;
  last.last = true;
  EXPECT_EQ(apply_filters({first}, "12 + 4 = 16"), "12");
  EXPECT_EQ(apply_filters({last}, "12 + 4 = 16"), "16");
  EXPECT_EQ(apply_filters({last}, "no digits"), "[invalid]");
  AnswerFilter group{AnswerFilter::Kind::kRegex, "answer is (\\w+)"};
  EXPECT_EQ(apply_filters({group}, "The answer is Paris."), "Paris");
  AnswerFilter strip{AnswerFilter::Kind::kStrip};
  AnswerFilter lower{AnswerFilter::Kind::kLowercase};
  EXPECT_EQ(apply_filters({strip, lower}, "  Paris\n"), "paris");
}

class DatasetFile : public ::testing::Test {
 protected:
  Status read(const std::string& contents) {
    const std::string path = dir_.file("d.jsonl");
    EXPECT_TRUE(write_file_atomic(path, contents).ok());
    return read_jsonl_examples(path).status();
  }
  TempDir dir_;
};

TEST_F(DatasetFile, ErrorsNameTheFileAndLine) {
  Status s = read("");
  EXPECT_NE(s.message().find("holds no examples"), std::string::npos) << s.message();
  s = read("\n  \n");
  EXPECT_NE(s.message().find("holds no examples"), std::string::npos) << s.message();
  s = read("{\"q\": \"a\"}\n{\"q\": \"\xff\"}\n");
  EXPECT_NE(s.message().find("line 2 is not valid UTF-8"), std::string::npos) << s.message();
  s = read("{\"q\": \"a\"}\n{\"q\": \n");
  EXPECT_NE(s.message().find("line 2 is not valid JSON"), std::string::npos) << s.message();
  s = read("[1, 2]\n");
  EXPECT_NE(s.message().find("line 1 is a list, not a JSON object"), std::string::npos) << s.message();
  s = read_jsonl_examples(dir_.file("missing.jsonl")).status();
  EXPECT_NE(s.message().find("missing.jsonl"), std::string::npos) << s.message();
  EXPECT_TRUE(read("{\"q\": \"a\"}\r\n\n{\"q\": \"b\"}").ok());
}

std::vector<DatasetRecord> records(const std::vector<std::string>& lines) {
  std::vector<DatasetRecord> out;
  for (size_t i = 0; i < lines.size(); ++i) out.push_back({static_cast<int64_t>(i + 1), *parse_json(lines[i])});
  return out;
}

TEST(PrepareExamples, RendersFewShotAsLmEvalDoes) {
  Task t = parse_ok(R"(task: qa
description: Answer.
output_type: generate_until
prompt: "Q: {{q}}"
target: "{{a}}"
fewshot: {num: 2, split: train}
metrics: [exact_match]
)");
  auto ex = prepare_examples(t, t.prompt,
                             records({R"({"split": "train", "q": "1+1", "a": 2})", R"({"split": "test", "q": "2+2", "a": 4, "id": "x"})",
                                      R"({"split": "train", "q": "3+3", "a": 6})"}),
                             "d.jsonl");
  ASSERT_TRUE(ex.ok()) << ex.status().to_string();
  ASSERT_EQ(ex->size(), 1u);  // the few-shot split is not evaluated
  EXPECT_EQ((*ex)[0].prompt, "Answer.\n\nQ: 1+1 2\n\nQ: 3+3 6\n\nQ: 2+2");
  EXPECT_EQ((*ex)[0].reference, "4");
  EXPECT_EQ((*ex)[0].id, "x");
}

TEST(PrepareExamples, WrongFieldTypesAreErrorsWithTheLine) {
  Task t = parse_ok(kMinimal);
  auto bad = [&](const std::string& line) {
    auto ex = prepare_examples(t, t.prompt, records({R"({"q": "fine", "a": "ok"})", line}), "d.jsonl");
    EXPECT_FALSE(ex.ok());
    return ex.ok() ? std::string() : ex.status().message();
  };
  EXPECT_NE(bad(R"({"q": ["a", "b"], "a": "x"})").find("d.jsonl line 2: field \"q\" is a list"), std::string::npos);
  EXPECT_NE(bad(R"({"q": {"x": 1}, "a": "x"})").find("field \"q\" is an object"), std::string::npos);
  EXPECT_NE(bad(R"({"q": null, "a": "x"})").find("field \"q\" is null"), std::string::npos);
  EXPECT_NE(bad(R"({"a": "x"})").find("has no field \"q\""), std::string::npos);

  Task mc = parse_ok("task: m\noutput_type: multiple_choice\nprompt: \"{{q}}\"\nchoices: options\ntarget: \"{{label}}\"\nmetrics: [acc]\n");
  auto mc_bad = [&](const std::string& line) {
    auto ex = prepare_examples(mc, mc.prompt, records({line}), "d.jsonl");
    EXPECT_FALSE(ex.ok()) << line;
    return ex.ok() ? std::string() : ex.status().message();
  };
  EXPECT_NE(mc_bad(R"({"q": "x", "options": "a,b", "label": 0})").find("choices are a list"), std::string::npos);
  EXPECT_NE(mc_bad(R"({"q": "x", "options": ["a", 2], "label": 0})").find("choices are strings"), std::string::npos);
  EXPECT_NE(mc_bad(R"({"q": "x", "options": ["a", "b"], "label": 2})").find("out of range"), std::string::npos);
  EXPECT_NE(mc_bad(R"({"q": "x", "options": ["a", "b"], "label": "c"})").find("neither a choice index"),
            std::string::npos);
  auto by_text = prepare_examples(mc, mc.prompt, records({R"({"q": "x", "options": ["a", "b"], "label": "b"})"}), "d");
  ASSERT_TRUE(by_text.ok());
  EXPECT_EQ((*by_text)[0].gold, 1);
}

// Scores given per (context, continuation); generate echoes a fixed answer per prompt.
class FakeGenerator : public Generator {
 public:
  std::map<std::string, std::string> answers;
  std::map<std::string, double> logprobs;  // by continuation
  std::vector<size_t> batch_sizes;
  Result<std::vector<std::string>> generate(const std::vector<std::string>& prompts, const GenerationParams&) override {
    batch_sizes.push_back(prompts.size());
    std::vector<std::string> out;
    for (const auto& p : prompts) out.push_back(answers[p]);
    return out;
  }
  Result<std::vector<LoglikelihoodResult>> loglikelihood(const std::vector<LoglikelihoodRequest>& requests) override {
    std::vector<LoglikelihoodResult> out;
    for (const auto& r : requests) {
      if (!logprobs.count(r.continuation)) return invalid_argument("unexpected continuation '" + r.continuation + "'");
      out.push_back({logprobs[r.continuation], r.continuation == " east", 2});
    }
    return out;
  }
  std::string description() const override { return "fake"; }
};

TEST(EvaluateBatch, MultipleChoiceAccAndByteLengthNormalisedAccNorm) {
  Task mc = parse_ok("task: m\noutput_type: multiple_choice\nprompt: \"{{q}}\"\nchoices: [cat, elephant]\n"
                     "target: \"{{label}}\"\nmetrics: [acc, acc_norm]\n");
  auto ex = prepare_examples(mc, mc.prompt, records({R"({"q": "big?", "label": 1})"}), "d");
  ASSERT_TRUE(ex.ok()) << ex.status().to_string();
  FakeGenerator g;
  // The raw log-likelihood favours "cat" (-6 > -15); per byte of the choice "elephant"
  // wins (-15 / 8 = -1.875 > -6 / 3 = -2), as lm-eval's acc_norm divides by its length.
  g.logprobs = {{" cat", -6.0}, {" elephant", -15.0}};
  auto r = evaluate_batch(mc, g, *ex);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)[0].prediction, 0);
  EXPECT_EQ((*r)[0].prediction_norm, 1);
  EXPECT_EQ((*r)[0].scores.at("acc"), 0.0);
  EXPECT_EQ((*r)[0].scores.at("acc_norm"), 1.0);
  EXPECT_EQ((*r)[0].output, "cat");
  // Ties go to the first choice, as numpy's argmax does.
  g.logprobs = {{" cat", -3.0}, {" elephant", -3.0}};
  r = evaluate_batch(mc, g, *ex);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].prediction, 0);
  EXPECT_EQ((*r)[0].prediction_norm, 1);  // -1 per byte vs -0.375 per byte
}

TEST(EvaluateBatch, LoglikelihoodMetricsAggregateOverTokens) {
  Task t = parse_ok("task: s\noutput_type: loglikelihood\nprompt: \"{{c}}\"\ntarget: \"{{w}}\"\n"
                    "metrics: [loglikelihood, perplexity, acc]\n");
  auto ex = prepare_examples(t, t.prompt, records({R"({"c": "sun rises in the", "w": "east"})", R"({"c": "sky is", "w": "green"})"}), "d");
  ASSERT_TRUE(ex.ok());
  FakeGenerator g;
  g.logprobs = {{" east", -1.0}, {" green", -5.0}};
  auto r = evaluate_batch(t, g, *ex);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto m = aggregate_metrics(t, *r);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->at("loglikelihood"), -3.0);
  EXPECT_DOUBLE_EQ(m->at("acc"), 0.5);
  EXPECT_DOUBLE_EQ(m->at("perplexity"), std::exp(6.0 / 4.0));  // 2 tokens each
}

TEST(EvaluateBatch, GeneratedAnswersAreFilteredScoredAndAggregatedAtCorpusLevel) {
  Task t = parse_ok("task: g\noutput_type: generate_until\nprompt: \"{{q}}\"\ntarget: \"{{a}}\"\n"
                    "filters: [strip]\nmetrics: [exact_match, f1, bleu, chrf, rougeL]\n");
  auto ex = prepare_examples(t, t.prompt, records({R"({"q": "p1", "a": "the cat sat on the mat"})",
                                                   R"({"q": "p2", "a": "a dog ran in the park"})",
                                                   R"({"q": "p3", "a": "birds sing"})"}), "d");
  ASSERT_TRUE(ex.ok());
  FakeGenerator g;
  g.answers = {{"p1", " the cat sat on the mat\n"}, {"p2", "a dog walked in a park"}, {"p3", "fish swim"}};
  std::vector<ExampleResult> all;
  for (size_t i = 0; i < ex->size(); i += 2) {  // batches of two: results never depend on it
    auto r = evaluate_batch(t, g, std::span<const EvalExample>(ex->data() + i, std::min<size_t>(2, ex->size() - i)));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    all.insert(all.end(), r->begin(), r->end());
  }
  EXPECT_EQ(g.batch_sizes, (std::vector<size_t>{2, 1}));
  EXPECT_EQ(all[0].filtered, "the cat sat on the mat");
  EXPECT_EQ(all[0].scores.at("exact_match"), 1.0);
  EXPECT_EQ(all[2].scores.at("f1"), 0.0);
  auto m = aggregate_metrics(t, all);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->at("exact_match"), 1.0 / 3.0);
  auto corpus = corpus_bleu({"the cat sat on the mat", "a dog walked in a park", "fish swim"},
                            {{"the cat sat on the mat", "a dog ran in the park", "birds sing"}}, BleuOptions{});
  ASSERT_TRUE(corpus.ok());
  EXPECT_DOUBLE_EQ(m->at("bleu"), corpus->score);  // corpus BLEU, not a mean of sentence BLEU
  // The rows survive a JSON round trip (the checkpoint and examples.jsonl).
  auto back = example_result_from_json(to_json(all[1]));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->filtered, all[1].filtered);
  EXPECT_EQ(back->scores, all[1].scores);
}

}  // namespace
}  // namespace keel::eval
