#include "keel/prompts/line_diff.h"

#include <gtest/gtest.h>

namespace keel::prompts {
namespace {

std::string diff(const std::string& a, const std::string& b, size_t context = 3) {
  auto d = unified_diff(a, b, "a", "b", context);
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  return d.ok() ? *d : "";
}

TEST(LineDiff, EqualTextsGiveNothing) {
  EXPECT_EQ(diff("x\ny\n", "x\ny\n"), "");
  EXPECT_EQ(diff("", ""), "");
}

TEST(LineDiff, OneChangedLineWithContext) {
  EXPECT_EQ(diff("1\n2\n3\n4\n5\n6\n7\n8\n", "1\n2\n3\n4\nfive\n6\n7\n8\n"),
            "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST(LineDiff, InsertionsAndDeletionsAtTheEdges) {
  EXPECT_EQ(diff("b\n", "a\nb\n"), "--- a\n+++ b\n@@ -1 +1,2 @@\n+a\n b\n");
  EXPECT_EQ(diff("a\nb\n", "a\n"), "--- a\n+++ b\n@@ -1,2 +1 @@\n a\n-b\n");
  EXPECT_EQ(diff("", "new\n"), "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n");
}

TEST(LineDiff, DistantChangesMakeTwoHunks) {
  std::string a, b;
  for (int i = 1; i <= 20; ++i) {
    a += std::to_string(i) + "\n";
    b += (i == 2 || i == 18 ? "x" : std::to_string(i)) + "\n";
  }
  EXPECT_EQ(diff(a, b, 1), "--- a\n+++ b\n@@ -1,3 +1,3 @@\n 1\n-2\n+x\n 3\n@@ -17,3 +17,3 @@\n 17\n-18\n+x\n 19\n");
}

TEST(LineDiff, KeepsTheLongestCommonSubsequence) {
  // LCS of (a b c d) and (b a c d) keeps three lines, so only one line moves.
  std::string d = diff("a\nb\nc\nd\n", "b\na\nc\nd\n", 0);
  int plus = 0, minus = 0;
  for (const auto& line : split_lines(d)) {
    if (line.rfind("+++", 0) == 0 || line.rfind("---", 0) == 0) continue;
    plus += line[0] == '+';
    minus += line[0] == '-';
  }
  EXPECT_EQ(plus, 1) << d;
  EXPECT_EQ(minus, 1) << d;
}

TEST(LineDiff, RefusesHugeMiddles) {
  std::string a, b;
  for (int i = 0; i < 5000; ++i) {
    a += 'a';
    a += std::to_string(i);
    a += '\n';
    b += 'b';
    b += std::to_string(i);
    b += '\n';
  }
  auto d = unified_diff(a, b, "a", "b");
  EXPECT_EQ(d.status().code(), ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace keel::prompts
