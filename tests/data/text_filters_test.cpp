// The filter steps, rule by rule: length, CLD2 language identification, Gopher quality,
// Gopher repetition and C4, each on a document built to pass and on variants built to
// fail exactly one rule (checked by the reason it fails with).
#include <gtest/gtest.h>

#include "keel/data/c4_quality_filter.h"
#include "keel/data/english_words.h"
#include "keel/data/gopher_quality_filter.h"
#include "keel/data/gopher_repetition_filter.h"
#include "keel/data/language_filter.h"
#include "keel/data/length_filter.h"

namespace keel::data {
namespace {

// Six sentences of distinct words on six lines: passes every Gopher and C4 rule.
const char* kGoodDoc =
    "The river runs quietly through the old valley and past the mill.\n"
    "Farmers have planted wheat with care along both banks of that water.\n"
    "Every spring brings floods, yet the villagers rebuild their homes quickly.\n"
    "Children learn to swim early because summers there are long and warm.\n"
    "Visitors often stay at a small inn near the stone bridge.\n"
    "Local bakers sell bread, honey cakes and apple pies every morning.";

class Filters : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = EnglishWordTokenizer::create();
    ASSERT_TRUE(t.ok());
    tokenizer_ = *t;
  }
  std::string quality(const std::string& text, const GopherQualityOptions& o = {}) {
    return gopher_quality_reason(text, tokenizer_->words(text), o);
  }
  std::string repetition(const std::string& text, const GopherRepetitionOptions& o = {}) {
    return gopher_repetition_reason(text, tokenizer_->words(text), o);
  }
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
};

// C4 with the shared word tokenizer (for its sentence counts).
C4Result c4_quality(std::string_view text, const C4QualityOptions& options) {
  static const auto tokenizer = *EnglishWordTokenizer::create();
  return keel::data::c4_quality(text, options, *tokenizer);
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(LengthFilter, BoundsInCharactersAndWords) {
  LengthFilterOptions o;
  o.min_chars = 5;
  o.max_chars = 12;
  o.min_words = 2;
  o.max_words = 3;
  auto f = LengthFilter::create(o);
  ASSERT_TRUE(f.ok());
  auto reason = [&](const std::string& text) {
    Record r = {{"text", text}};
    return (*f)->apply(&r).reason;
  };
  EXPECT_EQ(reason("abcd"), "too_few_chars");
  EXPECT_EQ(reason("héé héé"), "");                       // 7 characters (9 bytes), 2 words
  EXPECT_EQ(reason("ééééé ééééé éé"), "too_many_chars");  // 14 characters
  EXPECT_EQ(reason("abcdefg"), "too_few_words");
  EXPECT_EQ(reason("a b c d e f"), "too_many_words");
  Record no_text = {{"title", "x"}};
  EXPECT_EQ((*f)->apply(&no_text).reason, "no_text_field");
  EXPECT_EQ((*f)->counts().dropped_by_reason.at("too_many_words"), 1u);
  o.max_chars = 2;
  EXPECT_FALSE(LengthFilter::create(o).ok());
}

// Token bounds count with the tokenizer the program gives the step (here: one token
// per byte); without one, or when it fails, the record is "untokenizable".
TEST(LengthFilter, BoundsInTokensOfTheGivenTokenizer) {
  LengthFilterOptions o;
  o.min_tokens = 3;
  o.max_tokens = 5;
  EXPECT_FALSE(LengthFilter::create(o).ok()) << "token bounds without a tokenizer";
  o.tokenizer = "some-model";
  auto f = LengthFilter::create(o);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE((*f)->counts_tokens());
  EXPECT_EQ((*f)->tokenizer(), "some-model");
  auto reason = [&](const std::string& text) {
    Record r = {{"text", text}};
    return (*f)->apply(&r).reason;
  };
  EXPECT_EQ(reason("abcd"), "untokenizable") << "no counter given";
  (*f)->set_token_counter([](std::string_view text) -> Result<size_t> {
    if (text.find('!') != std::string_view::npos) return invalid_argument("cannot tokenize");
    return text.size();
  });
  EXPECT_EQ(reason("ab"), "too_few_tokens");
  EXPECT_EQ(reason("abcd"), "");
  EXPECT_EQ(reason("abcdef"), "too_many_tokens");
  EXPECT_EQ(reason("ab!d"), "untokenizable");
  o.min_tokens = 6;
  EXPECT_FALSE(LengthFilter::create(o).ok()) << "min_tokens above max_tokens";
}

TEST(LanguageFilter, KeepsAllowedLanguagesAboveTheConfidence) {
  LanguageGuess en = identify_language(kGoodDoc);
  EXPECT_EQ(en.code, "en");
  EXPECT_GT(en.confidence, 0.9);
  LanguageGuess fr = identify_language(
      "Le fleuve traverse lentement la vieille vallée et passe devant le moulin. Les paysans ont planté du blé "
      "avec soin le long des deux rives de cette eau.");
  EXPECT_EQ(fr.code, "fr");
  LanguageFilterOptions o;
  o.languages = {"en", "de"};
  o.annotate = true;
  auto f = LanguageFilter::create(o);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  Record r1 = {{"text", kGoodDoc}};
  EXPECT_TRUE((*f)->apply(&r1).keep);
  EXPECT_EQ(r1["language"], "en");
  Record r2 = {{"text", "Le fleuve traverse lentement la vieille vallée et passe devant le moulin du village."}};
  EXPECT_EQ((*f)->apply(&r2).reason, "language_not_allowed");
  Record r3 = {{"text", "12345 67890 !!!"}};
  EXPECT_EQ((*f)->apply(&r3).reason, "unknown_language");
  // Half English, half French: below a 0.9 confidence.
  o.languages = {"en"};
  o.min_confidence = 0.9;
  o.annotate = false;
  auto strict = LanguageFilter::create(o);
  Record mixed = {{"text", std::string(kGoodDoc) +
                               " Le fleuve traverse lentement la vieille vallée et passe devant le moulin. Les paysans "
                               "ont planté du blé avec soin le long des deux rives de cette eau. Chaque printemps "
                               "apporte des crues, mais les villageois reconstruisent vite leurs maisons."}};
  Verdict v = (*strict)->apply(&mixed);
  EXPECT_FALSE(v.keep);
  EXPECT_TRUE(v.reason == "low_language_confidence" || v.reason == "language_not_allowed") << v.reason;
  o.languages = {"english"};
  auto bad = LanguageFilter::create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("english"), std::string::npos);
}

