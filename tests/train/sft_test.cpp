// SFT examples (sft_data.h) on a byte-level tokenizer and a small chat template, and on
// SmolLM2's real tokenizer and template; the SFT loop (sft_trainer.h) on a tiny model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "engine/byte_tokenizer.h"
#include "keel/engine/chat_template.h"
#include "keel/engine/gguf.h"
#include "keel/train/adapter_gguf.h"
#include "keel/train/sft_checkpoint.h"
#include "keel/train/sft_data.h"
#include "keel/train/sft_trainer.h"
#include "keel/util/file.h"
#include "support/test_support.h"
#include "train/tiny_model.h"

namespace keel::train {
namespace {

using nlohmann::json;

// The text of the targeted tokens (byte tokenizer: one byte per id).
std::string targeted_text(const SftExample& e) {
  std::string s;
  for (int32_t t : e.targets) {
    if (t >= 0) s += static_cast<char>(t);
  }
  return s;
}

TEST(SftData, MessagesTrainOnEveryAssistantTurnOnly) {
  const auto tokenizer = engine::testing::make_byte_tokenizer({}, -1);
  ASSERT_NE(tokenizer, nullptr);
  auto tmpl = engine::ChatTemplate::parse(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  const json record = json::parse(R"({"messages": [
      {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"},
      {"role": "assistant", "content": "Ciao"}]})");
  auto e = encode_sft_record(*tokenizer, &*tmpl, record);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  const std::string text = "<system>Be brief.\n<user>Hi\n<assistant>Hello\n<user>Bye\n<assistant>Ciao\n";
  EXPECT_EQ(e->tokens, engine::testing::byte_ids(text));
  // Each assistant turn as the template closes it: content and its newline.
  EXPECT_EQ(targeted_text(*e), "Hello\nCiao\n");
  // Targets are the next tokens: the one before "Hello" (the '>' of "<assistant>") predicts 'H'.
  const size_t h = text.find("Hello");
  EXPECT_EQ(e->targets[h - 1], 'H');
  EXPECT_EQ(e->targets[h - 2], -1);
  EXPECT_EQ(e->targets.back(), -1);
  EXPECT_EQ(e->target_count(), 11);

  // Cut to 44 tokens (through the first answer): only its targets remain.
  auto cut = encode_sft_record(*tokenizer, &*tmpl, record, 44);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->tokens.size(), 44u);
  EXPECT_EQ(targeted_text(*cut), "Hello\n");
  EXPECT_EQ(encode_sft_record(*tokenizer, &*tmpl, record, 20).status().code(),
            ErrorCode::kFailedPrecondition);  // nothing left to train on

