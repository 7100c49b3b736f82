// English sentences and words as the quality filters count them: the Treebank rules
// (contractions, quotes, the final period, punctuation split off) and Punkt-style
// sentence breaks (abbreviations, initials, numbers, ellipses).
#include "keel/data/english_words.h"

#include <gtest/gtest.h>

#include "keel/data/unicode_text.h"

namespace keel::data {
namespace {

using Words = std::vector<std::string>;

class EnglishWords : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = EnglishWordTokenizer::create();
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    tokenizer_ = *t;
  }
  Words words(std::string_view text) { return tokenizer_->words(text); }
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
};

std::vector<std::string> sentences(std::string_view text) {
  std::vector<std::string> out;
  for (auto s : split_sentences(text)) out.emplace_back(s);
  return out;
}

TEST_F(EnglishWords, SplitsContractionsAndTheFinalPeriod) {
  EXPECT_EQ(words("Don't stop."), (Words{"Do", "n't", "stop", "."}));
  EXPECT_EQ(words("I'm sure they'll say we've won."),
            (Words{"I", "'m", "sure", "they", "'ll", "say", "we", "'ve", "won", "."}));
  EXPECT_EQ(words("You cannot gonna"), (Words{"You", "can", "not", "gon", "na"}));
}

TEST_F(EnglishWords, MatchesNltksDocumentedExample) {
  // The example in NLTK's word tokenizer documentation, sentence by sentence.
  EXPECT_EQ(tokenizer_->sentence_words("Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\n"
                                       "two of them.\nThanks."),
            (Words{"Good", "muffins", "cost",   "$",   "3.88", "(",   "roughly", "3,36",  "euros",  ")", "in",
                   "New",  "York.",   "Please", "buy", "me",   "two", "of",      "them.", "Thanks", "."}));
  // With sentences split first, each sentence's final period is its own token.
  EXPECT_EQ(words("in New York.  Please buy me two of them.\nThanks."),
            (Words{"in", "New", "York", ".", "Please", "buy", "me", "two", "of", "them", ".", "Thanks", "."}));
}

TEST_F(EnglishWords, QuotesCommasAndSymbols) {
  EXPECT_EQ(words("He said \"hi, there\" #1 & more..."),
            (Words{"He", "said", "``", "hi", ",", "there", "''", "#", "1", "&", "more", "..."}));
  EXPECT_EQ(words("a--b [x] {y} <z>"), (Words{"a", "--", "b", "[", "x", "]", "{", "y", "}", "<", "z", ">"}));
  EXPECT_EQ(words("Really?! Yes: 10,000 of them"), (Words{"Really", "?", "!", "Yes", ":", "10,000", "of", "them"}));
  EXPECT_TRUE(words("").empty());
  EXPECT_TRUE(words(" \n\t ").empty());
}

TEST(Sentences, BreakAfterTerminalMarksButNotAbbreviations) {
  EXPECT_EQ(sentences("One. Two! Three? Four"), (std::vector<std::string>{"One.", "Two!", "Three?", "Four"}));
  EXPECT_EQ(sentences("Mr. Smith met Dr. Jones, e.g. at noon. Then left."),
            (std::vector<std::string>{"Mr. Smith met Dr. Jones, e.g. at noon.", "Then left."}));
  // An initial does not end a sentence; a word before a lowercase word still does.
  EXPECT_EQ(sentences("J. R. Tolkien wrote. and then"), (std::vector<std::string>{"J. R. Tolkien wrote.", "and then"}));
  // A number ends a sentence unless a lowercase word follows; an ellipsis does not.
  EXPECT_EQ(sentences("In 1990. The end... And so in 1990. on"),
            (std::vector<std::string>{"In 1990.", "The end... And so in 1990. on"}));
  // A closing quote after the period belongs to the sentence it closes.
  EXPECT_EQ(sentences("He said \"stop.\" Then he left."),
            (std::vector<std::string>{"He said \"stop.\"", "Then he left."}));
  EXPECT_TRUE(sentences("   ").empty());
  EXPECT_EQ(sentences("no terminal mark"), (std::vector<std::string>{"no terminal mark"}));
}

TEST(UnicodeText, PythonsLinesWhitespaceAndLetters) {
  auto lines = split_lines("a\r\nb\rc\n\nd\u2028e\n");
  std::vector<std::string> got(lines.begin(), lines.end());
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c", "", "d", "e"}));
  EXPECT_EQ(strip_space("\u3000 x y\u00a0\n"), "x y");
  auto words = split_on_space("a\u2003b  c");
  EXPECT_EQ(words.size(), 3u);
  EXPECT_TRUE(is_letter(U'é'));
  EXPECT_TRUE(is_letter(U'中'));
  EXPECT_FALSE(is_letter(U'3'));
  EXPECT_TRUE(is_punctuation_or_symbol(U'…'));
  EXPECT_TRUE(is_punctuation_or_symbol(U'#'));
  EXPECT_FALSE(is_punctuation_or_symbol(U'a'));
  EXPECT_EQ(code_point_count("héllo…"), 6u);
}

}  // namespace
}  // namespace keel::data