TEST_F(Filters, GopherQualityPassesTheGoodDocument) {
  EXPECT_EQ(quality(kGoodDoc), "");
}

TEST_F(Filters, GopherQualityEachRule) {
  // Word counts (non-symbol words only: the punctuation tokens do not count).
  EXPECT_EQ(quality("The cat and the dog sat with me."), "gopher_short_doc");
  GopherQualityOptions few;
  few.max_doc_words = 20;
  EXPECT_EQ(quality(kGoodDoc, few), "gopher_long_doc");
  // Mean word length.
  EXPECT_EQ(quality(repeat("a an to of it is be the and so. ", 6)), "gopher_below_avg_threshold");
  EXPECT_EQ(quality(std::string(kGoodDoc) + repeat(" incomprehensibilities counterrevolutionaries", 40)),
            "gopher_above_avg_threshold");
  // '#' and ellipses per word.
  EXPECT_EQ(quality(std::string(kGoodDoc) + "\n# # # # # # # # # # #"), "gopher_too_many_hashes");
  EXPECT_EQ(quality(std::string(kGoodDoc) + " ... ... ... ... ... ... … … … … … …"), "gopher_too_many_ellipsis");
  // Lines: bullets and trailing ellipses.
  std::string bullets;
  for (const char* line : {"The river runs quietly through the old valley and past the mill.",
                           "Farmers have planted wheat with care along both banks of that water.",
                           "Every spring brings floods, yet the villagers rebuild their homes quickly.",
                           "Children learn to swim early because summers there are long and warm.",
                           "Visitors often stay at a small inn near the stone bridge.",
                           "Local bakers sell bread, honey cakes and apple pies every morning."}) {
    bullets += std::string(bullets.empty() ? "" : "\n") + "  • " + line;
  }
  EXPECT_EQ(quality(bullets), "gopher_too_many_bullets");
  GopherQualityOptions no_bullets;
  no_bullets.max_bullet_lines_ratio = 0;  // off
  EXPECT_EQ(quality(bullets, no_bullets), "");
  std::string trailing = kGoodDoc;
  for (const char* from : {"mill.", "water.", "quickly."})
    trailing.replace(trailing.find(from), std::string(from).size(), "then…");
  EXPECT_EQ(quality(trailing), "gopher_too_many_end_ellipsis");
  // Words with a letter: numbers are words without one.
  EXPECT_EQ(quality(std::string(kGoodDoc) + repeat(" 1234 5678", 12)), "gopher_below_alpha_threshold");
  // Stop words: distinct and case-sensitive.
  std::string no_stop =
      "Rivers run quietly through old valleys past mills. Farmers plant wheat carefully along both banks. "
      "Every spring brings floods; villagers rebuild homes quickly. Children learn swimming early because summers "
      "last long. Visitors often stay near stone bridges. Local bakers sell bread, honey cakes, apple pies every "
      "morning. The cheese shop opens late in the evening.";
  EXPECT_EQ(quality(no_stop), "gopher_too_few_stop_words");
  GopherQualityOptions one;
  one.min_stop_words = 1;
  EXPECT_EQ(quality(no_stop, one), "");
  EXPECT_EQ(quality(""), "gopher_short_doc");
}

