// `keel eval score` end to end: the JSON shapes scripts rely on, agreement with the
// committed reference fixtures through the CLI, and bad input as one-line errors.
#include <gtest/gtest.h>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "support/test_support.h"

namespace keel::cli {
namespace {

using keel::testing::ProcessResult;
using keel::testing::TempDir;

ProcessResult keel(const std::vector<std::string>& args) { return keel::testing::run_keel(args); }

std::string corpus(const std::string& name) { return keel::testing::source_dir() + "/tests/fixtures/eval/corpora/" + name; }

Json score_json(const std::vector<std::string>& args) {
  std::vector<std::string> all{"eval", "score", "--json"};
  all.insert(all.end(), args.begin(), args.end());
  auto r = keel(all);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = parse_json(r.out);
  EXPECT_TRUE(j.ok()) << r.out;
  return j.ok() ? *j : Json();
}

TEST(EvalScoreCli, BleuAndChrfMatchSacrebleuThroughTheCli) {
  // Values printed by sacrebleu 2.6.0 for these corpora (see tests/fixtures/eval/).
  Json bleu = score_json({"--metric", "bleu", "--pred", corpus("en.hyp"), "--ref", corpus("en.ref0")});
  EXPECT_EQ(bleu["metric"], "bleu");
  EXPECT_NEAR(bleu["score"].get<double>(), 69.73071620502989, 1e-9);
  EXPECT_EQ(bleu["signature"], "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  EXPECT_EQ(bleu["verbose"], "90.2/75.3/66.2/59.0 (BP = 0.972 ratio = 0.972 hyp_len = 21957 ref_len = 22585)");
  Json chrf = score_json({"--metric", "chrf", "--word-order", "2", "--pred", corpus("multiref.hyp"), "--ref",
                          corpus("multiref.ref0"), "--ref", corpus("multiref.ref1"), "--ref", corpus("multiref.ref2")});
  EXPECT_EQ(chrf["metric"], "chrf");
  EXPECT_EQ(chrf["signature"], "nrefs:3|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0");
  EXPECT_NEAR(chrf["score"].get<double>(), 85.95162874114324, 1e-9);
}

TEST(EvalScoreCli, RougeJsonHasOneObjectPerVariant) {
  Json r = score_json({"--metric", "rouge", "--stem", "--pred", corpus("en.hyp"), "--ref", corpus("en.ref0")});
  for (const char* type : {"rouge1", "rouge2", "rougeL", "rougeLsum"}) {
    ASSERT_TRUE(r.contains(type)) << r.dump();
    for (const char* field : {"precision", "recall", "fmeasure"}) {
      ASSERT_TRUE(r[type][field].is_number()) << type << "." << field;
      EXPECT_GT(r[type][field].get<double>(), 0.0);
      EXPECT_LE(r[type][field].get<double>(), 1.0);
    }
  }
  EXPECT_EQ(r.size(), 4u);
}

TEST(EvalScoreCli, ExactMatchAndF1UseSquadNormalisation) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("pred"), "The Eiffel Tower.\nparis\nan apple a day\n").ok());
  ASSERT_TRUE(write_file_atomic(dir.file("gold"), "eiffel tower\nParis!\nbanana\n").ok());
  Json em = score_json({"--metric", "em", "--pred", dir.file("pred"), "--ref", dir.file("gold")});
  EXPECT_EQ(em["metric"], "em");
  EXPECT_NEAR(em["score"].get<double>(), 100.0 * 2 / 3, 1e-9);
  Json f1 = score_json({"--metric", "f1", "--pred", dir.file("pred"), "--ref", dir.file("gold")});
  EXPECT_NEAR(f1["score"].get<double>(), 100.0 * 2 / 3, 1e-9);  // "apple day" vs "banana": no overlap
}

void expect_error(const ProcessResult& r, const std::string& needle, int code = 1) {
  EXPECT_EQ(r.exit_code, code) << r.out << r.err;
  EXPECT_EQ(r.err.rfind("keel: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
}

TEST(EvalScoreCli, BadInputIsAOneLineError) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.file("two"), "a b\nc d\n").ok());
  ASSERT_TRUE(write_file_atomic(dir.file("three"), "a b\nc d\ne f\n").ok());
  ASSERT_TRUE(write_file_atomic(dir.file("empty"), "").ok());
  ASSERT_TRUE(write_file_atomic(dir.file("bad"), "fine\nnot \xff utf-8\n").ok());
  expect_error(keel({"eval", "score", "--metric", "bleu", "--pred", dir.file("two"), "--ref", dir.file("three")}),
               "must align line by line");
  expect_error(keel({"eval", "score", "--metric", "chrf", "--pred", dir.file("empty"), "--ref", dir.file("two")}),
               "is empty");
  expect_error(keel({"eval", "score", "--metric", "rouge", "--pred", dir.file("bad"), "--ref", dir.file("two")}),
               "line 2 is not valid UTF-8");
  expect_error(keel({"eval", "score", "--metric", "bleu", "--pred", dir.file("nope"), "--ref", dir.file("two")}),
               "nope");
  expect_error(keel({"eval", "score", "--metric", "rouge", "--rouge-types", "rougeX", "--pred", dir.file("two"),
                     "--ref", dir.file("two")}),
               "rougeX");
  expect_error(keel({"eval", "score", "--metric", "meteor", "--pred", dir.file("two"), "--ref", dir.file("two")}),
               "meteor", 2);
}

}  // namespace
}  // namespace keel::cli
