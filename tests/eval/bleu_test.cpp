// BLEU against sacrebleu 2.6.0: the corpus grid and every sentence of
// tests/fixtures/eval/bleu_chrf.json (made by tests/reference/make_bleu_chrf_fixtures.py),
// a plain re-implementation of sacrebleu's counting on random hard strings, thread-count
// invariance, and the errors.
#include "keel/eval/bleu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "keel/eval/tokenizers.h"
#include "keel/util/json.h"
#include "eval/eval_fixtures.h"

namespace keel::eval {
namespace {

using test_fixtures::close;
using test_fixtures::Corpus;
using test_fixtures::json_fixture;
using test_fixtures::load_corpus;

const Json& fixture() { return json_fixture("bleu_chrf.json"); }

BleuOptions options_from(const Json& rec) {
  BleuOptions o;
  o.tokenize = rec["tokenize"].get<std::string>();
  o.lowercase = rec["lowercase"].get<bool>();
  o.smooth_method = rec["smooth_method"].get<std::string>();
  if (!rec["smooth_value"].is_null()) o.smooth_value = rec["smooth_value"].get<double>();
  o.effective_order = rec["effective_order"].get<bool>();
  return o;
}

// Compares every field of a BleuScore with sacrebleu's BLEUScore record.
void expect_matches(const BleuScore& s, const Json& rec, const BleuOptions& o, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_TRUE(close(s.score, rec["score"].get<double>()));
  ASSERT_EQ(s.precisions.size(), 4u);
  for (int n = 0; n < 4; ++n) EXPECT_TRUE(close(s.precisions[n], rec["precisions"][n].get<double>())) << "n=" << n + 1;
  // sacrebleu reports add-k's k inside counts and totals of orders 2..4 (when it got past
  // its early exit and order 1 had n-grams); ours are the raw statistics.
  const bool add_k = o.smooth_method == "add-k" && s.totals[0] > 0 &&
                     (s.counts[0] || s.counts[1] || s.counts[2] || s.counts[3]);
  const double k = add_k ? o.smooth_value.value_or(1.0) : 0.0;
  for (int n = 0; n < 4; ++n) {
    EXPECT_EQ(s.counts[n] + (n ? k : 0.0), rec["counts"][n].get<double>()) << "n=" << n + 1;
    EXPECT_EQ(s.totals[n] + (n ? k : 0.0), rec["totals"][n].get<double>()) << "n=" << n + 1;
  }
  EXPECT_TRUE(close(s.bp, rec["bp"].get<double>()));
  EXPECT_TRUE(close(s.ratio, rec["ratio"].get<double>()));
  EXPECT_EQ(s.sys_len, rec["sys_len"].get<int64_t>());
  EXPECT_EQ(s.ref_len, rec["ref_len"].get<int64_t>());
  EXPECT_EQ(s.signature, rec["signature"].get<std::string>());
  EXPECT_EQ(s.format(), rec["string"].get<std::string>());
}

TEST(Bleu, MatchesSacrebleuOnCorpusGrid) {
  ASSERT_TRUE(fixture().is_object()) << "missing or malformed tests/fixtures/eval/bleu_chrf.json";
  std::map<std::string, Corpus> corpora;
  size_t checked = 0;
  for (const Json& rec : fixture()["bleu"]) {
    const std::string name = rec["corpus"].get<std::string>();
    if (!corpora.count(name)) corpora[name] = load_corpus(name);
    const Corpus& c = corpora[name];
    BleuOptions o = options_from(rec);
    auto s = corpus_bleu(c.hyps, c.refs, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    expect_matches(*s, rec, o, name + " " + rec["signature"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 6u * 64u);
}

TEST(Bleu, SentenceBleuMatchesSacrebleuOnEverySegment) {
  ASSERT_TRUE(fixture().is_object());
  size_t checked = 0;
  for (const auto& [name, sentence] : fixture()["sentence"].items()) {
    const Corpus c = load_corpus(name);
    const Json& expected = sentence["bleu"];
    ASSERT_EQ(expected.size(), c.hyps.size()) << name;
    for (size_t i = 0; i < c.hyps.size(); ++i) {
      std::vector<std::string> refs;
      for (const auto& stream : c.refs) refs.push_back(stream[i]);
      auto s = sentence_bleu(c.hyps[i], refs);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      EXPECT_TRUE(close(s->score, expected[i].get<double>())) << name << " segment " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3700u);  // every segment of the six corpora
}

TEST(Bleu, SentenceExamplesMatchEveryField) {
  ASSERT_TRUE(fixture().is_object());
  for (const auto& [name, examples] : fixture()["sentence_examples"].items()) {
    const Corpus c = load_corpus(name);
    for (const Json& rec : examples) {
      const size_t i = rec["segment"].get<size_t>();
      std::vector<std::string> refs;
      for (const auto& stream : c.refs) refs.push_back(stream[i]);
      auto s = sentence_bleu(c.hyps[i], refs);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      expect_matches(*s, rec, sentence_bleu_defaults(), name + " segment " + std::to_string(i));
    }
  }
}

TEST(Bleu, KnownValues) {
  auto same = sentence_bleu("The cat sat on the mat.", {"The cat sat on the mat."});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->score, 100.00000000000004);  // sacrebleu's value: exp(log(100)) is not exactly 100
  EXPECT_EQ(same->format(), "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)");
  EXPECT_EQ(same->signature, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");

  // No n-gram in common: sacrebleu's early exit gives exactly 0 and zero precisions.
  auto none = sentence_bleu("alpha beta", {"gamma delta epsilon"});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->score, 0.0);
  EXPECT_EQ(none->verbose(), "0.0/0.0/0.0/0.0 (BP = 0.607 ratio = 0.667 hyp_len = 2 ref_len = 3)");

  // Closest reference length, the shorter one on a tie: hyp 3 tokens, refs 2 and 4.
  auto tie = sentence_bleu("a b c", {"a b c d", "a b"});
  ASSERT_TRUE(tie.ok());
  EXPECT_EQ(tie->ref_len, 2);
  EXPECT_EQ(tie->signature, "nrefs:2|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");

  BleuOptions floor;
  floor.smooth_method = "floor";
  floor.smooth_value = 0.25;
  floor.lowercase = true;
  floor.tokenize = "intl";
  auto f = corpus_bleu({"x"}, {{"x"}}, floor);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->signature, "nrefs:1|case:lc|eff:no|tok:intl|smooth:floor[0.25]|version:2.6.0");
}

// A plain implementation of sacrebleu's segment statistics (Counter of token tuples,
// max over references, clipped matches, closest length) to test the hashed fast path.
struct PlainStats {
  int64_t sys_len = 0, ref_len = 0;
  std::vector<int64_t> correct = std::vector<int64_t>(4), total = std::vector<int64_t>(4);
};

PlainStats plain_bleu_stats(const std::string& hyp, const std::vector<std::string>& refs, BleuTokenizer tok) {
  auto ngrams = [&](const std::string& text, int64_t& len) {
    std::map<std::vector<std::string>, int64_t> counts;
    const std::string tokenized = tokenize(tok, rstrip_py_whitespace(text));
    std::vector<std::string_view> views;
    split_py_whitespace(tokenized, views);
    std::vector<std::string> words(views.begin(), views.end());
    len = static_cast<int64_t>(words.size());
    for (size_t n = 1; n <= 4; ++n) {
      for (size_t i = 0; i + n <= words.size(); ++i) ++counts[{words.begin() + i, words.begin() + i + n}];
    }
    return counts;
  };
  std::map<std::vector<std::string>, int64_t> ref_max;
  std::vector<int64_t> ref_lens;
  for (const auto& r : refs) {
    int64_t len;
    for (const auto& [g, n] : ngrams(r, len)) ref_max[g] = std::max(ref_max[g], n);
    ref_lens.push_back(len);
  }
  PlainStats s;
  for (const auto& [g, n] : ngrams(hyp, s.sys_len)) {
    s.total[g.size() - 1] += n;
    auto it = ref_max.find(g);
    if (it != ref_max.end()) s.correct[g.size() - 1] += std::min(n, it->second);
  }
  int64_t best_diff = -1;
  for (int64_t len : ref_lens) {
    int64_t diff = std::abs(s.sys_len - len);
    if (best_diff == -1 || diff < best_diff || (diff == best_diff && len < s.ref_len)) {
      best_diff = diff;
      s.ref_len = len;
    }
  }
  return s;
}

std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "a", "b", "the", "cat", "A", "The", " ", " ", " ", "  ", "\t", ".", ",", "-", "'", "1", "2", "3,5", "1.5",
      "&amp;", "&quot;", "&lt;", "<skipped>", "\n", "-\n", "模型", "。", "«", "»", "—", "€", "😀", "\xc2\x85",
      "\x1f", "\xe3\x80\x80", "\xe2\x80\x8b", "é", "É", "e\xcc\x81", "!", "?", "(", ")", "$", "%"};
  std::uniform_int_distribution<size_t> len(0, 30), pick(0, pieces.size() - 1);
  std::string s;
  for (size_t i = len(rng); i > 0; --i) s += pieces[pick(rng)];
  return s;
}

TEST(Bleu, FastPathMatchesPlainCountingOnRandomText) {
  std::mt19937 rng(1234);
  for (const char* tok_name : {"13a", "none", "intl", "char"}) {
    BleuOptions o = sentence_bleu_defaults();
    o.tokenize = tok_name;
    const BleuTokenizer tok = *parse_bleu_tokenizer(tok_name);
    for (int trial = 0; trial < 300; ++trial) {
      const std::string hyp = random_text(rng);
      std::vector<std::string> refs(1 + trial % 3);
      for (auto& r : refs) r = random_text(rng);
      if (trial % 5 == 0) refs[0] = hyp;  // plenty of matches sometimes
      auto s = sentence_bleu(hyp, refs, o);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      const PlainStats p = plain_bleu_stats(hyp, refs, tok);
      SCOPED_TRACE(std::string(tok_name) + " trial " + std::to_string(trial) + " hyp '" + hyp + "'");
      EXPECT_EQ(s->sys_len, p.sys_len);
      EXPECT_EQ(s->ref_len, p.ref_len);
      EXPECT_EQ(s->counts, p.correct);
      EXPECT_EQ(s->totals, p.total);
    }
  }
}

TEST(Bleu, ThreadCountDoesNotChangeTheResult) {
  for (const char* name : {"en", "multiref"}) {
    const Corpus c = load_corpus(name);
    BleuOptions o;
    auto one = corpus_bleu(c.hyps, c.refs, o);
    ASSERT_TRUE(one.ok());
    for (int threads : {2, 3, 7, 0}) {
      o.threads = threads;
      auto many = corpus_bleu(c.hyps, c.refs, o);
      ASSERT_TRUE(many.ok());
      EXPECT_EQ(many->score, one->score) << threads;  // bit-identical, not merely close
      EXPECT_EQ(many->counts, one->counts);
      EXPECT_EQ(many->totals, one->totals);
      EXPECT_EQ(many->ref_len, one->ref_len);
      EXPECT_EQ(many->format(), one->format());
    }
  }
  // More threads than segments.
  BleuOptions o;
  o.threads = 16;
  auto tiny = corpus_bleu({"a b c d"}, {{"a b c d"}}, o);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->score, 100.00000000000004);
}

TEST(Bleu, RejectsBadInput) {
  const std::vector<std::string> hyps = {"a b", "c d"};
  BleuOptions o;

  auto short_ref = corpus_bleu(hyps, {{"a b", "c d"}, {"a b"}}, o);
  ASSERT_FALSE(short_ref.ok());
  EXPECT_EQ(short_ref.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(short_ref.status().message().find("reference stream 1"), std::string::npos);

  EXPECT_FALSE(corpus_bleu(hyps, {}, o).ok());
  EXPECT_FALSE(corpus_bleu({}, {{}}, o).ok());
  EXPECT_FALSE(sentence_bleu("a", {}).ok());

  BleuOptions bad_tok;
  bad_tok.tokenize = "zh";
  auto t = corpus_bleu(hyps, {hyps}, bad_tok);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("zh"), std::string::npos);

  BleuOptions bad_smooth;
  bad_smooth.smooth_method = "add-one";
  EXPECT_FALSE(corpus_bleu(hyps, {hyps}, bad_smooth).ok());

  BleuOptions bad_threads;
  bad_threads.threads = -1;
  EXPECT_FALSE(corpus_bleu(hyps, {hyps}, bad_threads).ok());

  // Invalid UTF-8 names the first bad segment, whichever thread met it.
  std::vector<std::string> many(100, "fine text");
  many[37] = "bad \xff byte";
  many[80] = "also \xc3 bad";
  for (int threads : {1, 4}) {
    o.threads = threads;
    auto bad = corpus_bleu(many, {std::vector<std::string>(100, "fine text")}, o);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find("segment 37"), std::string::npos) << bad.status().message();
    auto bad_ref = corpus_bleu(std::vector<std::string>(100, "fine"), {many}, o);
    ASSERT_FALSE(bad_ref.ok());
    EXPECT_NE(bad_ref.status().message().find("segment 37: reference 0"), std::string::npos)
        << bad_ref.status().message();
  }
  EXPECT_FALSE(sentence_bleu("ok", {"\xed\xa0\x80"}).ok());  // an encoded surrogate
}

}  // namespace
}  // namespace keel::eval
