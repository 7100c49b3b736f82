// Keel's engine against llama.cpp itself: for every fixture in tests/fixtures/engine/llamacpp/
// (written by tests/reference/make_engine_fixtures.py through llama-cpp-python) the model's
// tokenization, per-position top-10 log-probabilities, 32 greedy tokens and perplexity at two
// contexts. The forward pass runs on llama.cpp's own token ids, so a tokenizer difference
// cannot hide in a logits comparison. Logits are held to how well llama.cpp agrees with
// itself under its other settings (recorded in the fixture; see SelfAgreement), greedy
// tokens may differ only where llama.cpp was undecided, perplexity within 0.5%. A model file
// that is absent (or differs from the one the fixture was made from, or that Keel cannot
// load yet) skips its tests with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "keel/engine/forward.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/perplexity.h"
#include "keel/engine/tokenizer.h"
#include "keel/util/sha256.h"
#include "support/test_support.h"

namespace keel::engine {
namespace {

constexpr int kThreads = 2;
// Greedy tokens may differ from llama.cpp's only where llama.cpp itself barely preferred
// its choice: a log-probability margin between its top two below this, or below twice the
// mean log-probability drift between llama.cpp's own settings (SelfAgreement), whichever
// is larger; a gap that small is one llama.cpp's own settings could close.
constexpr double kSmallMargin = 0.1;

// How far llama.cpp drifts from its own default run under its other settings (F32 KV
// cache, flash attention; the fixture's "llama_cpp_self_agreement"): the worst of them.
// On these small quantized models one rounding difference flips Q8 activation roundings
// downstream, so two correct implementations agree on ~97% of top-1 tokens, not 100%;
// Keel is held to this floor (with a little slack), which a real bug (a wrong RoPE, norm
// or kernel) misses by far.
struct SelfAgreement {
  double top1_rate = 1;
  double mean_diff = 0;
  double max_diff = 0;
  int greedy_identical = 0;
};

SelfAgreement worst_self_agreement(const nlohmann::json& fixture) {
  SelfAgreement worst;
  worst.greedy_identical = static_cast<int>(fixture.at("cases").size());
  for (const auto& [name, v] : fixture.at("llama_cpp_self_agreement").items()) {
    worst.top1_rate = std::min(worst.top1_rate, v.at("top1_rate").get<double>());
    worst.mean_diff = std::max(worst.mean_diff, v.at("mean_abs_logprob_diff").get<double>());
    worst.max_diff = std::max(worst.max_diff, v.at("max_abs_logprob_diff").get<double>());
    worst.greedy_identical = std::min(worst.greedy_identical, v.at("greedy_identical").get<int>());
  }
  return worst;
}

std::string source_root() {
  return keel::testing::source_dir();
}
std::string fixture_dir() {
  return source_root() + "/tests/fixtures/engine/llamacpp";
}

std::string models_dir() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/keel/models";
}

// The fixture files, by name without ".json"; the default model's comes first.
std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fixture_dir(), ec)) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    const bool a_default = a == "SmolLM2-135M-Instruct.Q4_1", b_default = b == "SmolLM2-135M-Instruct.Q4_1";
    return a_default != b_default ? a_default : a < b;
  });
  return names;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string out;
  for (char c : info.param) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// log-softmax of one row, in double.
std::vector<double> log_softmax(std::span<const float> logits) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max_logit);
  const double log_sum = std::log(sum) + max_logit;
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - log_sum;
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// One model's fixture and, when it can be loaded, the model. Loaded once per model.
struct Loaded {
  nlohmann::json fixture;
  std::string skip_reason;  // non-empty: the tests of this model skip with it
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_error;
};

Loaded& load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Loaded>> cache;
  auto& slot = cache[name];
  if (slot) return *slot;
  slot = std::make_unique<Loaded>();
  Loaded& m = *slot;
  std::ifstream in(fixture_dir() + "/" + name + ".json");
  m.fixture = nlohmann::json::parse(in);
  const std::string path = models_dir() + "/" + m.fixture.at("model").get<std::string>();
  if (!std::ifstream(path).good()) {
    m.skip_reason = "model not present: " + path + " (see tests/reference/make_engine_fixtures.py)";
    return m;
  }
  auto sha = Sha256::of_file(path);
  if (!sha.ok() || *sha != m.fixture.at("model_sha256").get<std::string>()) {
    m.skip_reason = path +
                    " is not the file the fixture was made from (sha256 differs); rerun "
                    "tests/reference/make_engine_fixtures.py " +
                    path;
    return m;
  }
  auto file = GgufFile::open(path);
  if (!file.ok()) {
    m.skip_reason = "cannot open " + path + ": " + file.status().to_string();
    return m;
  }
  m.file = std::move(*file);
  auto model = Model::load(*m.file);
  if (!model.ok()) {
    m.skip_reason = "Keel cannot load " + path + " yet: " + model.status().to_string();
    return m;
  }
  m.model = std::move(*model);
  auto tokenizer = Tokenizer::from_gguf(*m.file);
  if (tokenizer.ok()) {
    m.tokenizer = std::move(*tokenizer);
  } else {
    m.tokenizer_error = tokenizer.status().to_string();
  }
  return m;
}

