#include "keel/eval/rouge.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "keel/eval/porter_stemmer.h"
#include "keel/eval/text.h"
#include "keel/util/json.h"
#include "eval/eval_fixtures.h"

namespace keel::eval {
namespace {

using test_fixtures::close;
using test_fixtures::Corpus;
using test_fixtures::json_fixture;
using test_fixtures::load_corpus;

std::vector<std::string> group_lines(const std::vector<std::string>& lines, size_t size) {
  std::vector<std::string> out;
  for (size_t i = 0; i < lines.size(); i += size) {
    std::string text;
    for (size_t k = i; k < std::min(lines.size(), i + size); ++k) {
      if (k > i) text += "\n";
      text += lines[k];
    }
    out.push_back(text);
  }
  return out;
}

// Compares to 1e-9 relative, 1e-12 absolute near 0; collects the first few misses so a
// broken build reports a readable list instead of thousands of lines.
class Comparer {
 public:
  void check(double actual, double expected, const std::string& what) {
    ++checked_;
    if (close(actual, expected)) return;
    if (++misses_ <= 20) {
      std::ostringstream s;
      s.precision(17);
      s << what << ": got " << actual << ", rouge-score " << expected << "\n";
      report_ += s.str();
    }
  }
  void check(const RougeScore& actual, const Json& expected, const std::string& what) {
    check(actual.precision, expected[0].get<double>(), what + " precision");
    check(actual.recall, expected[1].get<double>(), what + " recall");
    check(actual.fmeasure, expected[2].get<double>(), what + " fmeasure");
  }
  size_t misses() const { return misses_; }
  size_t checked() const { return checked_; }
  const std::string& report() const { return report_; }

