#include "keel/eval/porter_stemmer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "eval/eval_fixtures.h"

namespace keel::eval {
namespace {

using test_fixtures::source_root;

TEST(PorterStemmer, MatchesNltkOnEveryFixtureWord) {
  // word<TAB>stem from nltk 3.9.1 PorterStemmer() (make_rouge_fixtures.py): the
  // corpora's tokens and a generated list of suffix-rich words.
  std::string path = source_root() + "/tests/fixtures/eval/porter_stems.tsv";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  size_t rows = 0, misses = 0;
  std::string report;
  size_t start = 0;
  // Split on "\n" only: words may hold characters that getline-style readers or
  // Python's splitlines() would treat as line breaks.
  for (size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
    std::string line = text.substr(start, end - start);
    start = end + 1;
    size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << "malformed line " << rows + 1;
    std::string word = line.substr(0, tab);
    std::string expected = line.substr(tab + 1);
    std::string actual = porter_stem(word);
    ++rows;
    if (actual != expected && ++misses <= 30) report += word + " -> " + actual + " (nltk: " + expected + ")\n";
  }
  EXPECT_GT(rows, 10000u);
  EXPECT_EQ(misses, 0u) << report;
}

TEST(PorterStemmer, NltkExtensionsAndQuirks) {
  // The paper's examples.
  EXPECT_EQ(porter_stem("caresses"), "caress");
  EXPECT_EQ(porter_stem("ponies"), "poni");
  EXPECT_EQ(porter_stem("relational"), "relat");
  EXPECT_EQ(porter_stem("hopping"), "hop");
  EXPECT_EQ(porter_stem("filing"), "file");
  // NLTK's irregular forms and rules for short words.
  EXPECT_EQ(porter_stem("dying"), "die");
  EXPECT_EQ(porter_stem("skies"), "sky");
  EXPECT_EQ(porter_stem("dies"), "die");
  EXPECT_EQ(porter_stem("flies"), "fli");
  EXPECT_EQ(porter_stem("died"), "die");
  EXPECT_EQ(porter_stem("spied"), "spi");
  EXPECT_EQ(porter_stem("enjoy"), "enjoy");
  EXPECT_EQ(porter_stem("happy"), "happi");
  EXPECT_EQ(porter_stem("geology"), "geolog");
  EXPECT_EQ(porter_stem("is"), "is");  // two letters or fewer: untouched
  // The table and the length rule see the word as given, the rules see it lowercased.
  EXPECT_EQ(porter_stem("sky"), "sky");
  EXPECT_EQ(porter_stem("SKY"), "ski");
  EXPECT_EQ(porter_stem("IS"), "is");
  EXPECT_EQ(porter_stem(""), "");
}

}  // namespace
}  // namespace keel::eval
