#include "keel/eval/squad.h"

#include <gtest/gtest.h>

#include "keel/util/json.h"
#include "eval/eval_fixtures.h"

namespace keel::eval {
namespace {

using test_fixtures::close;
using test_fixtures::Corpus;
using test_fixtures::json_fixture;
using test_fixtures::load_corpus;

TEST(Squad, MatchesOfficialScriptOnCorpora) {
  Json fixture = json_fixture("squad.json");
  ASSERT_TRUE(fixture.contains("corpora"));
  size_t checked = 0, misses = 0;
  std::string report;
  for (const Json& c : fixture["corpora"]) {
    const Corpus corpus = load_corpus(c["corpus"].get<std::string>());
    const std::vector<std::string>& predictions = corpus.hyps;
    const std::vector<std::vector<std::string>>& refs = corpus.refs;
    bool multi = c["mode"] == "multi";
    std::vector<std::vector<std::string>> golds(predictions.size());
    for (size_t i = 0; i < predictions.size(); ++i) {
      for (size_t k = 0; k < (multi ? refs.size() : 1); ++k) golds[i].push_back(refs[k][i]);
    }
    Result<SquadCorpusResult> result = squad_corpus(predictions, golds);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    const Json& rows = c["scores"];
    ASSERT_EQ(rows.size(), result->questions.size());
    std::string label = c["corpus"].get<std::string>() + "/" + c["mode"].get<std::string>();
    for (size_t i = 0; i < rows.size(); ++i) {
      for (int m = 0; m < 2; ++m) {
        double actual = m == 0 ? result->questions[i].exact_match : result->questions[i].f1;
        double expected = rows[i][m];
        ++checked;
        if (!close(actual, expected) && ++misses <= 20) {
          report += label + " " + std::to_string(i) + (m == 0 ? " em " : " f1 ") + std::to_string(actual) + " vs " +
                    std::to_string(expected) + "\n";
        }
      }
    }
    EXPECT_TRUE(close(result->mean.exact_match, c["mean"][0].get<double>())) << label;
    EXPECT_TRUE(close(result->mean.f1, c["mean"][1].get<double>())) << label;
  }
  EXPECT_GT(checked, 7000u);
  EXPECT_EQ(misses, 0u) << report;
}

TEST(Squad, MatchesOfficialScriptOnHandWrittenCases) {
  Json fixture = json_fixture("squad.json");
  ASSERT_TRUE(fixture.contains("cases"));
  EXPECT_GT(fixture["cases"].size(), 30u);
  for (const Json& c : fixture["cases"]) {
    std::string prediction = c["prediction"];
    std::vector<std::string> golds = c["golds"].get<std::vector<std::string>>();
    Result<std::string> normalized = squad_normalize_answer(prediction);
    ASSERT_TRUE(normalized.ok());
    EXPECT_EQ(*normalized, c["normalized_prediction"].get<std::string>()) << prediction;
    Result<SquadScore> score = squad_score(prediction, golds);
    ASSERT_TRUE(score.ok());
    EXPECT_EQ(score->exact_match, c["exact_match"].get<double>()) << prediction;
    EXPECT_TRUE(close(score->f1, c["f1"].get<double>())) << prediction << ": " << score->f1;
  }
}

TEST(Squad, NormalisationDetails) {
  EXPECT_EQ(*squad_normalize_answer("The  Cat, the HAT!"), "cat hat");
  EXPECT_EQ(*squad_normalize_answer("theater an anthem"), "theater anthem");
  EXPECT_EQ(*squad_normalize_answer("«a»"), "« »");  // an article becomes a space, not nothing
  // Empty against empty: exact match, but F1 0 (no shared token), as the script says.
  Result<SquadScore> s = squad_score("the", {""});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->exact_match, 1.0);
  EXPECT_EQ(s->f1, 0.0);
  // EM and F1 take their best gold separately.
  s = squad_score("red blue", {"red blue green", "blue red"});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->exact_match, 0.0);
  EXPECT_DOUBLE_EQ(s->f1, 1.0);
}

TEST(Squad, RejectsBadInput) {
  EXPECT_FALSE(squad_score("a", {}).ok());
  EXPECT_FALSE(squad_score("bad \xff", {"a"}).ok());
  EXPECT_FALSE(squad_score("a", {"ok", "bad \xe6\xa8"}).ok());
  EXPECT_FALSE(squad_normalize_answer("\xed\xa0\x80").ok());
  EXPECT_FALSE(squad_corpus({"a", "b"}, {{"a"}}).ok());
  Result<SquadCorpusResult> r = squad_corpus({"a", "b"}, {{"a"}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("question 1"), std::string::npos) << r.status().message();
  Result<SquadCorpusResult> empty = squad_corpus({}, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->mean.f1, 0.0);
}

}  // namespace
}  // namespace keel::eval