 private:
  size_t checked_ = 0;
  size_t misses_ = 0;
  std::string report_;
};

std::vector<std::vector<std::string>> streams_for(const Json& c, const Corpus& corpus, size_t group) {
  std::string mode = c["mode"];
  if (mode == "multi") return corpus.refs;
  if (mode == "lines3") return {group_lines(corpus.refs[0], group)};
  return {corpus.refs[0]};
}

TEST(Rouge, MatchesRougeScoreOnEveryCorpus) {
  Json fixture = json_fixture("rouge.json");
  ASSERT_TRUE(fixture.contains("cases"));
  const size_t group = fixture["lsum_group"];
  Comparer cmp;
  size_t cases = 0;
  for (const Json& c : fixture["cases"]) {
    std::string name = c["corpus"];
    Corpus corpus = load_corpus(name);
    std::vector<std::string> predictions = c["mode"] == "lines3" ? group_lines(corpus.hyps, group) : corpus.hyps;
    RougeOptions options;
    options.types = c["types"].get<std::vector<std::string>>();
    options.use_stemmer = c["stemmer"];
    options.threads = 2;
    Result<RougeCorpusResult> result = rouge_corpus(predictions, streams_for(c, corpus, group), options);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    std::string label = name + "/" + c["mode"].get<std::string>() + (options.use_stemmer ? "/stem" : "");
    const Json& rows = c["scores"];
    ASSERT_EQ(rows.size(), predictions.size()) << label;
    ASSERT_EQ(result->types, options.types) << label;
    for (size_t i = 0; i < rows.size(); ++i) {
      for (size_t t = 0; t < options.types.size(); ++t) {
        cmp.check(result->at(i, t), rows[i][t], label + " segment " + std::to_string(i) + " " + options.types[t]);
      }
    }
    for (size_t t = 0; t < options.types.size(); ++t) {
      cmp.check(result->mean[t], c["mean"][t], label + " mean " + options.types[t]);
    }
    ++cases;
  }
  EXPECT_EQ(cases, 26u);  // 6 corpora x 2 stemmer settings x (single, lines3), + multiref multi x 2
  EXPECT_GT(cmp.checked(), 100000u);
  EXPECT_EQ(cmp.misses(), 0u) << cmp.report();
}

TEST(Rouge, SingleTextFunctionsMatchRougeScore) {
  // rouge_score and rouge_score_multi are the per-text entry points; check them on
  // the multiref corpus, stemmed, against the same fixture rows.
  Json fixture = json_fixture("rouge.json");
  Corpus corpus = load_corpus("multiref");
  Comparer cmp;
  int found = 0;
  for (const Json& c : fixture["cases"]) {
    if (c["corpus"] != "multiref" || c["stemmer"] != true || c["mode"] == "lines3") continue;
    ++found;
    bool multi = c["mode"] == "multi";
    RougeOptions options;
    options.types = c["types"].get<std::vector<std::string>>();
    options.use_stemmer = true;
    for (size_t i = 0; i < corpus.hyps.size(); ++i) {
      std::vector<std::string> targets = {corpus.refs[0][i]};
      if (multi) targets = {corpus.refs[0][i], corpus.refs[1][i], corpus.refs[2][i]};
      Result<RougeScores> scores =
          multi ? rouge_score_multi(targets, corpus.hyps[i], options) : rouge_score(targets[0], corpus.hyps[i], options);
      ASSERT_TRUE(scores.ok()) << scores.status().to_string();
      for (size_t t = 0; t < options.types.size(); ++t) {
        cmp.check(scores->at(options.types[t]), c["scores"][i][t],
                  c["mode"].get<std::string>() + " " + std::to_string(i) + " " + options.types[t]);
      }
    }
  }
  EXPECT_EQ(found, 2);
  EXPECT_EQ(cmp.misses(), 0u) << cmp.report();
}

TEST(Rouge, HandWorkedExamples) {
  RougeOptions options;
  // rouge-score's README example.
  Result<RougeScores> s =
      rouge_score("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.", options);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->at("rouge1").precision, 0.75);
  EXPECT_DOUBLE_EQ(s->at("rouge1").recall, 6.0 / 9.0);
  // LCS "the quick brown jumps the": 5 of 8 predicted, 5 of 9 reference tokens.
  EXPECT_DOUBLE_EQ(s->at("rougeL").precision, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(s->at("rougeL").recall, 5.0 / 9.0);
  EXPECT_DOUBLE_EQ(s->at("rougeL").fmeasure, 0.5882352941176471);
  // Empty texts: all zeros, never NaN.
  s = rouge_score("", "", options);
  ASSERT_TRUE(s.ok());
  for (const auto& [type, score] : *s) EXPECT_EQ(score.fmeasure, 0.0) << type;
  // Summary-level LCS: the union of the LCS with each candidate sentence.
  // ref "a b c d e" vs candidates "a b f" and "c e": union {a, b, c, e} -> 4 hits.
  options.types = {"rougeLsum"};
  s = rouge_score("a b c d e", "a b f\nc e", options);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->at("rougeLsum").recall, 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(s->at("rougeLsum").precision, 4.0 / 5.0);
  // ... and hits are capped by the copies the texts hold: "a" twice in the union but
  // once in the candidate.
  s = rouge_score("a x\na y", "a", options);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->at("rougeLsum").recall, 1.0 / 4.0);
  EXPECT_DOUBLE_EQ(s->at("rougeLsum").precision, 1.0);
}

TEST(Rouge, ScoreMultiTakesTheFirstBestTarget) {
  RougeOptions options;
  options.types = {"rouge1"};
  // Both targets give f = 2/3 (the same double), with precision and recall swapped:
  // numpy.argmax keeps the first.
  Result<RougeScores> s = rouge_score_multi({"a b", "a b y z c d e f"}, "a b y z", options);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->at("rouge1").precision, 0.5);
  EXPECT_EQ(s->at("rouge1").recall, 1.0);
  s = rouge_score_multi({"a b y z c d e f", "a b"}, "a b y z", options);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->at("rouge1").precision, 1.0);
  EXPECT_EQ(s->at("rouge1").recall, 0.5);
  // A strictly better later target wins.
  s = rouge_score_multi({"q", "a b y z"}, "a b y z", options);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->at("rouge1").fmeasure, 1.0);
}

