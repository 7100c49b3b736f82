// What every CLI command needs: the global options (home, database URL, output mode)
// and the opened stores. Commands ask for the stores they use; opening applies
// migrations, so the first command on a new home creates it.
#pragma once

#include <memory>
#include <string>

#include "keel/store/artifact_store.h"
#include "keel/store/db.h"
#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::cli {

struct GlobalOptions {
  std::string home;       // --home / KEEL_HOME / ~/.keel
  std::string db_url;     // --db / KEEL_DB / sqlite:///<home>/keel.db
  std::string log_level = "warn";
  bool json = false;
};

class CliContext {
 public:
  // options is filled by the argument parser; the context reads it when a command runs.
  explicit CliContext(const GlobalOptions& options) : options_(options) {}

  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.json; }

  // Creates the home folders if needed and checks that they are writable.
  Status prepare_home();
  // The metadata store, opened and migrated on first use.
  Result<store::Db*> db();
  Result<store::LocalArtifactStore*> artifacts();

  // Who is acting, for the audit log: $KEEL_USER, else the OS user name.
  std::string actor() const;

 private:
  const GlobalOptions& options_;
  std::unique_ptr<store::Db> db_;
  std::unique_ptr<store::LocalArtifactStore> artifacts_;
  bool home_ready_ = false;
};

// Output helpers: with --json a command prints one JSON document on stdout.
void print_json(const Json& value);

// "93.8 MiB"
std::string human_bytes(uint64_t bytes);
// "134.5M"
std::string human_count(uint64_t count);
// "2026-11-27 19:04:05" (UTC) from epoch milliseconds.
std::string format_time(int64_t epoch_ms);

// A one-line progress bar on stderr, redrawn in place when stderr is a terminal;
// silent otherwise (logs and CI output stay clean).
class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total);
  ~ProgressBar();
  void update(uint64_t done);
  // Also shows a count of items and their rate ("12.3k records/s").
  void update(uint64_t done, uint64_t items, const char* unit);
  void finish();

 private:
  void draw(uint64_t done, const std::string& detail);

  std::string label_;
  uint64_t total_;
  bool enabled_;
  bool finished_ = false;
  int64_t last_draw_ms_ = 0;
  int64_t start_ms_ = 0;
};

}  // namespace keel::cli
