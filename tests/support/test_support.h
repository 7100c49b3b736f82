// Shared test helpers: temporary folders, running the keel binary as a child
// process, and fresh metadata stores on each back end (SQLite file, or a new
// schema on the PostgreSQL server that scripts/with-postgres started).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "keel/util/json.h"
#include "keel/util/status.h"

namespace keel::testing {

// A new folder under $TMPDIR, removed (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs argv[0] with arguments, waits, captures stdout and stderr. env entries are
// added to (or override) this process's environment.
ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                          int timeout_seconds = 120);

// Runs the keel binary under test with args (run_process with keel_binary() first).
ProcessResult run_keel(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});

// A child process left running (for servers); killed by the destructor.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
  ~ChildProcess();
  int pid() const { return pid_; }
  // Reads stdout until a line containing needle arrives (or timeout); returns that line.
  std::optional<std::string> wait_for_line(const std::string& needle, int timeout_seconds = 30);
  void send_signal(int sig);
  // Waits for exit; returns the exit code (-1 when killed by a signal or timed out).
  int wait(int timeout_seconds = 30);
  std::string stderr_text();

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::string err_path_;
  std::string buffered_;
  bool reaped_ = false;
};

// The port of a `keel up --port 0` child from its "Keel is up at http://127.0.0.1:PORT"
// line; 0 when the line did not come in time.
int wait_for_keel_port(ChildProcess& up, int timeout_seconds = 60);

// `keel up` with the model file `model` as its default model, on a port of its own, with
// home `home`; stopped with this object. port() is 0 when it did not come up in time
// (a test failure is recorded then, with the server's stderr).
class KeelUp {
 public:
  KeelUp(const std::string& home, const std::string& model);
  int port() const { return port_; }
  std::string v1_url() const;  // "http://127.0.0.1:PORT/v1"
  // SIGTERM, then its exit code (0 for a clean shutdown; -1 when it did not end in 30 s).
  int stop();

 private:
  ChildProcess process_;
  int port_ = 0;
};

// Runs `keel --json --home HOME ARGS...` and returns what it printed, parsed. A command
// that fails or prints no JSON is a test failure (with its stderr) and gives null.
Json keel_json(const std::string& home, std::vector<std::string> args);

// Forks `count` child processes that run body(index) at once and _exit with its
// result; waits for all and returns their exit codes (-1 for a child killed by a
// signal). A child must only use what it creates itself (no inherited connections).
std::vector<int> run_in_children(int count, const std::function<int(int)>& body);

// Path of the keel binary under test ($KEEL_BINARY, set by CMake).
std::string keel_binary();
// The repository root ($KEEL_SOURCE_DIR).
std::string source_dir();
// The cached default model, or nullopt when the set-up has not fetched it.
std::optional<std::string> default_model_path();

// The back ends every store test runs against.
std::vector<std::string> store_backends();  // {"sqlite", "postgres"}
// A URL to a new, empty store on the back end: a file in dir for SQLite, a new schema
// for PostgreSQL. Returns nullopt for PostgreSQL when no server was started.
std::optional<std::string> fresh_store_url(const std::string& backend, const TempDir& dir);
// The message for a skipped PostgreSQL test.
const char* postgres_skip_reason();

// A minimal GGUF v3 model with general.architecture, general.name and one F32 tensor
// of `tensor_elements` elements, for tests that need a valid model file:
// make_test_gguf returns the bytes; write_test_gguf streams them to path (big files).
std::string make_test_gguf(const std::string& architecture, uint64_t tensor_elements);
Status write_test_gguf(const std::string& path, const std::string& architecture, uint64_t tensor_elements);

// HTTP/1.1 GET (or other method) to 127.0.0.1:port over a plain socket; returns
// status code and body. For end-to-end tests of the keel binary.
struct SimpleHttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};
Result<SimpleHttpResponse> http_request(int port, const std::string& method, const std::string& target,
                                        const std::string& body = "",
                                        const std::map<std::string, std::string>& headers = {});

}  // namespace keel::testing
