// Text of made-up words for the dedup and diff tests: the same seed gives the same
// words, and two texts from different seeds share a word 5-gram only by a vanishing
// chance, so a test decides exactly which texts are near duplicates.
#pragma once

#include <cstdint>
#include <string>

namespace keel::testing {

// n words of 7 letters each, separated by single spaces.
inline std::string made_up_words(uint64_t seed, int n) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 7;
  std::string out;
  for (int i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    if (i > 0) out.push_back(' ');
    for (int c = 0; c < 7; ++c) out.push_back(static_cast<char>('a' + (x >> (8 + 5 * c)) % 26));
  }
  return out;
}

}  // namespace keel::testing
