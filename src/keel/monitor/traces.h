// Request traces: one row per inference request the server answered (table traces),
// written in batches by TraceWriter and read back by the monitor API, the CLI and the
// summaries. A trace id is the request id (x-request-id); a second trace with an id
// already stored is ignored, so a client that reuses request ids cannot make a batch
// fail. Text that PostgreSQL would refuse (invalid UTF-8, NUL bytes) is repaired on the
// way in, and non-finite numbers are stored as 0 (or no TTFT), for the same reason.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "keel/store/db.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::monitor {

struct Trace {
  std::string id;           // the request id (also returned as x-request-id); required
  int64_t started_at = 0;   // epoch ms
  std::string user;         // who called ("anonymous" with auth off)
  std::string endpoint;     // "chat.completions", "completions", "embeddings"
  std::string served_name;  // the `model` field as sent, e.g. "smollm2@production"
  std::string model;        // registered model name
  int64_t version = 0;
  // chat.completions: the request's "messages" array as JSON text; completions: the
  // prompt text; "" when not stored (TextPolicy::kDrop).
  std::string prompt;
  // The generated text. With n > 1 choices, the choices' texts in index order joined
  // by "\n" (the choices are not kept apart).
  std::string response;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::optional<double> time_to_first_token_ms;  // streamed requests only
  double latency_ms = 0;
  double tokens_per_second = 0;  // completion tokens / decode time
  std::string finish_reason;     // "stop", "length", ...
  int status = 200;              // HTTP status
  std::string error;             // message when status >= 400
  // A remote model's: from sending the request upstream to the end of the upstream's
  // answer (latency_ms less this is the time Keel itself added); absent for local models.
  std::optional<double> upstream_ms;
};

// What happens to prompt and response text before it is stored.
enum class TextPolicy {
  kStore,      // as sent
  kRedactPii,  // personal data and secrets replaced by their type ("[EMAIL]"), see keel/data/pii.h
  kDrop,       // both stored as ""
};
// "store", "redact_pii" (also "redact"), "drop".
Result<TextPolicy> parse_text_policy(std::string_view name);
std::string_view text_policy_name(TextPolicy policy);

struct TraceFilter {
  std::string model;  // exact registered name; "" = any
  std::optional<int64_t> version;
  std::string user;      // exact; "" = any
  std::string endpoint;  // exact; "" = any
  std::optional<int> status;
  std::optional<int64_t> since_ms;  // started_at >= since_ms
  std::optional<int64_t> until_ms;  // started_at < until_ms
  int64_t limit = 50;               // 1..1000
  std::string page_token;           // from the previous page's next_page_token
  bool include_text = true;         // false leaves prompt, response and error empty (lists)
};

struct TracePage {
  std::vector<Trace> traces;    // newest first (started_at, then id, descending)
  std::string next_page_token;  // "" on the last page
};

// Reads and writes the traces table. Holds a reference: db must outlive it. Thread-safe
// as Db is.
class TraceStore {
 public:
  explicit TraceStore(store::Db& db) : db_(db) {}

  // Inserts the traces in one transaction: all or none. An empty id is kInvalidArgument
  // (nothing is written); an id already stored keeps the stored trace.
  Status append(std::span<const Trace> traces);
  // Newest first; the page token is a position (started_at, id), so rows written while a
  // client pages do not shift later pages.
  Result<TracePage> list(const TraceFilter& filter);
  // kNotFound when no trace has this id.
  Result<Trace> get(const std::string& id);

 private:
  store::Db& db_;
};

// The JSON shape of the REST API and of `keel traces ... --json`. Field names are
// Trace's; time_to_first_token_ms is null when absent.
Json to_json(const Trace& trace);

// Text made storable: invalid UTF-8 sequences become U+FFFD and NUL bytes are dropped.
// Valid text comes back unchanged.
std::string storable_text(std::string_view text);

}  // namespace keel::monitor