// rouge-score's tokenizer written the slow, obvious way: Python lower(), non-[a-z0-9]
// to spaces, split, stem tokens longer than 3 characters.
std::vector<std::string> reference_tokenize(const std::string& text, bool stem) {
  std::u32string lowered = py_lower(to_u32(text));
  std::string spaced;
  for (char32_t c : lowered) {
    bool keep = (c >= U'a' && c <= U'z') || (c >= U'0' && c <= U'9');
    spaced.push_back(keep ? static_cast<char>(c) : ' ');
  }
  std::vector<std::string> out;
  for (std::string& token : py_split(spaced)) out.push_back(stem && token.size() > 3 ? porter_stem(token) : token);
  return out;
}

TEST(Rouge, TokenizerMatchesPlainReferenceOnAllCorpora) {
  size_t lines = 0;
  for (const char* name : {"en", "accented", "cjk", "punct", "empty", "multiref"}) {
    Corpus c = load_corpus(name);
    std::vector<std::vector<std::string>> all = c.refs;
    all.push_back(c.hyps);
    for (const auto& stream : all) {
      for (const std::string& line : stream) {
        for (bool stem : {false, true}) {
          Result<std::vector<std::string>> tokens = rouge_tokenize(line, stem);
          ASSERT_TRUE(tokens.ok());
          ASSERT_EQ(*tokens, reference_tokenize(line, stem)) << name << ": " << line;
        }
        ++lines;
      }
    }
  }
  EXPECT_GT(lines, 8000u);
  // U+0130 lowercases to "i" + U+0307 (a separator); KELVIN SIGN to "k".
  EXPECT_EQ(*rouge_tokenize("İstanbul \u212Aelvin", false), (std::vector<std::string>{"i", "stanbul", "kelvin"}));
  EXPECT_EQ(*rouge_tokenize("Running dogs ran", true), (std::vector<std::string>{"run", "dog", "ran"}));
  EXPECT_EQ(*rouge_tokenize("dies ties", true), (std::vector<std::string>{"die", "tie"}));  // 4 letters: stemmed
}

TEST(Rouge, ResultsDoNotDependOnThreadCount) {
  Corpus c = load_corpus("en");
  RougeOptions options;
  options.use_stemmer = true;
  options.bootstrap_samples = 200;
  options.seed = 7;
  options.threads = 1;
  Result<RougeCorpusResult> one = rouge_corpus(c.hyps, c.refs, options);
  ASSERT_TRUE(one.ok());
  for (int threads : {2, 3, 8, 0}) {
    options.threads = threads;
    Result<RougeCorpusResult> many = rouge_corpus(c.hyps, c.refs, options);
    ASSERT_TRUE(many.ok());
    ASSERT_EQ(many->scores.size(), one->scores.size());
    for (size_t i = 0; i < one->scores.size(); ++i) {
      ASSERT_EQ(many->scores[i].precision, one->scores[i].precision) << threads << " threads, cell " << i;
      ASSERT_EQ(many->scores[i].recall, one->scores[i].recall);
      ASSERT_EQ(many->scores[i].fmeasure, one->scores[i].fmeasure);
    }
    for (size_t t = 0; t < one->types.size(); ++t) {
      EXPECT_EQ(many->mean[t].fmeasure, one->mean[t].fmeasure);
      EXPECT_EQ(many->intervals[t].low.fmeasure, one->intervals[t].low.fmeasure);
      EXPECT_EQ(many->intervals[t].high.recall, one->intervals[t].high.recall);
    }
  }
}

