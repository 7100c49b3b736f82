#include "keel/tracking/run_filter.h"

#include <gtest/gtest.h>

namespace keel::tracking {
namespace {

tracking::Run make_run(const std::string& id, int64_t start, double acc, const std::string& opt) {
  tracking::Run r;
  r.id = id;
  r.name = "run-" + id;
  r.start_time = start;
  r.latest_metrics.push_back({"acc", acc, 0, 0});
  r.params.push_back({"opt", opt});
  r.tags.push_back({"my tag", "Value"});
  return r;
}

TEST(RunFilter, ParsesMlflowSyntax) {
  auto c = parse_run_filter("metrics.acc >= 0.5 AND params.`opt` != 'sgd' and tags.\"my tag\" ILIKE 'val%'");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ((*c)[0].entity, FilterEntity::kMetric);
  EXPECT_TRUE((*c)[0].numeric);
  EXPECT_EQ((*c)[1].key, "opt");
  EXPECT_EQ((*c)[1].comparator, "!=");
  EXPECT_EQ((*c)[2].key, "my tag");
  EXPECT_EQ((*c)[2].comparator, "ILIKE");
  auto in = parse_run_filter("attributes.run_id IN ('a', 'b') and run_name='x'");
  ASSERT_TRUE(in.ok()) << in.status().to_string();
  EXPECT_EQ((*in)[0].values.size(), 2u);
  EXPECT_EQ((*in)[1].key, "run_name");
  EXPECT_TRUE(parse_run_filter("").ok());
}

TEST(RunFilter, RejectsMalformedFilters) {
  for (const char* bad : {"metrics.acc > 'x'", "params.p = 1", "metrics.acc", "metrics.acc > 1 or params.p = 'x'",
                          "foo.bar = 'x'", "attributes.nope = 'x'", "params.p = 'unterminated", "metrics.a LIKE 'x'",
                          "params.p IN 'x'", "!= 'x'"}) {
    EXPECT_FALSE(parse_run_filter(bad).ok()) << bad;
  }
}

TEST(RunFilter, MatchesAndSorts) {
  std::vector<tracking::Run> runs = {make_run("a", 1, 0.9, "adam"), make_run("b", 2, 0.7, "sgd"), make_run("c", 3, 0.8, "adam")};
  tracking::Run no_metric;
  no_metric.id = "d";
  no_metric.start_time = 4;
  runs.push_back(no_metric);
  auto clauses = parse_run_filter("params.opt = 'adam' and tags.`my tag` LIKE 'Val%'");
  ASSERT_TRUE(clauses.ok());
  EXPECT_TRUE(run_matches(runs[0], *clauses));
  EXPECT_FALSE(run_matches(runs[1], *clauses));
  EXPECT_FALSE(run_matches(runs[3], *clauses));
  auto case_sensitive = parse_run_filter("tags.`my tag` LIKE 'val%'");
  ASSERT_TRUE(case_sensitive.ok());
  EXPECT_FALSE(run_matches(runs[0], *case_sensitive));

  auto order = parse_order_by("metrics.acc DESC");
  ASSERT_TRUE(order.ok());
  sort_runs(runs, {*order});
  EXPECT_EQ(runs[0].id, "a");
  EXPECT_EQ(runs[1].id, "c");
  EXPECT_EQ(runs[2].id, "b");
  EXPECT_EQ(runs[3].id, "d") << "runs without the key come last";
  auto asc = parse_order_by("metrics.acc ASC");
  ASSERT_TRUE(asc.ok());
  sort_runs(runs, {*asc});
  EXPECT_EQ(runs[0].id, "b");
  EXPECT_EQ(runs[3].id, "d");
  sort_runs(runs, {});
  EXPECT_EQ(runs[0].id, "d") << "default: newest start first";
  EXPECT_FALSE(parse_order_by("metrics.acc SIDEWAYS").ok());
}

TEST(RunFilter, LikeWildcards) {
  EXPECT_TRUE(like_match("hello", "h%o", true));
  EXPECT_TRUE(like_match("hello", "h_llo", true));
  EXPECT_FALSE(like_match("hello", "H%", true));
  EXPECT_TRUE(like_match("hello", "H%", false));
  EXPECT_TRUE(like_match("", "%", true));
  EXPECT_FALSE(like_match("abc", "ab", true));
  EXPECT_TRUE(like_match("naïve", "na_ve", true)) << "'_' is one character, not one byte";
  EXPECT_TRUE(like_match("aaab", "%a%b", true));
}

}  // namespace
}  // namespace keel::tracking