class LlamaCppAgreement : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    loaded_ = &load(GetParam());
    if (!loaded_->skip_reason.empty()) GTEST_SKIP() << loaded_->skip_reason;
  }
  const nlohmann::json& fixture() const { return loaded_->fixture; }
  const Model& model() const { return *loaded_->model; }
  int64_t vocab() const { return model().config().vocab_size; }

  Loaded* loaded_ = nullptr;
};

TEST_P(LlamaCppAgreement, TokenizesLikeLlamaCpp) {
  if (!loaded_->tokenizer) GTEST_SKIP() << "Keel's tokenizer cannot load this model yet: " << loaded_->tokenizer_error;
  const Tokenizer& tokenizer = *loaded_->tokenizer;
  for (const auto& c : fixture().at("cases")) {
    auto ids = tokenizer.encode(c.at("text").get<std::string>(), true, true);
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    EXPECT_EQ(*ids, c.at("tokens").get<std::vector<TokenId>>()) << c.at("name");
  }
  // The perplexity text as llama-perplexity tokenizes it: BOS, no special-token parsing.
  std::string text = read_text(fixture_dir() + "/" + fixture().at("perplexity").at("text").get<std::string>());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  auto ids = tokenizer.encode(text, false, false);
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  if (fixture().at("add_bos").get<bool>()) ids->insert(ids->begin(), fixture().at("bos").get<TokenId>());
  EXPECT_EQ(*ids, fixture().at("perplexity").at("tokens").get<std::vector<TokenId>>());
}

TEST_P(LlamaCppAgreement, TopTokensAndLogProbabilitiesAgreeAtEveryPosition) {
  auto session = InferenceSession::create(model(), {.threads = kThreads, .context_length = 512});
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  int64_t agree = 0, positions = 0;
  double max_diff = 0, sum_diff = 0;
  int64_t compared = 0;
  std::string worst;
  for (const auto& c : fixture().at("cases")) {
    const auto tokens = c.at("tokens").get<std::vector<int32_t>>();
    (*session)->reset();
    auto logits = (*session)->forward(tokens, LogitsFor::kEveryToken);
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    int64_t case_agree = 0;
    double case_max = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      std::span<const float> row(logits->data() + t * vocab(), static_cast<size_t>(vocab()));
      const auto lp = log_softmax(row);
      const auto ids = c.at("top_ids")[t].get<std::vector<int64_t>>();
      const auto ref = c.at("top_logprobs")[t].get<std::vector<double>>();
      case_agree += argmax(row) == ids[0];
      for (size_t i = 0; i < ids.size(); ++i) {
        const double d = std::abs(lp[static_cast<size_t>(ids[i])] - ref[i]);
        sum_diff += d;
        ++compared;
        if (d > max_diff) {
          max_diff = d;
          worst = c.at("name").get<std::string>() + " position " + std::to_string(t) + " rank " + std::to_string(i);
        }
        case_max = std::max(case_max, d);
      }
    }
    std::cout << "  " << c.at("name").get<std::string>() << ": top-1 " << case_agree << "/" << tokens.size()
              << ", max |logprob diff| " << case_max << "\n";
    agree += case_agree;
    positions += static_cast<int64_t>(tokens.size());
  }
  const double rate = static_cast<double>(agree) / static_cast<double>(positions);
  const double mean_diff = sum_diff / static_cast<double>(compared);
  const SelfAgreement floor = worst_self_agreement(fixture());
  std::cout << GetParam() << ": top-1 agreement with llama.cpp " << agree << "/" << positions << " (" << rate * 100
            << "%), |logprob diff| on llama.cpp's top-" << fixture().at("top_k") << ": max " << max_diff << " ("
            << worst << "), mean " << mean_diff << "\n"
            << GetParam() << ": llama.cpp against itself (worst of its other settings): top-1 " << floor.top1_rate * 100
            << "%, |logprob diff| max " << floor.max_diff << ", mean " << floor.mean_diff << "\n";
  EXPECT_GE(rate, std::min(0.99, floor.top1_rate - 0.02));
  EXPECT_LE(mean_diff, std::max(0.02, 1.5 * floor.mean_diff));
  EXPECT_LE(max_diff, std::max(0.25, 1.5 * floor.max_diff));
}