  EXPECT_FALSE(
      encode_sft_record(*tokenizer, &*tmpl, json::parse(R"({"messages": [{"role": "user", "content": "x"}]})")).ok());
  EXPECT_FALSE(encode_sft_record(*tokenizer, &*tmpl, json::parse(R"({"messages": [{"role": "user"}]})")).ok());
  EXPECT_FALSE(encode_sft_record(*tokenizer, nullptr, record).ok());  // no template
  EXPECT_FALSE(encode_sft_record(*tokenizer, &*tmpl, json::parse(R"({"text": "x"})")).ok());
  // A template that rewrites earlier turns once a later one exists cannot be masked.
  auto rewriting = engine::ChatTemplate::parse(
      "{% for m in messages %}{% if loop.last %}[{{ m.content }}]{% else %}{{ m.content }}{% endif %}{% endfor %}");
  ASSERT_TRUE(rewriting.ok());
  EXPECT_FALSE(encode_sft_record(*tokenizer, &*rewriting, record).ok());
}

// ShareGPT conversations and Alpaca instructions train as the messages they stand for.
TEST(SftData, ShareGptAndAlpacaRecordsTrainAsTheirMessages) {
  const auto tokenizer = engine::testing::make_byte_tokenizer({{"<eos>", engine::TokenType::kControl}}, 256);
  ASSERT_NE(tokenizer, nullptr);
  auto tmpl = engine::ChatTemplate::parse(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  auto encoded = [&](const char* text, const engine::ChatTemplate* t = nullptr) {
    auto e = encode_sft_record(*tokenizer, t, json::parse(text));
    EXPECT_TRUE(e.ok()) << text << ": " << e.status().to_string();
    return e.ok() ? *e : SftExample{};
  };
  const SftExample messages = encoded(R"({"messages": [{"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})", &*tmpl);
  const SftExample sharegpt = encoded(R"({"conversations": [{"from": "system", "value": "Be brief."},
      {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]})", &*tmpl);
  EXPECT_EQ(sharegpt.tokens, messages.tokens);
  EXPECT_EQ(sharegpt.targets, messages.targets);
  const SftExample alpaca = encoded(R"({"instruction": "Add", "input": "2 and 2", "output": "4"})", &*tmpl);
  EXPECT_EQ(alpaca.tokens, engine::testing::byte_ids("<user>Add\n\n2 and 2\n<assistant>4\n"));
  EXPECT_EQ(targeted_text(alpaca), "4\n");
  // Without a template, Alpaca is a prompt and its completion; an empty input adds nothing.
  const SftExample plain = encoded(R"({"instruction": "Say yes", "input": "", "output": "yes"})");
  EXPECT_EQ(targeted_text(plain).substr(0, 3), "yes");
  EXPECT_EQ(plain.tokens.back(), 256) << "EOS after the completion";
  EXPECT_EQ(plain.tokens.size(), std::string("Say yes\n\nyes").size() + 1);
  for (const char* bad : {R"({"conversations": []})", R"({"conversations": [{"from": "human"}]})",
                          R"({"conversations": [{"from": "robot", "value": "x"}]})",
                          R"({"instruction": 1, "output": "x"})"}) {
    EXPECT_EQ(encode_sft_record(*tokenizer, &*tmpl, json::parse(bad)).status().code(), ErrorCode::kInvalidArgument)
        << bad;
  }
}

TEST(SftData, PromptCompletionTrainsOnTheCompletionAndEos) {
  const auto tokenizer = engine::testing::make_byte_tokenizer({{"<eos>", engine::TokenType::kControl}}, 256);
  ASSERT_NE(tokenizer, nullptr);
  auto e = encode_sft_record(*tokenizer, nullptr, json::parse(R"({"prompt": "2+2=", "completion": "4"})"));
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->tokens, (std::vector<int32_t>{'2', '+', '2', '=', '4', 256}));
  EXPECT_EQ(e->targets, (std::vector<int32_t>{-1, -1, -1, '4', 256, -1}));
  EXPECT_FALSE(encode_sft_record(*tokenizer, nullptr, json::parse(R"({"prompt": 1, "completion": "4"})")).ok());
  // The format step's shape trains the same way.
  auto formatted = encode_sft_record(*tokenizer, nullptr, json::parse(R"({"prompt": "2+2=", "response": "4"})"));
  ASSERT_TRUE(formatted.ok()) << formatted.status().to_string();
  EXPECT_EQ(formatted->targets, e->targets);
  EXPECT_FALSE(encode_sft_record(*tokenizer, nullptr, json::parse(R"({"prompt": "2+2=", "response": 4})")).ok());
}

TEST(SftData, SmolLm2ChatTemplateMasksTheAssistantAnswer) {
  const char* home = std::getenv("HOME");
  const std::string path = std::string(home ? home : "") + "/.cache/keel/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::ifstream(path).good()) GTEST_SKIP() << "default model not downloaded: " << path;
  auto file = engine::GgufFile::open(path);
  ASSERT_TRUE(file.ok());
  auto tokenizer = engine::Tokenizer::from_gguf(**file);
  ASSERT_TRUE(tokenizer.ok());
  auto tmpl = engine::chat_template_from_gguf(**file);
  ASSERT_TRUE(tmpl.ok());
  auto e = encode_sft_record(**tokenizer, &*tmpl, json::parse(R"({"messages": [
      {"role": "user", "content": "What is the capital of France?"},
      {"role": "assistant", "content": "Paris."}]})"));
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  std::vector<int32_t> targeted;
  for (int32_t t : e->targets) {
    if (t >= 0) targeted.push_back(t);
  }
  auto text = (*tokenizer)->decode(targeted, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "Paris.<|im_end|>\n");
}