TEST(Rouge, BootstrapIsSeededAndAgreesWithRougeScoreStatistically) {
  Json fixture = json_fixture("rouge.json");
  const Json& reference = fixture["bootstrap"];
  Corpus c = load_corpus(reference["corpus"]);
  RougeOptions options;
  options.bootstrap_samples = reference["samples"];
  options.confidence = reference["confidence"];
  options.seed = 12345;
  options.threads = 2;
  Result<RougeCorpusResult> a = rouge_corpus(c.hyps, c.refs, options);
  Result<RougeCorpusResult> b = rouge_corpus(c.hyps, c.refs, options);
  options.seed = 12346;
  Result<RougeCorpusResult> other = rouge_corpus(c.hyps, c.refs, options);
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  ASSERT_EQ(a->intervals.size(), a->types.size());
  bool any_differs = false;
  for (size_t t = 0; t < a->types.size(); ++t) {
    const RougeInterval& x = a->intervals[t];
    EXPECT_EQ(x.low.fmeasure, b->intervals[t].low.fmeasure);
    EXPECT_EQ(x.mid.precision, b->intervals[t].mid.precision);
    EXPECT_EQ(x.high.recall, b->intervals[t].high.recall);
    any_differs = any_differs || x.low.fmeasure != other->intervals[t].low.fmeasure;
    EXPECT_LT(x.low.fmeasure, a->mean[t].fmeasure);
    EXPECT_GT(x.high.fmeasure, a->mean[t].fmeasure);
    // Different random streams: the bounds agree with rouge-score's to within the
    // bootstrap's own noise (about 0.001 on this corpus), not exactly.
    const Json& expected = reference["intervals"][a->types[t]];
    const RougeScore* ours[3] = {&x.low, &x.mid, &x.high};
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(ours[k]->precision, expected[k][0].get<double>(), 0.004) << a->types[t] << " bound " << k;
      EXPECT_NEAR(ours[k]->recall, expected[k][1].get<double>(), 0.004) << a->types[t] << " bound " << k;
      EXPECT_NEAR(ours[k]->fmeasure, expected[k][2].get<double>(), 0.004) << a->types[t] << " bound " << k;
    }
  }
  EXPECT_TRUE(any_differs) << "a different seed should move the interval";
}

TEST(Rouge, RejectsBadInput) {
  RougeOptions options;
  for (const char* bad : {"rouge", "rougeX", "rouge10", "rouge0", "ROUGE1", "rougel", "rougeLSum", "rouge1 "}) {
    options.types = {bad};
    Result<RougeScores> s = rouge_score("a", "a", options);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  options = RougeOptions{};
  EXPECT_FALSE(rouge_score("ok", "bad \xff", options).ok());
  EXPECT_FALSE(rouge_score("bad \xe6\xa8", "ok", options).ok());
  EXPECT_FALSE(rouge_score_multi({}, "a", options).ok());
  EXPECT_FALSE(rouge_score_multi({"a", "\xc0\x80"}, "a", options).ok());
  // The validator agrees with text.h's is_valid_utf8 on every kind of bad sequence.
  for (std::string text :
       {"\xed\xa0\x80", "\xed\x9f\xbf", "\xc0\x80", "\xc1\xbf", "\xc2\x80", "\xe0\x80\x80", "\xe0\xa0\x80",
        "\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe6\xa8",
        "x\x80", "\xe6\xa8\x21", "\xf0\x9f\x9a", "\xf0\x9f\x9a\x80", "\xff", "caf\xc3\xa9"}) {
    EXPECT_EQ(rouge_tokenize(text, false).ok(), is_valid_utf8(text)) << testing::PrintToString(text);
  }

  std::vector<std::string> hyp = {"a b", "c d"};
  EXPECT_FALSE(rouge_corpus(hyp, {{"a b"}}, options).ok());            // length mismatch
  EXPECT_FALSE(rouge_corpus(hyp, {{"a", "b"}, {"a"}}, options).ok());  // second stream short
  EXPECT_FALSE(rouge_corpus(hyp, {}, options).ok());                   // no stream
  Result<RougeCorpusResult> r = rouge_corpus(hyp, {{"a", "b \xff"}}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("segment 1"), std::string::npos) << r.status().message();
  options.threads = -1;
  EXPECT_FALSE(rouge_corpus(hyp, {{"a", "b"}}, options).ok());
  options.threads = 1;
  options.bootstrap_samples = 10;
  options.confidence = 1.5;
  EXPECT_FALSE(rouge_corpus(hyp, {{"a", "b"}}, options).ok());
  options.confidence = 0.95;
  EXPECT_FALSE(rouge_corpus({}, {{}}, options).ok());  // nothing to resample
  options.bootstrap_samples = 0;
  Result<RougeCorpusResult> empty = rouge_corpus({}, {{}}, options);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->mean.size(), 4u);
  EXPECT_EQ(empty->mean[0].fmeasure, 0.0);
}