TEST_P(LlamaCppAgreement, GreedyTokensMatchUnlessLlamaCppWasUndecided) {
  auto session = InferenceSession::create(model(), {.threads = kThreads, .context_length = 512});
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  const SelfAgreement floor = worst_self_agreement(fixture());
  int identical = 0, cases = 0;
  for (const auto& c : fixture().at("cases")) {
    const auto tokens = c.at("tokens").get<std::vector<int32_t>>();
    const auto expected = c.at("greedy").get<std::vector<int32_t>>();
    const auto margins = c.at("greedy_margin").get<std::vector<double>>();
    auto result = generate_greedy(**session, tokens, static_cast<int64_t>(expected.size()));
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    ASSERT_EQ(result->tokens.size(), expected.size());
    size_t same = 0;
    while (same < expected.size() && result->tokens[same] == expected[same]) ++same;
    ++cases;
    const std::string name = c.at("name").get<std::string>();
    if (same == expected.size()) {
      ++identical;
      std::cout << "  " << name << ": " << same << "/" << expected.size() << " greedy tokens identical\n";
      continue;
    }
    std::cout << "  " << name << ": greedy diverges at step " << same << " (Keel " << result->tokens[same]
              << ", llama.cpp " << expected[same] << "); llama.cpp's top-2 log-prob margin there " << margins[same]
              << "\n";
    // llama.cpp's own precision settings move single log-probabilities by up to
    // floor.max_diff (about 1.0 on SmolLM2), so two tokens may swap order where its
    // margin is below half of that; a divergence beyond it would be a real difference.
    EXPECT_LT(margins[same], std::max({kSmallMargin, 2 * floor.mean_diff, floor.max_diff / 2}))
        << name << ": Keel left llama.cpp's greedy path at step " << same << " where llama.cpp was sure of its choice";
  }
  std::cout << GetParam() << ": greedy continuations identical on " << identical << "/" << cases
            << " prompts (llama.cpp against itself: " << floor.greedy_identical << "/" << cases << ")\n";
  EXPECT_GE(identical, std::min((2 * cases + 2) / 3, floor.greedy_identical) - 1)
      << "Keel's greedy continuations must match llama.cpp's about as often as llama.cpp's own settings do";
}

TEST_P(LlamaCppAgreement, PerplexityIsWithinHalfAPercentOfLlamaCpp) {
#if defined(__SANITIZE_ADDRESS__)
  // Thousands of tokens through a sanitized build take many minutes; the same code runs
  // under the sanitizers in `keel perplexity`'s CLI test (two chunks) and the unit tests.
  GTEST_SKIP() << "whole-text perplexity runs in the release suite";
#endif
  const auto& ppl = fixture().at("perplexity");
  const auto tokens = ppl.at("tokens").get<std::vector<int32_t>>();
  const int32_t bos = fixture().at("add_bos").get<bool>() ? fixture().at("bos").get<int32_t>() : -1;
  for (const auto& run : ppl.at("runs")) {
    const int64_t ctx = run.at("ctx").get<int64_t>();
    auto session = InferenceSession::create(model(), {.threads = kThreads, .context_length = ctx});
    ASSERT_TRUE(session.ok()) << session.status().to_string();
    auto result = perplexity(**session, tokens, {.context = ctx, .bos = bos});
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    const double expected = run.at("perplexity").get<double>();
    const double relative = (result->perplexity - expected) / expected;
    std::cout << GetParam() << ": perplexity at ctx " << ctx << ": Keel " << result->perplexity << " +/- "
              << result->uncertainty << ", llama.cpp " << expected << " +/- " << run.at("uncertainty").get<double>()
              << " (" << relative * 100 << "%), " << result->scored_tokens << " tokens scored in " << result->seconds
              << " s\n";
    EXPECT_EQ(result->chunks, run.at("chunks").get<int64_t>());
    EXPECT_EQ(result->scored_tokens, run.at("scored_tokens").get<int64_t>());
    EXPECT_LT(std::abs(relative), 0.005);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LlamaCppAgreement, ::testing::ValuesIn(fixture_names()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LlamaCppAgreement);

TEST(LlamaCppAgreementFixtures, DefaultModelHasAFixture) {
  const auto names = fixture_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "SmolLM2-135M-Instruct.Q4_1"), names.end())
      << "tests/reference/make_engine_fixtures.py writes " << fixture_dir() << "/SmolLM2-135M-Instruct.Q4_1.json";
}

}  // namespace
}  // namespace keel::engine
