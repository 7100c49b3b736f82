// The BLEU tokenizers against sacrebleu 2.6.0: hard strings and every corpus line
// (tests/fixtures/eval/bleu_chrf.json), the intl classes against the Python regex
// module on every code point, and direct cases that state the rules.
#include "keel/eval/tokenizers.h"

#include <gtest/gtest.h>

#include "keel/util/file.h"
#include "keel/util/json.h"
#include "keel/util/sha256.h"
#include "eval/eval_fixtures.h"

namespace keel::eval {
namespace {

using test_fixtures::json_fixture;
using test_fixtures::source_root;

const Json& fixture() { return json_fixture("bleu_chrf.json"); }

std::string tok13a(std::string_view s) { return tokenize(BleuTokenizer::k13a, s); }
std::string tokintl(std::string_view s) { return tokenize(BleuTokenizer::kIntl, s); }
std::string tokchar(std::string_view s) { return tokenize(BleuTokenizer::kChar, s); }

TEST(BleuTokenizers, MatchSacrebleuOnHardStrings) {
  ASSERT_TRUE(fixture().is_object()) << "missing or malformed tests/fixtures/eval/bleu_chrf.json";
  const Json& t = fixture()["tokenizers"];
  const Json& strings = t["strings"];
  ASSERT_GE(strings.size(), 20u);
  for (const auto& [name, outputs] : t["outputs"].items()) {
    auto tok = parse_bleu_tokenizer(name);
    ASSERT_TRUE(tok.ok()) << name;
    ASSERT_EQ(outputs.size(), strings.size());
    for (size_t i = 0; i < strings.size(); ++i) {
      const std::string in = strings[i].get<std::string>();
      EXPECT_EQ(tokenize(*tok, in), outputs[i].get<std::string>()) << name << " on '" << in << "'";
    }
  }
}

TEST(BleuTokenizers, MatchSacrebleuOnEveryCorpusLine) {
  ASSERT_TRUE(fixture().is_object());
  size_t files = 0;
  for (const auto& [file, digests] : fixture()["tokenizers"]["corpus_sha256"].items()) {
    auto text = read_file(source_root() + "/tests/fixtures/eval/corpora/" + file);
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    ASSERT_FALSE(text->empty());
    ASSERT_EQ(text->back(), '\n');
    for (const auto& [name, digest] : digests.items()) {
      const BleuTokenizer tok = *parse_bleu_tokenizer(name);
      // "\n".join(tokenizer(line) for line in lines), lines split on "\n" only.
      std::string joined;
      size_t start = 0;
      for (size_t nl; (nl = text->find('\n', start)) != std::string::npos; start = nl + 1) {
        if (start) joined.push_back('\n');
        joined += tokenize(tok, std::string_view(*text).substr(start, nl - start));
      }
      EXPECT_EQ(Sha256::of(joined), digest.get<std::string>()) << name << " on " << file;
    }
    ++files;
  }
  EXPECT_GE(files, 7u);
}

TEST(BleuTokenizers, IntlClassesMatchTheRegexModuleOnEveryCodePoint) {
  ASSERT_TRUE(fixture().is_object());
  const Json& u = fixture()["unicode"];
  struct Class {
    const char* name;
    bool (*test)(char32_t);
  };
  for (Class cls : {Class{"P", is_intl_punctuation}, Class{"S", is_intl_symbol}, Class{"N", is_intl_number}}) {
    std::vector<bool> expected(0x110000, false);
    for (const Json& range : u[cls.name]) {
      for (uint32_t c = range[0].get<uint32_t>(); c <= range[1].get<uint32_t>(); ++c) expected[c] = true;
    }
    size_t mismatches = 0;
    for (char32_t c = 0; c < 0x110000; ++c) {
      if (cls.test(c) != expected[c] && ++mismatches <= 10) {
        ADD_FAILURE() << "\\p{" << cls.name << "} differs at U+" << std::hex << static_cast<uint32_t>(c);
      }
    }
    EXPECT_EQ(mismatches, 0u) << cls.name;
  }
}

TEST(BleuTokenizers, Rules13a) {
  // Only four entities, replaced one after the other: &amp;lt; becomes "<".
  EXPECT_EQ(tok13a("AT&amp;T said &quot;hi&quot;"), "AT & T said \" hi \"");
  EXPECT_EQ(tok13a("&amp;lt;"), "<");
  EXPECT_EQ(tok13a("&apos;x&#39;"), "& apos ; x & # 39 ;");
  EXPECT_EQ(tok13a("a<skipped>b"), "ab");
  EXPECT_EQ(tok13a("hy-\nphen new\nline"), "hyphen new line");
  // Hyphens stay inside words; a dash after a digit is split off.
  EXPECT_EQ(tok13a("state-of-the-art"), "state-of-the-art");
  EXPECT_EQ(tok13a("1990-2000, 3.5 or 1,000."), "1990 - 2000 , 3.5 or 1,000 .");
  EXPECT_EQ(tok13a("e.g. U.S.A. Mr. Smith"), "e . g . U . S . A . Mr . Smith");
  EXPECT_EQ(tok13a("in 2024."), "in 2024 .");  // the padding spaces make the final period split
  EXPECT_EQ(tok13a("$5.00 50% a/b"), "$ 5.00 50 % a / b");
  EXPECT_EQ(tok13a("Don't"), "Don't");
  // Non-ASCII punctuation is not split by 13a.
  EXPECT_EQ(tok13a("«Bonjour» — ça va?"), "«Bonjour» — ça va ?");
  EXPECT_EQ(tok13a("我们的模型。"), "我们的模型。");
  // Python whitespace, including \x1f and \x85, separates tokens; U+200B does not.
  EXPECT_EQ(tok13a("a\x1f" "b\xc2\x85" "c\xe2\x80\x8b" "d  "), "a b c\xe2\x80\x8b" "d");
}

TEST(BleuTokenizers, RulesIntlAndChar) {
  EXPECT_EQ(tokintl("state-of-the-art"), "state - of - the - art");
  EXPECT_EQ(tokintl("1990-2000, 3.5 or 1,000."), "1990-2000 , 3.5 or 1,000.");  // mteval-v14's quirk
  EXPECT_EQ(tokintl("«Bonjour» — ça va?"), "« Bonjour » — ça va ?");
  EXPECT_EQ(tokintl("我们的模型。"), "我们的模型 。");
  EXPECT_EQ(tokintl("€100 ±5 → 😀"), "€ 100 ± 5 → 😀");  // emoji are So, arrows Sm
  EXPECT_EQ(tokintl("AT&amp;T"), "AT & amp ; T");         // no entity handling
  EXPECT_EQ(tokchar("a b"), "a   b");                     // " ".join(line) keeps the space
  EXPECT_EQ(tokchar("模型 é"), "模 型   é");
  EXPECT_EQ(tokenize(BleuTokenizer::kNone, " as is \t"), " as is \t");
}

TEST(BleuTokenizers, TokenizeIntoGivesTheSplitTokens) {
  TokenizerScratch scratch;
  std::vector<std::string_view> tokens;
  tokenize_into(BleuTokenizer::kChar, "a b\xe3\x80\x80模", scratch, tokens);
  EXPECT_EQ(tokens, (std::vector<std::string_view>{"a", "b", "模"}));
  tokenize_into(BleuTokenizer::k13a, "Hi, there.", scratch, tokens);
  EXPECT_EQ(tokens, (std::vector<std::string_view>{"Hi", ",", "there", "."}));
  tokenize_into(BleuTokenizer::kNone, "  x  y ", scratch, tokens);
  EXPECT_EQ(tokens, (std::vector<std::string_view>{"x", "y"}));
  tokenize_into(BleuTokenizer::kIntl, "", scratch, tokens);
  EXPECT_TRUE(tokens.empty());
}

TEST(BleuTokenizers, PythonWhitespaceHelpers) {
  std::vector<std::string_view> out;
  split_py_whitespace("\xc2\xa0one\ttwo\xe2\x80\xa8three\xe3\x80\x80", out);
  EXPECT_EQ(out, (std::vector<std::string_view>{"one", "two", "three"}));
  EXPECT_EQ(rstrip_py_whitespace("x y \x1e\xc2\x85\xe2\x80\x89"), "x y");
  EXPECT_EQ(rstrip_py_whitespace("\xe2\x80\x8b"), "\xe2\x80\x8b");  // ZERO WIDTH SPACE is not whitespace
  EXPECT_EQ(rstrip_py_whitespace("  "), "");
}

TEST(BleuTokenizers, UnknownNameIsAnError) {
  EXPECT_FALSE(parse_bleu_tokenizer("zh").ok());
  EXPECT_FALSE(parse_bleu_tokenizer("13A").ok());
  EXPECT_EQ(bleu_tokenizer_name(*parse_bleu_tokenizer("intl")), "intl");
}

TEST(TokenInterner, NumbersDistinctTokensFromOne) {
  TokenInterner interner;
  EXPECT_EQ(interner.intern("a"), 1u);
  EXPECT_EQ(interner.intern("b"), 2u);
  EXPECT_EQ(interner.intern("a"), 1u);
  EXPECT_EQ(interner.intern(""), 3u);
  std::string buffer = "temporary";
  EXPECT_EQ(interner.intern(buffer), 4u);
  buffer = "overwritten";  // the interner kept its own copy
  EXPECT_EQ(interner.intern("temporary"), 4u);
  for (int i = 0; i < 5000; ++i) interner.intern(std::string("t").append(std::to_string(i)));  // grows, rehashes
  EXPECT_EQ(interner.intern("t1234"), 4u + 1235u);
  EXPECT_EQ(interner.size(), 5004u);
  interner.clear();
  EXPECT_EQ(interner.size(), 0u);
  EXPECT_EQ(interner.intern("b"), 1u);
}

}  // namespace
}  // namespace keel::eval