TEST_F(Filters, GopherRepetitionPassesTheGoodDocument) {
  EXPECT_EQ(repetition(kGoodDoc), "");
}

TEST_F(Filters, GopherRepetitionEachRule) {
  std::string para = "This paragraph repeats itself word for word many times.";
  EXPECT_EQ(repetition(std::string(kGoodDoc) + "\n\n" + para + "\n\n" + para + "\n\n" + para), "dup_para_frac");
  // One long duplicate paragraph among many: few duplicates, many of the characters.
  std::string long_para = repeat("Distinct words fill this long paragraph so that its copy weighs a lot. ", 1) +
                          "It keeps going with more fresh words about rivers, hills, towns, roads and people, "
                          "and it ends here after a good while of careful writing.";
  std::string paras = std::string(kGoodDoc) + "\n\nA\n\nB\n\nC\n\nD\n\n" + long_para + "\n\n" + long_para;
  EXPECT_EQ(repetition(paras), "dup_para_char_frac");
  // Lines separated by single newlines (paragraph rules see one paragraph).
  std::string lines = std::string(kGoodDoc) + "\nok\nok\nok\nok\nok";
  EXPECT_EQ(repetition(lines), "dup_line_frac");
  std::string line_chars = std::string(kGoodDoc) + "\nx1\nx2\nx3\nx4\nx5\nx6\n" + long_para + "\n" + long_para;
  GopherRepetitionOptions no_para;
  no_para.dup_para_char_frac = 0;
  EXPECT_EQ(repetition(line_chars, no_para), "dup_line_char_frac");
  // Top n-grams: "bright blue" said over and over.
  EXPECT_EQ(repetition(std::string(kGoodDoc) + repeat(" bright blue sky and", 12)), "top_2_gram");
  // Duplicate 5..10-grams without any short n-gram dominating.
  GopherRepetitionOptions no_top;
  no_top.top_ngram_fracs = {0, 0, 0};
  std::string ten = " one two three four five six seven eight nine ten";
  EXPECT_EQ(repetition(std::string(kGoodDoc) + ten + ten + ten + ten, no_top), "duplicated_5_n_grams");
  EXPECT_EQ(repetition(""), "empty");
}

TEST(GopherRepetition, NgramArithmetic) {
  std::vector<std::string> w = {"a", "b", "a", "b", "a", "b", "c"};
  // "a b" occurs 3 times: 3 characters x 3.
  EXPECT_EQ(top_ngram_chars(w, 2), 9u);
  // Ties go to the n-gram seen first: "xx yy" (5 chars) before "z w" (3 chars).
  EXPECT_EQ(top_ngram_chars({"xx", "yy", "z", "w"}, 2), 5u);
  EXPECT_EQ(top_ngram_chars({"a"}, 2), 0u);
  // Duplicate 2-grams: "ab" at 0, "ba" at 1, "ab" again at 2 (dup, jump 2), "ab" at 4 (dup): 4 chars.
  EXPECT_EQ(duplicate_ngram_chars(w, 2), 4u);
  auto [count, chars] = duplicate_elements({"x", "yy", "x", "yy", "x", ""});
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(chars, 4u);
}

