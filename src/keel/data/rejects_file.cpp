#include "keel/data/rejects_file.h"

namespace keel::data {

Result<std::unique_ptr<RejectsFile>> RejectsFile::open(const std::string& path) {
  auto file = std::make_unique<RejectsFile>();
  if (!path.empty()) {
    KEEL_ASSIGN_OR_RETURN(file->sink_, open_byte_sink(path));
  }
  return file;
}

void RejectsFile::add(const Rejection& rejection) {
  ++count_;
  if (first_.size() < kKeepFirst) {
    first_.push_back(rejection);
    if (first_.back().raw.size() > 200) first_.back().raw.resize(200);
  }
  if (sink_ == nullptr || !status_.ok()) return;
  status_ = sink_->write(rejection_to_json_line(rejection));
}

Status RejectsFile::close() {
  if (sink_ != nullptr) {
    Status st = sink_->close();
    if (status_.ok()) status_ = st;
    sink_.reset();
  }
  return status_;
}

}  // namespace keel::data
