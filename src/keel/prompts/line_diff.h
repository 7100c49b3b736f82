// A unified line diff (the `diff -u` format) from a longest-common-subsequence edit
// script. Used to compare prompt template versions. Inputs are bounded: after the
// common head and tail are trimmed, the LCS table must fit kMaxDiffCells cells, or the
// diff is kResourceExhausted rather than a multi-gigabyte allocation.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "keel/util/status.h"

namespace keel::prompts {

inline constexpr size_t kMaxDiffCells = 16u << 20;

// Splits on '\n'; a final newline does not start another (empty) line.
std::vector<std::string> split_lines(const std::string& text);

// "--- from_label\n+++ to_label\n@@ -a,b +c,d @@\n lines..." with `context` unchanged
// lines around each change; "" when the texts have the same lines.
Result<std::string> unified_diff(const std::string& from_text, const std::string& to_text,
                                 const std::string& from_label, const std::string& to_label, size_t context = 3);

}  // namespace keel::prompts
