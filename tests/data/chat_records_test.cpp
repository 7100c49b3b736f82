// Chat records in the data tools: where a record's text is found (a string field, an
// OpenAI / Hugging Face `messages` list, content parts, ShareGPT `conversations`), and
// the steps that rewrite text (PII, normalise, C4) or judge it (dedup, filters, the
// profile) on such records.
#include "keel/data/record_text.h"

#include <gtest/gtest.h>

#include <fstream>

#include "keel/data/c4_quality_filter.h"
#include "keel/data/dataset_profile.h"
#include "keel/data/dedup.h"
#include "keel/data/exact_dedup_operator.h"
#include "keel/data/length_filter.h"
#include "keel/data/normalize_operator.h"
#include "keel/data/pii.h"
#include "keel/data/pii_operator.h"
#include "support/made_up_words.h"
#include "support/test_support.h"

namespace keel::data {
namespace {

using keel::testing::made_up_words;
using keel::testing::TempDir;

Record chat(std::vector<std::pair<std::string, std::string>> turns) {
  Record messages = Record::array();
  for (auto& [role, content] : turns) messages.push_back({{"role", role}, {"content", content}});
  return Record{{"id", 1}, {"messages", std::move(messages)}};
}

TEST(RecordText, StringFieldOpenAiMessagesPartsAndShareGpt) {
  std::string joined;
  Record plain = {{"text", "hello"}, {"messages", Record::array({{{"role", "user"}, {"content", "ignored"}}})}};
  EXPECT_EQ(*record_text(plain, "text", &joined), "hello");  // the field wins over a chat

  Record openai = chat({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}});
  EXPECT_EQ(*record_text(openai, "text", &joined), "Be brief.\n\nHi\n\nHello!");
  EXPECT_EQ(*record_text(openai, "messages", &joined), "Be brief.\n\nHi\n\nHello!");
  std::vector<std::string> roles;
  ASSERT_TRUE(chat_messages(openai, "text", &roles));
  EXPECT_EQ(roles, (std::vector<std::string>{"system", "user", "assistant"}));

