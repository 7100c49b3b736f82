#include "keel/util/json_members.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "keel/util/json.h"

namespace keel {
namespace {

TEST(JsonMembers, MembersInOrderWithTheirTextUnchanged) {
  const std::string text = R"( {"object": "list", "data": [ {"embedding": [0.25, -1e-3, 3E+2]} ],
      "model":"m", "usage": {"prompt_tokens": 5}, "id": null, "k\u00e9y": "v\"q"} )";
  auto members = json_object_members(text);
  ASSERT_TRUE(members.ok()) << members.status().message();
  ASSERT_EQ(members->size(), 6u);
  EXPECT_EQ((*members)[0].key, "object");
  EXPECT_EQ((*members)[0].value, "\"list\"");
  EXPECT_EQ((*members)[1].key, "data");
  EXPECT_EQ((*members)[1].value, R"([ {"embedding": [0.25, -1e-3, 3E+2]} ])");
  EXPECT_EQ((*members)[3].value, R"({"prompt_tokens": 5})");
  EXPECT_EQ((*members)[4].value, "null");
  EXPECT_EQ((*members)[5].key, "k\xc3\xa9y");  // the escaped name, decoded
  EXPECT_EQ((*members)[5].value, R"("v\"q")");

  // Written back, it is the same JSON.
  EXPECT_EQ(*parse_json(json_object_text(*members)), *parse_json(text));
  auto empty = json_object_members("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(json_object_text(*empty), "{}");
}

TEST(JsonMembers, RefusesWhatIsNotOneValidObject) {
  for (const char* bad : {"", "[]", "\"x\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":01}",
                          "{\"a\":1.}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":\"\\x\"}",
                          "{\"a\":\"\\u12g4\"}", "{\"a\":\"unterminated}", "{\"a\":\"tab\there\"}",
                          "{\"a\":[1 2]}", "{\"a\":{\"b\" 1}}", "{a:1}", "{\"a\":\"\xff\"}",
                          "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xe2\x82\"}"}) {
    auto members = json_object_members(bad);
    EXPECT_FALSE(members.ok()) << bad;
    if (!members.ok()) {
      EXPECT_NE(members.status().message().find("at byte"), std::string::npos) << bad;
    }
  }
}

TEST(JsonMembers, NestingIsBounded) {
  auto nested = [](size_t depth) {
    std::string text = "{\"a\":";
    text.append(depth, '[');
    text.append(depth, ']');
    text += '}';
    return text;
  };
  const std::string deep = nested(100000);
  auto members = json_object_members(deep);
  ASSERT_FALSE(members.ok());
  EXPECT_NE(members.status().message().find("nested deeper"), std::string::npos);
  EXPECT_TRUE(json_object_members(nested(200)).ok());
}

// On random JSON documents the scanner agrees with the JSON parser: each member's text
// parses to the member's value.
TEST(JsonMembers, AgreesWithTheParserOnRandomDocuments) {
  auto name = [](char prefix, unsigned n) {
    std::string s(1, prefix);
    s += std::to_string(n);
    return s;
  };
  std::mt19937 random(7);
  std::function<Json(int)> make = [&](int depth) -> Json {
    switch (random() % (depth > 3 ? 4 : 6)) {
      case 0: return static_cast<int64_t>(random()) - (1ll << 31);
      case 1: return std::ldexp(static_cast<double>(random()), -static_cast<int>(random() % 40));
      case 2: {
        std::string s = "s\xc3\xa9\n\"";
        s += std::to_string(random());
        return s;
      }
      case 3: return random() % 2 == 0 ? Json(nullptr) : Json(random() % 2 == 0);
      case 4: {
        Json a = Json::array();
        for (unsigned i = random() % 4; i > 0; --i) a.push_back(make(depth + 1));
        return a;
      }
      default: {
        Json o = Json::object();
        for (unsigned i = random() % 4; i > 0; --i) o[name('k', random() % 10)] = make(depth + 1);
        return o;
      }
    }
  };
  for (int n = 0; n < 300; ++n) {
    Json doc = Json::object();
    for (unsigned i = random() % 6; i > 0; --i) doc[name('m', i)] = make(0);
    const std::string text = dump_json(doc, n % 2 == 0 ? -1 : 2);
    auto members = json_object_members(text);
    ASSERT_TRUE(members.ok()) << text;
    ASSERT_EQ(members->size(), doc.size());
    for (const JsonMember& m : *members) EXPECT_EQ(*parse_json(m.value), doc[m.key]) << text;
  }
}

}  // namespace
}  // namespace keel