TEST(SftTrainer, LearnsItsExamplesInTheStepsItPromises) {
  const auto tiny = testing::make_tiny_model({});
  auto lora = LoraWeights::create(*tiny.model, {.rank = 4,
                                                .alpha = 8,
                                                .dropout = 0.05f,
                                                .seed = 2,
                                                .modules = {LoraModule::kQ, LoraModule::kV, LoraModule::kUp}});
  ASSERT_TRUE(lora.ok());
  std::vector<SftExample> examples(3);
  for (int i = 0; i < 3; ++i) {
    for (int t = 0; t < 10; ++t) examples[i].tokens.push_back((i * 11 + t * 5) % 48);
    examples[i].targets.assign(10, -1);
    for (int t = 4; t < 9; ++t) examples[i].targets[t] = examples[i].tokens[t + 1];
  }
  SftOptions o;
  o.epochs = 12;
  o.batch = 2;
  o.learning_rate = 2e-2f;
  o.warmup_steps = 2;
  EXPECT_EQ(sft_step_count(3, o), 24);
  std::vector<SftProgress> seen;
  AdamW optimizer(o.adamw);
  auto r = train_sft(*tiny.model, *lora, optimizer, examples, o,
                     {.on_step = [&](const SftProgress& p) { seen.push_back(p); }});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->steps, 24);
  ASSERT_EQ(seen.size(), 24u);
  EXPECT_EQ(seen[0].learning_rate, 0.0f);  // warmup starts at 0
  EXPECT_EQ(seen.back().step, 24);
  EXPECT_EQ(r->tokens, 12 * 30);
  EXPECT_LT(r->last_loss, 0.3 * r->first_loss) << r->first_loss << " -> " << r->last_loss;
  o.max_steps = 5;
  EXPECT_EQ(sft_step_count(3, o), 5);
  AdamW fresh(o.adamw);
  EXPECT_FALSE(train_sft(*tiny.model, *lora, fresh, {}, o).ok());
  EXPECT_EQ(train_sft(*tiny.model, *lora, optimizer, examples, o).status().code(), ErrorCode::kInvalidArgument)
      << "an optimizer that has taken steps the options do not skip";
  o.batch = 0;
  EXPECT_FALSE(train_sft(*tiny.model, *lora, fresh, examples, o).ok());
}

// A training stopped after a checkpoint and resumed from it takes exactly the steps the
// uninterrupted training took: the same losses, bit for bit, and the same adapters.
TEST(SftTrainer, ResumedFromACheckpointFollowsTheSameCourse) {
  const auto tiny = testing::make_tiny_model({});
  const LoraConfig config{.rank = 4, .alpha = 8, .dropout = 0.1f, .seed = 5,
                          .modules = {LoraModule::kQ, LoraModule::kK, LoraModule::kDown}};
  std::vector<SftExample> examples(5);
  for (int i = 0; i < 5; ++i) {
    for (int t = 0; t < 9; ++t) examples[i].tokens.push_back((i * 7 + t * 3) % 48);
    examples[i].targets.assign(9, -1);
    for (int t = 3; t < 8; ++t) examples[i].targets[t] = examples[i].tokens[t + 1];
  }
  SftOptions o;
  o.epochs = 4;
  o.batch = 2;
  o.learning_rate = 1e-2f;
  o.warmup_steps = 3;
  o.seed = 9;
  o.checkpoint_every = 4;
  o.adamw.weight_decay = 0.01f;
  const int64_t steps = sft_step_count(5, o);
  ASSERT_EQ(steps, 12);
  keel::testing::TempDir dir;

  auto whole = LoraWeights::create(*tiny.model, config);
  ASSERT_TRUE(whole.ok());
  AdamW optimizer(o.adamw);
  std::vector<double> losses;
  std::vector<int64_t> checkpoints;
  auto r = train_sft(*tiny.model, *whole, optimizer, examples, o,
                     {.on_step = [&](const SftProgress& p) { losses.push_back(p.loss); },
                      .on_checkpoint = [&](int64_t step, const LoraWeights& lora, const AdamW& adam) {
                        checkpoints.push_back(step);
                        return write_sft_checkpoint(dir.file("step-" + std::to_string(step) + ".gguf"), *tiny.model,
                                                    lora, adam, step, "{\"note\": 1}");
                      }});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{4, 8, 12}));

  auto checkpoint = read_sft_checkpoint(dir.file("step-8.gguf"), *tiny.model, o.adamw);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  EXPECT_EQ(checkpoint->step, 8);
  EXPECT_EQ(checkpoint->config, "{\"note\": 1}");
  EXPECT_EQ(checkpoint->optimizer.steps(), 8);
  EXPECT_EQ(checkpoint->lora.config().seed, 5u);
  EXPECT_EQ(checkpoint->lora.config().modules, config.modules);
  o.start_step = 8;
  std::vector<double> resumed;
  auto rest = train_sft(*tiny.model, checkpoint->lora, checkpoint->optimizer, examples, o,
                        {.on_step = [&](const SftProgress& p) {
                          EXPECT_EQ(p.step, 9 + static_cast<int64_t>(resumed.size()));
                          resumed.push_back(p.loss);
                        }});
  ASSERT_TRUE(rest.ok()) << rest.status().to_string();
  EXPECT_EQ(rest->steps, 4);
  ASSERT_EQ(resumed.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed[i], losses[8 + i]) << "step " << 9 + i;
  for (size_t a = 0; a < whole->adapters().size(); ++a) {
    EXPECT_EQ(checkpoint->lora.adapters()[a].a, whole->adapters()[a].a);
    EXPECT_EQ(checkpoint->lora.adapters()[a].b, whole->adapters()[a].b);
  }
}

