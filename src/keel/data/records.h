// Streaming record readers and writers for the data pipeline: JSONL, JSON array,
// CSV / TSV (RFC 4180 quoting, fields may hold newlines) and plain text (one document
// per line), each optionally gzip- or zstd-compressed (by extension, see byte_stream.h).
// A record is a JSON object whose fields keep their input order.
//
// Contract: memory stays bounded by the largest record, never the file. A malformed
// record (bad JSON, invalid UTF-8, not an object, broken quotes, too large) does not
// stop reading: it is counted and handed to `on_reject` with its file and line, and
// reading goes on. Only what cannot be resynchronised (I/O errors, a truncated or
// corrupt compressed stream, a JSON array or CSV whose structure breaks) is an error,
// and its message says how many records were read before it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "keel/util/status.h"

namespace keel::data {

// Fields in input order (nlohmann's ordered_json), so that what is written back keeps
// the order it was read in.
using Record = nlohmann::ordered_json;

enum class RecordFormat { kJsonl, kJsonArray, kCsv, kTsv, kText };

// "jsonl", "json", "csv", "tsv", "text".
std::string_view record_format_name(RecordFormat format);
Result<RecordFormat> parse_record_format(std::string_view name);
// From the path, after any .gz / .zst: .jsonl/.ndjson, .json, .csv, .tsv, .txt/.text.
// A .json input whose first byte is not '[' is read as JSONL (the reader checks).
Result<RecordFormat> record_format_for_path(std::string_view path);

// One record that could not be read.
struct Rejection {
  std::string file;
  uint64_t line = 0;   // 1-based line where the record starts
  std::string reason;  // "invalid JSON: ...", "invalid UTF-8", ...
  std::string raw;     // the offending text (empty when it was too large to keep)
};

struct ReadOptions {
  std::string format;  // empty: from the path
  size_t max_record_bytes = size_t{64} << 20;
  std::string text_field = "text";                  // the field a plain-text line becomes
  std::function<void(const Rejection&)> on_reject;  // may be empty
};

class RecordReader {
 public:
  static Result<std::unique_ptr<RecordReader>> open(const std::string& path, ReadOptions options);
  virtual ~RecordReader() = default;

  // Reads the next record into *record: true when one was read, false at the end.
  virtual Result<bool> next(Record* record) = 0;

  RecordFormat format() const { return format_; }
  const std::string& path() const { return path_; }
  uint64_t records_read() const { return records_read_; }
  uint64_t rejected() const { return rejected_; }
  // 1-based line where the last record returned by next() started.
  uint64_t record_line() const { return record_line_; }
  // Compressed bytes for compressed input; for progress against the file size.
  virtual uint64_t file_bytes_read() const = 0;
  // The last record exactly as it stood in a JSONL input (its line, without "\r"), so
  // that a JSONL output can copy it byte for byte; empty for the other formats.
  virtual std::string_view raw_json() const { return {}; }

 protected:
  RecordReader(std::string path, RecordFormat format, ReadOptions options)
      : path_(std::move(path)), format_(format), options_(std::move(options)) {}
  void reject(uint64_t line, std::string reason, std::string raw);
  // One JSON record's checks (size, UTF-8, an object) for the JSON formats: on success
  // fills *record, counts it and returns true; otherwise rejects it with the reason.
  bool accept_json(const std::string& text, bool oversize, uint64_t line, Record* record);
  // Adds "after N records" context to a stream error.
  Status stream_error(const Status& st) const;

  std::string path_;
  RecordFormat format_;
  ReadOptions options_;
  uint64_t records_read_ = 0;
  uint64_t rejected_ = 0;
  uint64_t record_line_ = 0;
};

struct WriteOptions {
  std::string format;               // empty: from the path
  std::string text_field = "text";  // what a plain-text output writes per line
};

class RecordWriter {
 public:
  static Result<std::unique_ptr<RecordWriter>> open(const std::string& path, WriteOptions options = {});
  virtual ~RecordWriter() = default;
  // CSV/TSV take their header from the first record; a later record's field missing
  // from it is left empty, and a field the header lacks is an error.
  virtual Status write(const Record& record) = 0;
  // True when write_raw_json() is supported (JSONL output).
  virtual bool writes_raw_json() const { return false; }
  // Writes one record given as its JSON text (a RecordReader::raw_json()), verbatim.
  virtual Status write_raw_json(std::string_view /*json*/) {
    return failed_precondition("raw JSON needs a JSONL output");
  }
  // Must be called: writes the trailer (JSON array, compression) and closes the file.
  virtual Status close() = 0;
};

// Copies lines of a JSONL input (1-based numbers, ascending) to a JSONL writer
// verbatim: the second pass of near-dedup, which need not parse again what its first
// pass checked. progress gets compressed bytes read and lines copied.
Status copy_jsonl_lines(const std::string& input, const std::vector<uint64_t>& lines, RecordWriter* writer,
                        const std::function<void(uint64_t, uint64_t)>& progress);

// Rejections as JSONL lines {"file", "line", "reason", "raw"} (invalid UTF-8 in raw
// is replaced by U+FFFD).
std::string rejection_to_json_line(const Rejection& rejection);

// True when text is well-formed UTF-8 (no overlongs, surrogates or values > U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace keel::data
