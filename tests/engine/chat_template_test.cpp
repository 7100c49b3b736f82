// Chat templates (chat_template.h) against jinja2 with transformers' settings: real
// model templates (tests/fixtures/engine/chat_template/templates/) rendered for many
// conversations, and small feature templates, byte for byte as
// tests/reference/make_chat_template_fixtures.py recorded them in expected.json. Plus
// the default model's own template, hostile templates and inputs, and the limits.
#include "keel/engine/chat_template.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "keel/engine/gguf_writer.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

using Json = nlohmann::ordered_json;

std::string fixture_dir() {
  return keel::testing::source_dir() + "/tests/fixtures/engine/chat_template";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Json& fixture() {
  static const Json doc = [] {
    std::ifstream in(fixture_dir() + "/expected.json");
    if (!in.good()) return Json();
    return Json::parse(in);
  }();
  return doc;
}

// The fixture's fixed time: Thursday 26 September 2024, 14:30:05.
std::tm fixed_now() {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 8;
  tm.tm_mday = 26;
  tm.tm_hour = 14;
  tm.tm_min = 30;
  tm.tm_sec = 5;
  tm.tm_wday = 4;
  tm.tm_yday = 269;
  return tm;
}

ChatTemplateOptions options_for(const Json& c) {
  ChatTemplateOptions o;
  o.add_generation_prompt = c.value("add_generation_prompt", true);
  o.bos_token = c.value("bos_token", std::string("<s>"));
  o.eos_token = c.value("eos_token", std::string("</s>"));
  o.variables = c.value("variables", Json::object());
  o.now = fixed_now();
  return o;
}

// jinja2's "TemplateError: message" for raise_exception: our error must carry message.
void expect_error_matches(const Status& status, const std::string& jinja_error, const std::string& label) {
  const std::string prefix = "TemplateError: ";
  if (jinja_error.rfind(prefix, 0) == 0) {
    EXPECT_NE(status.message().find(jinja_error.substr(prefix.size())), std::string::npos)
        << label << ": raise_exception's message lost: " << status.message();
  }
}

TEST(ChatTemplateFixture, RealTemplatesMatchJinja2ByteForByte) {
  const Json& doc = fixture();
  ASSERT_TRUE(doc.contains("cases")) << "missing " << fixture_dir()
                                     << "/expected.json (tests/reference/make_chat_template_fixtures.py writes it)";
  std::map<std::string, ChatTemplate> templates;
  std::map<std::string, std::pair<int, int>> passed;  // template -> (passed, total)
  for (const auto& c : doc["cases"]) {
    const std::string name = c["template"];
    const std::string label = name + " " + c["name"].get<std::string>();
    if (!templates.count(name)) {
      auto parsed = ChatTemplate::parse(read_file(fixture_dir() + "/templates/" + name + ".jinja"));
      ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status().to_string();
      templates.emplace(name, std::move(parsed).value());
    }
    const ChatTemplate& tmpl = templates.at(name);
    auto out = tmpl.render_json(c["messages"], options_for(c));
    auto& [ok_count, total] = passed[name];
    ++total;
    if (c.contains("expected")) {
      ASSERT_TRUE(out.ok()) << label << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["expected"].get<std::string>()) << label;
      if (*out == c["expected"].get<std::string>()) ++ok_count;
    } else {
      EXPECT_FALSE(out.ok()) << label << ": jinja2 raised " << c["error"] << " but Keel rendered:\n" << *out;
      if (!out.ok()) {
        expect_error_matches(out.status(), c["error"], label);
        ++ok_count;
      }
    }
  }
  for (const auto& [name, counts] : passed) {
    std::cout << "  " << name << ": " << counts.first << "/" << counts.second << " cases match jinja2\n";
  }
  EXPECT_GE(templates.size(), 14u);
}

TEST(ChatTemplateFixture, StringMessagesRenderAsTheirJson) {
  // render() with ChatMessage structs must equal render_json() of the same messages.
  const Json& doc = fixture();
  ASSERT_TRUE(doc.contains("cases"));
  int compared = 0;
  for (const auto& c : doc["cases"]) {
    if (!c.contains("expected") || !c["variables"].empty()) continue;
    std::vector<ChatMessage> messages;
    bool plain = true;
    for (const auto& m : c["messages"]) {
      if (m.size() != 2 || !m["content"].is_string()) plain = false;
      if (plain) messages.push_back({m["role"], m["content"]});
    }
    if (!plain) continue;
    auto tmpl =
        ChatTemplate::parse(read_file(fixture_dir() + "/templates/" + c["template"].get<std::string>() + ".jinja"));
    ASSERT_TRUE(tmpl.ok());
    auto out = tmpl->render(messages, options_for(c));
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ(*out, c["expected"].get<std::string>()) << c["template"] << " " << c["name"];
    ++compared;
  }
  EXPECT_GT(compared, 50);
}