// Examples of `count` sequences on the tiny model's vocabulary; targets on the second half.
std::vector<SftExample> tiny_examples(int count, int length, int mul, int add) {
  std::vector<SftExample> examples(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    SftExample& e = examples[static_cast<size_t>(i)];
    for (int t = 0; t < length; ++t) e.tokens.push_back((i * mul + t * add) % 48);
    e.targets.assign(static_cast<size_t>(length), -1);
    for (int t = length / 2; t < length - 1; ++t) e.targets[static_cast<size_t>(t)] = e.tokens[static_cast<size_t>(t + 1)];
  }
  return examples;
}

// Two micro-batches of one example per step give the gradient of the step's mean loss,
// as one micro-batch of two does: the same losses and the same adapters, to rounding.
TEST(SftTrainer, GradientAccumulationTakesTheSameStepsAsOneBigBatch) {
  const auto tiny = testing::make_tiny_model({});
  const LoraConfig config{.rank = 4, .alpha = 8, .dropout = 0, .seed = 3,
                          .modules = {LoraModule::kQ, LoraModule::kV, LoraModule::kGate}};
  // Examples of different lengths, so that a plain mean of the micro-batches' means
  // would weigh their tokens differently.
  std::vector<SftExample> examples = tiny_examples(4, 8, 7, 3);
  for (SftExample& e : tiny_examples(4, 14, 5, 11)) examples.push_back(std::move(e));
  SftOptions o;
  o.epochs = 3;
  o.learning_rate = 1e-2f;
  o.seed = 4;
  auto run = [&](int64_t batch, int64_t accumulation, std::vector<double>& losses) {
    o.batch = batch;
    o.accumulation = accumulation;
    auto lora = LoraWeights::create(*tiny.model, config);
    EXPECT_TRUE(lora.ok());
    AdamW optimizer(o.adamw);
    auto r = train_sft(*tiny.model, *lora, optimizer, examples, o,
                       {.on_step = [&](const SftProgress& p) { losses.push_back(p.loss); }});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return std::move(*lora);
  };
  std::vector<double> big, accumulated;
  const LoraWeights a = run(2, 1, big);
  const LoraWeights b = run(1, 2, accumulated);
  EXPECT_EQ(sft_step_count(8, o), 12);
  ASSERT_EQ(big.size(), 12u);
  ASSERT_EQ(accumulated.size(), big.size());
  for (size_t i = 0; i < big.size(); ++i) EXPECT_NEAR(accumulated[i], big[i], 1e-5 * big[i]) << "step " << i + 1;
  for (size_t k = 0; k < a.adapters().size(); ++k) {
    for (size_t j = 0; j < a.adapters()[k].b.size(); ++j) {
      ASSERT_NEAR(b.adapters()[k].b[j], a.adapters()[k].b[j], 1e-4f) << "adapter " << k << " B[" << j << "]";
    }
  }
  o.accumulation = 0;
  AdamW fresh(o.adamw);
  auto lora = LoraWeights::create(*tiny.model, config);
  EXPECT_EQ(train_sft(*tiny.model, *lora, fresh, examples, o).status().code(), ErrorCode::kInvalidArgument);
}

