// The normalise step: HTML to text (entities, dropped elements, block breaks),
// Unicode NFC / NFKC, whitespace and control characters, and the per-reason counts.
#include "keel/data/normalize_operator.h"

#include <gtest/gtest.h>

#include "keel/data/html_text.h"

namespace keel::data {
namespace {

TEST(HtmlText, DecodesNamedAndNumericReferences) {
  EXPECT_EQ(decode_html_entities("caf&eacute; &amp; &lt;b&gt; &#233;&#xE9;&#XE9 &hellip;&mdash;&euro;"),
            "café & <b> ééé …—€");
  // Unknown names and bare ampersands stay as written; invalid code points become U+FFFD.
  EXPECT_EQ(decode_html_entities("AT&T &bogus; &#0; &#xD800; &#1114112;"), "AT&T &bogus; \uFFFD \uFFFD \uFFFD");
  EXPECT_EQ(decode_html_entities("&nbsp;"), "\u00a0");
}

TEST(HtmlText, BlocksBecomeLinesAndScriptsVanish) {
  EXPECT_EQ(html_to_text("<html><head><title>T</title><style>p{color:red}</style></head>"
                         "<body><p>One <b>bold</b>\n   word.</p><p>Two</p><script>var x = '<p>';</script>"
                         "<div>Three<br>Four</div><!-- a <p> comment --></body></html>"),
            "T\n\nOne bold word.\n\nTwo\n\nThree\nFour");
  EXPECT_EQ(html_to_text("<ul><li>a</li><li>b &amp; c</li></ul>"), "a\n\nb & c");
  EXPECT_EQ(html_to_text("<table><tr><td>x</td><td>y</td></tr></table>"), "x y");
  // A '<' that starts no tag is text; unclosed script drops the rest.
  EXPECT_EQ(html_to_text("1 < 2 and 3 > 2"), "1 < 2 and 3 > 2");
  EXPECT_EQ(html_to_text("a<SCRIPT type=\"x\">never"), "a");
  EXPECT_EQ(html_to_text("<a href=\"x>y\">link</a> end"), "link end");
  EXPECT_EQ(html_to_text("<pre>  code\n    more</pre>"), "  code\n    more");  // pre keeps its spaces
  EXPECT_TRUE(looks_like_html("x <br/> y"));
  EXPECT_TRUE(looks_like_html("Tom &amp; Jerry"));
  EXPECT_FALSE(looks_like_html("a < b, c > d & e"));
}

TEST(CleanWhitespace, UnifiesBreaksSpacesAndControls) {
  WhitespaceChanges c;
  EXPECT_EQ(clean_whitespace("a\r\nb\rc\u2028d", true, &c), "a\nb\nc\nd");
  EXPECT_TRUE(c.whitespace);
  EXPECT_FALSE(c.control);
  c = {};
  EXPECT_EQ(clean_whitespace("x\u00a0y\u3000z\u200b!\ufeff", true, &c), "x y z!");
  c = {};
  EXPECT_EQ(clean_whitespace("bell\x07 nul\x01 del\x7f c1\u0085end", true, &c), "bell nul del c1\nend");
  EXPECT_TRUE(c.control);
  c = {};
  // Indentation kept, inner runs collapsed, trailing blanks removed, blank lines merged.
  EXPECT_EQ(clean_whitespace("\n\n  def f():   \n\n\n\n      return  1\t\t\n\n", true, &c),
            "  def f():\n\n      return 1");
  c = {};
  EXPECT_EQ(clean_whitespace("keep   runs", false, &c), "keep   runs");
  EXPECT_FALSE(c.whitespace);
  c = {};
  EXPECT_EQ(clean_whitespace("already clean\n\ntext", true, &c), "already clean\n\ntext");
  EXPECT_FALSE(c.whitespace || c.control);
}

TEST(UnicodeNormalize, NfcComposesNfkcFoldsCompatibility) {
  EXPECT_EQ(*unicode_normalize("e\u0301", "nfc"), "é");
  EXPECT_EQ(*unicode_normalize("ﬁ ² Ａ", "nfc"), "ﬁ ² Ａ");
  EXPECT_EQ(*unicode_normalize("ﬁ ² Ａ", "nfkc"), "fi 2 A");
  EXPECT_FALSE(unicode_normalize("x", "nfd").ok());
}

TEST(NormalizeOperator, CountsEachReasonAndDropsEmptyText) {
  NormalizeOptions o;
  o.unicode = "nfkc";
  o.html = true;
  auto op = NormalizeOperator::create(o);
  ASSERT_TRUE(op.ok()) << op.status().to_string();
  Record html = {{"id", 1}, {"text", "<p>ﬁne</p><p>day</p>"}};
  Record clean = {{"id", 2}, {"text", "already fine"}};
  Record spaces = {{"id", 3}, {"text", "two  spaces\x01"}};
  Record empty = {{"id", 4}, {"text", "<script>x</script>  "}};
  Record no_text = {{"id", 5}, {"body", "x"}};
  EXPECT_TRUE((*op)->apply(&html).keep);
  EXPECT_EQ(html["text"], "fine\n\nday");
  EXPECT_EQ(html["id"], 1);
  EXPECT_TRUE((*op)->apply(&clean).keep);
  EXPECT_TRUE((*op)->apply(&spaces).keep);
  EXPECT_EQ(spaces["text"], "two spaces");
  Verdict v = (*op)->apply(&empty);
  EXPECT_FALSE(v.keep);
  EXPECT_EQ(v.reason, "empty_after_normalize");
  EXPECT_EQ((*op)->apply(&no_text).reason, "no_text_field");
  const StepCounts& c = (*op)->counts();
  EXPECT_EQ(c.seen, 5u);
  EXPECT_EQ(c.kept, 3u);
  EXPECT_EQ(c.changed, 2u);
  EXPECT_EQ(c.dropped, 2u);
  EXPECT_EQ(c.notes.at("html"), 2u);  // the emptied record counts too
  EXPECT_EQ(c.notes.at("unicode"), 1u);
  EXPECT_EQ(c.notes.at("whitespace"), 1u);
  EXPECT_EQ(c.notes.at("control"), 1u);
  EXPECT_EQ(c.dropped_by_reason.at("no_text_field"), 1u);
}

TEST(NormalizeOperator, RejectsAnUnknownForm) {
  NormalizeOptions o;
  o.unicode = "nfd";
  auto op = NormalizeOperator::create(o);
  ASSERT_FALSE(op.ok());
  EXPECT_NE(op.status().message().find("nfc, nfkc or none"), std::string::npos);
}

}  // namespace
}  // namespace keel::data
