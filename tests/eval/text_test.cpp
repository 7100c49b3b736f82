#include "keel/eval/text.h"

#include <gtest/gtest.h>

namespace keel::eval {
namespace {

TEST(PythonText, SplitUsesPythonsWhitespaceSet) {
  // \x1f and \x85 and U+3000 are whitespace to str.split(); U+200B is not.
  EXPECT_EQ(py_split("a\x1f" "b\xc2\x85" "c\xe3\x80\x80" "d\xe2\x80\x8b" "e"),
            (std::vector<std::string>{"a", "b", "c", "d\xe2\x80\x8b" "e"}));
  EXPECT_EQ(py_split("  \t\n "), std::vector<std::string>{});
  EXPECT_EQ(py_split(" a  b "), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(py_strip("\xc2\xa0 x y\t"), "x y");
}

TEST(PythonText, LowerFollowsFullCaseMappingAndFinalSigma) {
  EXPECT_EQ(py_lower("ÉCOLE Straße"), "école straße");
  EXPECT_EQ(py_lower("İstanbul"), "i\xcc\x87stanbul");   // 'İ'.lower() == 'i̇'
  EXPECT_EQ(py_lower("ΟΔΟΣ ΟΔΟΣ."), "οδος οδος.");        // final sigma at word ends
  EXPECT_EQ(py_lower("Σ"), "σ");                          // a lone capital sigma is not final
  EXPECT_EQ(py_lower("\xe2\x84\xaa"), "k");               // KELVIN SIGN -> ASCII k
}

TEST(PythonText, Utf8ValidationAndCategories) {
  EXPECT_TRUE(is_valid_utf8("plain ascii é 模型 🚀"));
  EXPECT_FALSE(is_valid_utf8("bad \xff byte"));
  EXPECT_FALSE(is_valid_utf8("truncated \xe6\xa8"));
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // a UTF-16 surrogate encoded in UTF-8
  EXPECT_EQ(unicode_major_category(U','), 'P');
  EXPECT_EQ(unicode_major_category(U'€'), 'S');
  EXPECT_EQ(unicode_major_category(U'模'), 'L');
  EXPECT_EQ(to_utf8(to_u32("é模🚀")), "é模🚀");
}

}  // namespace
}  // namespace keel::eval
