// Exact and MinHash near-duplicate removal: the fast signature path against its
// reference, LSH recall and precision on planted near-duplicates (generated here,
// deterministically), and the file-level contract (first kept, fields and order kept).
#include "keel/data/dedup.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>

#include "keel/data/minhash.h"
#include "keel/data/text_normalize.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

using keel::testing::TempDir;

// Documents of random words; some are planted copies of an earlier document with a
// few words replaced (word 5-gram Jaccard about 0.8 to 0.95). Truth: `dup_of`.
struct PlantedCorpus {
  std::vector<std::string> texts;
  std::vector<int> dup_of;  // -1 for an original
};

PlantedCorpus make_planted_corpus(int originals, int duplicates, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> vocabulary;
  for (int i = 0; i < 5000; ++i) {
    std::string w;
    int len = 3 + static_cast<int>(rng() % 7);
    for (int j = 0; j < len; ++j) w.push_back(static_cast<char>('a' + rng() % 26));
    vocabulary.push_back(w);
  }
  PlantedCorpus corpus;
  std::vector<std::vector<std::string>> words_of;
  for (int i = 0; i < originals + duplicates; ++i) {
    std::vector<std::string> words;
    int source = -1;
    if (i >= 10 && static_cast<int>(rng() % (originals + duplicates)) < duplicates) {
      // pick an earlier original
      do {
        source = static_cast<int>(rng() % static_cast<uint32_t>(i));
      } while (corpus.dup_of[static_cast<size_t>(source)] != -1);
      words = words_of[static_cast<size_t>(source)];
      int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits; ++e) words[rng() % words.size()] = vocabulary[rng() % vocabulary.size()];
    } else {
      int len = 150 + static_cast<int>(rng() % 150);
      for (int j = 0; j < len; ++j) words.push_back(vocabulary[rng() % vocabulary.size()]);
    }
    std::string text;
    for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
    words_of.push_back(words);
    corpus.texts.push_back(text);
    corpus.dup_of.push_back(source);
  }
  return corpus;
}

void write_jsonl(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
}

std::vector<Record> read_jsonl(const std::string& path) {
  std::vector<Record> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) out.push_back(Record::parse(line));
  return out;
}

TEST(MinHasher, FastSignatureMatchesTheReference) {
  for (const auto& config : {datatrove_preset(), nemo_preset()}) {
    MinHasher hasher(config);
    std::vector<uint64_t> shingles;
    hasher.shingles("The quick brown fox jumps over the lazy dog, 42 times in 2024! Ünïcödé text too.", &shingles);
    ASSERT_FALSE(shingles.empty());
    shingles.push_back(0);
    shingles.push_back((uint64_t{1} << 61) - 2);  // the largest shingle value
    std::vector<uint32_t> fast(static_cast<size_t>(config.num_perm())), reference(fast.size());
    hasher.signature(shingles, fast.data());
    hasher.signature_reference(shingles, reference.data());
    EXPECT_EQ(fast, reference);
  }
}

TEST(MinHasher, EstimatedSimilarityTracksTrueJaccard) {
  MinHashConfig config = datatrove_preset();
  config.bands = 32;  // 256 permutations: a tighter estimate
  MinHasher hasher(config);
  std::vector<uint64_t> x, y;
  for (uint64_t i = 0; i < 1000; ++i) x.push_back(i * 2654435761u);
  for (uint64_t i = 300; i < 1300; ++i) y.push_back(i * 2654435761u);  // J = 700 / 1300
  std::vector<uint32_t> sx(256), sy(256);
  hasher.signature(x, sx.data());
  hasher.signature(y, sy.data());
  EXPECT_NEAR(signature_similarity(sx.data(), sy.data(), 256), 700.0 / 1300.0, 0.1);
}

