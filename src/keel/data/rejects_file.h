// Where rejected records go: counted always, and written as JSONL (one
// rejection_to_json_line per record) when a path is given. Used by the data commands.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keel/data/byte_stream.h"
#include "keel/data/records.h"
#include "keel/util/status.h"

namespace keel::data {

class RejectsFile {
 public:
  // An empty path counts rejections without writing them.
  static Result<std::unique_ptr<RejectsFile>> open(const std::string& path);
  // Never fails: the first write error is kept and returned by close().
  void add(const Rejection& rejection);
  Status close();
  uint64_t count() const { return count_; }
  // The first few rejections (raw text cut to 200 bytes), for a summary a user reads.
  const std::vector<Rejection>& first() const { return first_; }

 private:
  static constexpr size_t kKeepFirst = 3;
  std::vector<Rejection> first_;
  std::unique_ptr<ByteSink> sink_;
  Status status_;
  uint64_t count_ = 0;
};

}  // namespace keel::data
