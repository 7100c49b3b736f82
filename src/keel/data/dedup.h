// Duplicate removal over record files: exact (normalize_for_exact, 128-bit key) in
// one streaming pass, or near-duplicate (MinHash LSH, minhash.h) in two passes over
// the input (signatures, then the kept records). Both keep the first record of every
// duplicate cluster in input order, with all its fields as read, and write nothing
// else. Memory: 16 bytes per record (exact) or 8 x bands bytes per record (near; plus
// 4 x num_perm with a threshold). The input must be a file that can be read twice.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "keel/data/minhash.h"
#include "keel/data/records.h"
#include "keel/util/status.h"

namespace keel::data {

struct DedupOptions {
  std::string input;
  std::string output;
  std::string input_format;    // empty: from the extension
  std::string output_format;   // empty: from the extension
  std::string rejects;         // JSONL of rejected records; empty: none written
  std::string clusters;        // JSONL {"cluster", "size", "members"}; empty: none
  std::string field = "text";  // the string field compared
  bool near = false;
  MinHashConfig minhash;
  int threads = 0;  // signature threads; 0: one per core
  size_t max_record_bytes = size_t{64} << 20;
  // Called now and then with compressed input bytes consumed and records read
  // (pass 2 of near dedup reports again from 0).
  std::function<void(uint64_t bytes, uint64_t records)> progress;
};

struct DedupSummary {
  uint64_t records_read = 0;  // records parsed with a string text field
  uint64_t kept = 0;
  uint64_t removed = 0;
  uint64_t clusters = 0;                    // duplicate clusters (two or more records)
  uint64_t rejected = 0;                    // malformed records and records without the text field
  std::vector<Rejection> first_rejections;  // up to three, for the user
  double seconds_signatures = 0;            // near: pass 1; exact: the whole run
  double seconds_total = 0;
};

Result<DedupSummary> deduplicate(const DedupOptions& options);

}  // namespace keel::data
