#include "keel/data/pipeline.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "keel/data/record_text.h"
#include "keel/data/rejects_file.h"
#include "keel/data/split_operator.h"

namespace keel::data {
namespace {

constexpr std::string_view kSplitToken = "{split}";

// One pass: streaming steps [begin, end) from input to the outputs.
struct Pass {
  size_t begin = 0;
  size_t end = 0;
  std::string input;
  std::string input_format;
  std::string output;  // may hold {split} (last pass only)
  std::string output_format;
  bool last = false;
  // When the next step is near dedup: records without its field are dropped here, in
  // its name, so that its passes see only records they can compare.
  const PipelineStep* next_near = nullptr;
  size_t next_near_index = 0;
};

std::string drop_json(const Record& record) {
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class TempFiles {
 public:
  explicit TempFiles(std::string base) : base_(std::move(base)) {}
  ~TempFiles() {
    for (const auto& p : paths_) ::unlink(p.c_str());
  }
  std::string next() {
    paths_.push_back(base_ + ".keel-pass" + std::to_string(paths_.size() + 1) + "-" + std::to_string(::getpid()) +
                     ".jsonl");
    return paths_.back();
  }

 private:
  std::string base_;
  std::vector<std::string> paths_;
};

}  // namespace

std::string split_output_path(const std::string& pattern, const std::string& split) {
  std::string out = pattern;
  for (size_t pos = out.find(kSplitToken); pos != std::string::npos; pos = out.find(kSplitToken, pos + split.size())) {
    out.replace(pos, kSplitToken.size(), split);
  }
  return out;
}

Result<PipelineSummary> run_pipeline(std::vector<PipelineStep>& steps, const PipelineOptions& o) {
  auto start = std::chrono::steady_clock::now();
  if (o.input.empty() || o.output.empty()) return invalid_argument("a pipeline needs an input and an output file");
  if (o.input == o.output) return invalid_argument("the output must be a different file from the input");
  bool per_split = o.output.find(kSplitToken) != std::string::npos;
  SplitOperator* splitter = nullptr;
  if (per_split) {
    // The last split step routes; it must come after every near dedup (in the last pass).
    for (size_t i = steps.size(); i-- > 0;) {
      if (steps[i].near_dedup) break;
      if (steps[i].type == "split") {
        splitter = static_cast<SplitOperator*>(steps[i].op.get());
        break;
      }
    }
    if (splitter == nullptr) {
      return invalid_argument("an output with {split} needs a split step (after any near dedup)");
    }
  }
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    if (steps[i].near_dedup && steps[i + 1].near_dedup) {
      return invalid_argument("two near-dedup steps in a row: one is enough");
    }
  }

  // The output's folder is made when missing (clean/{split}.jsonl).
  std::filesystem::path parent = std::filesystem::path(o.output).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return invalid_argument("cannot make the folder " + parent.string() + ": " + ec.message());
  }

  // Passes: streaming runs separated by near-dedup steps.
  TempFiles temps(per_split ? split_output_path(o.output, "tmp") : o.output);
  std::vector<Pass> passes;
  std::vector<size_t> near_steps;  // step index of each near dedup, between passes
  {
    Pass current;
    current.input = o.input;
    current.input_format = o.input_format;
    for (size_t i = 0; i <= steps.size(); ++i) {
      if (i == steps.size() || steps[i].near_dedup) {
        current.end = i;
        if (i == steps.size()) {
          current.output = o.output;
          current.output_format = o.output_format;
          current.last = true;
          passes.push_back(current);
          break;
        }
        current.output = temps.next();
        current.output_format = "jsonl";
        current.next_near = &steps[i];
        current.next_near_index = i;
        passes.push_back(current);
        near_steps.push_back(i);
        Pass after;
        after.begin = i + 1;
        after.input = temps.next();  // near dedup writes here
        after.input_format = "jsonl";
        current = after;
      }
    }
  }

  KEEL_ASSIGN_OR_RETURN(auto rejects, RejectsFile::open(o.rejects));
  RejectsFile* rejects_ptr = rejects.get();
  PipelineSummary summary;
  std::vector<uint64_t> near_seen(steps.size(), 0), near_dropped_missing(steps.size(), 0);
  std::vector<DedupSummary> near_summaries(steps.size());
  int pass_number = 0;

