#include "keel/data/records.h"

#include <cstring>
#include <limits>
#include <vector>

#include "keel/data/byte_stream.h"

namespace keel::data {
namespace {

constexpr size_t kReadChunk = size_t{1} << 20;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string human_size(size_t bytes) {
  if (bytes >= (size_t{1} << 20) && bytes % (size_t{1} << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

// A refillable window over a ByteSource, read byte by byte or line by line.
class BufferedInput {
 public:
  explicit BufferedInput(std::unique_ptr<ByteSource> source) : source_(std::move(source)), buffer_(kReadChunk) {}

  // The next byte, or -1 at the end.
  Result<int> get() {
    if (pos_ == end_) {
      KEEL_RETURN_IF_ERROR(refill());
      if (pos_ == end_) return -1;
    }
    return static_cast<unsigned char>(buffer_[pos_++]);
  }
  Result<int> peek() {
    if (pos_ == end_) {
      KEEL_RETURN_IF_ERROR(refill());
      if (pos_ == end_) return -1;
    }
    return static_cast<unsigned char>(buffer_[pos_]);
  }

  // Appends the next line (without "\n") to *line, keeping at most max bytes; when the
  // line is longer, *oversize is set and the rest is skipped. False at the end of data.
  Result<bool> read_line(std::string* line, size_t max, bool* oversize) {
    line->clear();
    *oversize = false;
    bool any = false;
    while (true) {
      if (pos_ == end_) {
        KEEL_RETURN_IF_ERROR(refill());
        if (pos_ == end_) return any;
      }
      any = true;
      const char* start = buffer_.data() + pos_;
      const void* nl = std::memchr(start, '\n', end_ - pos_);
      size_t take = nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - start) : end_ - pos_;
      if (!*oversize) {
        if (line->size() + take > max) {
          *oversize = true;
          line->clear();
          line->shrink_to_fit();
        } else {
          line->append(start, take);
        }
      }
      pos_ += take;
      if (nl != nullptr) {
        ++pos_;
        return true;
      }
    }
  }

  uint64_t file_bytes_read() const { return source_->file_bytes_read(); }

 private:
  Status refill() {
    KEEL_ASSIGN_OR_RETURN(size_t n, source_->read(buffer_.data(), buffer_.size()));
    pos_ = 0;
    end_ = n;
    return Status::Ok();
  }
  std::unique_ptr<ByteSource> source_;
  std::vector<char> buffer_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

// Parses one JSON document; on failure returns the parser's message.
bool parse_object(std::string_view text, Record* out, std::string* reason) {
  try {
    *out = Record::parse(text);
  } catch (const nlohmann::json::exception& e) {
    *reason = std::string("invalid JSON: ") + e.what();
    return false;
  }
  if (!out->is_object()) {
    *reason = std::string("not a JSON object (a ") + out->type_name() + ")";
    return false;
  }
  return true;
}

bool is_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

class JsonlReader : public RecordReader {
 public:
  JsonlReader(std::string path, ReadOptions options, std::unique_ptr<ByteSource> source, RecordFormat format)
      : RecordReader(std::move(path), format, std::move(options)), in_(std::move(source)) {}

  Result<bool> next(Record* record) override {
    bool oversize = false;
    while (true) {
      auto got = in_.read_line(&line_, options_.max_record_bytes, &oversize);
      if (!got.ok()) return stream_error(got.status());
      if (!*got) return false;
      ++line_number_;
      if (!oversize && is_blank(line_)) continue;
      if (accept_json(line_, oversize, line_number_, record)) return true;
    }
  }
  uint64_t file_bytes_read() const override { return in_.file_bytes_read(); }
  std::string_view raw_json() const override {
    std::string_view line(line_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  }

 private:
  BufferedInput in_;
  std::string line_;
  uint64_t line_number_ = 0;
};

class TextReader : public RecordReader {
 public:
  TextReader(std::string path, ReadOptions options, std::unique_ptr<ByteSource> source)
      : RecordReader(std::move(path), RecordFormat::kText, std::move(options)), in_(std::move(source)) {}

  Result<bool> next(Record* record) override {
    bool oversize = false;
    while (true) {
      auto got = in_.read_line(&line_, options_.max_record_bytes, &oversize);
      if (!got.ok()) return stream_error(got.status());
      if (!*got) return false;
      ++line_number_;
      if (oversize) {
        reject(line_number_, "line longer than the maximum record size (" + human_size(options_.max_record_bytes) + ")",
               "");
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.empty()) continue;
      if (!is_valid_utf8(line_)) {
        reject(line_number_, "invalid UTF-8", line_);
        continue;
      }
      *record = Record::object();
      (*record)[options_.text_field] = line_;
      record_line_ = line_number_;
      ++records_read_;
      return true;
    }
  }
  uint64_t file_bytes_read() const override { return in_.file_bytes_read(); }

 private:
  BufferedInput in_;
  std::string line_;
  uint64_t line_number_ = 0;
};

// RFC 4180: fields separated by the delimiter, records by CRLF or LF; a field in
// double quotes may hold delimiters, newlines and "" (one quote). The first record is
// the header and names the fields.
class CsvReader : public RecordReader {
 public:
  CsvReader(std::string path, ReadOptions options, std::unique_ptr<ByteSource> source, RecordFormat format)
      : RecordReader(std::move(path), format, std::move(options)),
        in_(std::move(source)),
        delimiter_(format == RecordFormat::kTsv ? '\t' : ',') {}

  Result<bool> next(Record* record) override {
    std::vector<std::string> fields;
    while (true) {
      uint64_t start_line = 0;
      std::string error;
      auto got = read_row(&fields, &start_line, &error);
      if (!got.ok()) return stream_error(got.status());
      if (!*got) return false;
      if (!error.empty()) {
        reject(start_line, error, raw_);
        continue;
      }
      if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
      if (!have_header_) {
        header_ = fields;
        have_header_ = true;
        for (const auto& name : header_) {
          if (!is_valid_utf8(name)) {
            return invalid_argument(path_ + " line " + std::to_string(start_line) + ": the header is not valid UTF-8");
          }
        }
        continue;
      }
      if (fields.size() != header_.size()) {
        reject(start_line,
               "has " + std::to_string(fields.size()) + " fields but the header has " + std::to_string(header_.size()),
               raw_);
        continue;
      }
      bool utf8_ok = true;
      for (const auto& f : fields) utf8_ok = utf8_ok && is_valid_utf8(f);
      if (!utf8_ok) {
        reject(start_line, "invalid UTF-8", raw_);
        continue;
      }
      *record = Record::object();
      for (size_t i = 0; i < fields.size(); ++i) (*record)[header_[i]] = std::move(fields[i]);
      record_line_ = start_line;
      ++records_read_;
      return true;
    }
  }
  uint64_t file_bytes_read() const override { return in_.file_bytes_read(); }

 private:
  // Reads one row into *fields. A row that breaks the quoting rules sets *error and is
  // consumed to the end of its line; an unterminated quote reaching the end of the file
  // is an error of that row. False at the end of the data.
  Result<bool> read_row(std::vector<std::string>* fields, uint64_t* start_line, std::string* error) {
    fields->assign(1, std::string());
    raw_.clear();
    *start_line = line_number_ + 1;
    enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted } state = State::kFieldStart;
    bool any = false;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(int c, in_.get());
      if (c < 0) {
        if (!any) return false;
        ++line_number_;
        if (state == State::kQuoted) {
          *error =
              "unterminated quoted field (a \" opened on line " + std::to_string(*start_line) + " is never closed)";
        }
        return true;
      }
      any = true;
      if (raw_.size() >= options_.max_record_bytes) {
        return invalid_argument(path_ + " line " + std::to_string(*start_line) +
                                ": CSV record larger than the maximum record size (" +
                                human_size(options_.max_record_bytes) + "); an unbalanced quote?");
      }
      raw_.push_back(static_cast<char>(c));
      std::string& field = fields->back();
      switch (state) {
        case State::kFieldStart:
          if (c == '"') {
            state = State::kQuoted;
            break;
          }
          state = State::kUnquoted;
          [[fallthrough]];
        case State::kUnquoted:
          if (c == delimiter_) {
            fields->emplace_back();
            state = State::kFieldStart;
          } else if (c == '\n') {
            ++line_number_;
            if (!field.empty() && field.back() == '\r') field.pop_back();
            return true;
          } else {
            field.push_back(static_cast<char>(c));
          }
          break;
        case State::kQuoted:
          if (c == '"') {
            state = State::kQuoteInQuoted;
          } else {
            if (c == '\n') ++line_number_;
            field.push_back(static_cast<char>(c));
          }
          break;
        case State::kQuoteInQuoted:
          if (c == '"') {
            field.push_back('"');
            state = State::kQuoted;
          } else if (c == delimiter_) {
            fields->emplace_back();
            state = State::kFieldStart;
          } else if (c == '\n') {
            ++line_number_;
            return true;
          } else if (c == '\r') {
            // CRLF after a closing quote
          } else {
            *error = "malformed quoted field: a closing \" must be followed by a delimiter or the end of the line";
            return skip_rest_of_line();
          }
          break;
      }
    }
  }

  Result<bool> skip_rest_of_line() {
    while (true) {
      KEEL_ASSIGN_OR_RETURN(int c, in_.get());
      if (c < 0) {
        ++line_number_;
        return true;
      }
      if (c == '\n') {
        ++line_number_;
        return true;
      }
      if (raw_.size() < 4096) raw_.push_back(static_cast<char>(c));
    }
  }

  BufferedInput in_;
  char delimiter_;
  bool have_header_ = false;
  std::vector<std::string> header_;
  std::string raw_;
  uint64_t line_number_ = 0;
};

// A JSON array of objects, read one element at a time: a small scanner finds each
// element's end (tracking strings and nesting) and nlohmann parses the element alone.
class JsonArrayReader : public RecordReader {
 public:
  JsonArrayReader(std::string path, ReadOptions options, std::unique_ptr<ByteSource> source)
      : RecordReader(std::move(path), RecordFormat::kJsonArray, std::move(options)), in_(std::move(source)) {}

  Result<bool> next(Record* record) override {
    while (true) {
      auto got = next_element();
      if (!got.ok()) return stream_error(got.status());
      if (!*got) return false;
      if (accept_json(element_, oversize_, element_line_, record)) return true;
    }
  }
  uint64_t file_bytes_read() const override { return in_.file_bytes_read(); }

 private:
  Status structure_error(const std::string& what) {
    return invalid_argument(path_ + " line " + std::to_string(line_) + ": " + what);
  }

  Result<int> skip_space() {
    while (true) {
      KEEL_ASSIGN_OR_RETURN(int c, in_.peek());
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return c;
      if (c == '\n') ++line_;
      (void)in_.get();
    }
  }

  Result<bool> next_element() {
    if (finished_) return false;
    if (!started_) {
      KEEL_ASSIGN_OR_RETURN(int c, skip_space());
      if (c < 0) return false;  // an empty file holds no records
      if (c != '[') return structure_error("a JSON array input must start with '['");
      (void)in_.get();
      started_ = true;
      KEEL_ASSIGN_OR_RETURN(int d, skip_space());
      if (d == ']') {
        (void)in_.get();
        return finish();
      }
    }
    KEEL_ASSIGN_OR_RETURN(int c, skip_space());
    if (c < 0) return structure_error("the JSON array ends before its closing ']' (file cut short?)");
    element_.clear();
    oversize_ = false;
    element_line_ = line_;
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(int b, in_.get());
      if (b < 0) return structure_error("the JSON array ends before its closing ']' (file cut short?)");
      if (b == '\n') ++line_;
      if (in_string) {
        if (escaped) {
          escaped = false;
        } else if (b == '\\') {
          escaped = true;
        } else if (b == '"') {
          in_string = false;
        }
      } else if (b == '"') {
        in_string = true;
      } else if (b == '{' || b == '[') {
        ++depth;
      } else if (b == '}' || b == ']') {
        if (depth == 0) {
          if (b == '}') return structure_error("unbalanced '}' in the JSON array");
          finished_ = true;
          break;
        }
        --depth;
      } else if (b == ',' && depth == 0) {
        break;
      }
      if (!oversize_) {
        if (element_.size() >= options_.max_record_bytes) {
          oversize_ = true;
          element_.clear();
          element_.shrink_to_fit();
        } else {
          element_.push_back(static_cast<char>(b));
        }
      }
    }
    if (finished_) KEEL_RETURN_IF_ERROR(check_trailer());
    return true;
  }

  Result<bool> finish() {
    finished_ = true;
    KEEL_RETURN_IF_ERROR(check_trailer());
    return false;
  }

  Status check_trailer() {
    auto c = skip_space();
    if (!c.ok()) return c.status();
    if (*c >= 0) return structure_error("unexpected text after the closing ']' of the JSON array");
    return Status::Ok();
  }

  BufferedInput in_;
  bool started_ = false;
  bool finished_ = false;
  bool oversize_ = false;
  std::string element_;
  uint64_t element_line_ = 1;
  uint64_t line_ = 1;
};

std::string dump_record(const Record& record) {
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class JsonlWriter : public RecordWriter {
 public:
  JsonlWriter(std::unique_ptr<ByteSink> sink, bool array) : sink_(std::move(sink)), array_(array) {}
  Status write(const Record& record) override {
    if (array_) KEEL_RETURN_IF_ERROR(sink_->write(count_ == 0 ? "[\n" : ",\n"));
    line_ = dump_record(record);
    if (!array_) line_.push_back('\n');
    ++count_;
    return sink_->write(line_);
  }
  bool writes_raw_json() const override { return !array_; }
  Status write_raw_json(std::string_view json) override {
    if (array_) return failed_precondition("raw JSON needs a JSONL output");
    ++count_;
    KEEL_RETURN_IF_ERROR(sink_->write(json));
    return sink_->write("\n");
  }
  Status close() override {
    if (closed_) return Status::Ok();
    closed_ = true;
    if (array_) KEEL_RETURN_IF_ERROR(sink_->write(count_ == 0 ? "[]\n" : "\n]\n"));
    return sink_->close();
  }

 private:
  std::unique_ptr<ByteSink> sink_;
  bool array_;
  bool closed_ = false;
  uint64_t count_ = 0;
  std::string line_;
};

class CsvWriter : public RecordWriter {
 public:
  CsvWriter(std::unique_ptr<ByteSink> sink, char delimiter) : sink_(std::move(sink)), delimiter_(delimiter) {}
  Status write(const Record& record) override {
    if (!record.is_object()) return invalid_argument("CSV output takes JSON objects");
    if (header_.empty()) {
      for (const auto& item : record.items()) header_.push_back(item.key());
      if (header_.empty()) return invalid_argument("CSV output: the first record has no fields to name the columns");
      row_.clear();
      for (size_t i = 0; i < header_.size(); ++i) append_field(header_[i], i);
      row_.push_back('\n');
      KEEL_RETURN_IF_ERROR(sink_->write(row_));
    }
    for (const auto& item : record.items()) {
      bool known = false;
      for (const auto& name : header_) known = known || name == item.key();
      if (!known) {
        return invalid_argument("CSV output: field \"" + item.key() +
                                "\" is not among the header's columns (taken from the first record)");
      }
    }
    row_.clear();
    for (size_t i = 0; i < header_.size(); ++i) {
      auto it = record.find(header_[i]);
      if (it == record.end() || it->is_null()) {
        append_field("", i);
      } else if (it->is_string()) {
        append_field(it->get_ref<const std::string&>(), i);
      } else {
        append_field(dump_record(*it), i);
      }
    }
    row_.push_back('\n');
    return sink_->write(row_);
  }
  Status close() override { return sink_->close(); }

 private:
  void append_field(const std::string& value, size_t index) {
    if (index > 0) row_.push_back(delimiter_);
    bool quote = value.find_first_of(std::string("\"\r\n") + delimiter_) != std::string::npos;
    if (!quote) {
      row_ += value;
      return;
    }
    row_.push_back('"');
    for (char c : value) {
      if (c == '"') row_.push_back('"');
      row_.push_back(c);
    }
    row_.push_back('"');
  }
  std::unique_ptr<ByteSink> sink_;
  char delimiter_;
  std::vector<std::string> header_;
  std::string row_;
};

class TextWriter : public RecordWriter {
 public:
  TextWriter(std::unique_ptr<ByteSink> sink, std::string field) : sink_(std::move(sink)), field_(std::move(field)) {}
  Status write(const Record& record) override {
    auto it = record.find(field_);
    if (it == record.end() || !it->is_string()) {
      return invalid_argument("text output writes the string field \"" + field_ + "\", which a record lacks");
    }
    line_ = it->get_ref<const std::string&>();
    // One document per line: a newline inside the text would split it.
    for (char& c : line_) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    line_.push_back('\n');
    return sink_->write(line_);
  }
  Status close() override { return sink_->close(); }

 private:
  std::unique_ptr<ByteSink> sink_;
  std::string field_;
  std::string line_;
};

}  // namespace

std::string_view record_format_name(RecordFormat format) {
  switch (format) {
    case RecordFormat::kJsonl:
      return "jsonl";
    case RecordFormat::kJsonArray:
      return "json";
    case RecordFormat::kCsv:
      return "csv";
    case RecordFormat::kTsv:
      return "tsv";
    case RecordFormat::kText:
      return "text";
  }
  return "jsonl";
}

Result<RecordFormat> parse_record_format(std::string_view name) {
  if (name == "jsonl" || name == "ndjson") return RecordFormat::kJsonl;
  if (name == "json") return RecordFormat::kJsonArray;
  if (name == "csv") return RecordFormat::kCsv;
  if (name == "tsv") return RecordFormat::kTsv;
  if (name == "text" || name == "txt") return RecordFormat::kText;
  return invalid_argument("unknown format \"" + std::string(name) + "\": use jsonl, json, csv, tsv or text");
}

Result<RecordFormat> record_format_for_path(std::string_view path) {
  std::string_view base = strip_compression_suffix(path);
  if (ends_with(base, ".jsonl") || ends_with(base, ".ndjson")) return RecordFormat::kJsonl;
  if (ends_with(base, ".json")) return RecordFormat::kJsonArray;
  if (ends_with(base, ".csv")) return RecordFormat::kCsv;
  if (ends_with(base, ".tsv")) return RecordFormat::kTsv;
  if (ends_with(base, ".txt") || ends_with(base, ".text")) return RecordFormat::kText;
  return invalid_argument(
      "cannot tell the format of " + std::string(path) +
      " from its extension (.jsonl, .json, .csv, .tsv, .txt, optionally .gz or .zst): name it with --format");
}

void RecordReader::reject(uint64_t line, std::string reason, std::string raw) {
  ++rejected_;
  if (options_.on_reject) options_.on_reject(Rejection{path_, line, std::move(reason), std::move(raw)});
}

bool RecordReader::accept_json(const std::string& text, bool oversize, uint64_t line, Record* record) {
  if (oversize) {
    reject(line, "record larger than the maximum record size (" + human_size(options_.max_record_bytes) + ")", "");
    return false;
  }
  if (!is_valid_utf8(text)) {
    reject(line, "invalid UTF-8", text);
    return false;
  }
  std::string reason;
  if (!parse_object(text, record, &reason)) {
    reject(line, reason, text);
    return false;
  }
  record_line_ = line;
  ++records_read_;
  return true;
}

Status RecordReader::stream_error(const Status& st) const {
  return Status(st.code(), st.message() + " (after " + std::to_string(records_read_) + " records read)");
}

Result<std::unique_ptr<RecordReader>> RecordReader::open(const std::string& path, ReadOptions options) {
  RecordFormat format;
  if (!options.format.empty()) {
    KEEL_ASSIGN_OR_RETURN(format, parse_record_format(options.format));
  } else {
    KEEL_ASSIGN_OR_RETURN(format, record_format_for_path(path));
  }
  if (options.max_record_bytes == 0) return invalid_argument("the maximum record size must be at least 1 byte");
  KEEL_ASSIGN_OR_RETURN(auto source, open_byte_source(path));
  if (format == RecordFormat::kJsonArray && options.format.empty()) {
    // A ".json" file that is not an array is taken as JSON lines: peek at its first byte.
    KEEL_ASSIGN_OR_RETURN(auto probe, open_byte_source(path));
    char c = 0;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(size_t n, probe->read(&c, 1));
      if (n == 0 || (c != ' ' && c != '\t' && c != '\r' && c != '\n')) break;
    }
    if (c != '[') format = RecordFormat::kJsonl;
  }
  switch (format) {
    case RecordFormat::kJsonl:
      return std::unique_ptr<RecordReader>(new JsonlReader(path, std::move(options), std::move(source), format));
    case RecordFormat::kJsonArray:
      return std::unique_ptr<RecordReader>(new JsonArrayReader(path, std::move(options), std::move(source)));
    case RecordFormat::kCsv:
    case RecordFormat::kTsv:
      return std::unique_ptr<RecordReader>(new CsvReader(path, std::move(options), std::move(source), format));
    case RecordFormat::kText:
      return std::unique_ptr<RecordReader>(new TextReader(path, std::move(options), std::move(source)));
  }
  return internal_error("unhandled record format");
}

Result<std::unique_ptr<RecordWriter>> RecordWriter::open(const std::string& path, WriteOptions options) {
  RecordFormat format;
  if (!options.format.empty()) {
    KEEL_ASSIGN_OR_RETURN(format, parse_record_format(options.format));
  } else {
    KEEL_ASSIGN_OR_RETURN(format, record_format_for_path(path));
  }
  KEEL_ASSIGN_OR_RETURN(auto sink, open_byte_sink(path));
  switch (format) {
    case RecordFormat::kJsonl:
      return std::unique_ptr<RecordWriter>(new JsonlWriter(std::move(sink), false));
    case RecordFormat::kJsonArray:
      return std::unique_ptr<RecordWriter>(new JsonlWriter(std::move(sink), true));
    case RecordFormat::kCsv:
      return std::unique_ptr<RecordWriter>(new CsvWriter(std::move(sink), ','));
    case RecordFormat::kTsv:
      return std::unique_ptr<RecordWriter>(new CsvWriter(std::move(sink), '\t'));
    case RecordFormat::kText:
      return std::unique_ptr<RecordWriter>(new TextWriter(std::move(sink), options.text_field));
  }
  return internal_error("unhandled record format");
}

Status copy_jsonl_lines(const std::string& input, const std::vector<uint64_t>& lines, RecordWriter* writer,
                        const std::function<void(uint64_t, uint64_t)>& progress) {
  if (!writer->writes_raw_json()) return failed_precondition("copy_jsonl_lines needs a JSONL output");
  KEEL_ASSIGN_OR_RETURN(auto source, open_byte_source(input));
  BufferedInput in(std::move(source));
  std::string line;
  uint64_t number = 0;
  size_t next = 0;
  while (next < lines.size()) {
    bool oversize = false;
    // Lines to skip are read but never kept whole (max 0 discards them as they pass).
    bool wanted = lines[next] == number + 1;
    KEEL_ASSIGN_OR_RETURN(bool got, in.read_line(&line, wanted ? std::numeric_limits<size_t>::max() : 0, &oversize));
    if (!got) {
      return failed_precondition(input + " changed while it was being read: line " + std::to_string(lines[next]) +
                                 " is gone on the second read");
    }
    ++number;
    if (!wanted) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    KEEL_RETURN_IF_ERROR(writer->write_raw_json(line));
    ++next;
    if (progress && (next & 1023) == 0) progress(in.file_bytes_read(), next);
  }
  if (progress) progress(in.file_bytes_read(), next);
  return Status::Ok();
}

std::string rejection_to_json_line(const Rejection& rejection) {
  Record j = Record::object();
  j["file"] = rejection.file;
  j["line"] = rejection.line;
  j["reason"] = rejection.reason;
  j["raw"] = rejection.raw;
  return dump_record(j) + "\n";
}

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // ASCII fast path: eight bytes at a time.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      p += 8;
    }
    if (p >= end) break;
    unsigned char b = *p;
    if (b < 0x80) {
      ++p;
      continue;
    }
    size_t need;
    uint32_t cp;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) < need + 1) return false;
    for (size_t i = 1; i <= need; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    p += need + 1;
  }
  return true;
}

}  // namespace keel::data
