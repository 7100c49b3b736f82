#include "eval_fixtures.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "keel/util/file.h"
#include "support/test_support.h"

namespace keel::eval::test_fixtures {

std::string source_root() { return keel::testing::source_dir(); }

std::vector<std::string> read_lines(const std::string& path) {
  auto text = read_file(path);
  EXPECT_TRUE(text.ok()) << path << ": " << text.status().to_string();
  if (!text.ok()) return {};
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text->find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(text->substr(start, nl - start));
  }
  EXPECT_EQ(start, text->size()) << path << " does not end with a newline";
  return lines;
}

Corpus load_corpus(const std::string& name) {
  const std::string base = source_root() + "/tests/fixtures/eval/corpora/" + name;
  Corpus c;
  c.hyps = read_lines(base + ".hyp");
  for (int k = 0; path_exists(base + ".ref" + std::to_string(k)); ++k) {
    c.refs.push_back(read_lines(base + ".ref" + std::to_string(k)));
  }
  return c;
}

const Json& json_fixture(const std::string& name) {
  static std::map<std::string, Result<Json>> cache;
  static const Json null_json;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string path = source_root() + "/tests/fixtures/eval/" + name;
    auto text = read_file(path);
    it = cache.emplace(name, text.ok() ? parse_json(*text) : Result<Json>(text.status())).first;
  }
  if (!it->second.ok()) {
    ADD_FAILURE() << "tests/fixtures/eval/" << name << ": " << it->second.status().to_string();
    return null_json;
  }
  return *it->second;
}

::testing::AssertionResult close(double actual, double expected) {
  if (std::fabs(actual - expected) <= std::max(1e-9 * std::fabs(expected), 1e-12)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "actual " << actual << " expected " << expected << " (diff "
                                       << actual - expected << ")";
}

}  // namespace keel::eval::test_fixtures