// Validation examples that contradict the training ones: the validation loss rises as
// training goes on, early stopping ends training `patience` evaluations after the
// lowest, and the best adapters are those of that evaluation's step.
TEST(SftTrainer, EarlyStoppingKeepsTheAdaptersOfTheLowestValidationLoss) {
  const auto tiny = testing::make_tiny_model({});
  const LoraConfig config{.rank = 4, .alpha = 8, .dropout = 0, .seed = 1, .modules = {LoraModule::kQ, LoraModule::kUp}};
  const std::vector<SftExample> examples = tiny_examples(4, 10, 11, 5);
  std::vector<SftExample> validation = examples;  // the same prompts, other answers
  for (SftExample& e : validation) {
    for (int32_t& t : e.targets) {
      if (t >= 0) t = (t + 17) % 48;
    }
  }
  SftOptions o;
  o.epochs = 40;
  o.batch = 2;
  o.learning_rate = 3e-2f;
  o.eval_every = 2;
  o.patience = 3;
  auto lora = LoraWeights::create(*tiny.model, config);
  ASSERT_TRUE(lora.ok());
  AdamW optimizer(o.adamw);
  SftValidation v{.examples = validation};
  std::vector<std::pair<int64_t, double>> seen;
  std::vector<int64_t> checkpoints;
  std::optional<LoraWeights> at_best;
  auto r = train_sft(*tiny.model, *lora, optimizer, examples, o,
                     {.on_step = [&](const SftProgress&) {},
                      .on_validation = [&](int64_t step, double loss, const SftValidationState& state) {
                        seen.emplace_back(step, loss);
                        if (state.best_step == step) at_best = *lora;
                      },
                      .on_checkpoint = [&](int64_t step, const LoraWeights&, const AdamW&) {
                        checkpoints.push_back(step);
                        return Status::Ok();
                      }},
                     &v);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->stopped_early);
  ASSERT_GE(seen.size(), 4u);
  EXPECT_LT(r->steps, sft_step_count(4, o));
  EXPECT_EQ(v.state.stale, 3);
  EXPECT_EQ(v.state.best_step, r->steps - 3 * o.eval_every);
  EXPECT_EQ(checkpoints, std::vector<int64_t>{r->steps}) << "an early stop checkpoints its last step";
  double lowest = seen[0].second;
  for (const auto& [step, loss] : seen) lowest = std::min(lowest, loss);
  EXPECT_EQ(v.state.best_loss, lowest);
  EXPECT_GT(seen.back().second, lowest);
  ASSERT_TRUE(v.best && at_best);
  for (size_t k = 0; k < at_best->adapters().size(); ++k) EXPECT_EQ(v.best->adapters()[k].b, at_best->adapters()[k].b);
  // The best adapters give the lowest loss again.
  auto again = sft_loss(*tiny.model, *v.best, validation, 3);
  ASSERT_TRUE(again.ok());
  EXPECT_NEAR(*again, lowest, 1e-6 * lowest);
  // Patience without validation examples is a mistake, not a silent no-op.
  AdamW fresh(o.adamw);
  auto other = LoraWeights::create(*tiny.model, config);
  EXPECT_EQ(train_sft(*tiny.model, *other, fresh, examples, o).status().code(), ErrorCode::kInvalidArgument);
}