TEST(MinHasher, ShinglesFollowTheSimplifiedText) {
  MinHasher hasher(datatrove_preset());
  std::vector<uint64_t> a, b, c;
  hasher.shingles("Hello, World! It is 2024 and 7 cats sleep here.", &a);
  hasher.shingles("hello world it is 1999 and 3 CATS sleep   here", &b);
  hasher.shingles("hello world it is 1999 and 3 dogs sleep here", &c);
  EXPECT_EQ(a, b);  // case, punctuation, numbers and spaces do not matter
  EXPECT_NE(a, c);
  EXPECT_EQ(a.size(), 10u - 5 + 1);
  std::vector<uint64_t> tiny;
  hasher.shingles("two words", &tiny);
  EXPECT_EQ(tiny.size(), 1u);
  hasher.shingles(" ,.; ", &tiny);
  EXPECT_TRUE(tiny.empty());
  MinHasher chars(nemo_preset());
  chars.shingles(std::string(30, 'x') + "\xC3\xA9", &tiny);
  EXPECT_EQ(tiny.size(), 31u - 24 + 1);  // code points, not bytes
}

TEST(Normalize, ExactKeyCollapsesWhitespaceAndAsciiCase) {
  EXPECT_EQ(normalize_for_exact("  Hello \t\n WORLD  "), "hello world");
  EXPECT_EQ(normalize_for_exact("\xC3\x89t\xC3\xA9"), "\xC3\x89t\xC3\xA9");
}

TEST(DocumentClusters, RootIsTheSmallestIndex) {
  DocumentClusters c(6);
  c.join(5, 3);
  c.join(3, 4);
  c.join(4, 1);
  EXPECT_EQ(c.find(5), 1u);
  EXPECT_EQ(c.find(3), 1u);
  EXPECT_EQ(c.find(0), 0u);
  EXPECT_EQ(c.find(2), 2u);
}

struct Scores {
  double precision = 0;
  double recall = 0;
  uint64_t removed = 0;
};

// Removed records are judged against the planted truth: a removed planted duplicate is
// a true positive; a removed original a false positive.
Scores run_and_score(const PlantedCorpus& corpus, DedupOptions options) {
  TempDir dir;
  std::vector<std::string> lines;
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    lines.push_back(Record({{"id", i}, {"text", corpus.texts[i]}}).dump());
  }
  options.input = dir.file("in.jsonl");
  options.output = dir.file("out.jsonl");
  write_jsonl(options.input, lines);
  auto summary = deduplicate(options);
  EXPECT_TRUE(summary.ok()) << summary.status().to_string();
  std::set<uint64_t> kept;
  for (const auto& r : read_jsonl(options.output)) kept.insert(r["id"].get<uint64_t>());
  uint64_t tp = 0, fp = 0, planted = 0;
  for (size_t i = 0; i < corpus.texts.size(); ++i) {
    bool is_dup = corpus.dup_of[i] >= 0;
    planted += is_dup ? 1 : 0;
    if (kept.count(i) == 0) {
      (is_dup ? tp : fp) += 1;
    }
  }
  Scores s;
  s.removed = tp + fp;
  s.precision = s.removed == 0 ? 0 : static_cast<double>(tp) / static_cast<double>(s.removed);
  s.recall = planted == 0 ? 0 : static_cast<double>(tp) / static_cast<double>(planted);
  if (summary.ok()) {
    EXPECT_EQ(summary->removed, s.removed);
  }
  return s;
}

TEST(NearDedup, FindsPlantedNearDuplicatesWithTheDatatrovePreset) {
  PlantedCorpus corpus = make_planted_corpus(1500, 500, 7);
  DedupOptions options;
  options.near = true;
  options.minhash = datatrove_preset();
  options.threads = 2;
  Scores s = run_and_score(corpus, options);
  EXPECT_GE(s.recall, 0.97);
  EXPECT_GE(s.precision, 0.99);
  // Exact dedup finds none of them: every planted copy was edited.
  DedupOptions exact;
  exact.threads = 1;
  EXPECT_EQ(run_and_score(corpus, exact).removed, 0u);
}

TEST(NearDedup, NemoPresetAndThresholdVerificationAlsoFindThem) {
  PlantedCorpus corpus = make_planted_corpus(600, 200, 11);
  DedupOptions options;
  options.near = true;
  options.minhash = nemo_preset();
  Scores s = run_and_score(corpus, options);
  EXPECT_GE(s.recall, 0.97);
  EXPECT_GE(s.precision, 0.99);
  options.minhash = datatrove_preset();
  options.minhash.threshold = 0.7;
  s = run_and_score(corpus, options);
  EXPECT_GE(s.recall, 0.95);
  EXPECT_GE(s.precision, 0.99);
  // Demanding identical signatures joins only the few copies whose edits no
  // permutation noticed.
  options.minhash.threshold = 1.0;
  EXPECT_LT(run_and_score(corpus, options).removed, s.removed / 4);
}

