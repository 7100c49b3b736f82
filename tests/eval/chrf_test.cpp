// chrF and chrF++ against sacrebleu 2.6.0: the corpus grid and every sentence of
// tests/fixtures/eval/bleu_chrf.json (made by tests/reference/make_bleu_chrf_fixtures.py),
// a plain re-implementation of sacrebleu's n-gram counting on random hard strings,
// best-reference choice, thread-count invariance, and the errors.
#include "keel/eval/chrf.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "keel/eval/text.h"
#include "keel/util/json.h"
#include "eval/eval_fixtures.h"

namespace keel::eval {
namespace {

using test_fixtures::close;
using test_fixtures::Corpus;
using test_fixtures::json_fixture;
using test_fixtures::load_corpus;

const Json& fixture() { return json_fixture("bleu_chrf.json"); }

TEST(Chrf, MatchesSacrebleuOnCorpusGrid) {
  ASSERT_TRUE(fixture().is_object()) << "missing or malformed tests/fixtures/eval/bleu_chrf.json";
  std::map<std::string, Corpus> corpora;
  size_t checked = 0;
  for (const Json& rec : fixture()["chrf"]) {
    const std::string name = rec["corpus"].get<std::string>();
    if (!corpora.count(name)) corpora[name] = load_corpus(name);
    ChrfOptions o;
    o.word_order = rec["word_order"].get<int>();
    o.lowercase = rec["lowercase"].get<bool>();
    o.whitespace = rec["whitespace"].get<bool>();
    o.eps_smoothing = rec["eps_smoothing"].get<bool>();
    auto s = corpus_chrf(corpora[name].hyps, corpora[name].refs, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    SCOPED_TRACE(name + " " + rec["signature"].get<std::string>());
    EXPECT_TRUE(close(s->score, rec["score"].get<double>()));
    EXPECT_EQ(s->signature, rec["signature"].get<std::string>());
    EXPECT_EQ(s->format(), rec["string"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 6u * 16u);
}

TEST(Chrf, SentenceChrfMatchesSacrebleuOnEverySegment) {
  ASSERT_TRUE(fixture().is_object());
  size_t checked = 0;
  ChrfOptions plus;
  plus.word_order = 2;
  for (const auto& [name, sentence] : fixture()["sentence"].items()) {
    const Corpus c = load_corpus(name);
    ASSERT_EQ(sentence["chrf"].size(), c.hyps.size()) << name;
    for (size_t i = 0; i < c.hyps.size(); ++i) {
      std::vector<std::string> refs;
      for (const auto& stream : c.refs) refs.push_back(stream[i]);
      auto s = sentence_chrf(c.hyps[i], refs);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      EXPECT_TRUE(close(s->score, sentence["chrf"][i].get<double>())) << name << " segment " << i;
      auto pp = sentence_chrf(c.hyps[i], refs, plus);
      ASSERT_TRUE(pp.ok()) << pp.status().to_string();
      EXPECT_TRUE(close(pp->score, sentence["chrf++"][i].get<double>())) << name << " segment " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3700u);  // every segment of the six corpora
}

TEST(Chrf, SentenceExamplesMatchStringAndSignature) {
  ASSERT_TRUE(fixture().is_object());
  for (const auto& [name, examples] : fixture()["sentence_examples"].items()) {
    const Corpus c = load_corpus(name);
    for (const Json& rec : examples) {
      const size_t i = rec["segment"].get<size_t>();
      std::vector<std::string> refs;
      for (const auto& stream : c.refs) refs.push_back(stream[i]);
      auto s = sentence_chrf(c.hyps[i], refs);
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(s->format(), rec["chrf_string"].get<std::string>());
      EXPECT_EQ(s->signature, rec["chrf_signature"].get<std::string>());
    }
  }
}

TEST(Chrf, KnownValues) {
  auto same = sentence_chrf("Hello there, world.", {"Hello there, world."});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->score, 100.0);
  EXPECT_EQ(same->format(), "chrF2 = 100.00");
  EXPECT_EQ(same->signature, "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");

  // Whitespace does not count: only the spacing differs.
  auto spaced = sentence_chrf("ab cd", {"a bcd"});
  ASSERT_TRUE(spaced.ok());
  EXPECT_EQ(spaced->score, 100.0);

  ChrfOptions plus;
  plus.word_order = 2;
  plus.lowercase = true;
  auto pp = sentence_chrf("ab", {"xy", "zw"}, plus);
  ASSERT_TRUE(pp.ok());
  EXPECT_EQ(pp->score, 0.0);
  EXPECT_EQ(pp->format(), "chrF2++ = 0.00");
  EXPECT_EQ(pp->signature, "nrefs:2|case:lc|eff:yes|nc:6|nw:2|space:no|version:2.6.0");
  EXPECT_EQ(pp->stats.size(), 3u * 8u);
}

// A plain implementation of sacrebleu's per-reference statistics (Counters of
// substrings and of space-joined word n-grams) to test the hashed fast path.
std::vector<int64_t> plain_chrf_stats(std::string hyp, std::string ref, const ChrfOptions& o) {
  if (o.lowercase) {
    hyp = py_lower(hyp);
    ref = py_lower(ref);
  }
  using Counter = std::map<std::u32string, int64_t>;
  auto char_ngrams = [&](const std::string& text, int n) {
    std::u32string line;
    for (char32_t c : to_u32(text)) {
      if (o.whitespace || !is_py_space(c)) line.push_back(c);
    }
    Counter counts;
    for (size_t i = 0; i + n <= line.size(); ++i) ++counts[line.substr(i, n)];
    return counts;
  };
  auto words = [](const std::string& text) {
    const std::u32string punct = U"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    std::vector<std::u32string> out;
    for (const std::string& w8 : py_split(text)) {
      std::u32string w = to_u32(w8);
      if (w.size() == 1) {
        out.push_back(w);
      } else if (punct.find(w.back()) != std::u32string::npos) {
        out.push_back(w.substr(0, w.size() - 1));
        out.push_back(w.substr(w.size() - 1));
      } else if (punct.find(w.front()) != std::u32string::npos) {
        out.push_back(w.substr(0, 1));
        out.push_back(w.substr(1));
      } else {
        out.push_back(w);
      }
    }
    return out;
  };
  auto word_ngrams = [](const std::vector<std::u32string>& ws, int n) {
    Counter counts;
    for (size_t i = 0; i + n <= ws.size(); ++i) {
      std::u32string joined;
      for (int j = 0; j < n; ++j) joined += (j ? U" " : U"") + ws[i + j];
      ++counts[joined];
    }
    return counts;
  };
  std::vector<int64_t> stats;
  auto add = [&](const Counter& h, const Counter& r) {
    int64_t hyp_count = 0, ref_count = 0, match = 0;
    for (const auto& [g, n] : h) {
      hyp_count += n;
      auto it = r.find(g);
      if (it != r.end()) match += std::min(n, it->second);
    }
    for (const auto& [g, n] : r) ref_count += n;
    stats.push_back(r.empty() ? 0 : hyp_count);
    stats.push_back(ref_count);
    stats.push_back(match);
  };
  for (int n = 1; n <= o.char_order; ++n) add(char_ngrams(hyp, n), char_ngrams(ref, n));
  const auto hw = words(hyp), rw = words(ref);
  for (int n = 1; n <= o.word_order; ++n) add(word_ngrams(hw, n), word_ngrams(rw, n));
  return stats;
}

std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "a", "b", "ab", "the", "cat", "A", "The", " ", " ", " ", "  ", "\t", ".", ",", "-", "'", "1", "(x)", "x)",
      "(", ")", "模型", "。", "«", "—", "€", "😀", "\xc2\x85", "\x1f", "\xe3\x80\x80", "\xe2\x80\x8b", "é", "É",
      "ΟΔΟΣ", "İ", "e\xcc\x81", "!", "?", "$", "%", "\xf4\x8f\xbf\xbf", "\x01"};
  std::uniform_int_distribution<size_t> len(0, 30), pick(0, pieces.size() - 1);
  std::string s;
  for (size_t i = len(rng); i > 0; --i) s += pieces[pick(rng)];
  return s;
}

TEST(Chrf, FastPathMatchesPlainCountingOnRandomText) {
  std::mt19937 rng(4321);
  for (int variant = 0; variant < 8; ++variant) {
    ChrfOptions o;
    o.word_order = (variant & 1) ? 2 : 0;
    o.lowercase = variant & 2;
    o.whitespace = variant & 4;
    if (variant == 7) o.word_order = 3;
    for (int trial = 0; trial < 150; ++trial) {
      const std::string hyp = random_text(rng);
      const std::string ref = trial % 5 == 0 ? hyp : random_text(rng);
      auto s = sentence_chrf(hyp, {ref}, o);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      EXPECT_EQ(s->stats, plain_chrf_stats(hyp, ref, o))
          << "variant " << variant << " trial " << trial << " hyp '" << hyp << "' ref '" << ref << "'";
    }
  }
}

TEST(Chrf, PicksTheFirstBestReference) {
  std::mt19937 rng(99);
  ChrfOptions plus;
  plus.word_order = 2;
  for (int trial = 0; trial < 200; ++trial) {
    const std::string hyp = random_text(rng);
    std::vector<std::string> refs = {random_text(rng), random_text(rng), random_text(rng)};
    if (trial % 4 == 0) refs[2] = refs[1];  // a tie: the earlier one is chosen
    auto multi = sentence_chrf(hyp, refs, plus);
    ASSERT_TRUE(multi.ok());
    double best = -1;
    std::vector<int64_t> best_stats;
    for (const auto& r : refs) {
      auto single = sentence_chrf(hyp, {r}, plus);
      ASSERT_TRUE(single.ok());
      if (single->score > best) {
        best = single->score;
        best_stats = single->stats;
      }
    }
    EXPECT_EQ(multi->score, best);
    EXPECT_EQ(multi->stats, best_stats);
  }
}

TEST(Chrf, ThreadCountDoesNotChangeTheResult) {
  for (const char* name : {"en", "multiref"}) {
    const Corpus c = load_corpus(name);
    ChrfOptions o;
    o.word_order = 2;
    auto one = corpus_chrf(c.hyps, c.refs, o);
    ASSERT_TRUE(one.ok());
    for (int threads : {2, 3, 7, 0}) {
      o.threads = threads;
      auto many = corpus_chrf(c.hyps, c.refs, o);
      ASSERT_TRUE(many.ok());
      EXPECT_EQ(many->score, one->score) << threads;  // bit-identical, not merely close
      EXPECT_EQ(many->stats, one->stats);
    }
  }
}

TEST(Chrf, RejectsBadInput) {
  const std::vector<std::string> hyps = {"a b", "c d"};
  ChrfOptions o;
  auto short_ref = corpus_chrf(hyps, {{"a b"}}, o);
  ASSERT_FALSE(short_ref.ok());
  EXPECT_EQ(short_ref.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(corpus_chrf(hyps, {}, o).ok());
  EXPECT_FALSE(corpus_chrf({}, {{}}, o).ok());
  EXPECT_FALSE(sentence_chrf("a", {}).ok());

  for (auto bad : {ChrfOptions{.char_order = 0}, ChrfOptions{.char_order = 7}, ChrfOptions{.word_order = 4},
                   ChrfOptions{.beta = -1}, ChrfOptions{.threads = -2}}) {
    EXPECT_FALSE(corpus_chrf(hyps, {hyps}, bad).ok());
  }

  std::vector<std::string> many(50, "fine");
  many[21] = "bad \xc0\xaf overlong";
  for (int threads : {1, 3}) {
    o.threads = threads;
    auto bad = corpus_chrf(many, {std::vector<std::string>(50, "fine")}, o);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("segment 21: hypothesis"), std::string::npos) << bad.status().message();
  }
}

}  // namespace
}  // namespace keel::eval
