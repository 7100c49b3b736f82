// Recipes and the pipeline runner: YAML parsed into configured steps, every kind of
// mistake reported with its key and line, a run's per-step counts, rejects with the
// step and reason, per-split outputs, a near-dedup pass in the middle, and the same
// bytes from the same recipe on the same input.
#include "keel/data/recipe.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "keel/data/pipeline.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

using keel::testing::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  std::string line;
  while (std::getline(s, line)) out.push_back(line);
  return out;
}

std::string error_of(const std::string& yaml) {
  auto r = parse_recipe(yaml, "r.yaml");
  EXPECT_FALSE(r.ok()) << yaml;
  return r.ok() ? "" : r.status().message();
}

TEST(Recipe, ParsesStepsAndTheirParameters) {
  auto r = parse_recipe(
      "name: demo\n"
      "field: body\n"
      "steps:\n"
      "  - normalize: {unicode: nfkc, html: true}\n"
      "  - gopher_quality:\n"
      "      min_doc_words: 30\n"
      "      stop_words: [the, and]\n"
      "  - gopher_repetition:\n"
      "  - dedup: {near: true, preset: nemo}\n"
      "  - split: {ratios: [0.9, 0.1], names: [train, test], key: id}\n",
      "r.yaml");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->name, "demo");
  ASSERT_EQ(r->steps.size(), 5u);
  EXPECT_EQ(r->steps[0].params["unicode"], "nfkc");
  EXPECT_EQ(r->steps[0].params["field"], "body");  // the recipe's field
  EXPECT_EQ(r->steps[1].params["min_doc_words"], 30);
  EXPECT_EQ(r->steps[1].params["max_doc_words"], 100000);  // default kept
  EXPECT_EQ(r->steps[1].params["stop_words"].size(), 2u);
  EXPECT_EQ(r->steps[2].params["dup_line_frac"], 0.3);
  ASSERT_TRUE(r->steps[3].near_dedup.has_value());
  EXPECT_EQ(r->steps[3].near_dedup->minhash.ngram, 24);  // nemo: character 24-grams
  EXPECT_EQ(r->steps[3].near_dedup->field, "body");
  EXPECT_EQ(r->steps[4].params["names"][1], "test");
}

TEST(Recipe, MistakesNameTheKeyAndLine) {
  EXPECT_NE(error_of("steps:\n  - gopher_quality: {min_doc_word: 3}\n")
                .find("r.yaml: steps[0].gopher_quality.min_doc_word: unknown parameter (line 2)"),
            std::string::npos);
  EXPECT_NE(error_of("steps:\n  - normalize:\n      html: true\n  - length:\n      min_chars: lots\n")
                .find("steps[1].length.min_chars: expected an integer, got \"lots\" (line 5)"),
            std::string::npos);
  EXPECT_NE(error_of("steps:\n  - length: {min_chars: 1.5}\n").find("expected an integer"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - normalize: {html: yes}\n").find("html: expected true or false"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - language: {languages: en}\n").find("expected a list of strings"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - split: {ratios: [0.5, x]}\n").find("expected a list of numbers"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - dedupe: {}\n").find("unknown step \"dedupe\""), std::string::npos);
  EXPECT_NE(error_of("stepz:\n  - normalize: {}\n").find("stepz: unknown key (line 1)"), std::string::npos);
  EXPECT_NE(error_of("name: x\n").find("steps: missing"), std::string::npos);
  EXPECT_NE(error_of("steps: []\n").find("non-empty list"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - normalize: {}\n    length: {}\n").find("a map with one key"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - normalize: [1]\n").find("parameters are a map"), std::string::npos);
  EXPECT_NE(error_of("steps:\n  - format: {prompt: \"{text\", response: x}\n").find("steps[0].format"),
            std::string::npos);
  EXPECT_NE(error_of("steps:\n  - normalize: {unicode: nfd}\n").find("nfc, nfkc or none"), std::string::npos);
  EXPECT_NE(error_of("steps: [unclosed\n").find("not valid YAML"), std::string::npos);
  EXPECT_FALSE(load_recipe("/nonexistent/recipe.yaml").ok());
}

