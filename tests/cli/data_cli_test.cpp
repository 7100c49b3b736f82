// `keel data dedup` and `keel data pii` end to end: kept records keep every field and
// their input order, near-dedup finds the duplicates planted by the benchmark's own
// corpus generator, PII counts per type, and bad input as one-line errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "keel/data/records.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;
using keel::testing::TempDir;

ProcessResult keel(const std::vector<std::string>& args) {
  return keel::testing::run_keel(args);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// python3 from $PATH (run_process execs a path, not a name); empty when there is none.
std::string find_python3() {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/python3";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

Json json_of(const ProcessResult& r) {
  auto j = parse_json(r.out);
  EXPECT_TRUE(j.ok()) << r.out << r.err;
  return j.ok() ? *j : Json();
}

TEST(DataDedupCli, KeepsTheIdFieldAndInputOrder) {
  TempDir dir;
  write_text(dir.file("in.jsonl"),
             "{\"id\":\"c\",\"text\":\"Third doc here\",\"n\":1}\n"
             "{\"id\":\"a\",\"text\":\"first DOC\"}\n"
             "{\"id\":\"b\",\"text\":\"third   doc here\",\"n\":2}\n"
             "{broken\n"
             "{\"id\":\"d\",\"text\":\"First doc\"}\n"
             "{\"id\":\"e\",\"text\":\"another one\"}\n");
  auto r = keel({"data", "dedup", "--json", "--in", dir.file("in.jsonl"), "--out", dir.file("out.jsonl"), "--rejects",
                 dir.file("rejects.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  EXPECT_EQ(s["records_read"], 5);
  EXPECT_EQ(s["kept"], 3);
  EXPECT_EQ(s["removed"], 2);
  EXPECT_EQ(s["clusters"], 2);
  EXPECT_EQ(s["rejected"], 1);
  EXPECT_EQ(
      read_lines(dir.file("out.jsonl")),
      (std::vector<std::string>{"{\"id\":\"c\",\"text\":\"Third doc here\",\"n\":1}",
                                "{\"id\":\"a\",\"text\":\"first DOC\"}", "{\"id\":\"e\",\"text\":\"another one\"}"}));
  auto rejects = read_lines(dir.file("rejects.jsonl"));
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_NE(rejects[0].find("\"line\":4"), std::string::npos) << rejects[0];
  // The rejected line is named on stderr too, with file and line.
  EXPECT_NE(r.err.find("in.jsonl line 4: invalid JSON"), std::string::npos) << r.err;
}

TEST(DataDedupCli, NearDedupFindsThePlantedDuplicatesOfTheBenchmarkCorpus) {
  TempDir dir;
  std::string python = find_python3();
  if (python.empty()) GTEST_SKIP() << "python3 (scripts/install-deps installs it) generates the corpus";
  auto gen = keel::testing::run_process({python, keel::testing::source_dir() + "/bench/make_dedup_corpus.py", "--docs",
                                         "2000", "--seed", "5", "--out", dir.file("corpus.jsonl")});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto r = keel({"data", "dedup", "--near", "--preset", "datatrove", "--json", "--in", dir.file("corpus.jsonl"),
                 "--out", dir.file("out.jsonl.zst"), "--clusters", dir.file("clusters.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  EXPECT_EQ(s["minhash"]["num_perm"], 112);
  auto reader = data::RecordReader::open(dir.file("out.jsonl.zst"), {});
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  std::set<std::string> kept;
  std::string previous;
  data::Record record;
  while (true) {
    auto got = (*reader)->next(&record);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    if (!*got) break;
    std::string id = record["id"];
    EXPECT_LT(previous, id) << "input order lost";
    EXPECT_EQ(record.begin().key(), "id");  // every field, in input order
    EXPECT_TRUE(record.contains("url") && record.contains("dup_of"));
    previous = id;
    kept.insert(id);
  }
  uint64_t planted = 0, true_removed = 0, removed = 0;
  for (const auto& line : read_lines(dir.file("corpus.jsonl"))) {
    Json j = Json::parse(line);
    bool dup = j["dup_of"].get<int>() >= 0;
    planted += dup ? 1 : 0;
    if (kept.count(j["id"].get<std::string>()) == 0) {
      ++removed;
      true_removed += dup ? 1 : 0;
    }
  }
  ASSERT_GT(planted, 100u);
  EXPECT_EQ(removed, s["removed"].get<uint64_t>());
  EXPECT_GE(static_cast<double>(true_removed) / static_cast<double>(planted), 0.93);  // recall
  EXPECT_GE(static_cast<double>(true_removed) / static_cast<double>(removed), 0.99);  // precision
  EXPECT_EQ(read_lines(dir.file("clusters.jsonl")).size(), s["clusters"].get<size_t>());

  // Another seed is another draw of the permutations: about as good, not the same run.
  auto seeded = keel({"data", "dedup", "--near", "--seed", "7", "--json", "--in", dir.file("corpus.jsonl"), "--out",
                      dir.file("seeded.jsonl")});
  ASSERT_EQ(seeded.exit_code, 0) << seeded.err;
  Json s7 = json_of(seeded);
  EXPECT_EQ(s7["minhash"]["seed"], 7);
  EXPECT_EQ(s["minhash"]["seed"], 1);
  std::set<std::string> kept7;
  for (const auto& line : read_lines(dir.file("seeded.jsonl"))) kept7.insert(Json::parse(line)["id"].get<std::string>());
  uint64_t true_removed7 = 0;
  for (const auto& line : read_lines(dir.file("corpus.jsonl"))) {
    Json j = Json::parse(line);
    if (kept7.count(j["id"].get<std::string>()) == 0 && j["dup_of"].get<int>() >= 0) ++true_removed7;
  }
  EXPECT_GE(static_cast<double>(true_removed7) / static_cast<double>(planted), 0.93);
}

TEST(DataPiiCli, RedactsAndCountsPerType) {
  TempDir dir;
  write_text(dir.file("in.csv"),
             "id,text\n1,\"mail bob@example.com, card 4111 1111 1111 1111\"\n2,\"not a card 4111 1111 1111 1112\"\n");
  auto r =
      keel({"data", "pii", "--json", "--in", dir.file("in.csv"), "--out", dir.file("out.jsonl"), "--mode", "redact"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  EXPECT_EQ(s["counts"]["EMAIL"], 1);
  EXPECT_EQ(s["counts"]["CREDIT_CARD"], 1);
  EXPECT_EQ(s["findings"], 2);
  EXPECT_EQ(s["records_changed"], 1);
  EXPECT_EQ(read_lines(dir.file("out.jsonl")),
            (std::vector<std::string>{"{\"id\":\"1\",\"text\":\"mail [EMAIL], card [CREDIT_CARD]\"}",
                                      "{\"id\":\"2\",\"text\":\"not a card 4111 1111 1111 1112\"}"}));
}

// A document that passes every Gopher and C4 rule (six sentences on six lines).
const char* kGoodDoc =
    "The river runs quietly through the old valley and past the mill.\\n"
    "Farmers have planted wheat with care along both banks of that water.\\n"
    "Every spring brings floods, yet the villagers rebuild their homes quickly.\\n"
    "Children learn to swim early because summers there are long and warm.\\n"
    "Visitors often stay at a small inn near the stone bridge.\\n"
    "Local bakers sell bread, honey cakes and apple pies every morning.";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DataNormalizeCli, StripsHtmlFoldsUnicodeAndCountsReasons) {
  TempDir dir;
  write_text(dir.file("in.jsonl"),
             "{\"id\":1,\"text\":\"<p>Caf&eacute;</p><script>x()</script><p>\\uFB01ne</p>\"}\n"
             "{\"id\":2,\"text\":\"two\\u00a0 spaces\\r\\nand a break\"}\n"
             "{\"id\":3,\"text\":\"clean\"}\n");
  auto r = keel({"data", "normalize", "--json", "--html", "--unicode", "nfkc", "--in", dir.file("in.jsonl"), "--out",
                 dir.file("out.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  EXPECT_EQ(s["records_read"], 3);
  EXPECT_EQ(s["written"], 3);
  EXPECT_EQ(s["steps"][0]["changed"], 2);
  EXPECT_EQ(s["steps"][0]["notes"]["html"], 1);
  EXPECT_EQ(s["steps"][0]["notes"]["unicode"], 2);  // NFKC folds the no-break space too
  EXPECT_EQ(s["steps"][0]["notes"]["whitespace"], 1);
  EXPECT_EQ(
      read_lines(dir.file("out.jsonl")),
      (std::vector<std::string>{"{\"id\":1,\"text\":\"Café\\n\\nfine\"}",
                                "{\"id\":2,\"text\":\"two spaces\\nand a break\"}", "{\"id\":3,\"text\":\"clean\"}"}));
}

TEST(DataFilterCli, PresetsThresholdsAndRejectReasons) {
  TempDir dir;
  std::string good = kGoodDoc;
  write_text(dir.file("in.jsonl"),
             "{\"id\":\"good\",\"text\":\"" + good + "\"}\n" + "{\"id\":\"short\",\"text\":\"Too short to count.\"}\n" +
                 "{\"id\":\"menu\",\"text\":\"" + good + "\\nHome | About\\nPlease enable JavaScript now.\"}\n" +
                 "{\"id\":\"curly\",\"text\":\"" + good + "\\nThe value was {x} in the end.\"}\n");
  auto r = keel({"data", "filter", "--json", "--preset", "gopher", "--preset", "c4", "--in", dir.file("in.jsonl"),
                 "--out", dir.file("out.jsonl"), "--rejects", dir.file("rejects.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  ASSERT_EQ(s["steps"].size(), 3u);
  EXPECT_EQ(s["steps"][0]["step"], "gopher_quality");
  EXPECT_EQ(s["steps"][0]["dropped_by_reason"]["gopher_short_doc"], 1);
  EXPECT_EQ(s["steps"][2]["step"], "c4");
  EXPECT_EQ(s["steps"][2]["dropped_by_reason"]["curly_bracket"], 1);
  EXPECT_EQ(s["steps"][2]["notes"]["lines_no_terminal_punct"], 1);
  EXPECT_EQ(s["steps"][2]["notes"]["lines_javascript"], 1);
  EXPECT_EQ(s["written"], 2);
  auto out = read_lines(dir.file("out.jsonl"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], "{\"id\":\"menu\",\"text\":\"" + good + "\"}");  // c4 kept its good lines
  auto rejects = read_lines(dir.file("rejects.jsonl"));
  ASSERT_EQ(rejects.size(), 2u);
  EXPECT_NE(rejects[0].find("gopher_quality: gopher_short_doc"), std::string::npos) << rejects[0];
  EXPECT_NE(rejects[1].find("c4: curly_bracket"), std::string::npos) << rejects[1];
  // A lower threshold through --set keeps the short one.
  auto lenient =
      keel({"data", "filter", "--json", "--gopher-quality", "--set", "gopher_quality.min_doc_words=3", "--set",
            "gopher_quality.min_stop_words=0", "--in", dir.file("in.jsonl"), "--out", dir.file("out2.jsonl")});
  ASSERT_EQ(lenient.exit_code, 0) << lenient.err;
  EXPECT_EQ(json_of(lenient)["written"], 4);
  auto unknown = keel({"data", "filter", "--c4", "--set", "c4.min_sentence=3", "--in", dir.file("in.jsonl"), "--out",
                       dir.file("o.jsonl")});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("unknown parameter \"min_sentence\""), std::string::npos) << unknown.err;
  auto wrong_step = keel({"data", "filter", "--c4", "--set", "gopher_quality.min_doc_words=3", "--in",
                          dir.file("in.jsonl"), "--out", dir.file("o.jsonl")});
  EXPECT_EQ(wrong_step.exit_code, 1);
  EXPECT_NE(wrong_step.err.find("no gopher_quality step"), std::string::npos) << wrong_step.err;
  auto none = keel({"data", "filter", "--in", dir.file("in.jsonl"), "--out", dir.file("o.jsonl")});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no filter chosen"), std::string::npos) << none.err;
}

// Token bounds with the default model's tokenizer, from the command line and from a
// recipe; the counts are the tokenizer's (checked against `keel tokenize`).
TEST(DataFilterCli, LengthInTokensOfAModelsTokenizer) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "default model not fetched (make test fetches it)";
  TempDir dir;
  write_text(dir.file("in.jsonl"),
             "{\"id\":1,\"text\":\"Hi.\"}\n"
             "{\"id\":2,\"text\":\"The river runs slowly through the old valley.\"}\n"
             "{\"id\":3,\"text\":\"" + std::string(kGoodDoc) + "\"}\n");
  auto tokens_of = [&](const std::string& text) {
    auto t = keel({"tokenize", "-m", *model, "--no-special", "--json", text});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    return json_of(t)["tokens"].size();
  };
  const size_t middle = tokens_of("The river runs slowly through the old valley.");
  ASSERT_GT(middle, 3u);
  auto r = keel({"data", "filter", "--json", "--tokenizer", *model, "--min-tokens", std::to_string(middle),
                 "--max-tokens", std::to_string(middle), "--in", dir.file("in.jsonl"), "--out", dir.file("out.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  EXPECT_EQ(s["steps"][0]["dropped_by_reason"]["too_few_tokens"], 1);
  EXPECT_EQ(s["steps"][0]["dropped_by_reason"]["too_many_tokens"], 1);
  auto out = read_lines(dir.file("out.jsonl"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].find("\"id\":2"), std::string::npos) << out[0];
  // The same step in a recipe.
  write_text(dir.file("recipe.yaml"), "name: short\nsteps:\n  - length:\n      tokenizer: " + *model +
                                          "\n      max_tokens: " + std::to_string(middle) + "\n");
  auto recipe = keel({"data", "run", dir.file("recipe.yaml"), "--json", "--in", dir.file("in.jsonl"), "--out",
                      dir.file("short.jsonl")});
  ASSERT_EQ(recipe.exit_code, 0) << recipe.err;
  EXPECT_EQ(read_lines(dir.file("short.jsonl")).size(), 2u);
  auto no_tokenizer = keel({"data", "filter", "--max-tokens", "5", "--in", dir.file("in.jsonl"), "--out",
                            dir.file("o.jsonl")});
  EXPECT_EQ(no_tokenizer.exit_code, 1);
  EXPECT_NE(no_tokenizer.err.find("need a tokenizer"), std::string::npos) << no_tokenizer.err;
  auto missing = keel({"data", "filter", "--tokenizer", dir.file("nope.gguf"), "--max-tokens", "5", "--in",
                       dir.file("in.jsonl"), "--out", dir.file("o.jsonl")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("tokenizer"), std::string::npos) << missing.err;
}

TEST(DataFilterCli, LanguageAndLength) {
  TempDir dir;
  write_text(dir.file("in.jsonl"),
             std::string("{\"text\":\"") + kGoodDoc + "\"}\n" +
                 "{\"text\":\"Le fleuve traverse lentement la vieille vallée et passe devant le moulin du village.\"}\n"
                 "{\"text\":\"tiny\"}\n");
  auto r = keel({"data", "filter", "--json", "--lang", "en", "--min-chars", "10", "--annotate-language", "--in",
                 dir.file("in.jsonl"), "--out", dir.file("out.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json s = json_of(r);
  EXPECT_EQ(s["steps"][0]["dropped_by_reason"]["too_few_chars"], 1);
  EXPECT_EQ(s["steps"][1]["dropped_by_reason"]["language_not_allowed"], 1);
  auto out = read_lines(dir.file("out.jsonl"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].find("\"language\":\"en\""), std::string::npos);
}

TEST(DataSplitCli, OneFilePerSplitStableAcrossRuns) {
  TempDir dir;
  std::string input;
  for (int i = 0; i < 400; ++i) input += "{\"id\":" + std::to_string(i) + ",\"text\":\"t\"}\n";
  write_text(dir.file("in.jsonl"), input);
  for (const char* out : {"a", "b"}) {
    auto r = keel({"data", "split", "--json", "--ratios", "0.8,0.1,0.1", "--key", "id", "--in", dir.file("in.jsonl"),
                   "--out-dir", dir.file(out)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Json s = json_of(r);
    ASSERT_EQ(s["outputs"].size(), 3u);
    EXPECT_EQ(s["outputs"][0]["path"], dir.file(out) + "/train.jsonl");
    uint64_t total = 0;
    for (const auto& o : s["outputs"]) total += o["records"].get<uint64_t>();
    EXPECT_EQ(total, 400u);
    EXPECT_GT(s["outputs"][0]["records"].get<int>(), 280);
  }
  for (const char* name : {"train", "validation", "test"}) {
    std::string a = read_all(dir.file("a") + "/" + name + ".jsonl");
    EXPECT_EQ(a, read_all(dir.file("b") + "/" + name + ".jsonl")) << name;
    EXPECT_FALSE(a.empty()) << name;
  }
  auto bad = keel({"data", "split", "--ratios", "0.8,0.3", "--names", "a,b", "--in", dir.file("in.jsonl"), "--out-dir",
                   dir.file("c")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("sum to 1"), std::string::npos) << bad.err;
}

TEST(DataFormatCli, ChatAndPairsWithMissingFieldsCounted) {
  TempDir dir;
  write_text(dir.file("in.jsonl"),
             "{\"id\":1,\"q\":\"Why, really?\",\"a\":\"Because.\"}\n"
             "{\"id\":2,\"q\":\"No answer here\"}\n");
  auto chat = keel({"data", "format", "--json", "--template", "system=Be brief, please.", "--template", "user={q}",
                    "--template", "assistant={a}", "--keep", "id", "--in", dir.file("in.jsonl"), "--out",
                    dir.file("chat.jsonl")});
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  Json s = json_of(chat);
  EXPECT_EQ(s["steps"][0]["dropped_by_reason"]["missing_field_a"], 1);
  EXPECT_EQ(read_lines(dir.file("chat.jsonl")),
            (std::vector<std::string>{
                "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief, please.\"},{\"role\":\"user\",\"content\":"
                "\"Why, really?\"},{\"role\":\"assistant\",\"content\":\"Because.\"}],\"id\":1}"}));
  auto pairs = keel({"data", "format", "--template", "prompt=Q: {q}", "--template", "response={a}", "--in",
                     dir.file("in.jsonl"), "--out", dir.file("pairs.jsonl")});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  EXPECT_EQ(read_lines(dir.file("pairs.jsonl")),
            (std::vector<std::string>{"{\"prompt\":\"Q: Why, really?\",\"response\":\"Because.\"}"}));
  EXPECT_NE(pairs.out.find("missing_field_a 1"), std::string::npos) << pairs.out;
  auto bad = keel({"data", "format", "--template", "prompt={q", "--template", "response={a}", "--in",
                   dir.file("in.jsonl"), "--out", dir.file("x.jsonl")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("no closing '}'"), std::string::npos) << bad.err;
}

TEST(DataRunCli, ExampleRecipeTwiceGivesTheSameBytes) {
  TempDir dir;
  std::string input;
  // Clean English documents of made-up words (so no two are alike); every tenth
  // wrapped in HTML, every 25th repeated.
  uint64_t x = 12345;
  auto word = [&x] {
    std::string w;
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    size_t len = 4 + (x >> 60) % 5;
    for (size_t c = 0; c < len; ++c) w.push_back(static_cast<char>('a' + (x >> (c * 6 + 8)) % 26));
    return w;
  };
  for (int i = 0; i < 120; ++i) {
    std::string text;
    for (int k = 0; k < 6; ++k) {
      text += std::string(k > 0 ? "\\n" : "") + "The " + word() + " and the " + word() + " have " + word() + " with " +
              word() + " of " + word() + " to " + word() + " near " + word() + ".";
    }
    if (i % 10 == 0) text = "<p>" + text + "</p><script>track()</script>";
    input += "{\"id\":\"d" + std::to_string(i) + "\",\"text\":\"" + text + "\"}\n";
    if (i % 25 == 0) input += "{\"id\":\"copy" + std::to_string(i) + "\",\"text\":\"" + text + "\"}\n";
  }
  write_text(dir.file("in.jsonl"), input);
  std::string recipe = keel::testing::source_dir() + "/examples/data/recipe.yaml";
  std::vector<std::string> runs;
  for (const char* out : {"a", "b"}) {
    auto r = keel({"data", "run", recipe, "--json", "--in", dir.file("in.jsonl"), "--out",
                   dir.file(out) + "/{split}.jsonl", "--rejects", dir.file(std::string(out) + ".rejects.jsonl")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Json s = json_of(r);
    EXPECT_EQ(s["records_read"], 125);
    ASSERT_EQ(s["steps"].size(), 9u);
    EXPECT_EQ(s["steps"][0]["notes"]["html"], 15);  // 12, and 3 of the copies
    EXPECT_EQ(s["steps"][6]["step"], "dedup");
    EXPECT_EQ(s["steps"][6]["dropped_by_reason"]["near_duplicate"], 5);
    EXPECT_EQ(s["passes"], 4);
    std::string all;
    for (const char* name : {"train", "validation", "test"}) all += read_all(dir.file(out) + "/" + name + ".jsonl");
    all += read_all(dir.file(std::string(out) + ".rejects.jsonl"));
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_GT(runs[0].size(), 10000u);
}

TEST(DataRunCli, RecipeMistakesNameTheKey) {
  TempDir dir;
  write_text(dir.file("in.jsonl"), "{\"text\":\"x\"}\n");
  write_text(dir.file("r.yaml"), "steps:\n  - normalize: {html: true}\n  - c4: {min_sentences: many}\n");
  auto r = keel({"data", "run", dir.file("r.yaml"), "--in", dir.file("in.jsonl"), "--out", dir.file("o.jsonl")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("steps[1].c4.min_sentences: expected an integer, got \"many\" (line 3)"), std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST(DataCli, ErrorsAreOneLine) {
  TempDir dir;
  auto missing = keel({"data", "dedup", "--in", dir.file("nope.jsonl"), "--out", dir.file("o.jsonl")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err.rfind("keel: error: open ", 0), 0u) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1);
  write_text(dir.file("in.jsonl"), "{\"text\":\"x\"}\n");
  auto perms = keel({"data", "dedup", "--near", "--num-perm", "100", "--bands", "14", "--in", dir.file("in.jsonl"),
                     "--out", dir.file("o.jsonl")});
  EXPECT_EQ(perms.exit_code, 1);
  EXPECT_NE(perms.err.find("multiple of --bands"), std::string::npos) << perms.err;
  std::string cut = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03";  // a gzip header and nothing more
  write_text(dir.file("cut.jsonl.gz"), cut);
  auto truncated = keel({"data", "pii", "--in", dir.file("cut.jsonl.gz"), "--out", dir.file("o.jsonl")});
  EXPECT_EQ(truncated.exit_code, 1);
  EXPECT_NE(truncated.err.find("truncated"), std::string::npos) << truncated.err;
  EXPECT_NE(truncated.err.find("after 0 records read"), std::string::npos) << truncated.err;
}

}  // namespace
}  // namespace keel::cli