  for (size_t p = 0; p < passes.size(); ++p) {
    const Pass& pass = passes[p];
    // Near dedup before this pass (its own two passes over the previous pass's output).
    if (p > 0) {
      size_t ni = near_steps[p - 1];
      DedupOptions d = *steps[ni].near_dedup;
      d.input = passes[p - 1].output;
      d.output = pass.input;
      d.input_format = "jsonl";
      d.output_format = "jsonl";
      d.max_record_bytes = o.max_record_bytes;
      int this_pass = ++pass_number;
      if (o.progress) {
        d.progress = [&o, this_pass](uint64_t bytes, uint64_t records) {
          o.progress(this_pass, "dedup (near)", bytes, records);
        };
      }
      auto ds = deduplicate(d);
      if (!ds.ok()) return ds.status().with_context("near dedup");
      near_summaries[ni] = *ds;
      ++pass_number;  // its second pass
    }

    ReadOptions ro;
    ro.format = pass.input_format;
    ro.max_record_bytes = o.max_record_bytes;
    ro.text_field = o.text_field;
    if (p == 0) {
      ro.on_reject = [rejects_ptr, &summary](const Rejection& r) {
        rejects_ptr->add(r);
        ++summary.rejected;
        if (summary.first_rejections.size() < 3) summary.first_rejections.push_back(r);
      };
    }
    KEEL_ASSIGN_OR_RETURN(auto reader, RecordReader::open(pass.input, ro));

    WriteOptions wo;
    wo.format = pass.output_format;
    wo.text_field = o.text_field;
    std::vector<std::unique_ptr<RecordWriter>> writers;
    std::vector<uint64_t> written;
    if (pass.last && per_split) {
      for (const auto& name : splitter->split_names()) {
        KEEL_ASSIGN_OR_RETURN(auto w, RecordWriter::open(split_output_path(pass.output, name), wo));
        writers.push_back(std::move(w));
      }
    } else {
      KEEL_ASSIGN_OR_RETURN(auto w, RecordWriter::open(pass.output, wo));
      writers.push_back(std::move(w));
    }
    written.assign(writers.size(), 0);

    int this_pass = ++pass_number;
    std::string label = p == 0 ? "pass 1" : "pass " + std::to_string(this_pass);
    Record record;
    uint64_t read = 0;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(bool got, reader->next(&record));
      if (!got) break;
      ++read;
      if (o.progress && (read & 1023) == 0) o.progress(this_pass, label, reader->file_bytes_read(), read);
      bool keep = true;
      bool changed = false;
      for (size_t i = pass.begin; i < pass.end && keep; ++i) {
        Verdict v = steps[i].op->apply(&record);
        changed = changed || v.changed;
        if (!v.keep) {
          keep = false;
          ++summary.dropped;
          rejects->add(Rejection{o.input, p == 0 ? reader->record_line() : 0, steps[i].type + ": " + v.reason,
                                 drop_json(record)});
        }
      }
      if (keep && pass.next_near != nullptr) {
        ++near_seen[pass.next_near_index];
        if (!has_text(record, pass.next_near->near_dedup->field)) {
          keep = false;
          ++summary.dropped;
          ++near_dropped_missing[pass.next_near_index];
          rejects->add(
              Rejection{o.input, p == 0 ? reader->record_line() : 0, "dedup: no_text_field", drop_json(record)});
        }
      }
      if (!keep) continue;
      size_t w = pass.last && per_split ? splitter->last_split() : 0;
      // An unchanged JSONL record is copied as read (byte for byte, no serialising).
      std::string_view raw = reader->raw_json();
      if (!changed && !raw.empty() && writers[w]->writes_raw_json()) {
        KEEL_RETURN_IF_ERROR(writers[w]->write_raw_json(raw));
      } else {
        KEEL_RETURN_IF_ERROR(writers[w]->write(record));
      }
      ++written[w];
    }
    if (o.progress) o.progress(this_pass, label, reader->file_bytes_read(), read);
    if (p == 0) summary.records_read = read;
    for (auto& w : writers) KEEL_RETURN_IF_ERROR(w->close());
    if (pass.last) {
      for (size_t w = 0; w < writers.size(); ++w) {
        std::string path = per_split ? split_output_path(pass.output, splitter->split_names()[w]) : pass.output;
        summary.outputs.emplace_back(path, written[w]);
        summary.written += written[w];
      }
    }
  }
  KEEL_RETURN_IF_ERROR(rejects->close());
  summary.passes = pass_number;
  for (size_t i = 0; i < steps.size(); ++i) {
    StepReport r;
    r.type = steps[i].type;
    r.params = steps[i].params;
    if (steps[i].op) {
      r.counts = steps[i].op->counts();
    } else {
      const DedupSummary& d = near_summaries[i];
      r.counts.seen = near_seen[i];
      r.counts.kept = d.kept;
      r.counts.dropped = d.removed + near_dropped_missing[i];
      if (d.removed > 0) r.counts.dropped_by_reason["near_duplicate"] = d.removed;
      if (near_dropped_missing[i] > 0) r.counts.dropped_by_reason["no_text_field"] = near_dropped_missing[i];
      r.clusters = d.clusters;
    }
    summary.steps.push_back(std::move(r));
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace keel::data
