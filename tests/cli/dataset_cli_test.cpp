// Dataset versions end to end on both store back ends: keel data import, list, show,
// export, diff and profile, keel data run recording its output with the recipe and
// its NAME@VERSION input as parent (the same run twice is the same version), and bad
// input as one-line errors.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/backend_cli_test.h"

namespace keel::cli {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Documents of made-up words in an English frame (distinct, long enough for the
// quality rules); every seventh is short.
std::string corpus(int n) {
  std::string out;
  uint64_t x = 99;
  auto word = [&x] {
    std::string w;
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    size_t len = 4 + (x >> 60) % 5;
    for (size_t c = 0; c < len; ++c) w.push_back(static_cast<char>('a' + (x >> (c * 6 + 8)) % 26));
    return w;
  };
  for (int i = 0; i < n; ++i) {
    std::string text;
    int sentences = i % 7 == 0 ? 1 : 6;
    for (int s = 0; s < sentences; ++s) {
      if (s > 0) text += ' ';
      for (const char* glue : {"The ", " and the ", " have ", " with ", " of ", " to "}) {
        text.append(glue);
        text.append(word());
      }
      text.append(".");
    }
    out += "{\"id\":\"d" + std::to_string(i) + "\",\"text\":\"" + text + "\",\"label\":\"" +
           (i % 3 == 0 ? "news" : "blog") + "\"}\n";
  }
  return out;
}

class DatasetCliTest : public BackendCliTest {};
INSTANTIATE_BACKEND_CLI_TEST(DatasetCliTest);

TEST_P(DatasetCliTest, ImportListShowExportAndReimport) {
  std::string raw = write("raw.jsonl", corpus(40));
  auto imported = keel({"data", "import", raw, "--name", "raw"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.out.find("recorded raw@1 (40 records"), std::string::npos) << imported.out;

  Json list = keel_json({"data", "list"});
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "raw");
  EXPECT_EQ(list[0]["latest_records"], 40);

  Json show = keel_json({"data", "show", "raw@1"});
  EXPECT_EQ(show["records"], 40);
  EXPECT_EQ(show["source"], "import raw.jsonl");
  EXPECT_EQ(show["schema"].size(), 3u);
  EXPECT_EQ(show["profile"]["records"], 40);
  EXPECT_EQ(show["profile"]["fields"][2]["categorical"]["distinct"], 2);
  std::string sha = show["content_sha256"];
  EXPECT_EQ(sha.size(), 64u);

  // Exported as CSV and imported again: the same content, so the same version.
  auto exported = keel({"data", "export", "raw@1", "--out", dir_.file("raw.csv")});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_EQ(read_file(dir_.file("raw.csv")).rfind("id,text,label\n", 0), 0u);
  auto again = keel({"data", "import", dir_.file("raw.csv"), "--name", "raw"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("unchanged: raw@1 already holds this content"), std::string::npos) << again.out;
  ASSERT_EQ(keel({"data", "export", "raw", "--out", dir_.file("back.jsonl")}).exit_code, 0);
  EXPECT_EQ(read_file(dir_.file("back.jsonl")), read_file(raw));  // raw was canonical already

  // A file with a malformed line: warned about, skipped, counted.
  std::string bad = write("bad.jsonl", "{\"text\":\"fine\"}\n{\"text\":\"bad \xff\"}\n");
  Json partial = keel_json({"data", "import", bad, "--name", "partial"});
  EXPECT_EQ(partial["records"], 1);
  EXPECT_EQ(partial["rejected"], 1);
  EXPECT_EQ(partial["created"], true);
  auto warned = keel({"data", "import", bad, "--name", "partial"});
  EXPECT_NE(warned.err.find("line 2: invalid UTF-8"), std::string::npos) << warned.err;
  Json versions = keel_json({"data", "list", "raw"});
  ASSERT_EQ(versions.size(), 1u);
}

TEST_P(DatasetCliTest, RecipeOutputIsAVersionWithLineageAndRerunsAreTheSameVersion) {
  ASSERT_EQ(keel({"data", "import", write("raw.jsonl", corpus(60)), "--name", "raw"}).exit_code, 0);
  std::string recipe_text =
      "name: tidy\ndataset: tidy\nsteps:\n  - length: {min_words: 20}\n  - dedup: {}\n  - pii: {mode: redact}\n";
  std::string recipe = write("tidy.yaml", recipe_text);
  std::vector<std::string> shas;
  for (int run = 0; run < 2; ++run) {
    Json r = keel_json({"data", "run", recipe, "--in", "raw@1"});
    ASSERT_EQ(r["datasets"].size(), 1u) << r.dump();
    EXPECT_EQ(r["datasets"][0]["reference"], "tidy@1");
    EXPECT_EQ(r["datasets"][0]["created"], run == 0);
    EXPECT_EQ(r["datasets"][0]["records"], r["written"]);
    shas.push_back(r["datasets"][0]["content_sha256"]);
  }
  EXPECT_EQ(shas[0], shas[1]);
  Json tidy = keel_json({"data", "show", "tidy"});
  EXPECT_EQ(tidy["parents"], Json::array({"raw@1"}));
  EXPECT_EQ(tidy["recipe"], recipe_text);
  EXPECT_EQ(tidy["source"], "recipe tidy.yaml on raw@1");
  EXPECT_EQ(tidy["details"]["steps"][0]["step"], "length");
  EXPECT_EQ(tidy["records"].get<int>(), 60 - 9);  // the nine one-sentence documents are too short
  Json raw = keel_json({"data", "show", "raw@1"});
  EXPECT_EQ(raw["children"], Json::array({"tidy@1"}));

  // --name overrides the recipe's key; --out keeps a file too; splits become NAME-SPLIT.
  std::filesystem::create_directories(dir_.file("halves"));
  std::string split_recipe = write("split.yaml", "steps:\n  - split: {ratios: [0.5, 0.5], names: [a, b], key: id}\n");
  Json split = keel_json({"data", "run", split_recipe, "--in", "tidy@1", "--name", "halves", "--out",
                          dir_.file("halves") + "/{split}.jsonl"});
  ASSERT_EQ(split["datasets"].size(), 2u) << split.dump();
  EXPECT_EQ(split["datasets"][0]["reference"], "halves-a@1");
  EXPECT_EQ(split["datasets"][1]["reference"], "halves-b@1");
  EXPECT_EQ(split["datasets"][0]["records"].get<int>() + split["datasets"][1]["records"].get<int>(), 51);
  EXPECT_TRUE(std::ifstream(dir_.file("halves") + "/a.jsonl").good());
  EXPECT_EQ(keel_json({"data", "show", "halves-b"})["parents"], Json::array({"tidy@1"}));

  // A plain file input has no parent.
  Json from_file = keel_json({"data", "run", recipe, "--in", dir_.file("raw.jsonl"), "--name", "direct"});
  EXPECT_EQ(from_file["datasets"][0]["content_sha256"], shas[0]);  // same records as tidy@1
  EXPECT_EQ(keel_json({"data", "show", "direct"})["parents"], Json::array());
}

TEST_P(DatasetCliTest, DiffAndProfile) {
  ASSERT_EQ(keel({"data", "import", write("raw.jsonl", corpus(30)), "--name", "raw"}).exit_code, 0);
  std::string recipe = write("r.yaml", "steps:\n  - length: {min_words: 20}\n");
  ASSERT_EQ(keel({"data", "run", recipe, "--in", "raw", "--name", "long"}).exit_code, 0);
  Json d = keel_json({"data", "diff", "raw@1", "long@1"});
  EXPECT_EQ(d["key"], "id");
  EXPECT_EQ(d["removed"], 5);  // documents 0, 7, 14, 21, 28
  EXPECT_EQ(d["added"], 0);
  EXPECT_EQ(d["unchanged"], 25);
  EXPECT_EQ(d["examples"]["removed"][0]["line"], 1);
  bool records_delta = false;
  for (const auto& p : d["profile"]) records_delta = records_delta || (p["metric"] == "records" && p["delta"] == -5);
  EXPECT_TRUE(records_delta) << d["profile"].dump();
  auto text = keel({"data", "diff", "raw@1", "long@1"});
  EXPECT_NE(text.out.find("added 0, removed 5, changed 0, unchanged 25"), std::string::npos) << text.out;
  // Whole records: the removed documents are like none that stayed, so none pair up.
  Json whole = keel_json({"data", "diff", "raw@1", "long@1", "--key", ""});
  EXPECT_EQ(whole["key"], nullptr);
  EXPECT_EQ(whole["near_threshold"], 0.7);
  EXPECT_EQ(whole["removed"], 5);
  EXPECT_EQ(whole["changed"], 0);
  auto whole_text = keel({"data", "diff", "raw@1", "long@1", "--key", "", "--near-threshold", "0"});
  EXPECT_NE(whole_text.out.find("whole records compared\n"), std::string::npos) << whole_text.out;
  EXPECT_NE(keel({"data", "diff", "raw@1", "long@1", "--near-threshold", "1.5"}).exit_code, 0);

  std::string html = dir_.file("report.html");
  auto profile = keel({"data", "profile", "long@1", "--html", html});
  ASSERT_EQ(profile.exit_code, 0) << profile.err;
  EXPECT_NE(profile.out.find("25 records; text field \"text\""), std::string::npos) << profile.out;
  std::string page = read_file(html);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("Profile of long@1"), std::string::npos);
  // The stored profile is what profiling the exported file gives.
  ASSERT_EQ(keel({"data", "export", "long@1", "--out", dir_.file("long.jsonl")}).exit_code, 0);
  Json stored = keel_json({"data", "profile", "long@1"});
  Json fresh = keel_json({"data", "profile", dir_.file("long.jsonl")});
  EXPECT_EQ(stored, fresh);

  if (::access("/usr/bin/chromium", X_OK) == 0) {
    // The report renders in a real browser without a server: its DOM has the charts.
    auto dom = keel::testing::run_process({"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                           "--dump-dom", "file://" + html},
                                          {}, 60);
    EXPECT_EQ(dom.exit_code, 0) << dom.err;
    EXPECT_NE(dom.out.find("<rect"), std::string::npos);
    EXPECT_NE(dom.out.find("Most repetitive"), std::string::npos);
  }
}

TEST_P(DatasetCliTest, TokenLengthsWithTheDefaultModelsTokenizer) {
  auto model = keel::testing::default_model_path();
  if (!model) GTEST_SKIP() << "the default model is not fetched (scripts/fetch-models)";
  std::string in = write("in.jsonl", "{\"text\":\"Hello world\"}\n{\"text\":\"The quick brown fox jumps.\"}\n");
  Json p = keel_json({"data", "profile", in, "--model", *model});
  const Json& tokens = p["fields"][0]["lengths"]["tokens"];
  // SmolLM2's tokenizer: "Hello world" is 2 tokens, "The quick brown fox jumps." 6.
  EXPECT_EQ(tokens["min"], 2) << tokens.dump();
  EXPECT_EQ(tokens["max"], 6) << tokens.dump();
  EXPECT_EQ(p["tokenizer"], *model);
}

TEST_P(DatasetCliTest, BadInputIsAOneLineError) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& needle) {
    auto r = keel(args);
    EXPECT_EQ(r.exit_code, 1) << args[1];
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  expect_error({"data", "show", "nope@1"}, "no dataset named nope");
  expect_error({"data", "profile", "nope@2"}, "nope@2: no such file, and no dataset named nope");
  expect_error({"data", "export", "x@zero", "--out", dir_.file("o.jsonl")}, "must be a positive number");
  ASSERT_EQ(keel({"data", "import", write("a.jsonl", "{\"id\":1,\"text\":\"x\"}\n"), "--name", "a"}).exit_code, 0);
  ASSERT_EQ(keel({"data", "import", write("b.jsonl", "{\"prompt\":\"x\"}\n"), "--name", "b"}).exit_code, 0);
  expect_error({"data", "diff", "a@1", "b@1"}, "their schemas differ; fields only in a@1: id, text");
  expect_error({"data", "show", "a@3"}, "dataset a has no version 3 (latest is 1)");
  expect_error({"data", "import", write("e.jsonl", "\xff\n"), "--name", "e"}, "no readable records (1 malformed)");
  expect_error({"data", "import", dir_.file("absent.csv"), "--name", "e"}, "no such file");
  expect_error({"data", "import", dir_.file("a.jsonl"), "--name", "bad name"}, "dataset name \"bad name\"");
  std::string recipe = write("r.yaml", "steps:\n  - length: {min_words: 1}\n");
  expect_error({"data", "run", recipe, "--in", dir_.file("a.jsonl")}, "give --out FILE, or --name NAME");
  expect_error({"data", "run", recipe, "--in", "a@9", "--name", "c"}, "a@9: no such file, and dataset a has no version 9");
}

}  // namespace
}  // namespace keel::cli
