// Stop strings (stop_strings.h): the cut before the first stop string, text held back
// while it could still start one and released when it cannot, stop strings split
// across pieces and across the tokens of one UTF-8 character (through the tokenizer's
// StreamingDecoder), a randomized comparison with a whole-text reference, bad input.
#include "keel/engine/stop_strings.h"

#include <gtest/gtest.h>

#include <random>

#include "byte_tokenizer.h"
#include "keel/engine/tokenizer_pretokenizer.h"

namespace keel::engine {
namespace {

StopStringMatcher matcher(std::vector<std::string> stops) {
  auto m = StopStringMatcher::create(std::move(stops));
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return std::move(m).value();
}

// Feeds pieces in order; returns what came out of each feed, then finish() last.
std::vector<std::string> run(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(m.feed(p));
  out.push_back(m.finish());
  return out;
}

TEST(StopStrings, WithoutStopStringsEverythingPassesAtOnce) {
  auto m = matcher({});
  EXPECT_EQ(run(m, {"Hello", " world", ""}), (std::vector<std::string>{"Hello", " world", "", ""}));
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.matched(), "");
}

TEST(StopStrings, CutsExactlyBeforeTheStopStringAndThenEmitsNothing) {
  auto m = matcher({"STOP"});
  EXPECT_EQ(run(m, {"Hello wor", "ld! STOP here", "more"}), (std::vector<std::string>{"Hello wor", "ld! ", "", ""}));
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "STOP");
}

TEST(StopStrings, CatchesAStopStringSplitAcrossPieces) {
  auto m = matcher({"</end>"});
  EXPECT_EQ(run(m, {"abc</", "en", "d>xyz"}), (std::vector<std::string>{"abc", "", "", ""}));
  EXPECT_TRUE(m.stopped());
  // One byte at a time.
  auto bytes = matcher({"</end>"});
  std::string out;
  for (char c : std::string("x</en</end>y")) out += bytes.feed(std::string(1, c));
  out += bytes.finish();
  EXPECT_EQ(out, "x</en");
}

TEST(StopStrings, ReleasesHeldTextOnceItCannotStartAStopString) {
  auto m = matcher({"</end>"});
  EXPECT_EQ(run(m, {"abc</", "b>", "!"}), (std::vector<std::string>{"abc", "</b>", "!", ""}));
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, FinishReturnsAPartialStopStringThatNeverCompleted) {
  auto m = matcher({"</end>"});
  EXPECT_EQ(run(m, {"abc</en"}), (std::vector<std::string>{"abc", "</en"}));
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, TheEarliestStopStringWinsAndTheFirstListedAtOnePosition) {
  auto m = matcher({"world", "lo w"});
  EXPECT_EQ(run(m, {"hello world"}), (std::vector<std::string>{"hel", ""}));
  EXPECT_EQ(m.matched(), "lo w");
  auto same_start = matcher({"ab", "abc"});
  EXPECT_EQ(run(same_start, {"xabcd"}), (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(same_start.matched(), "ab");
}

TEST(StopStrings, HandlesSelfOverlappingStopStrings) {
  // "aaab": the held "aa" must slide, not be dropped.
  auto m = matcher({"aab"});
  EXPECT_EQ(run(m, {"a", "a", "a", "b"}), (std::vector<std::string>{"", "", "a", "", ""}));
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, CutsBeforeAMultiByteStopCharacterSplitAcrossTokens) {
  // Each byte is one token, so "ö" (C3 B6) spans two; the decoder holds its first byte
  // and the matcher sees whole characters only.
  auto tokenizer = testing::make_byte_tokenizer();
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string stop : {"ö", "wö", "ö€"}) {
    StreamingDecoder decoder(*tokenizer);
    auto m = matcher({stop});
    std::string out;
    for (TokenId id : testing::byte_ids("héllo wö€rld")) {
      auto piece = decoder.feed(id);
      ASSERT_TRUE(piece.ok());
      const std::string safe = m.feed(*piece);
      EXPECT_TRUE(utf8_valid(safe)) << "emitted half a character for stop " << stop;
      out += safe;
    }
    out += m.feed(decoder.finish());
    out += m.finish();
    EXPECT_TRUE(m.stopped()) << stop;
    EXPECT_EQ(out, std::string("héllo wö€rld").substr(0, std::string("héllo wö€rld").find(stop))) << stop;
  }
}

TEST(StopStrings, ARawSplitCharacterIsHeldWhenItStartsAStopString) {
  // Fed raw bytes (no decoder), the first byte of "é" is held while "é" could follow.
  auto m = matcher({"é!"});
  EXPECT_EQ(m.feed("w\xC3"), "w");
  EXPECT_EQ(m.feed("\xA9"), "");  // "é" may still become "é!"
  EXPECT_EQ(m.feed("?"), "é?");
  EXPECT_EQ(m.feed("\xC3\xA9!"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopStrings, RandomSplitsAgreeWithCuttingTheWholeText) {
  std::mt19937 rng(1234);
  const std::string alphabet = "ab<>/ \xC3\xA9";
  const std::vector<std::string> stops = {"</a>", "bab", "a\xC3\xA9", "<<"};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int length = static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      const size_t k = rng() % 7;
      text += k < 6 ? std::string(1, alphabet[k]) : std::string("\xC3\xA9");
    }
    std::vector<std::string> chosen;
    for (const auto& s : stops) {
      if (rng() % 2) chosen.push_back(s);
    }
    size_t cut = std::string::npos;
    for (const auto& s : chosen) cut = std::min(cut, text.find(s));
    const std::string expected = text.substr(0, cut);

    auto m = matcher(chosen);
    std::string out;
    for (size_t i = 0; i < text.size();) {
      const size_t n = std::min(text.size() - i, static_cast<size_t>(rng() % 5));
      out += m.feed(text.substr(i, n));
      i += n;
    }
    out += m.finish();
    ASSERT_EQ(out, expected) << "text '" << text << "', trial " << trial;
    ASSERT_EQ(m.stopped(), cut != std::string::npos);
  }
}

TEST(StopStrings, RejectsHostileSizes) {
  auto many = StopStringMatcher::create(std::vector<std::string>(StopStringMatcher::kMaxStopStrings + 1, "x"));
  EXPECT_EQ(many.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(StopStringMatcher::create(std::vector<std::string>(StopStringMatcher::kMaxStopStrings, "x")).ok());
  auto long_one = StopStringMatcher::create({std::string(StopStringMatcher::kMaxStopStringBytes + 1, 'a')});
  EXPECT_EQ(long_one.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(long_one.status().message().find("1025 bytes"), std::string::npos) << long_one.status().message();
  // The longest allowed, all alike, fed a byte at a time against a text of the same
  // bytes: the worst case for holding back, still exact.
  auto worst = matcher({std::string(StopStringMatcher::kMaxStopStringBytes - 1, 'a') + "b"});
  std::string out;
  for (int i = 0; i < 5000; ++i) out += worst.feed("a");
  out += worst.finish();
  EXPECT_EQ(out, std::string(5000, 'a'));
}

TEST(StopStrings, RejectsEmptyAndInvalidUtf8StopStrings) {
  auto empty = StopStringMatcher::create({"ok", ""});
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("stop string 2 is empty"), std::string::npos);
  auto bad = StopStringMatcher::create({"\xff\xfe"});
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("UTF-8"), std::string::npos);
}

}  // namespace
}  // namespace keel::engine