// A checkpoint keeps where validation stands, so a resumed training evaluates and stops
// as the uninterrupted one does.
TEST(SftTrainer, ResumedTrainingValidatesAndStopsAsTheUninterruptedOne) {
  const auto tiny = testing::make_tiny_model({});
  const LoraConfig config{.rank = 2, .alpha = 4, .dropout = 0.1f, .seed = 8, .modules = {LoraModule::kK, LoraModule::kDown}};
  const std::vector<SftExample> examples = tiny_examples(5, 9, 3, 7);
  std::vector<SftExample> validation = tiny_examples(3, 9, 13, 5);
  for (SftExample& e : validation) {
    for (int32_t& t : e.targets) {
      if (t >= 0) t = (t + 29) % 48;
    }
  }
  SftOptions o;
  o.epochs = 30;
  o.batch = 2;
  o.learning_rate = 3e-2f;
  o.eval_every = 1;
  o.patience = 4;
  o.checkpoint_every = 3;
  keel::testing::TempDir dir;
  auto whole = LoraWeights::create(*tiny.model, config);
  ASSERT_TRUE(whole.ok());
  AdamW optimizer(o.adamw);
  SftValidation v{.examples = validation};
  std::vector<double> losses;
  auto r = train_sft(*tiny.model, *whole, optimizer, examples, o,
                     {.on_validation = [&](int64_t, double loss, const SftValidationState&) { losses.push_back(loss); },
                      .on_checkpoint = [&](int64_t step, const LoraWeights& lora, const AdamW& adam) {
                        return write_sft_checkpoint(dir.file("step-" + std::to_string(step) + ".gguf"), *tiny.model,
                                                    lora, adam, step, "{}", &v);
                      }},
                     &v);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->stopped_early) << "the test needs a training that stops early";
  // Resume from the last checkpoint before the stop, past the best step.
  const int64_t from = (r->steps - 1) / 3 * 3;
  ASSERT_GT(from, v.state.best_step) << "the checkpoint should be past the best step";
  auto checkpoint = read_sft_checkpoint(dir.file("step-" + std::to_string(from) + ".gguf"), *tiny.model, o.adamw);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  ASSERT_TRUE(checkpoint->validation && checkpoint->validation->best);
  EXPECT_EQ(checkpoint->validation->state.best_step, v.state.best_step);
  EXPECT_EQ(checkpoint->validation->state.best_loss, v.state.best_loss);
  SftValidation resumed = std::move(*checkpoint->validation);
  resumed.examples = validation;
  o.start_step = from;
  std::vector<double> after;
  auto rest = train_sft(*tiny.model, checkpoint->lora, checkpoint->optimizer, examples, o,
                        {.on_validation = [&](int64_t, double loss, const SftValidationState&) { after.push_back(loss); }},
                        &resumed);
  ASSERT_TRUE(rest.ok()) << rest.status().to_string();
  EXPECT_TRUE(rest->stopped_early);
  EXPECT_EQ(from + rest->steps, r->steps);
  ASSERT_EQ(after.size(), static_cast<size_t>(r->steps - from));
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i], losses[static_cast<size_t>(from) + i]);
  EXPECT_EQ(resumed.state.best_step, v.state.best_step);
  for (size_t k = 0; k < v.best->adapters().size(); ++k) EXPECT_EQ(resumed.best->adapters()[k].a, v.best->adapters()[k].a);
}

TEST(SftTrainer, CheckpointsOfAnotherModelOrDamagedAreRefused) {
  const auto tiny = testing::make_tiny_model({});
  auto lora = LoraWeights::create(*tiny.model, {.rank = 2, .alpha = 4, .modules = {LoraModule::kV}});
  ASSERT_TRUE(lora.ok());
  keel::testing::TempDir dir;
  const std::string path = dir.file("c.gguf");
  ASSERT_TRUE(write_sft_checkpoint(path, *tiny.model, *lora, AdamW({}), 0, "{}").ok());
  ASSERT_TRUE(read_sft_checkpoint(path, *tiny.model, {}).ok());
  // An adapter file is not a checkpoint.
  ASSERT_TRUE(write_lora_adapter(dir.file("a.gguf"), *tiny.model, *lora).ok());
  auto adapter = read_sft_checkpoint(dir.file("a.gguf"), *tiny.model, {});
  EXPECT_EQ(adapter.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(adapter.status().message().find("keel.sft_checkpoint"), std::string::npos);
  // Truncated: the GGUF reader refuses it.
  auto bytes = read_file(path, 1 << 26);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(write_file_atomic(dir.file("t.gguf"), bytes->substr(0, bytes->size() / 2)).ok());
  EXPECT_FALSE(read_sft_checkpoint(dir.file("t.gguf"), *tiny.model, {}).ok());
  // Another model (other layer count): the tensors do not match.
  const auto other = testing::make_tiny_model({.layers = 3});
  EXPECT_EQ(read_sft_checkpoint(path, *other.model, {}).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::train
