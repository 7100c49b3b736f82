// The sampler (sampler.h): each step of the chain exactly on hand-made logits, the order
// of the chain, penalties against hand-computed values, seeded reproducibility, a
// chi-square test of the draw against softmax(logits / T), the large-vocabulary paths
// against a full-sort reference, log-probabilities against a direct log-softmax, and
// bad options and inputs.
#include "keel/engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <numeric>

namespace keel::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> out;
  for (double p : probabilities) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// softmax(l / T) in double over the given ids (all when empty).
std::map<int32_t, double> softmax(const std::vector<float>& logits, double temperature, std::vector<int32_t> ids = {}) {
  if (ids.empty()) {
    ids.resize(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
  }
  double max = -std::numeric_limits<double>::infinity();
  for (int32_t id : ids) max = std::max(max, static_cast<double>(logits[id]));
  double total = 0;
  for (int32_t id : ids) total += std::exp((logits[id] - max) / temperature);
  std::map<int32_t, double> out;
  for (int32_t id : ids) out[id] = std::exp((logits[id] - max) / temperature) / total;
  return out;
}

std::map<int32_t, double> distribution(const SamplingOptions& options, const std::vector<float>& logits,
                                       const std::vector<int32_t>& history = {}) {
  auto sampler = Sampler::create(options, static_cast<int64_t>(logits.size()));
  EXPECT_TRUE(sampler.ok()) << sampler.status().to_string();
  if (!sampler.ok()) return {};
  auto d = sampler->distribution(logits, history);
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  std::map<int32_t, double> out;
  double total = 0;
  if (d.ok()) {
    for (const auto& tp : *d) {
      EXPECT_FALSE(out.count(tp.token)) << "token " << tp.token << " listed twice";
      out[tp.token] = tp.probability;
      total += tp.probability;
    }
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  return out;
}

std::vector<int32_t> keys(const std::map<int32_t, double>& m) {
  std::vector<int32_t> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

void expect_distribution(const std::map<int32_t, double>& got, const std::map<int32_t, double>& expected,
                         double tolerance = 1e-12) {
  ASSERT_EQ(keys(got), keys(expected));
  for (const auto& [id, p] : expected) EXPECT_NEAR(got.at(id), p, tolerance) << "token " << id;
}

SamplingOptions at_temperature(float t) {
  SamplingOptions o;
  o.temperature = t;
  return o;
}

int32_t sample_once(const SamplingOptions& options, const std::vector<float>& logits,
                    const std::vector<int32_t>& history = {}) {
  auto sampler = Sampler::create(options, static_cast<int64_t>(logits.size()));
  EXPECT_TRUE(sampler.ok()) << sampler.status().to_string();
  auto token = sampler->sample(logits, history);
  EXPECT_TRUE(token.ok()) << token.status().to_string();
  return token.ok() ? *token : -1;
}

// Logits for `n` tokens drawn from our own PRNG, the same on every platform.
std::vector<float> random_logits(size_t n, uint64_t seed, float scale) {
  Xoshiro256StarStar rng(seed);
  std::vector<float> out(n);
  for (auto& l : out) l = static_cast<float>((rng.uniform() * 2 - 1) * scale);
  return out;
}

// Ids by logit, highest first, lowest id first on ties: the full-sort reference.
std::vector<int32_t> ranked(const std::vector<float>& logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return ids;
}

// ----- the PRNG ------------------------------------------------------------------------

TEST(Prng, SplitMix64AndXoshiroGiveTheirPublishedSequences) {
  // splitmix64 from 0 (the reference C code's first output).
  EXPECT_EQ(SplitMix64(0).next(), 0xe220a8397b1dcdafULL);
  // xoshiro256** seeded by four splitmix64 draws from 0; values from an independent
  // arbitrary-precision implementation.
  Xoshiro256StarStar rng(0);
  for (uint64_t expected : {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL, 0x6aa594f1262d2d2cULL,
                            0xbba5ad4a1f842e59ULL}) {
    EXPECT_EQ(rng.next(), expected);
  }
  Xoshiro256StarStar r42(42);
  EXPECT_EQ(r42.uniform(), static_cast<double>(0x15780b2e0c2ec716ULL >> 11) / 9007199254740992.0);
}

TEST(Prng, UniformStaysInTheHalfOpenUnitInterval) {
  Xoshiro256StarStar rng(7);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);
}

// ----- each step -----------------------------------------------------------------------

TEST(Sampler, GreedyTakesTheArgmaxLowestIdOnTies) {
  EXPECT_EQ(sample_once({}, {1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(sample_once({}, {-5.0f, -1.0f, -2.0f}), 1);
  expect_distribution(distribution({}, {1.0f, 3.0f, 3.0f, 2.0f}), {{1, 1.0}});
}

TEST(Sampler, TemperatureDividesTheLogits) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, -1.5f};
  expect_distribution(distribution(at_temperature(2.0f), logits), softmax(logits, 2.0));
  expect_distribution(distribution(at_temperature(0.3f), logits), softmax(logits, static_cast<double>(0.3f)));
  // A tiny temperature does not overflow: all the mass on the best token.
  auto sharp = distribution(at_temperature(1e-30f), logits);
  EXPECT_NEAR(sharp.at(2), 1.0, 1e-12);
}

TEST(Sampler, TopKKeepsTheKBestLowestIdOnTies) {
  const std::vector<float> logits = {0.1f, 2.0f, 0.5f, 2.0f, -1.0f, 2.0f};
  auto o = at_temperature(1.0f);
  o.top_k = 2;
  expect_distribution(distribution(o, logits), {{1, 0.5}, {3, 0.5}});
  o.top_k = 4;
  expect_distribution(distribution(o, logits), softmax(logits, 1.0, {1, 3, 5, 2}));
  o.top_k = 6;
  expect_distribution(distribution(o, logits), softmax(logits, 1.0));
  o.top_k = 100;
  expect_distribution(distribution(o, logits), softmax(logits, 1.0));
}

TEST(Sampler, TopPKeepsTheSmallestSetThatReachesP) {
  const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
  auto o = at_temperature(1.0f);
  o.top_p = 0.45f;
  expect_distribution(distribution(o, logits), {{1, 1.0}});
  o.top_p = 0.75f;  // 0.5 < 0.75 <= 0.5 + 0.3
  expect_distribution(distribution(o, logits), {{1, 0.5 / 0.8}, {3, 0.3 / 0.8}}, 1e-7);
  o.top_p = 0.85f;
  expect_distribution(distribution(o, logits), {{1, 0.5 / 0.95}, {3, 0.3 / 0.95}, {2, 0.15 / 0.95}}, 1e-7);
  o.top_p = 1.0f;
  EXPECT_EQ(distribution(o, logits).size(), 4u);
}

TEST(Sampler, MinPKeepsTokensAboveAFractionOfTheBest) {
  const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
  auto o = at_temperature(1.0f);
  o.min_p = 0.25f;  // p >= 0.125
  expect_distribution(distribution(o, logits), softmax(logits, 1.0, {1, 2, 3}));
  o.min_p = 0.55f;  // p >= 0.275
  expect_distribution(distribution(o, logits), softmax(logits, 1.0, {1, 3}));
  o.min_p = 1.0f;
  expect_distribution(distribution(o, logits), {{1, 1.0}});
}

// ----- the order of the chain ------------------------------------------------------------

TEST(Sampler, TopPSeesWhatTopKKeptRenormalised) {
  const auto logits = logits_of({0.4, 0.3, 0.2, 0.1});
  auto o = at_temperature(1.0f);
  o.top_p = 0.5f;
  EXPECT_EQ(keys(distribution(o, logits)), (std::vector<int32_t>{0, 1}));
  o.top_k = 2;  // 0.4 / 0.7 >= 0.5
  EXPECT_EQ(keys(distribution(o, logits)), (std::vector<int32_t>{0}));
}

TEST(Sampler, TopPAndMinPSeeProbabilitiesBeforeTheTemperature) {
  const auto logits = logits_of({0.5, 0.3, 0.15, 0.05});
  // At T = 0.25 the first token alone would hold 0.88 > 0.75; top-p keeps two.
  auto o = at_temperature(0.25f);
  o.top_p = 0.75f;
  expect_distribution(distribution(o, logits), softmax(logits, 0.25, {0, 1}));
  // At T = 4 every token would pass min-p 0.5; before the temperature only two do.
  o = at_temperature(4.0f);
  o.min_p = 0.5f;
  expect_distribution(distribution(o, logits), softmax(logits, 4.0, {0, 1}));
}

TEST(Sampler, LogitBiasComesBeforeThePenalties) {
  // Bias first: (-0.5 + 1) / 2 = 0.25 > 0.1. Penalty first it would be -1 + 1 = 0 < 0.1.
  SamplingOptions o;
  o.logit_bias = {{0, 1.0f}};
  o.repetition_penalty = 2.0f;
  EXPECT_EQ(sample_once(o, {-0.5f, 0.1f}, {0}), 0);
}

// ----- penalties ------------------------------------------------------------------------

TEST(Sampler, PenaltiesMatchHandComputedLogits) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  const std::vector<int32_t> history = {0, 1, 1, 3, 3, 3, 4};
  auto o = at_temperature(1.0f);
  o.repetition_penalty = 2.0f;
  o.presence_penalty = 0.5f;
  o.frequency_penalty = 0.25f;
  o.penalty_last_n = -1;
  // 0 (seen once): 2 / 2 - (0.25 + 0.5); 1 (twice): -1 * 2 - (0.5 + 0.5); 2: unseen;
  // 3 (three times): 3 / 2 - (0.75 + 0.5); 4 (once, logit 0 is multiplied): 0 - 0.75.
  expect_distribution(distribution(o, logits, history), softmax({0.25f, -3.0f, 0.5f, 0.25f, -0.75f}, 1.0));
  // Only the last three tokens {3, 3, 4}: 3 / 2 - (0.5 + 0.5), 0 - 0.75.
  o.penalty_last_n = 3;
  expect_distribution(distribution(o, logits, history), softmax({2.0f, -1.0f, 0.5f, 0.5f, -0.75f}, 1.0));
  o.penalty_last_n = 0;
  expect_distribution(distribution(o, logits, history), softmax(logits, 1.0));
  // A window longer than the history is the whole history.
  o.penalty_last_n = 1000;
  expect_distribution(distribution(o, logits, history), softmax({0.25f, -3.0f, 0.5f, 0.25f, -0.75f}, 1.0));
}

TEST(Sampler, RepetitionPenaltyChangesTheGreedyChoice) {
  SamplingOptions o;
  EXPECT_EQ(sample_once(o, {3.0f, 2.9f}, {0}), 0);
  o.repetition_penalty = 1.1f;  // 3 / 1.1 = 2.73 < 2.9
  EXPECT_EQ(sample_once(o, {3.0f, 2.9f}, {0}), 1);
  o.repetition_penalty = 1.0f;
  o.presence_penalty = 0.2f;
  EXPECT_EQ(sample_once(o, {3.0f, 2.9f}, {0}), 1);
  // A negative presence penalty encourages repeats.
  o.presence_penalty = -0.2f;
  EXPECT_EQ(sample_once(o, {2.9f, 3.0f}, {0}), 0);
}

// ----- bias, bans and hostile logits -------------------------------------------------------

TEST(Sampler, LogitBiasCanBanOrForceATokenAndBanningAllIsAnError) {
  SamplingOptions o;
  o.logit_bias = {{2, -kInf}};
  EXPECT_EQ(sample_once(o, {1.0f, 2.0f, 3.0f}), 1);
  o.logit_bias = {{0, 5.0f}};
  EXPECT_EQ(sample_once(o, {1.0f, 2.0f, 3.0f}), 0);
  for (float t : {0.0f, 1.0f}) {
    o = at_temperature(t);
    o.logit_bias = {{0, -kInf}, {1, -kInf}, {2, -kInf}};
    auto sampler = Sampler::create(o, 3);
    ASSERT_TRUE(sampler.ok());
    EXPECT_EQ(sampler->sample(std::vector<float>{1.0f, 2.0f, 3.0f}, {}).status().code(),
              ErrorCode::kFailedPrecondition);
  }
  o = at_temperature(1.0f);
  o.logit_bias = {{1, -kInf}};
  auto d = distribution(o, {1.0f, 2.0f, 3.0f});
  EXPECT_EQ(keys(d), (std::vector<int32_t>{0, 2}));
}

TEST(Sampler, NanAndInfiniteLogitsDoNotBreakTheChain) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(sample_once({}, {nan, 1.0f, nan, 0.5f}), 1);
  auto o = at_temperature(1.0f);
  o.top_k = 3;
  EXPECT_EQ(keys(distribution(o, {nan, 1.0f, nan, 0.5f})), (std::vector<int32_t>{1, 3}));
  o.top_k = 0;
  auto d = distribution(o, {kInf, 1.0f, -kInf});
  EXPECT_NEAR(d.at(0), 1.0, 1e-12);
  EXPECT_FALSE(d.count(2));
  EXPECT_EQ(sample_once({}, {1.0f, kInf, kInf}), 1);
  auto sampler = Sampler::create(o, 2);
  ASSERT_TRUE(sampler.ok());
  EXPECT_EQ(sampler->sample(std::vector<float>{nan, nan}, {}).status().code(), ErrorCode::kFailedPrecondition);
}

TEST(Sampler, RejectsBadOptionsNamingTheField) {
  struct Case {
    SamplingOptions options;
    const char* mentions;
  };
  std::vector<Case> cases;
  auto add = [&](const char* mentions, auto change) {
    SamplingOptions o;
    change(o);
    cases.push_back({o, mentions});
  };
  add("temperature", [](SamplingOptions& o) { o.temperature = -0.1f; });
  add("temperature", [](SamplingOptions& o) { o.temperature = std::numeric_limits<float>::quiet_NaN(); });
  add("temperature", [](SamplingOptions& o) { o.temperature = kInf; });
  add("top_k", [](SamplingOptions& o) { o.top_k = -1; });
  add("top_p", [](SamplingOptions& o) { o.top_p = 0.0f; });
  add("top_p", [](SamplingOptions& o) { o.top_p = 1.01f; });
  add("top_p", [](SamplingOptions& o) { o.top_p = std::numeric_limits<float>::quiet_NaN(); });
  add("min_p", [](SamplingOptions& o) { o.min_p = -0.01f; });
  add("min_p", [](SamplingOptions& o) { o.min_p = 1.5f; });
  add("repetition penalty", [](SamplingOptions& o) { o.repetition_penalty = 0.0f; });
  add("repetition penalty", [](SamplingOptions& o) { o.repetition_penalty = -1.0f; });
  add("penalty window", [](SamplingOptions& o) { o.penalty_last_n = -2; });
  add("presence", [](SamplingOptions& o) { o.presence_penalty = kInf; });
  add("frequency", [](SamplingOptions& o) { o.frequency_penalty = std::numeric_limits<float>::quiet_NaN(); });
  add("token 10", [](SamplingOptions& o) { o.logit_bias = {{10, 1.0f}}; });
  add("token -1", [](SamplingOptions& o) { o.logit_bias = {{-1, 1.0f}}; });
  add("token 3", [](SamplingOptions& o) { o.logit_bias = {{3, kInf}}; });
  for (const auto& c : cases) {
    const Status s = validate(c.options, 10);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << c.mentions;
    EXPECT_NE(s.message().find(c.mentions), std::string::npos) << s.message();
    EXPECT_EQ(Sampler::create(c.options, 10).status().code(), ErrorCode::kInvalidArgument) << c.mentions;
  }
  SamplingOptions fine;
  fine.logit_bias = {{9, -kInf}, {0, -100.0f}};
  EXPECT_TRUE(validate(fine, 10).ok());
  EXPECT_EQ(Sampler::create({}, 0).status().code(), ErrorCode::kInvalidArgument);
}

TEST(Sampler, RejectsAWrongLogitCountAndHistoryIdsOutsideTheVocabulary) {
  SamplingOptions o;
  o.repetition_penalty = 1.1f;
  auto sampler = Sampler::create(o, 4);
  ASSERT_TRUE(sampler.ok());
  const std::vector<float> three = {1, 2, 3}, four = {1, 2, 3, 4};
  EXPECT_EQ(sampler->sample(three, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(sampler->sample(four, std::vector<int32_t>{1, 4}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(sampler->sample(four, std::vector<int32_t>{-1}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(sampler->sample(four, std::vector<int32_t>{0, 3}).ok());
}

// ----- randomness ----------------------------------------------------------------------------

std::vector<int32_t> draws(const SamplingOptions& options, const std::vector<float>& logits, int n) {
  auto sampler = Sampler::create(options, static_cast<int64_t>(logits.size()));
  EXPECT_TRUE(sampler.ok());
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(*sampler->sample(logits, {}));
  return out;
}

TEST(Sampler, TheSameSeedGivesTheSameTokensAndOtherSeedsDiffer) {
  const auto logits = random_logits(50, 3, 1.0f);
  for (int32_t top_k : {0, 10}) {
    auto o = at_temperature(1.0f);
    o.top_k = top_k;
    o.top_p = top_k == 0 ? 0.9f : 1.0f;
    o.seed = 1;
    const auto first = draws(o, logits, 200);
    EXPECT_EQ(draws(o, logits, 200), first);
    o.seed = 2;
    EXPECT_NE(draws(o, logits, 200), first);
  }
}

TEST(Sampler, AFixedSeedGivesAFixedSequenceOnEveryPlatform) {
  // Pinned: a change here changes every seeded generation a user has reproduced.
  auto o = at_temperature(1.0f);
  o.seed = 42;
  const auto got = draws(o, {0.0f, 0.0f, 0.0f, 0.0f}, 8);  // uniform: token = floor(4u)
  Xoshiro256StarStar rng(42);
  std::vector<int32_t> expected;
  for (int i = 0; i < 8; ++i) expected.push_back(static_cast<int32_t>(rng.uniform() * 4));
  EXPECT_EQ(got, expected);
}

double chi_square(const std::vector<int>& counts, const std::map<int32_t, double>& p, int n) {
  double chi = 0;
  for (const auto& [id, prob] : p) {
    const double expected = prob * n;
    chi += (counts[id] - expected) * (counts[id] - expected) / expected;
  }
  return chi;
}

TEST(Sampler, DrawsFollowSoftmaxOfLogitsOverTemperature) {
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.5f, -1.0f, 0.7f};
  constexpr int kDraws = 40000;
  // The chi-square critical value for 7 degrees of freedom at p = 0.001 is 24.32.
  for (float t : {0.5f, 1.0f, 1.7f}) {
    auto o = at_temperature(t);
    o.seed = 20240601;
    std::vector<int> counts(logits.size());
    for (int32_t token : draws(o, logits, kDraws)) ++counts[static_cast<size_t>(token)];
    const double chi = chi_square(counts, softmax(logits, t), kDraws);
    std::cout << "T = " << t << ": chi-square " << chi << " (7 dof)\n";
    EXPECT_LT(chi, 24.32) << "T = " << t;
    // The test has power: the same counts against a 20% different temperature fail.
    EXPECT_GT(chi_square(counts, softmax(logits, t * 1.2), kDraws), 50.0) << "T = " << t;
  }
}

TEST(Sampler, DrawsAfterTopKFollowTheRenormalisedSoftmax) {
  const auto logits = random_logits(4096, 11, 6.0f);
  auto o = at_temperature(1.3f);
  o.top_k = 10;
  o.seed = 5;
  const auto best = ranked(logits);
  const std::vector<int32_t> kept(best.begin(), best.begin() + 10);
  constexpr int kDraws = 20000;
  std::vector<int> counts(logits.size());
  for (int32_t token : draws(o, logits, kDraws)) ++counts[static_cast<size_t>(token)];
  for (size_t id = 0; id < counts.size(); ++id) {
    if (counts[id] > 0) {
      ASSERT_TRUE(std::count(kept.begin(), kept.end(), static_cast<int32_t>(id))) << "token " << id << " is not top-10";
    }
  }
  // 9 degrees of freedom, p = 0.001: 27.88.
  EXPECT_LT(chi_square(counts, softmax(logits, static_cast<double>(1.3f), kept), kDraws), 27.88);
}

// ----- a large vocabulary ------------------------------------------------------------------

TEST(Sampler, LargeVocabularyFiltersMatchAFullSortReference) {
  constexpr size_t kVocab = 262144;
  const auto logits = random_logits(kVocab, 99, 4.0f);
  const auto best = ranked(logits);

  auto o = at_temperature(0.8f);
  o.top_k = 40;
  expect_distribution(distribution(o, logits), softmax(logits, 0.8, {best.begin(), best.begin() + 40}));

  // A flat distribution: top-p needs thousands of candidates (several prefix growths).
  o = at_temperature(1.0f);
  o.top_p = 0.3f;
  double total = 0, max = logits[best[0]];
  for (float l : logits) total += std::exp(static_cast<double>(l) - max);
  size_t keep = 0;
  for (double cumulative = 0; keep < kVocab && cumulative < static_cast<double>(0.3f) * total;) {
    cumulative += std::exp(static_cast<double>(logits[best[keep++]]) - max);
  }
  ASSERT_GT(keep, 1000u);
  expect_distribution(distribution(o, logits), softmax(logits, 1.0, {best.begin(), best.begin() + keep}));

  o = at_temperature(1.0f);
  o.min_p = 0.5f;  // l >= max + log(0.5)
  std::vector<int32_t> above;
  for (size_t i = 0; i < kVocab; ++i) {
    if (logits[i] >= logits[best[0]] + std::log(0.5f)) above.push_back(static_cast<int32_t>(i));
  }
  expect_distribution(distribution(o, logits), softmax(logits, 1.0, above));
}

TEST(Sampler, LargeVocabularySamplingTime) {
  const auto logits = random_logits(262144, 1, 8.0f);
  struct Setting {
    const char* name;
    SamplingOptions options;
  };
  std::vector<Setting> settings(5);
  settings[0] = {"greedy", {}};
  settings[1] = {"T=0.8", at_temperature(0.8f)};
  settings[2] = {"T=0.8 top_k=40 top_p=0.95 min_p=0.05", at_temperature(0.8f)};
  settings[2].options.top_k = 40;
  settings[2].options.top_p = 0.95f;
  settings[2].options.min_p = 0.05f;
  settings[3] = {"T=0.8 top_p=0.95", at_temperature(0.8f)};
  settings[3].options.top_p = 0.95f;
  settings[4] = {"T=0.8 repeat_penalty=1.1 last_n=64", at_temperature(0.8f)};
  settings[4].options.repetition_penalty = 1.1f;
  std::vector<int32_t> history(256);
  std::iota(history.begin(), history.end(), 1000);
  for (const auto& s : settings) {
    auto sampler = Sampler::create(s.options, 262144);
    ASSERT_TRUE(sampler.ok());
    const auto start = std::chrono::steady_clock::now();
    constexpr int kRuns = 20;
    for (int i = 0; i < kRuns; ++i) ASSERT_TRUE(sampler->sample(logits, history).ok());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << "vocab 262144, " << s.name << ": " << ms / kRuns << " ms per token\n";
  }
}

// ----- log-probabilities -------------------------------------------------------------------

TEST(Logprobs, MatchADirectLogSoftmax) {
  const auto logits = random_logits(1000, 17, 5.0f);
  double max = *std::max_element(logits.begin(), logits.end());
  double total = 0;
  for (float l : logits) total += std::exp(l - max);
  auto reference = [&](int32_t id) { return logits[id] - max - std::log(total); };
  const auto best = ranked(logits);
  auto lp = compute_logprobs(logits, 123, 20);
  ASSERT_TRUE(lp.ok()) << lp.status().to_string();
  EXPECT_EQ(lp->chosen.token, 123);
  EXPECT_NEAR(lp->chosen.logprob, reference(123), 1e-5);
  ASSERT_EQ(lp->top.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(lp->top[i].token, best[i]);
    EXPECT_NEAR(lp->top[i].logprob, reference(best[i]), 1e-5);
  }
  auto none = compute_logprobs(logits, 5, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->top.empty());
}

TEST(Logprobs, BreakTiesByTheLowerIdAndSkipNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto lp = compute_logprobs(std::vector<float>{1.0f, 2.0f, nan, 2.0f, 0.0f}, 2, 3);
  ASSERT_TRUE(lp.ok());
  ASSERT_EQ(lp->top.size(), 3u);
  EXPECT_EQ(lp->top[0].token, 1);
  EXPECT_EQ(lp->top[1].token, 3);
  EXPECT_EQ(lp->top[2].token, 0);
  EXPECT_EQ(lp->chosen.logprob, -kInf);
  EXPECT_NEAR(lp->top[0].logprob, std::log(std::exp(2.0) / (std::exp(1.0) + 2 * std::exp(2.0) + 1)), 1e-6);
}

TEST(Logprobs, RejectBadArguments) {
  const std::vector<float> logits = {1, 2, 3};
  EXPECT_EQ(compute_logprobs(logits, 0, 21).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(compute_logprobs(logits, 0, -1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(compute_logprobs(logits, 3, 1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(compute_logprobs(logits, -1, 1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(compute_logprobs({}, 0, 1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(compute_logprobs(std::vector<float>{-kInf, -kInf}, 0, 1).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::engine
