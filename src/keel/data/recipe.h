// Recipes: a YAML file naming the steps of a data pipeline and their parameters.
//
//   field: text            # optional: the text field every step works on
//   dataset: web-clean     # optional: record the output as a version of this dataset
//   steps:
//     - normalize: {unicode: nfkc, html: true}
//     - gopher_quality: {min_doc_words: 30}
//     - dedup: {near: true}
//     - split: {ratios: [0.8, 0.1, 0.1], key: id}
//
// Every step is a map with one key, its type (steps.h); its value holds parameters
// (or nothing, for the defaults). An unknown key or a value of the wrong type is an
// error naming the key and its line. yaml-cpp's exceptions stop here.
#pragma once

#include <string>
#include <vector>

#include "keel/data/steps.h"

namespace keel::data {

struct Recipe {
  std::string name;  // optional
  std::string field = "text";
  std::string dataset;  // optional: the dataset the output becomes a version of
  std::vector<PipelineStep> steps;
};

// `source` names the text in messages (the file name).
Result<Recipe> parse_recipe(const std::string& yaml, const std::string& source);
Result<Recipe> load_recipe(const std::string& path);

}  // namespace keel::data
