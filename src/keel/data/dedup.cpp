#include "keel/data/dedup.h"

#include <chrono>
#include <future>
#include <limits>
#include <map>
#include <thread>
#include <unordered_map>
#include <vector>

#include "keel/data/byte_stream.h"
#include "keel/data/hash.h"
#include "keel/data/record_text.h"
#include "keel/data/rejects_file.h"
#include "keel/data/text_normalize.h"
#include "keel/util/thread_pool.h"

namespace keel::data {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Moves the compared text of a record (record_text.h) into *out; false when it has none.
bool take_text(Record* record, const std::string& field, std::string* out) {
  const std::string* text = record_text(*record, field, out);
  if (text == nullptr) return false;
  // A string field: the record is ours and is read again only for its raw line.
  if (text != out) *out = std::move(*const_cast<std::string*>(text));
  return true;
}

ReadOptions read_options(const DedupOptions& o, RejectsFile* rejects) {
  ReadOptions r;
  r.format = o.input_format;
  r.max_record_bytes = o.max_record_bytes;
  r.text_field = o.field;
  if (rejects != nullptr) r.on_reject = [rejects](const Rejection& rej) { rejects->add(rej); };
  return r;
}

void reject_missing_field(RejectsFile* rejects, const RecordReader& reader, const Record& record,
                          const std::string& field) {
  rejects->add(Rejection{reader.path(), reader.record_line(), "no string field \"" + field + "\" and no chat messages",
                         record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
}

// Writes clusters (root first, then members in input order) as JSONL.
Status write_clusters(const std::string& path, const std::map<uint32_t, std::vector<uint32_t>>& clusters) {
  KEEL_ASSIGN_OR_RETURN(auto sink, open_byte_sink(path));
  uint64_t id = 0;
  std::string line;
  for (const auto& [root, members] : clusters) {
    line.assign("{\"cluster\":");
    line.append(std::to_string(id++));
    line.append(",\"size\":");
    line.append(std::to_string(members.size() + 1));
    line.append(",\"members\":[");
    line.append(std::to_string(root));
    for (uint32_t m : members) {
      line.push_back(',');
      line.append(std::to_string(m));
    }
    line.append("]}\n");
    KEEL_RETURN_IF_ERROR(sink->write(line));
  }
  return sink->close();
}

struct Key128 {
  uint64_t hi;
  uint64_t lo;
  bool operator==(const Key128&) const = default;
};
struct Key128Hash {
  size_t operator()(const Key128& k) const { return static_cast<size_t>(k.lo); }
};

Result<DedupSummary> exact_dedup(const DedupOptions& o) {
  auto start = Clock::now();
  KEEL_ASSIGN_OR_RETURN(auto rejects, RejectsFile::open(o.rejects));
  KEEL_ASSIGN_OR_RETURN(auto reader, RecordReader::open(o.input, read_options(o, rejects.get())));
  WriteOptions wo;
  wo.format = o.output_format;
  wo.text_field = o.field;
  KEEL_ASSIGN_OR_RETURN(auto writer, RecordWriter::open(o.output, wo));

  DedupSummary summary;
  std::unordered_map<Key128, uint32_t, Key128Hash> first_of;
  std::map<uint32_t, std::vector<uint32_t>> clusters;
  Record record;
  std::string joined;  // a chat's messages
  uint64_t index = 0;  // records read, including those without the field
  while (true) {
    KEEL_ASSIGN_OR_RETURN(bool got, reader->next(&record));
    if (!got) break;
    uint64_t this_index = index++;
    if (o.progress && (index & 1023) == 0) o.progress(reader->file_bytes_read(), index);
    const std::string* text = record_text(record, o.field, &joined);
    if (text == nullptr) {
      reject_missing_field(rejects.get(), *reader, record, o.field);
      continue;
    }
    ++summary.records_read;
    std::string normal = normalize_for_exact(*text);
    Key128 key{hash_bytes(normal, 0x6b65656c), hash_bytes(normal, 0x64617461)};
    auto [it, inserted] = first_of.emplace(key, static_cast<uint32_t>(this_index));
    if (inserted) {
      ++summary.kept;
      // JSONL to JSONL copies the line as read: byte for byte, and no serialising.
      std::string_view raw = reader->raw_json();
      KEEL_RETURN_IF_ERROR(!raw.empty() && writer->writes_raw_json() ? writer->write_raw_json(raw)
                                                                     : writer->write(record));
    } else {
      ++summary.removed;
      if (!o.clusters.empty()) {
        clusters[it->second].push_back(static_cast<uint32_t>(this_index));
      } else {
        clusters.emplace(it->second, std::vector<uint32_t>());
      }
    }
  }
  if (o.progress) o.progress(reader->file_bytes_read(), index);
  KEEL_RETURN_IF_ERROR(writer->close());
  summary.clusters = clusters.size();
  if (!o.clusters.empty()) KEEL_RETURN_IF_ERROR(write_clusters(o.clusters, clusters));
  KEEL_RETURN_IF_ERROR(rejects->close());
  summary.rejected = rejects->count();
  summary.first_rejections = rejects->first();
  summary.seconds_signatures = seconds_since(start);
  summary.seconds_total = summary.seconds_signatures;
  return summary;
}

// One batch of texts on its way through the signature threads.
struct SignatureBatch {
  std::vector<std::string> texts;
  std::vector<uint64_t> keys;        // texts.size() x bands
  std::vector<uint32_t> signatures;  // texts.size() x num_perm
  std::vector<uint8_t> empty;
  std::vector<std::future<void>> pending;
};

void compute_signatures(const MinHasher& hasher, SignatureBatch* batch, size_t begin, size_t end) {
  const auto bands = static_cast<size_t>(hasher.config().bands);
  const auto perms = static_cast<size_t>(hasher.config().num_perm());
  std::vector<uint64_t> shingles;
  for (size_t i = begin; i < end; ++i) {
    hasher.shingles(batch->texts[i], &shingles);
    uint32_t* sig = batch->signatures.data() + i * perms;
    hasher.signature(shingles, sig);
    batch->empty[i] = shingles.empty() ? 1 : 0;
    for (size_t b = 0; b < bands; ++b) batch->keys[i * bands + b] = hasher.band_key(sig, static_cast<int>(b));
  }
}

Result<DedupSummary> near_dedup(const DedupOptions& o) {
  KEEL_RETURN_IF_ERROR(o.minhash.validate());
  auto start = Clock::now();
  const MinHasher hasher(o.minhash);
  const auto bands = static_cast<size_t>(o.minhash.bands);
  const auto perms = static_cast<size_t>(o.minhash.num_perm());
  size_t threads = o.threads > 0 ? static_cast<size_t>(o.threads) : std::max(1u, std::thread::hardware_concurrency());
  ThreadPool pool(threads);
  constexpr size_t kBatch = 2048;

  KEEL_ASSIGN_OR_RETURN(auto rejects, RejectsFile::open(o.rejects));
  MinHashLsh lsh(o.minhash);
  std::vector<uint8_t> usable;          // by record index: has the text field
  std::vector<uint32_t> record_of_doc;  // document index -> record index
  std::vector<uint64_t> line_of_doc;    // document index -> input line, for a verbatim JSONL copy
  DedupSummary summary;
  bool copy_lines = false;  // JSONL in and out: pass 2 copies lines without parsing them again
  {
    KEEL_ASSIGN_OR_RETURN(auto reader, RecordReader::open(o.input, read_options(o, rejects.get())));
    if (reader->format() == RecordFormat::kJsonl) {
      auto out_format =
          o.output_format.empty() ? record_format_for_path(o.output) : parse_record_format(o.output_format);
      copy_lines = out_format.ok() && *out_format == RecordFormat::kJsonl;
    }
    SignatureBatch batches[2];
    int filling = 0;
    auto drain = [&](SignatureBatch& batch) {
      for (auto& f : batch.pending) f.wait();
      batch.pending.clear();
      for (size_t i = 0; i < batch.texts.size(); ++i) {
        lsh.add(batch.keys.data() + i * bands, batch.signatures.data() + i * perms, batch.empty[i] != 0);
      }
      batch.texts.clear();
    };
    auto dispatch = [&](SignatureBatch& batch) {
      size_t n = batch.texts.size();
      batch.keys.resize(n * bands);
      batch.signatures.resize(n * perms);
      batch.empty.resize(n);
      size_t chunk = (n + threads - 1) / threads;
      for (size_t begin = 0; begin < n; begin += chunk) {
        size_t end = std::min(n, begin + chunk);
        batch.pending.push_back(
            pool.submit([&hasher, &batch, begin, end] { compute_signatures(hasher, &batch, begin, end); }));
      }
    };
    Record record;
    uint64_t index = 0;
    Status read_status;
    while (true) {
      auto got = reader->next(&record);
      if (!got.ok()) {
        read_status = got.status();
        break;
      }
      if (!*got) break;
      if (index == std::numeric_limits<uint32_t>::max()) {
        read_status = resource_exhausted(
            "near-dedup indexes records with 32 bits: split inputs of more than 4,294,967,294 records");
        break;
      }
      ++index;
      if (o.progress && (index & 1023) == 0) o.progress(reader->file_bytes_read(), index);
      std::string text;
      if (!take_text(&record, o.field, &text)) {
        reject_missing_field(rejects.get(), *reader, record, o.field);
        usable.push_back(0);
        continue;
      }
      usable.push_back(1);
      record_of_doc.push_back(static_cast<uint32_t>(index - 1));
      if (copy_lines) line_of_doc.push_back(reader->record_line());
      batches[filling].texts.push_back(std::move(text));
      if (batches[filling].texts.size() == kBatch) {
        SignatureBatch& other = batches[1 - filling];
        drain(other);  // the previous batch, in order
        dispatch(batches[filling]);
        filling = 1 - filling;
      }
    }
    // Finish both batches in order (the one in flight first) even on a read error, so
    // no task outlives the batches it writes to.
    drain(batches[1 - filling]);
    if (!read_status.ok()) batches[filling].texts.clear();
    if (!batches[filling].texts.empty()) dispatch(batches[filling]);
    drain(batches[filling]);
    KEEL_RETURN_IF_ERROR(read_status);
    if (o.progress) o.progress(reader->file_bytes_read(), index);
  }
  summary.records_read = lsh.size();
  summary.seconds_signatures = seconds_since(start);

  DocumentClusters clusters = lsh.cluster();
  std::map<uint32_t, std::vector<uint32_t>> cluster_members;
  for (uint32_t d = 0; d < lsh.size(); ++d) {
    uint32_t root = clusters.find(d);
    if (root != d) {
      auto& members = cluster_members[record_of_doc[root]];
      if (!o.clusters.empty()) members.push_back(record_of_doc[d]);
      ++summary.removed;
    }
  }
  summary.clusters = cluster_members.size();
  summary.kept = summary.records_read - summary.removed;

  // Pass 2: copy the kept records, as read, in input order.
  if (copy_lines) {
    std::vector<uint64_t> kept_lines;
    kept_lines.reserve(summary.kept);
    for (uint32_t d = 0; d < lsh.size(); ++d) {
      if (clusters.find(d) == d) kept_lines.push_back(line_of_doc[d]);
    }
    line_of_doc = std::vector<uint64_t>();
    WriteOptions wo;
    wo.format = o.output_format;
    KEEL_ASSIGN_OR_RETURN(auto writer, RecordWriter::open(o.output, wo));
    KEEL_RETURN_IF_ERROR(copy_jsonl_lines(o.input, kept_lines, writer.get(), o.progress));
    KEEL_RETURN_IF_ERROR(writer->close());
  } else {
    ReadOptions second = read_options(o, nullptr);
    KEEL_ASSIGN_OR_RETURN(auto reader, RecordReader::open(o.input, second));
    WriteOptions wo;
    wo.format = o.output_format;
    wo.text_field = o.field;
    KEEL_ASSIGN_OR_RETURN(auto writer, RecordWriter::open(o.output, wo));
    Record record;
    uint64_t index = 0;
    uint32_t doc = 0;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(bool got, reader->next(&record));
      if (!got) break;
      if (index >= usable.size()) {
        return failed_precondition(o.input +
                                   " changed while it was being deduplicated (more records on the second read)");
      }
      bool has_text = usable[index++] != 0;
      if (o.progress && (index & 1023) == 0) o.progress(reader->file_bytes_read(), index);
      if (!has_text) continue;
      if (clusters.find(doc) == doc) KEEL_RETURN_IF_ERROR(writer->write(record));
      ++doc;
    }
    if (index != usable.size()) {
      return failed_precondition(o.input +
                                 " changed while it was being deduplicated (fewer records on the second read)");
    }
    KEEL_RETURN_IF_ERROR(writer->close());
  }
  if (!o.clusters.empty()) KEEL_RETURN_IF_ERROR(write_clusters(o.clusters, cluster_members));
  KEEL_RETURN_IF_ERROR(rejects->close());
  summary.rejected = rejects->count();
  summary.first_rejections = rejects->first();
  summary.seconds_total = seconds_since(start);
  return summary;
}

}  // namespace

Result<DedupSummary> deduplicate(const DedupOptions& options) {
  if (options.input.empty() || options.output.empty()) {
    return invalid_argument("dedup needs an input and an output file");
  }
  if (options.input == options.output) return invalid_argument("the output must be a different file from the input");
  return options.near ? near_dedup(options) : exact_dedup(options);
}

}  // namespace keel::data