TEST(GopherRepetition, RejectsMismatchedLists) {
  GopherRepetitionOptions o;
  o.top_ngram_fracs = {0.2};
  EXPECT_FALSE(GopherRepetitionFilter::create(o).ok());
  o = {};
  o.dup_ngram_sizes = {5, 6.5, 7, 8, 9, 10};
  EXPECT_FALSE(GopherRepetitionFilter::create(o).ok());
}

TEST(C4Quality, KeepsGoodLinesAndRemovesEachKindOfBadLine) {
  std::string doc = std::string(kGoodDoc) +
                    "\nHome | About | Contact"                       // no terminal punctuation
                    "\nRead more..."                                 // ends in an ellipsis
                    "\nYes."                                         // too few words
                    "\nPlease enable JavaScript to view this page."  // javascript
                    "\nThis site uses cookies to improve things."    // policy
                    "\nThe bridge was built in 1820.[1] It still stands[citation needed]." +
                    "\n" + std::string(1001, 'x') + " is a very long word.";
  C4Result r = c4_quality(doc, {});
  ASSERT_EQ(r.reason, "");
  EXPECT_EQ(r.text, std::string(kGoodDoc) + "\nThe bridge was built in 1820. It still stands.");
  EXPECT_EQ(r.no_terminal_punct, 2u);
  EXPECT_EQ(r.too_few_words, 1u);
  EXPECT_EQ(r.javascript, 1u);
  EXPECT_EQ(r.policy, 1u);
  EXPECT_EQ(r.too_long_word, 1u);
  EXPECT_EQ(r.citations, 1u);
}

TEST(C4Quality, DocumentRules) {
  EXPECT_EQ(c4_quality(std::string(kGoodDoc) + "\nLorem ipsum dolor sit amet.", {}).reason, "lorem_ipsum");
  EXPECT_EQ(c4_quality(std::string(kGoodDoc) + "\nThe code was {x} in the end.", {}).reason, "curly_bracket");
  // A curly brace on a line removed earlier (no terminal punctuation) does not count.
  EXPECT_EQ(c4_quality(std::string(kGoodDoc) + "\nfunction() { return 1; }", {}).reason, "");
  EXPECT_EQ(c4_quality("One good line here.\nAnother good line here.", {}).reason, "too_few_sentences");
  C4QualityOptions two;
  two.min_sentences = 2;
  EXPECT_EQ(c4_quality("One good line here.\nAnother good line here.", two).reason, "");
  // Several sentences on one line count one by one.
  EXPECT_EQ(c4_quality("One here. Two here. Three here. Four here. Five here.", {}).reason, "");
  // Quotes end a line; a trailing citation hides the period ("stands. [1]" ends in a space).
  C4QualityOptions off;
  off.min_sentences = -1;
  EXPECT_EQ(c4_quality("He said \"go now.\"\nIt stands. [1]", off).text, "He said \"go now.\"");
  EXPECT_EQ(remove_citations("a[12]b[edit]c[citation needed]d[x]"), "abcd[x]");
}

TEST(C4Quality, OperatorCountsRemovedLines) {
  auto f = C4QualityFilter::create({});
  ASSERT_TRUE(f.ok());
  Record r = {{"id", 7}, {"text", std::string(kGoodDoc) + "\nMenu\nAccept our privacy policy today now."}};
  EXPECT_TRUE((*f)->apply(&r).keep);
  EXPECT_EQ(r["text"], kGoodDoc);
  EXPECT_EQ((*f)->counts().changed, 1u);
  EXPECT_EQ((*f)->counts().notes.at("lines_no_terminal_punct"), 1u);
  EXPECT_EQ((*f)->counts().notes.at("lines_policy"), 1u);
}

}  // namespace
}  // namespace keel::data
