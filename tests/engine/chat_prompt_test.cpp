// encode_chat on the real models: the rendered template, tokenized with control tokens
// parsed, and exactly one BOS whether the template writes it, the tokenizer adds it, or
// both (Gemma 3).
#include "keel/engine/chat_prompt.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "keel/engine/gguf.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

std::string model_path(const std::string& name) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/keel/models/" + name;
}

struct Loaded {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Loaded load(const std::string& path, bool with_template = true) {
  Loaded m;
  auto file = GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << file.status().to_string();
  if (!file.ok()) return m;
  m.file = std::move(*file);
  auto tokenizer = Tokenizer::from_gguf(*m.file);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
  if (tokenizer.ok()) m.tokenizer = std::move(*tokenizer);
  if (!with_template) return m;
  auto tmpl = chat_template_from_gguf(*m.file);
  EXPECT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  if (tmpl.ok()) m.chat_template = std::move(*tmpl);
  return m;
}

const std::vector<ChatMessage> kConversation = {
    {"system", "You are terse."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "Name a colour."}};

TEST(EncodeChat, SmolLm2UsesChatMlControlTokens) {
  const std::string path = model_path("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!std::ifstream(path).good()) GTEST_SKIP() << "default model not downloaded: " << path;
  Loaded m = load(path);
  ASSERT_TRUE(m.tokenizer && m.chat_template);
  auto ids = encode_chat(*m.tokenizer, *m.chat_template, kConversation);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  const auto im_start = m.tokenizer->find_token("<|im_start|>");
  const auto im_end = m.tokenizer->find_token("<|im_end|>");
  ASSERT_TRUE(im_start && im_end);
  EXPECT_EQ(ids->front(), *im_start);
  EXPECT_EQ(std::count(ids->begin(), ids->end(), *im_start), 5);  // four turns and the generation prompt
  EXPECT_EQ(std::count(ids->begin(), ids->end(), *im_end), 4);
  auto text = m.tokenizer->decode(*ids, /*render_special=*/true);
  ASSERT_TRUE(text.ok());
  auto rendered = m.chat_template->render(kConversation);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*text, *rendered);
  EXPECT_EQ(encode_chat(*m.tokenizer, *m.chat_template, {}).status().code(), ErrorCode::kInvalidArgument);
}

TEST(EncodeChat, Gemma3GetsExactlyOneBos) {
  const std::string path = model_path("gemma-3-270m-q4_k_m.gguf");
  if (!std::ifstream(path).good()) GTEST_SKIP() << "Gemma 3 model not downloaded: " << path;
  // This GGUF carries no chat template (keel chat says so); Gemma 3's own template, the
  // same for every size, is a chat-template fixture.
  Loaded m = load(path, /*with_template=*/false);
  ASSERT_TRUE(m.tokenizer);
  EXPECT_EQ(chat_template_from_gguf(*m.file).status().code(), ErrorCode::kNotFound);
  const std::string root = keel::testing::source_dir();
  auto parsed = ChatTemplate::parse(
      read_text(root + "/tests/fixtures/engine/chat_template/templates/google-gemma-3-4b-it.jinja"));
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  m.chat_template = std::move(*parsed);
  m.chat_template->set_special_tokens("<bos>", "<eos>");
  ASSERT_TRUE(m.tokenizer->adds_bos());
  auto rendered = m.chat_template->render(kConversation);
  ASSERT_TRUE(rendered.ok()) << rendered.status().to_string();
  ASSERT_EQ(rendered->rfind("<bos>", 0), 0u) << "Gemma's template writes BOS itself";
  auto ids = encode_chat(*m.tokenizer, *m.chat_template, kConversation);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  EXPECT_EQ(ids->front(), m.tokenizer->bos_id());
  EXPECT_EQ(std::count(ids->begin(), ids->end(), m.tokenizer->bos_id()), 1);
  const auto start_of_turn = m.tokenizer->find_token("<start_of_turn>");
  ASSERT_TRUE(start_of_turn);
  EXPECT_EQ((*ids)[1], *start_of_turn);
}

}  // namespace
}  // namespace keel::engine
