// Shared helpers for the metric tests: the reference corpora and JSON fixtures under
// tests/fixtures/eval/ (made by the scripts in tests/reference/), and the tolerance the
// metric tests compare scores to.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "keel/util/json.h"

namespace keel::eval::test_fixtures {

// The repository root ($KEEL_SOURCE_DIR, else the compiled-in source folder).
std::string source_root();

// A corpus file split on "\n" only (the corpora hold \x85 and \x1f on purpose).
// Fails the current test if the file cannot be read or does not end with a newline.
std::vector<std::string> read_lines(const std::string& path);

// tests/fixtures/eval/corpora/<name>.hyp and its reference streams .ref0, .ref1, ...
struct Corpus {
  std::vector<std::string> hyps;
  std::vector<std::vector<std::string>> refs;  // [stream][segment]
};
Corpus load_corpus(const std::string& name);

// tests/fixtures/eval/<name>, parsed once and cached. A file that cannot be read or
// parsed fails the calling test and yields a null Json.
const Json& json_fixture(const std::string& name);

// 1e-9 relative, 1e-12 absolute near zero.
::testing::AssertionResult close(double actual, double expected);

}  // namespace keel::eval::test_fixtures
