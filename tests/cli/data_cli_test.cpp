// `keel data dedup` and `keel data pii` end to end: kept records keep every field and
// their input order, near-dedup finds the duplicates planted by the benchmark's own
// corpus generator, PII counts per type, and bad input as one-line errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

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