TEST(ChatTemplateFixture, FeatureTemplatesMatchJinja2) {
  const Json& doc = fixture();
  ASSERT_TRUE(doc.contains("inline"));
  int count = 0;
  for (const auto& c : doc["inline"]) {
    const std::string source = c["template"];
    ++count;
    auto tmpl = ChatTemplate::parse(source);
    if (!tmpl.ok()) {
      EXPECT_TRUE(c.contains("error")) << "parse failed for " << source << ": " << tmpl.status().to_string();
      continue;
    }
    ChatTemplateOptions o = options_for(c);
    auto out = tmpl->render(std::vector<ChatMessage>{}, o);
    if (c.contains("expected")) {
      ASSERT_TRUE(out.ok()) << source << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["expected"].get<std::string>()) << source;
    } else {
      EXPECT_FALSE(out.ok()) << source << ": jinja2 raised " << c["error"] << " but Keel rendered: " << *out;
      if (!out.ok()) expect_error_matches(out.status(), c["error"], source);
    }
  }
  EXPECT_GT(count, 100);
}

// ---- the default model's template ----

TEST(ChatTemplateGguf, DefaultModelTemplateRendersLikeJinja2) {
  auto path = keel::testing::default_model_path();
  if (!path) GTEST_SKIP() << "default model not fetched (scripts/fetch-default-model fetches it; CI has it)";
  auto file = GgufFile::open(*path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto tmpl = chat_template_from_gguf(**file);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  EXPECT_EQ(tmpl->source(), read_file(fixture_dir() + "/templates/HuggingFaceTB-SmolLM2-135M-Instruct.jinja"));
  EXPECT_EQ(tmpl->bos_token(), "<|im_start|>");
  EXPECT_EQ(tmpl->eos_token(), "<|im_end|>");
  auto out = tmpl->render({{"user", "Hello!"}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
}

std::string gguf_image(const std::vector<std::pair<std::string, std::string>>& strings, bool with_tokens) {
  GgufWriter w;
  EXPECT_TRUE(w.add_string("general.architecture", "llama").ok());
  for (const auto& [k, v] : strings) EXPECT_TRUE(w.add_string(k, v).ok());
  if (with_tokens) {
    EXPECT_TRUE(w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"}).ok());
    EXPECT_TRUE(w.add_uint32("tokenizer.ggml.bos_token_id", 1).ok());
    EXPECT_TRUE(w.add_uint32("tokenizer.ggml.eos_token_id", 2).ok());
  }
  return w.encode_header();
}

TEST(ChatTemplateGguf, ReadsTemplateAndSpecialTokensFromMetadata) {
  const std::string image =
      gguf_image({{"tokenizer.chat_template", "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}}, true);
  auto file = GgufFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto tmpl = chat_template_from_gguf(**file);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  auto out = tmpl->render({{"user", "hi"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<s>hi</s>");
  ChatTemplateOptions o;
  o.bos_token = "[B]";
  EXPECT_EQ(*tmpl->render({{"user", "hi"}}, o), "[B]hi</s>");
}

TEST(ChatTemplateGguf, ModelWithoutTemplateIsNotFound) {
  const std::string image = gguf_image({}, true);
  auto file = GgufFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  ASSERT_TRUE(file.ok());
  auto tmpl = chat_template_from_gguf(**file);
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(tmpl.status().message().find("tokenizer.chat_template"), std::string::npos);
}

TEST(ChatTemplateGguf, BrokenTemplateInModelIsAnErrorWithPosition) {
  const std::string image = gguf_image({{"tokenizer.chat_template", "ok\n{% for m in messages %}"}}, false);
  auto file = GgufFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  ASSERT_TRUE(file.ok());
  auto tmpl = chat_template_from_gguf(**file);
  ASSERT_FALSE(tmpl.ok());
  EXPECT_EQ(tmpl.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(tmpl.status().message().find("endfor"), std::string::npos) << tmpl.status().message();
}

// ---- behaviour that has no jinja2 fixture ----

Result<std::string> render(const std::string& source, const ChatTemplateOptions& options = {},
                           std::vector<ChatMessage> messages = {}) {
  KEEL_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(source));
  return t.render(messages, options);
}

TEST(ChatTemplate, RaiseExceptionKeepsTheMessageAndPosition) {
  auto out = render("line one\n  {{ raise_exception('roles must alternate') }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "chat template: line 2, column 6: roles must alternate");
}

TEST(ChatTemplate, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    const char* source;
    const char* expected;
  };
  const Case cases[] = {
      {"a\n{{ 1 + }}", "line 2, column 8: unexpected '}}'"},
      {"a\nb {% if x %}", "unexpected end of template"},
      {"{{ 'abc", "line 1, column 4: unterminated string literal"},
      {"x\n  {# never closed", "line 2, column 3: unterminated comment"},
      {"{{ x | nosuch }}", "line 1, column 8: no filter named 'nosuch'"},
      {"{{ x is nosuch }}", "no test named 'nosuch'"},
      {"{% include 'other' %}", "not supported"},
      {"{{ (1, 2 }}", "unexpected '}', expected ')'"},
      {"{% endfor %}", "unknown tag 'endfor'"},
      {"{% break %}", "outside of a for loop"},
      {"{{ 99999999999999999999 }}", "does not fit in 64 bits"},
      {"{{ x \x01 }}", "unexpected character '\\x01'"},
  };
  for (const auto& c : cases) {
    auto t = ChatTemplate::parse(c.source);
    ASSERT_FALSE(t.ok()) << c.source;
    EXPECT_EQ(t.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.expected), std::string::npos) << c.source << " -> " << t.status().message();
  }
}

TEST(ChatTemplate, InvalidUtf8InMessagesPassesThroughUnchanged) {
  const std::string bad = "ok \xff\xfe mid \xc3 end \xe2\x82";  // 18 bytes; each bad byte counts as a character
  auto out = render("{% for m in messages %}[{{ m.content }}|{{ m.content|trim }}|{{ m.content|length }}]{% endfor %}",
                    {}, {{"user", bad}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::string expected = "[";
  expected += bad;
  expected += "|";
  expected += bad;
  expected += "|18]";
  EXPECT_EQ(*out, expected);
  auto json = render("{{ messages[0].content|tojson }}", {}, {{"user", "\xff\"x"}});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, "\"\xff\\\"x\"");
}

TEST(ChatTemplate, ContentThatLooksLikeTemplateSyntaxIsNotEvaluated) {
  auto out = render("{{ messages[0].content }}", {}, {{"user", "{{ 7 * 7 }} {% if %} {# x #}"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "{{ 7 * 7 }} {% if %} {# x #}");
}

TEST(ChatTemplate, StrftimeNowUsesTheInjectedTime) {
  ChatTemplateOptions o;
  o.now = fixed_now();
  auto out = render("{{ strftime_now('%d %b %Y') }}", o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "26 Sep 2024");
  auto current = render("{{ strftime_now('%Y')|length }}");
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(*current, "4");
}

TEST(ChatTemplate, VariablesOverrideDefaultsAndKeepKeyOrder) {
  ChatTemplateOptions o;
  o.variables = Json::parse(R"({"tools": [{"z": 1, "a": 2}], "add_generation_prompt": false, "x": "y"})");
  auto out = render("{{ tools|tojson }} {{ add_generation_prompt }} {{ x }}", o);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"([{"z": 1, "a": 2}] False y)");
}

TEST(ChatTemplate, RenderJsonRejectsMalformedMessages) {
  auto t = ChatTemplate::parse("{{ messages }}");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->render_json(Json::object()).ok());
  EXPECT_FALSE(t->render_json(Json::parse("[1, 2]")).ok());
  ChatTemplateOptions o;
  o.variables = Json::array();
  EXPECT_FALSE(t->render_json(Json::array(), o).ok());
}

TEST(ChatTemplate, OneParsedTemplateRendersConcurrently) {
  auto t = ChatTemplate::parse(
      "{% for m in messages %}{{ m.role }}:{{ m.content|upper }}{% if not loop.last %},{% endif %}{% endfor %}");
  ASSERT_TRUE(t.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) {
        std::string content = "a";
        content += std::to_string(i);
        std::string expected = "user:A";
        expected += std::to_string(i);
        expected += ",assistant:B";
        auto out = t->render({{"user", content}, {"assistant", "b"}});
        if (!out.ok() || *out != expected) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- hostile templates: each ends in an error, never a crash or a hang ----

TEST(ChatTemplateHostile, DeepNestingIsRefusedAtParse) {
  for (const std::string& open : {std::string("("), std::string("["), std::string("-"), std::string("not ")}) {
    std::string source = "{{ ";
    for (int i = 0; i < 5000; ++i) source += open;
    source += "1 }}";
    auto t = ChatTemplate::parse(source);
    ASSERT_FALSE(t.ok()) << open;
    EXPECT_EQ(t.status().code(), ErrorCode::kInvalidArgument);
  }
  std::string blocks;
  for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
  auto t = ChatTemplate::parse(blocks);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("nested too deeply"), std::string::npos) << t.status().message();
}

TEST(ChatTemplateHostile, InfiniteMacroRecursionStops) {
  auto out = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("nested too deeply"), std::string::npos) << out.status().message();
}

TEST(ChatTemplateHostile, HugeLoopsHitTheIterationLimit) {
  ChatTemplateOptions o;
  o.limits.max_loop_iterations = 100000;
  auto out = render("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", o);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("loop iterations"), std::string::npos) << out.status().message();
}

TEST(ChatTemplateHostile, HugeOutputHitsTheOutputLimit) {
  ChatTemplateOptions o;
  o.limits.max_output_bytes = 1 << 20;
  auto loop = render("{% for a in range(100000) %}{{ 'x' * 100 }}{% endfor %}", o);
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), ErrorCode::kResourceExhausted);
  auto doubling = render(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length "
      "}}",
      o);
  ASSERT_FALSE(doubling.ok());
  EXPECT_EQ(doubling.status().code(), ErrorCode::kResourceExhausted);
  auto repeat = render("{{ 'x' * 9000000000000000000 }}", o);
  ASSERT_FALSE(repeat.ok());
  EXPECT_EQ(repeat.status().code(), ErrorCode::kResourceExhausted);
  auto list_repeat = render("{{ ([1] * 9000000000000000000)|length }}", o);
  ASSERT_FALSE(list_repeat.ok());
}

TEST(ChatTemplateHostile, IntegerOverflowIsAnError) {
  for (const char* source : {"{{ 9223372036854775807 + 1 }}", "{{ 2 ** 64 }}", "{{ -(-9223372036854775807 - 1) }}",
                             "{{ 3037000500 * 3037000500 }}", "{{ (-9223372036854775807 - 1) // -1 }}"}) {
    auto out = render(source);
    ASSERT_FALSE(out.ok()) << source;
    EXPECT_NE(out.status().message().find("overflow"), std::string::npos) << out.status().message();
  }
}

TEST(ChatTemplateHostile, HugeRangeAndSliceStepsDoNotOverflow) {
  // Python's answers; a step that jumps past INT64_MAX must end the sequence, not wrap.
  auto range = render("{{ range(-9223372036854775807 - 1, 9223372036854775807, 4611686018427387904)|list }}");
  ASSERT_TRUE(range.ok()) << range.status().to_string();
  EXPECT_EQ(*range, "[-9223372036854775808, -4611686018427387904, 0, 4611686018427387904]");
  auto slice = render(
      "{{ 'abc'[1::9223372036854775807] }}|{{ 'abc'[::-9223372036854775807] }}|{{ [1, 2][-9223372036854775807:] }}");
  ASSERT_TRUE(slice.ok()) << slice.status().to_string();
  EXPECT_EQ(*slice, "b|c|[1, 2]");
  auto too_big = render("{{ range(9223372036854775807)|length }}");
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("Range too big"), std::string::npos);
}

TEST(ChatTemplateHostile, SelfReferencingNamespaceDoesNotRecurseForever) {
  auto out = render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}");
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<Namespace {'me': <Namespace {...}>}>");
  auto json = render("{% set ns = namespace() %}{{ ns|tojson }}");
  EXPECT_FALSE(json.ok());
}

TEST(ChatTemplateHostile, OversizedTemplateIsRefused) {
  auto t = ChatTemplate::parse(std::string(5u << 20, 'x'));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), ErrorCode::kInvalidArgument);
}

TEST(ChatTemplateHostile, GarbageSourcesNeverCrash) {
  // Every prefix of a real template, and a few byte soups: parse may fail, render may
  // fail, neither may crash.
  const std::string real = read_file(fixture_dir() + "/templates/meta-llama-Llama-3.1-8B-Instruct.jinja");
  ASSERT_FALSE(real.empty());
  int parsed = 0;
  for (size_t n = 0; n <= real.size(); n += 7) {
    auto t = ChatTemplate::parse(std::string_view(real).substr(0, n));
    if (!t.ok()) continue;
    ++parsed;
    (void)t->render({{"system", "s"}, {"user", "u"}});
  }
  EXPECT_GT(parsed, 0);
  const char* soups[] = {"{{{{{{",       "}}}}%}",      "{%%}{%-%}{%+%}",        "{{-}}",
                         "{#-#}{#+#}",   "{{ [}",       "{{ {'a': [1, (2,}] }}", "{% for %}",
                         "{% set %}",    "{% macro %}", "{% if %}{% elif %}",    "\xff\xfe{{ \xff }}",
                         "{{ 'a' is }}", "{{ x[::] }}", "{{ x[1:2:3:4] }}",      "{% raw %}",
                         "{{ 1e999 }}",  "{{ .5 }}"};
  for (const char* s : soups) {
    auto t = ChatTemplate::parse(s);
    if (t.ok()) (void)t->render({});
  }
}

}  // namespace
}  // namespace keel::engine