TEST(Dedup, KeepsTheFirstRecordWithAllItsFieldsAndWritesClustersAndRejects) {
  TempDir dir;
  std::string long_text = "one two three four five six seven eight nine ten eleven twelve";
  write_jsonl(dir.file("in.jsonl"), {
                                        R"({"id":"a","text":"Hello   World","meta":{"k":1}})",
                                        R"({"id":"b","text":"hello world"})",
                                        R"({"id":"c","body":"no text field"})",
                                        R"({"id":"d" broken)",
                                        R"({"z":0,"id":"e","text":")" + long_text + R"("})",
                                        R"({"id":"f","text":"HELLO WORLD "})",
                                        R"({"id":"g","text":")" + long_text + R"( "})",
                                    });
  for (bool near : {false, true}) {
    DedupOptions o;
    o.input = dir.file("in.jsonl");
    o.output = dir.file(near ? "near.jsonl" : "exact.jsonl");
    o.clusters = dir.file(near ? "near.clusters.jsonl" : "exact.clusters.jsonl");
    o.rejects = dir.file("rejects.jsonl");
    o.near = near;
    auto s = deduplicate(o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->records_read, 5u);
    EXPECT_EQ(s->kept, 2u);
    EXPECT_EQ(s->removed, 3u);
    EXPECT_EQ(s->clusters, 2u);
    EXPECT_EQ(s->rejected, 2u);
    auto out = read_jsonl(o.output);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].dump(), R"({"id":"a","text":"Hello   World","meta":{"k":1}})");
    EXPECT_EQ(out[1]["id"], "e");
    EXPECT_EQ(out[1].begin().key(), "z");
    auto clusters = read_jsonl(o.clusters);
    ASSERT_EQ(clusters.size(), 2u);
    // Record indices count records read (the broken line is not one): a=0 b=1 c=2 e=3 f=4 g=5.
    EXPECT_EQ(clusters[0]["members"].get<std::vector<int>>(), std::vector<int>({0, 1, 4}));
    EXPECT_EQ(clusters[1]["members"].get<std::vector<int>>(), std::vector<int>({3, 5}));
    auto rejects = read_jsonl(o.rejects);
    ASSERT_EQ(rejects.size(), 2u);
    EXPECT_EQ(rejects[0]["line"], 3);
    EXPECT_NE(rejects[0]["reason"].get<std::string>().find("no string field"), std::string::npos);
    EXPECT_EQ(rejects[1]["line"], 4);
  }
}

TEST(Dedup, JsonlOutputCopiesLinesVerbatimAndOtherFormatsAreWrittenFromRecords) {
  TempDir dir;
  std::string first = R"({ "id" : 1,  "text": "Same words here", "x": 1.50 })";
  write_jsonl(dir.file("in.jsonl"), {first, R"({"id":2,"text":"same words  here"})", R"({"id":3,"text":"other"})"});
  for (bool near : {false, true}) {
    DedupOptions o;
    o.input = dir.file("in.jsonl");
    o.near = near;
    o.output = dir.file("out.jsonl");
    ASSERT_TRUE(deduplicate(o).ok());
    std::ifstream in(o.output);
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, first) << "near=" << near;
    o.output = dir.file("out.json");
    ASSERT_TRUE(deduplicate(o).ok());
    std::ifstream json_in(o.output);
    Record array = Record::parse(json_in);
    ASSERT_EQ(array.size(), 2u);
    EXPECT_EQ(array[0]["id"], 1);
    EXPECT_EQ(array[1]["id"], 3);
  }
}

TEST(Dedup, RefusesToOverwriteItsInput) {
  DedupOptions o;
  o.input = o.output = "/tmp/x.jsonl";
  EXPECT_FALSE(deduplicate(o).ok());
}

}  // namespace
}  // namespace keel::data