TEST(Pipeline, CountsEveryStepAndRejectsWithReasons) {
  TempDir dir;
  write_file(dir.file("in.jsonl"),
             "{\"id\":1,\"text\":\"<p>Hello   world, this is fine.</p>\"}\n"
             "{\"id\":2,\"text\":\"short\"}\n"
             "{broken\n"
             "{\"id\":3,\"text\":\"Hello world, this is fine.\"}\n"
             "{\"id\":4,\"text\":\"Another text that is long enough.\"}\n"
             "{\"id\":5,\"title\":\"no text\"}\n");
  auto recipe = parse_recipe(
      "steps:\n"
      "  - normalize: {html: true}\n"
      "  - length: {min_chars: 10}\n"
      "  - dedup: {}\n",
      "r.yaml");
  ASSERT_TRUE(recipe.ok()) << recipe.status().to_string();
  PipelineOptions o;
  o.input = dir.file("in.jsonl");
  o.output = dir.file("out.jsonl");
  o.rejects = dir.file("rejects.jsonl");
  auto s = run_pipeline(recipe->steps, o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->records_read, 5u);
  EXPECT_EQ(s->rejected, 1u);
  EXPECT_EQ(s->dropped, 3u);
  EXPECT_EQ(s->written, 2u);
  EXPECT_EQ(lines_of(read_file(o.output)),
            (std::vector<std::string>{"{\"id\":1,\"text\":\"Hello world, this is fine.\"}",
                                      "{\"id\":4,\"text\":\"Another text that is long enough.\"}"}));
  ASSERT_EQ(s->steps.size(), 3u);
  EXPECT_EQ(s->steps[0].counts.notes.at("html"), 1u);
  EXPECT_EQ(s->steps[0].counts.dropped_by_reason.at("no_text_field"), 1u);
  EXPECT_EQ(s->steps[1].counts.dropped_by_reason.at("too_few_chars"), 1u);
  EXPECT_EQ(s->steps[2].counts.dropped_by_reason.at("exact_duplicate"), 1u);
  EXPECT_EQ(s->steps[2].counts.seen, 3u);
  auto rejects = lines_of(read_file(o.rejects));
  ASSERT_EQ(rejects.size(), 4u);
  EXPECT_NE(rejects[0].find("\"line\":2,\"reason\":\"length: too_few_chars\""), std::string::npos) << rejects[0];
  EXPECT_NE(rejects[1].find("\"line\":3,\"reason\":\"invalid JSON"), std::string::npos) << rejects[1];
  EXPECT_NE(rejects[2].find("dedup: exact_duplicate"), std::string::npos) << rejects[2];
  EXPECT_NE(rejects[3].find("normalize: no_text_field"), std::string::npos) << rejects[3];
}

TEST(Pipeline, SameRecipeSameInputSameBytes) {
  TempDir dir;
  // Twelve letter-only words per text (near dedup reads digits as 0), from a
  // generator; texts 250..299 repeat texts 0..49.
  auto words_of = [](int seed) {
    std::string text;
    uint64_t x = static_cast<uint64_t>(seed) * 0x9e3779b97f4a7c15ull + 1;
    for (int w = 0; w < 12; ++w) {
      x ^= x >> 33;
      x *= 0xff51afd7ed558ccdull;
      x ^= x >> 29;
      if (w > 0) text += w == 6 ? "\\u00a0" : "   ";
      for (int c = 0; c < 6; ++c) text.push_back(static_cast<char>('a' + (x >> (c * 5)) % 26));
    }
    return text + " &amp; more.";
  };
  std::string input;
  for (int i = 0; i < 300; ++i) {
    input += "{\"id\":\"r" + std::to_string(i) + "\",\"text\":\"" + words_of(i % 250) + "\"}\n";
  }
  write_file(dir.file("in.jsonl"), input);
  const char* yaml =
      "steps:\n"
      "  - normalize: {html: true, unicode: nfkc}\n"
      "  - dedup: {near: true}\n"
      "  - split: {key: id, tag_field: split}\n";
  std::vector<std::string> outputs;
  for (int run = 0; run < 2; ++run) {
    auto recipe = parse_recipe(yaml, "r.yaml");
    ASSERT_TRUE(recipe.ok()) << recipe.status().to_string();
    PipelineOptions o;
    o.input = dir.file("in.jsonl");
    o.output = dir.file("out" + std::to_string(run) + ".{split}.jsonl.zst");
    auto s = run_pipeline(recipe->steps, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->passes, 4);  // pass 1, near dedup's two, pass 4
    ASSERT_EQ(s->outputs.size(), 3u);
    uint64_t total = 0;
    std::string all;
    for (const auto& [path, n] : s->outputs) {
      total += n;
      all += read_file(path);
    }
    EXPECT_EQ(total, s->written);
    EXPECT_EQ(s->steps[1].counts.dropped_by_reason.at("near_duplicate"), 50u);  // i % 250 repeats 50 texts
    EXPECT_EQ(s->steps[1].clusters, 50u);
    EXPECT_EQ(s->written, 250u);
    EXPECT_EQ(s->steps[2].counts.notes.at("train") + s->steps[2].counts.notes.at("validation") +
                  s->steps[2].counts.notes.at("test"),
              250u);
    outputs.push_back(all);
  }
  EXPECT_EQ(outputs[0], outputs[1]);
  EXPECT_FALSE(outputs[0].empty());
  // No intermediate file is left behind.
  EXPECT_EQ(read_file(dir.file("out0.tmp.jsonl.zst.keel-pass1-" + std::to_string(::getpid()) + ".jsonl")), "");
}

TEST(Pipeline, SplitOutputNeedsASplitStep) {
  TempDir dir;
  write_file(dir.file("in.jsonl"), "{\"text\":\"x\"}\n");
  auto recipe = parse_recipe("steps:\n  - normalize: {}\n", "r.yaml");
  ASSERT_TRUE(recipe.ok());
  PipelineOptions o;
  o.input = dir.file("in.jsonl");
  o.output = dir.file("{split}.jsonl");
  auto s = run_pipeline(recipe->steps, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("needs a split step"), std::string::npos);
}

}  // namespace
}  // namespace keel::data
