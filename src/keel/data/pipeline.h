// Runs steps (steps.h) over a record file: streaming steps one record at a time in a
// single pass; a near-duplicate step takes passes of its own over an intermediate
// JSONL file (beside the output, removed afterwards). Records that cannot be read,
// and records a step drops ("<step>: <reason>"), go to the rejects file when one is
// named (with their input line; 0 for drops after a near dedup, which reorders nothing
// but reads an intermediate file). Deterministic: the same steps on the same input write the same bytes.
// An output path containing "{split}" writes one file per split of the last split
// step (which must follow any near dedup); otherwise every kept record goes to the output.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "keel/data/steps.h"

namespace keel::data {

struct PipelineOptions {
  std::string input;
  std::string output;
  std::string input_format;
  std::string output_format;
  std::string rejects;
  std::string text_field = "text";  // what a plain-text input line becomes
  size_t max_record_bytes = size_t{64} << 20;
  // Called now and then: the pass (from 1), its label, input bytes consumed, records read.
  std::function<void(int pass, const std::string& label, uint64_t bytes, uint64_t records)> progress;
};

struct StepReport {
  std::string type;
  nlohmann::ordered_json params;
  StepCounts counts;
  uint64_t clusters = 0;  // near dedup
};

struct PipelineSummary {
  uint64_t records_read = 0;  // records read from the input (malformed ones not included)
  uint64_t written = 0;
  uint64_t dropped = 0;                     // by the steps
  uint64_t rejected = 0;                    // malformed records
  std::vector<Rejection> first_rejections;  // the first malformed records, up to three
  std::vector<StepReport> steps;
  std::vector<std::pair<std::string, uint64_t>> outputs;  // path, records written
  int passes = 0;
  double seconds = 0;
};

Result<PipelineSummary> run_pipeline(std::vector<PipelineStep>& steps, const PipelineOptions& options);

// The output path for one split: "{split}" replaced by its name.
std::string split_output_path(const std::string& pattern, const std::string& split);

}  // namespace keel::data
