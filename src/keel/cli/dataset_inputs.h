// How data commands take a dataset: an argument is a file when one exists at that
// path, else a dataset reference (NAME, NAME@VERSION), resolved to the version's
// local JSONL file. Shared by keel data run/profile/export and the dataset commands.
#pragma once

#include <optional>
#include <string>

#include "keel/cli/context.h"
#include "keel/datasets/dataset_registry.h"

namespace keel::cli {

struct DataInput {
  std::string path;    // a readable file
  std::string format;  // "jsonl" for a dataset version; "" (from the path) for a file
  std::optional<datasets::DatasetVersion> dataset;  // set when the argument named one
};

// The folder of links to dataset files: <home>/datasets.
std::string dataset_cache_dir(CliContext& ctx);

// A file if there is one at `argument`, else a dataset version; an error names both
// readings when neither fits.
Result<DataInput> resolve_data_input(CliContext& ctx, const std::string& argument);

// Records `file` as a new version of spec.name (or finds the one holding its content),
// with a progress bar, and prints what happened (one line; nothing with --json, the
// caller prints). Returns the created (or existing) version.
Result<datasets::CreatedDataset> record_dataset_version(CliContext& ctx, const std::string& file,
                                                        datasets::NewDatasetVersion spec);

// "recorded clean@2 (1,234 records, sha256 ab12...)" or "unchanged: clean@1 already ...".
std::string describe_created(const datasets::CreatedDataset& created);

}  // namespace keel::cli
