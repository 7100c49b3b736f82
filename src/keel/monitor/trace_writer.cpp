#include "keel/monitor/trace_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "keel/data/pii.h"
#include "keel/util/id.h"

namespace keel::monitor {
namespace {

size_t text_bytes(const Trace& t) {
  return t.prompt.size() + t.response.size() + t.error.size();
}

// Cuts text to at most max bytes without splitting a UTF-8 sequence.
void cut_utf8(std::string& text, size_t max) {
  if (max == 0 || text.size() <= max) return;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
}

}  // namespace

// The PII scanner of the writer thread (a PiiScanner is not thread-safe).
struct TraceWriter::Redactor {
  std::unique_ptr<data::PiiScanner> scanner;  // null when it could not be built

  // Redacts the string values of a JSON document (so that the result stays valid
  // JSON), or the whole text when it is not JSON. "" when redaction is impossible.
  std::string redact(const std::string& text) {
    if (text.empty()) return text;
    if (!scanner) return "";
    size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
      auto doc = parse_json(text);
      if (doc.ok()) {
        bool ok = true;
        redact_strings(*doc, &ok);
        return ok ? dump_json(*doc) : std::string();
      }
    }
    auto r = scanner->redact(text, data::RedactionMode::kRedact, nullptr);
    return r.ok() ? std::move(r).value() : std::string();
  }

  void redact_strings(Json& value, bool* ok) {
    if (value.is_string()) {
      auto r = scanner->redact(value.get_ref<const std::string&>(), data::RedactionMode::kRedact, nullptr);
      if (!r.ok()) {
        *ok = false;
        return;
      }
      value = std::move(r).value();
    } else if (value.is_array() || value.is_object()) {
      for (auto& item : value) redact_strings(item, ok);
    }
  }
};

TraceWriter::TraceWriter(TraceStore& store, TraceWriterOptions options)
    : store_(store), options_(std::move(options)), redactor_(std::make_unique<Redactor>()) {
  if (options_.text == TextPolicy::kRedactPii) {
    auto scanner = data::PiiScanner::create();
    if (scanner.ok()) {
      redactor_->scanner = std::move(scanner).value();
    } else {
      spdlog::error("traces: cannot build the PII scanner ({}); prompts and responses will not be stored",
                    scanner.status().message());
    }
  }
  thread_ = std::thread([this] { run(); });
}

TraceWriter::~TraceWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  thread_.join();
}

bool TraceWriter::submit(Trace trace) {
  if (trace.id.empty()) trace.id = new_id();
  size_t bytes = text_bytes(trace);
  bool accepted = false;
  {
    std::lock_guard lock(mu_);
    ++stats_.submitted;
    if (!stopping_ && queue_.size() < options_.max_queue && queue_bytes_ + bytes <= options_.max_queue_bytes) {
      queue_.push_back(std::move(trace));
      queue_bytes_ += bytes;
      ++accepted_;
      accepted = true;
    } else {
      ++stats_.dropped;
    }
    if (accepted && queue_.size() != options_.batch_size) return true;
  }
  // Wake the writer once, when a batch has filled; partial batches wait for the timer.
  if (accepted) work_ready_.notify_one();
  return accepted;
}

void TraceWriter::flush() {
  std::unique_lock lock(mu_);
  uint64_t target = accepted_;
  if (finished_ >= target) return;
  flush_target_ = std::max(flush_target_, target);
  work_ready_.notify_one();
  progress_.wait(lock, [&] { return finished_ >= target; });
}

TraceWriterStats TraceWriter::stats() const {
  std::lock_guard lock(mu_);
  TraceWriterStats s = stats_;
  s.queued = accepted_ - finished_;
  return s;
}

void TraceWriter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    auto ready = [&] {
      return stopping_ || queue_.size() >= options_.batch_size || (finished_ < flush_target_ && !queue_.empty());
    };
    if (!ready()) work_ready_.wait_for(lock, options_.flush_interval, ready);
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    size_t n = std::min(options_.batch_size == 0 ? size_t{1} : options_.batch_size, queue_.size());
    std::vector<Trace> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      queue_bytes_ -= text_bytes(queue_.front());
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    bool ok = false;
    try {
      for (auto& t : batch) prepare(t);
      ok = write_batch(batch);
    } catch (const std::exception& e) {
      // Not expected (the store reports errors as values), but a trace must never take
      // the server down.
      spdlog::error("traces: writing a batch of {} traces threw: {}", batch.size(), e.what());
    } catch (...) {
      spdlog::error("traces: writing a batch of {} traces threw", batch.size());
    }
    lock.lock();
    finished_ += n;
    if (ok) {
      stats_.written += n;
    } else {
      ++stats_.failed_batches;
      stats_.failed_traces += n;
    }
    progress_.notify_all();
  }
}

void TraceWriter::prepare(Trace& t) {
  switch (options_.text) {
    case TextPolicy::kStore:
      break;
    case TextPolicy::kRedactPii:
      t.prompt = redactor_->redact(t.prompt);
      t.response = redactor_->redact(t.response);
      break;
    case TextPolicy::kDrop:
      t.prompt.clear();
      t.response.clear();
      break;
  }
  cut_utf8(t.prompt, options_.max_text_bytes);
  cut_utf8(t.response, options_.max_text_bytes);
}

bool TraceWriter::write_batch(const std::vector<Trace>& batch) {
  Status last;
  auto backoff = options_.retry_backoff;
  int attempts = std::max(1, options_.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    last = store_.append(batch);
    if (last.ok()) return true;
    spdlog::warn("traces: writing a batch of {} traces failed (attempt {} of {}): {}", batch.size(), attempt, attempts,
                 last.message());
    if (attempt < attempts) {
      {
        std::lock_guard lock(mu_);
        ++stats_.retries;
      }
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }
  spdlog::error("traces: gave up on a batch of {} traces after {} attempts: {}", batch.size(), attempts,
                last.message());
  return false;
}

}  // namespace keel::monitor