  // Content parts keep their text parts; a tool call's null content has none.
  Record parts = {{"messages",
                   {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Look:"}}, {{"type", "image_url"}}}}},
                    {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", Record::array()}},
                    {{"role", "tool"}, {"content", "42"}}}}};
  EXPECT_EQ(*record_text(parts, "text", &joined), "Look:\n\n42");

  Record sharegpt = {{"conversations", {{{"from", "human"}, {"value", "Q?"}}, {{"from", "gpt"}, {"value", "A."}}}}};
  EXPECT_EQ(*record_text(sharegpt, "text", &joined), "Q?\n\nA.");
  ASSERT_TRUE(chat_messages(sharegpt, "text", &roles));
  EXPECT_EQ(roles, (std::vector<std::string>{"human", "gpt"}));

  std::vector<std::string*> edit;
  ASSERT_TRUE(text_parts(&sharegpt, "text", &edit));
  ASSERT_EQ(edit.size(), 2u);
  *edit[1] = "B.";
  EXPECT_EQ(sharegpt["conversations"][1]["value"], "B.");
  EXPECT_EQ(sharegpt["conversations"][1]["from"], "gpt");
}

TEST(RecordText, NoTextWhenTheFieldIsNeitherAStringNorAChat) {
  std::string joined;
  std::vector<std::string*> parts;
  std::vector<std::string> roles;
  EXPECT_EQ(record_text(Record{{"id", 1}}, "text", &joined), nullptr);
  EXPECT_EQ(record_text(Record{{"text", 5}}, "text", &joined), nullptr);
  EXPECT_EQ(record_text(Record{{"messages", Record::array()}}, "text", &joined), nullptr);
  EXPECT_EQ(record_text(Record{{"messages", {"a", "b"}}}, "text", &joined), nullptr);  // not objects
  EXPECT_EQ(record_text(Record{{"messages", "a string"}}, "text", &joined), nullptr);
  // The fallback is for the default field only: a named field must be there.
  EXPECT_EQ(record_text(chat({{"user", "hi"}}), "body", &joined), nullptr);
  Record tags = {{"tags", {"x", "y"}}};
  EXPECT_FALSE(text_parts(&tags, "tags", &parts));
  EXPECT_TRUE(parts.empty());
  EXPECT_FALSE(chat_messages(Record{{"text", "plain"}}, "text", &roles));
  EXPECT_TRUE(has_text(chat({{"user", "hi"}}), "text"));
  EXPECT_TRUE(has_text(Record{{"text", ""}}, "text"));
  EXPECT_FALSE(has_text(Record{{"messages", "a string"}}, "text"));
  EXPECT_FALSE(has_text(chat({{"user", "hi"}}), "body"));
}

TEST(ChatRecords, PiiIsRedactedInEveryMessageAndRolesStay) {
  auto pii = PiiOperator::create({});
  ASSERT_TRUE(pii.ok());
  Record r = chat({{"user", "Mail me at jane.doe@example.com please."}, {"assistant", "Call 555-867-5309 instead."}});
  Verdict v = (*pii)->apply(&r);
  EXPECT_TRUE(v.keep && v.changed);
  EXPECT_EQ(r["messages"][0]["content"], "Mail me at [EMAIL] please.");
  EXPECT_EQ(r["messages"][1]["content"], "Call [PHONE] instead.");
  EXPECT_EQ(r["messages"][1]["role"], "assistant");
  EXPECT_EQ((*pii)->counts().notes.at("EMAIL"), 1u);
  EXPECT_EQ((*pii)->counts().notes.at("PHONE"), 1u);
}

TEST(ChatRecords, PiiFileRedactsChatsOfBothShapesAndCopiesTheRest) {
  TempDir dir;
  {
    std::ofstream out(dir.file("in.jsonl"));
    out << chat({{"user", "I am at bob@example.org"}, {"assistant", "Noted."}}).dump() << "\n"
        << R"({"conversations":[{"from":"human","value":"SSN 123-45-6789"},{"from":"gpt","value":"No."}]})" << "\n"
        << R"({"messages":"not a list"})" << "\n";
  }
  PiiFileOptions options;
  options.input = dir.file("in.jsonl");
  options.output = dir.file("out.jsonl");
  auto summary = redact_file(options);
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_EQ(summary->records_read, 3u);
  EXPECT_EQ(summary->records_changed, 2u);
  EXPECT_EQ(summary->records_without_field, 1u);
  std::ifstream in(dir.file("out.jsonl"));
  std::string first, second, third;
  std::getline(in, first);
  std::getline(in, second);
  std::getline(in, third);
  EXPECT_EQ(Record::parse(first)["messages"][0]["content"], "I am at [EMAIL]");
  EXPECT_EQ(Record::parse(second)["conversations"][0]["value"], "SSN [US_SSN]");
  EXPECT_EQ(third, R"({"messages":"not a list"})");
}

TEST(ChatRecords, NormalizeRewritesEachMessageAndDropsAnAllEmptyChat) {
  auto normalize = NormalizeOperator::create({});
  ASSERT_TRUE(normalize.ok());
  Record r = chat({{"user", "caf\u0065\u0301   time"}, {"assistant", "fine"}});
  EXPECT_TRUE((*normalize)->apply(&r).changed);
  EXPECT_EQ(r["messages"][0]["content"], "caf\u00e9 time");
  EXPECT_EQ(r["messages"][1]["content"], "fine");
  Record two = chat({{"user", "a   b"}, {"assistant", "c   d"}});
  EXPECT_TRUE((*normalize)->apply(&two).changed);
  EXPECT_EQ((*normalize)->counts().notes.at("whitespace"), 2u);  // records, not messages: r and two
  Record one_empty = chat({{"user", "  "}, {"assistant", "ok"}});
  EXPECT_TRUE((*normalize)->apply(&one_empty).keep);
  EXPECT_EQ(one_empty["messages"][0]["content"], "");
  Record all_empty = chat({{"user", " \n "}, {"assistant", "\t"}});
  Verdict v = (*normalize)->apply(&all_empty);
  EXPECT_FALSE(v.keep);
  EXPECT_EQ(v.reason, "empty_after_normalize");
}

TEST(ChatRecords, C4RemovesLinesPerMessageAndCountsSentencesOverAll) {
  C4QualityOptions options;
  options.min_sentences = 3;
  auto c4 = C4QualityFilter::create(options);
  ASSERT_TRUE(c4.ok());
  // Two sentences in one message and one in the other: enough together.
  Record r = chat({{"user", "What is the tallest mountain on Earth? I would like to know.\nthanks"},
                   {"assistant", "Mount Everest is the tallest mountain."}});
  Verdict v = (*c4)->apply(&r);
  ASSERT_TRUE(v.keep) << v.reason;
  EXPECT_EQ(r["messages"][0]["content"], "What is the tallest mountain on Earth? I would like to know.");
  EXPECT_EQ(r["messages"][1]["content"], "Mount Everest is the tallest mountain.");
  Record short_chat = chat({{"user", "How are you doing today?"}, {"assistant", "I am very well, thanks."}});
  v = (*c4)->apply(&short_chat);
  EXPECT_FALSE(v.keep);
  EXPECT_EQ(v.reason, "too_few_sentences");
  Record code = chat({{"user", "Fix this for me please."}, {"assistant", "Put the {braces} around the body."}});
  EXPECT_EQ((*c4)->apply(&code).reason, "curly_bracket");
}

TEST(ChatRecords, FiltersJudgeTheWholeConversation) {
  LengthFilterOptions options;
  options.min_words = 5;
  auto length = LengthFilter::create(options);
  ASSERT_TRUE(length.ok());
  Record two_words = chat({{"user", "Hi"}, {"assistant", "Hello"}});
  EXPECT_FALSE((*length)->apply(&two_words).keep);
  Record six_words = chat({{"user", "Hi there"}, {"assistant", "Hello to you too"}});
  EXPECT_TRUE((*length)->apply(&six_words).keep);
  Record no_text = {{"id", 3}, {"messages", "not a list"}};
  EXPECT_EQ((*length)->apply(&no_text).reason, "no_text_field");
}

TEST(ChatRecords, ExactDedupComparesTheMessagesText) {
  ExactDedupOperator dedup("text");
  Record a = chat({{"user", "What is 2+2?"}, {"assistant", "4"}});
  Record same = chat({{"user", "what  is 2+2?"}, {"assistant", "4"}});
  Record other = chat({{"user", "What is 2+2?"}, {"assistant", "Four"}});
  EXPECT_TRUE(dedup.apply(&a).keep);
  EXPECT_EQ(dedup.apply(&same).reason, "exact_duplicate");
  EXPECT_TRUE(dedup.apply(&other).keep);
}

TEST(ChatRecords, NearDedupFindsAConversationWithOneWordChanged) {
  TempDir dir;
  std::vector<Record> records;
  for (int i = 0; i < 20; ++i) {
    Record r = chat({{"user", made_up_words(100 + i, 60)}, {"assistant", made_up_words(200 + i, 120)}});
    r["id"] = i;
    records.push_back(std::move(r));
  }
  Record near_copy = records[7];
  near_copy["id"] = 20;
  std::string answer = near_copy["messages"][1]["content"];
  near_copy["messages"][1]["content"] = answer.replace(answer.size() - 7, 7, "zzzzzzz");
  records.push_back(near_copy);
  {
    std::ofstream out(dir.file("chat.jsonl"));
    for (const auto& r : records) out << r.dump() << "\n";
  }
  DedupOptions options;
  options.input = dir.file("chat.jsonl");
  options.output = dir.file("out.jsonl");
  options.near = true;
  options.minhash = datatrove_preset();
  auto summary = deduplicate(options);
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_EQ(summary->records_read, 21u);
  EXPECT_EQ(summary->removed, 1u);
  EXPECT_EQ(summary->rejected, 0u);
  std::ifstream in(dir.file("out.jsonl"));
  std::string line;
  std::vector<int> kept;
  while (std::getline(in, line)) {
    Record r = Record::parse(line);
    kept.push_back(r["id"].get<int>());
    EXPECT_TRUE(r["messages"].is_array());  // kept records keep their messages
  }
  EXPECT_EQ(kept.size(), 20u);
  EXPECT_EQ(kept.back(), 19);
}

TEST(ChatRecords, ProfileCountsConversationsMessagesAndRoles) {
  auto profiler = DatasetProfiler::create({});
  ASSERT_TRUE(profiler.ok());
  std::vector<Record> records = {
      chat({{"system", "Be kind."}, {"user", "My email is a@b.example, help."}, {"assistant", "Sure thing."}}),
      chat({{"user", "Hello there"}, {"assistant", "Hi"}}),
      chat({{"user", "Hello there"}, {"assistant", "Hi"}}),
  };
  uint64_t line = 0;
  for (const auto& r : records) ASSERT_TRUE((*profiler)->add(r, ++line).ok());
  ProfileJson p = (*profiler)->finish();
  EXPECT_EQ(p["text_field"], "messages");
  EXPECT_EQ(p["text"]["records"], 3);
  EXPECT_EQ(p["chat"]["records"], 3);
  EXPECT_EQ(p["chat"]["messages"]["max"], 3);
  EXPECT_EQ(p["chat"]["messages"]["min"], 2);
  EXPECT_EQ(p["chat"]["roles"]["user"], 3);
  EXPECT_EQ(p["chat"]["roles"]["system"], 1);
  EXPECT_EQ(p["duplicates"]["exact"]["duplicates"], 1);
  EXPECT_EQ(p["pii"]["by_type"]["EMAIL"], 1);
  bool lengths = false;
  for (const auto& f : p["fields"]) {
    if (f["name"] == "messages") lengths = f.contains("lengths") && f["lengths"]["words"]["max"] == 9;
  }
  EXPECT_TRUE(lengths) << p["fields"].dump();

  // A "messages" that is no list leaves the fallback to "conversations".
  auto sharegpt = DatasetProfiler::create({});
  ASSERT_TRUE(sharegpt.ok());
  Record both = {{"messages", "a note"}, {"conversations", {{{"from", "human"}, {"value", "Hi there"}}}}};
  ASSERT_TRUE((*sharegpt)->add(both, 1).ok());
  EXPECT_EQ((*sharegpt)->finish()["text_field"], "conversations");

  // Made-up roles by the thousand are counted, but not each by name.
  auto many = DatasetProfiler::create({});
  ASSERT_TRUE(many.ok());
  Record odd = {{"messages", Record::array()}};
  for (int i = 0; i < 1000; ++i) {
    std::string role = "r";
    role += std::to_string(i);
    odd["messages"].push_back({{"role", role}, {"content", "x"}});
  }
  ASSERT_TRUE((*many)->add(odd, 1).ok());
  ProfileJson q = (*many)->finish();
  EXPECT_EQ(q["chat"]["roles"].size(), 65u);
  EXPECT_EQ(q["chat"]["roles"]["(other)"], 936);
}

}  // namespace
}  // namespace keel::data
