// Keel's Gopher quality, Gopher repetition and C4 filters against datatrove's, document
// by document: tests/reference/make_datatrove_filter_fixtures.py ran datatrove 0.10.1
// (default thresholds, English, spaCy's word tokenizer) on a generated corpus aimed at
// every rule and its thresholds, and recorded each decision and C4's rewritten text.
#include <gtest/gtest.h>

#include <map>

#include "keel/data/c4_quality_filter.h"
#include "keel/data/english_words.h"
#include "keel/data/gopher_quality_filter.h"
#include "keel/data/gopher_repetition_filter.h"
#include "keel/data/records.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

struct Row {
  std::string id, text, quality, repetition, c4, c4_text;
};

std::vector<Row> load_fixture() {
  std::vector<Row> rows;
  auto reader = RecordReader::open(keel::testing::source_dir() + "/tests/fixtures/data/datatrove_filters.jsonl.gz", {});
  EXPECT_TRUE(reader.ok()) << reader.status().to_string();
  if (!reader.ok()) return rows;
  Record j;
  while (true) {
    auto got = (*reader)->next(&j);
    EXPECT_TRUE(got.ok()) << got.status().to_string();
    if (!got.ok() || !*got) break;
    Row r{j["id"], j["text"], j["gopher_quality"], j["gopher_repetition"], j["c4"], ""};
    if (j["c4_text"].is_string()) r.c4_text = j["c4_text"];
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string ours_or_keep(const std::string& reason) {
  return reason.empty() ? "keep" : reason;
}

// datatrove names the failed stop-word rule "gopher_enough_stop_words"; keel says what
// went wrong.
std::string datatrove_name(const std::string& reason) {
  return reason == "gopher_too_few_stop_words" ? "gopher_enough_stop_words" : reason;
}

class DatatroveEquivalence : public ::testing::Test {
 protected:
  void SetUp() override {
    rows_ = load_fixture();
    ASSERT_EQ(rows_.size(), 1000u) << "tests/fixtures/data/datatrove_filters.jsonl.gz";
    auto t = EnglishWordTokenizer::create();
    ASSERT_TRUE(t.ok());
    tokenizer_ = *t;
  }
  // Checks one filter on every document; prints each disagreement.
  template <typename Decide, typename Expected>
  void check(const char* filter, Decide decide, Expected expected) {
    size_t agree = 0;
    std::map<std::string, size_t> by_reason;
    for (const auto& r : rows_) {
      std::string ours = decide(r);
      std::string theirs = expected(r);
      if (ours == theirs) {
        ++agree;
        ++by_reason[ours];
      } else {
        ADD_FAILURE() << filter << " " << r.id << ": keel " << ours << ", datatrove " << theirs << "\n" << r.text;
      }
    }
    EXPECT_EQ(agree, rows_.size()) << filter;
    EXPECT_GE(by_reason.size(), 4u) << filter << ": the corpus should reach several rules";
  }
  std::vector<Row> rows_;
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
};

TEST_F(DatatroveEquivalence, GopherQualityAgreesOnEveryDocument) {
  check(
      "gopher_quality",
      [&](const Row& r) {
        return datatrove_name(ours_or_keep(gopher_quality_reason(r.text, tokenizer_->words(r.text), {})));
      },
      [](const Row& r) { return r.quality; });
}

TEST_F(DatatroveEquivalence, GopherRepetitionAgreesOnEveryDocument) {
  check(
      "gopher_repetition",
      [&](const Row& r) { return ours_or_keep(gopher_repetition_reason(r.text, tokenizer_->words(r.text), {})); },
      [](const Row& r) { return r.repetition; });
}

TEST_F(DatatroveEquivalence, C4AgreesOnEveryDocumentAndKeepsTheSameLines) {
  check(
      "c4",
      [&](const Row& r) {
        C4Result c = c4_quality(r.text, {}, *tokenizer_);
        if (!c.reason.empty()) return c.reason;
        return c.text == r.c4_text ? std::string("keep") : "keep with other text: " + c.text;
      },
      [](const Row& r) { return r.c4; });
}

}  // namespace
}  // namespace keel::data
