// English words and sentences as the quality filters count them (spaCy's English
// tokenizer rules and sentencizer, as datatrove uses them): contractions, affixes,
// infixes, special cases, URLs, whitespace tokens, sentence breaks. Every expectation
// here is what spaCy 3.8's blank English pipeline gives for the same text.
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
  Words tokens(std::string_view text) {
    Words out;
    for (auto t : tokenizer_->tokens(text)) out.emplace_back(t);
    return out;
  }
  size_t sentences(std::string_view text) { return tokenizer_->sentence_count(text); }
  std::shared_ptr<const EnglishWordTokenizer> tokenizer_;
};

TEST_F(EnglishWords, Contractions) {
  EXPECT_EQ(words("Don't stop."), (Words{"Do", "n't", "stop", "."}));
  EXPECT_EQ(words("Don’t"), (Words{"Do", "n’t"}));
  EXPECT_EQ(words("dont"), (Words{"do", "nt"}));
  EXPECT_EQ(words("DON'T"), (Words{"DON'T"}));  // no all-caps special cases
  EXPECT_EQ(words("I'm sure they'll say we've won"),
            (Words{"I", "'m", "sure", "they", "'ll", "say", "we", "'ve", "won"}));
  EXPECT_EQ(words("hadn't've I'd've y'all"), (Words{"had", "n't", "'ve", "I", "'d", "'ve", "y'", "all"}));
  EXPECT_EQ(words("John'll cannot Gonna"), (Words{"John'll", "can", "not", "Gon", "na"}));
  EXPECT_EQ(words("Bob's"), (Words{"Bob", "'s"}));  // the 's suffix rule
  EXPECT_EQ(words("(don't)"), (Words{"(", "do", "n't", ")"}));
  EXPECT_EQ(words("well its shell"), (Words{"well", "its", "shell"}));  // words, not contractions
}

TEST_F(EnglishWords, PrefixesSuffixesAndInfixes) {
  EXPECT_EQ(words("\"hi,\" he"), (Words{"\"", "hi", ",", "\"", "he"}));
  EXPECT_EQ(words("well-known a/b x:y 3-4"),
            (Words{"well", "-", "known", "a", "/", "b", "x", ":", "y", "3", "-", "4"}));
  EXPECT_EQ(words("#1 50% $3.88 3.5kg 10,000"), (Words{"#", "1", "50", "%", "$", "3.88", "3.5", "kg", "10,000"}));
  EXPECT_EQ(words("on[40]. hello... wait…"), (Words{"on[40", "]", ".", "hello", "...", "wait", "…"}));
  EXPECT_EQ(words("NATO. U.S. end.Next"), (Words{"NATO", ".", "U.S.", "end", ".", "Next"}));
  EXPECT_EQ(words("-- ''"), (Words{"--", "''"}));
}

TEST_F(EnglishWords, SpecialCasesAndAddresses) {
  EXPECT_EQ(words("Mr. Sr. A. e.g., 10am °C."),
            (Words{"Mr.", "Sr", ".", "A.", "e.g.", ",", "10", "am", "°", "C", "."}));
  EXPECT_EQ(words("Mr.Smith"), (Words{"Mr.", "Smith"}));  // rejoined after the infix split
  EXPECT_EQ(words("see:http://a.b http://x.com/a-b mail@x.com hello.world"),
            (Words{"see", ":", "http://a.b", "http://x.com/a-b", "mail@x.com", "hello.world"}));
  EXPECT_EQ(words(":) and/or C++"), (Words{":)", "and/or", "C++"}));
}

TEST_F(EnglishWords, WhitespaceTokens) {
  EXPECT_EQ(tokens("a\nb"), (Words{"a", "\n", "b"}));
  EXPECT_EQ(tokens("a  b"), (Words{"a", " ", "b"}));
  EXPECT_EQ(tokens("a \n b"), (Words{"a", "\n ", "b"}));
  EXPECT_EQ(words(" a \n\n b "), (Words{"a", "b"}));
  EXPECT_TRUE(words("").empty());
  EXPECT_TRUE(words(" \n\t ").empty());
}

TEST_F(EnglishWords, SentenceBreaks) {
  // One. | Two! | Three? | Four. " | Five." | Six... seven. | 8. | nine
  EXPECT_EQ(sentences("One. Two! Three? Four. \"Five.\" Six... seven. 8. nine"), 8u);
  EXPECT_EQ(sentences("Mr. Smith met Dr. Jones at noon."), 1u);
  EXPECT_EQ(sentences("no terminal mark"), 1u);
  EXPECT_EQ(sentences("end.  Begin"), 2u);  // the extra space is a token that starts a sentence
  EXPECT_EQ(sentences("a. b"), 1u);         // "a." is one token, an initial
  EXPECT_EQ(sentences("Really?! Yes"), 2u);
  EXPECT_EQ(sentences("   "), 1u);  // one whitespace token
  EXPECT_EQ(sentences(""), 0u);
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