std::vector<uint32_t> random_ids(std::mt19937& rng, size_t n, uint32_t alphabet) {
  std::vector<uint32_t> out(n);
  for (auto& x : out) x = rng() % alphabet;
  return out;
}

TEST(RougeLcs, BitParallelLengthMatchesDynamicProgramme) {
  std::mt19937 rng(42);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    size_t n = rng() % 200, m = rng() % 200;
    if (iteration % 10 == 0) n = 64 * (1 + rng() % 3) + rng() % 2 - 1;  // word boundaries
    uint32_t alphabet = 1 + rng() % 12;
    std::vector<uint32_t> a = random_ids(rng, n, alphabet), b = random_ids(rng, m, alphabet);
    if (iteration % 7 == 0) {  // large, sparse ids
      for (auto& x : a) x = x * 2654435761u + 17;
      for (auto& x : b) x = x * 2654435761u + 17;
    }
    ASSERT_EQ(rouge_detail::lcs_length(a, b), rouge_detail::lcs_length_reference(a, b))
        << "iteration " << iteration << " n=" << n << " m=" << m;
  }
}

TEST(RougeLcs, BlockedBacktrackReadsTheSameLcsAsRougeScore) {
  std::mt19937 rng(7);
  for (int iteration = 0; iteration < 2000; ++iteration) {
    size_t n = rng() % 60, m = rng() % 60;
    uint32_t alphabet = 1 + rng() % 6;
    std::vector<uint32_t> ref = random_ids(rng, n, alphabet), can = random_ids(rng, m, alphabet);
    std::vector<uint32_t> expected = rouge_detail::lcs_indices_reference(ref, can);
    for (size_t block : {0, 1, 2, 3, 7, 100}) {
      ASSERT_EQ(rouge_detail::lcs_indices(ref, can, block), expected)
          << "iteration " << iteration << " block " << block << " n=" << n << " m=" << m;
    }
  }
  // Large enough that the default picks checkpointed blocks.
  std::vector<uint32_t> ref = random_ids(rng, 2500, 30), can = random_ids(rng, 2400, 30);
  EXPECT_EQ(rouge_detail::lcs_indices(ref, can), rouge_detail::lcs_indices_reference(ref, can));
}

TEST(RougeLcs, LongTextsScore) {
  // 12,000 tokens a side: rouge-score's full LCS table would be 576 MB of 32-bit
  // cells; ROUGE-L and ROUGE-Lsum (one long sentence each) run in a few MB.
  std::mt19937 rng(3);
  std::string target, prediction;
  for (int i = 0; i < 12000; ++i) {
    // (Appended piecewise: g++ 12 gives a false -Wrestrict on "w" + std::string.)
    target.append("w").append(std::to_string(rng() % 500)).append(" ");
    prediction.append("w").append(std::to_string(rng() % 500)).append(" ");
  }
  RougeOptions options;
  options.types = {"rougeL", "rougeLsum"};
  Result<RougeScores> s = rouge_score(target, prediction, options);
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s->at("rougeL").fmeasure, 0.0);
  // With one sentence a side, Lsum's hits are exactly the LCS length.
  EXPECT_DOUBLE_EQ(s->at("rougeLsum").fmeasure, s->at("rougeL").fmeasure);
}

}  // namespace
}  // namespace keel::eval
