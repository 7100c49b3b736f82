#include "keel/prompts/line_diff.h"

#include <algorithm>
#include <cstdint>

namespace keel::prompts {
namespace {

enum class Op { kKeep, kDelete, kInsert };

struct Edit {
  Op op;
  size_t from_line;  // index in `from` (kKeep, kDelete) or the insertion point (kInsert)
  size_t to_line;    // index in `to` (kKeep, kInsert) or the deletion point (kDelete)
};

// "-3,2" style range; GNU diff omits the count when it is 1 and names the line before
// an empty range.
std::string range(size_t first_index, size_t count) {
  if (count == 1) return std::to_string(first_index + 1);
  return std::to_string(count == 0 ? first_index : first_index + 1) + "," + std::to_string(count);
}

}  // namespace

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

Result<std::string> unified_diff(const std::string& from_text, const std::string& to_text,
                                 const std::string& from_label, const std::string& to_label, size_t context) {
  const std::vector<std::string> a = split_lines(from_text), b = split_lines(to_text);
  // Trim the common head and tail: most template edits touch a few lines.
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) ++head;
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head && a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) ++tail;
  const size_t n = a.size() - head - tail, m = b.size() - head - tail;
  if (n == 0 && m == 0) return std::string();
  if ((n + 1) * (m + 1) > kMaxDiffCells) {
    return resource_exhausted("the templates differ in " + std::to_string(n) + " and " + std::to_string(m) +
                              " lines, too many to diff line by line");
  }
  // lcs[i][j]: the LCS length of a[head+i..] and b[head+j..] within the changed middle.
  std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      at(i, j) = a[head + i] == b[head + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    }
  }
  std::vector<Edit> edits;
  for (size_t k = 0; k < head; ++k) edits.push_back({Op::kKeep, k, k});
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[head + i] == b[head + j]) {
      edits.push_back({Op::kKeep, head + i, head + j});
      ++i, ++j;
    } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {  // deletions first, as diff -u prints them
      edits.push_back({Op::kDelete, head + i, head + j});
      ++i;
    } else {
      edits.push_back({Op::kInsert, head + i, head + j});
      ++j;
    }
  }
  for (size_t k = 0; k < tail; ++k) edits.push_back({Op::kKeep, head + n + k, head + m + k});

  std::string out = "--- " + from_label + "\n+++ " + to_label + "\n";
  size_t e = 0;
  while (e < edits.size()) {
    if (edits[e].op == Op::kKeep) {
      ++e;
      continue;
    }
    // A hunk: back up `context` kept lines, then extend while changes are within
    // 2 * context kept lines of each other.
    size_t begin = e >= context ? e - context : 0;
    size_t end = e;  // one past the last change seen
    size_t k = e;
    while (k < edits.size()) {
      if (edits[k].op != Op::kKeep) {
        end = k + 1;
        ++k;
        continue;
      }
      size_t run = 0;
      while (k + run < edits.size() && edits[k + run].op == Op::kKeep) ++run;
      if (k + run < edits.size() && run <= 2 * context) {
        k += run;
        continue;
      }
      break;
    }
    size_t stop = std::min(edits.size(), end + context);
    size_t from_count = 0, to_count = 0;
    for (size_t x = begin; x < stop; ++x) {
      if (edits[x].op != Op::kInsert) ++from_count;
      if (edits[x].op != Op::kDelete) ++to_count;
    }
    out += "@@ -" + range(edits[begin].from_line, from_count) + " +" + range(edits[begin].to_line, to_count) + " @@\n";
    for (size_t x = begin; x < stop; ++x) {
      const Edit& d = edits[x];
      switch (d.op) {
        case Op::kKeep:
          out += " ";
          out += a[d.from_line];
          break;
        case Op::kDelete:
          out += "-";
          out += a[d.from_line];
          break;
        case Op::kInsert:
          out += "+";
          out += b[d.to_line];
          break;
      }
      out += "\n";
    }
    e = stop;
  }
  return out;
}

}  // namespace keel::prompts
