#include "support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "keel/cli/default_model.h"
#include "keel/store/db.h"
#include "keel/util/file.h"
#include "keel/util/id.h"

extern char** environ;

namespace keel::testing {
namespace {

std::vector<char*> make_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> make_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> all;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) all[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : all) out.push_back(k + "=" + v);
  return out;
}

// Forks and execs; the child's stdout goes to out_pipe[1], stderr to err_fd.
int spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, int out_fd, int err_fd) {
  std::vector<std::string> env_strings = make_env(env);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args = make_argv(argv);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/keel-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* made = ::mkdtemp(buf.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Blobs are read-only; make everything writable so it can be removed.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec); it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                          int timeout_seconds) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) std::abort();
  pid_t pid = spawn(argv, env, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  char buf[65536];
  while (open_fds > 0) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, left) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

ProcessResult run_keel(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{keel_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, env);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) std::abort();
  err_path_ = "/tmp/keel-child-" + new_id() + ".err";
  int err_fd = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_ = spawn(argv, env, out_pipe[1], err_fd);
  ::close(out_pipe[1]);
  ::close(err_fd);
  out_fd_ = out_pipe[0];
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  ::unlink(err_path_.c_str());
}

std::optional<std::string> ChildProcess::wait_for_line(const std::string& needle, int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    size_t nl;
    while ((nl = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      if (line.find(needle) != std::string::npos) return line;
    }
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

void ChildProcess::send_signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

int ChildProcess::wait(int timeout_seconds) {
  if (reaped_) return -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ChildProcess::stderr_text() {
  auto r = read_file(err_path_);
  return r.ok() ? *r : "";
}

std::vector<int> run_in_children(int count, const std::function<int(int)>& body) {
  std::vector<pid_t> pids;
  for (int i = 0; i < count; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(body(i));
    pids.push_back(pid);
  }
  std::vector<int> codes;
  for (pid_t pid : pids) {
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
      codes.push_back(-1);
    } else {
      codes.push_back(WEXITSTATUS(status));
    }
  }
  return codes;
}

std::string keel_binary() {
  const char* b = std::getenv("KEEL_BINARY");
  return (b && *b) ? b : KEEL_TEST_BINARY;
}

std::string source_dir() {
  const char* s = std::getenv("KEEL_SOURCE_DIR");
  return (s && *s) ? s : KEEL_TEST_SOURCE_DIR;
}

std::optional<std::string> default_model_path() {
  std::string path = cli::default_model_cache_path();
  if (!path_exists(path)) return std::nullopt;
  return path;
}

std::vector<std::string> store_backends() { return {"sqlite", "postgres"}; }

const char* postgres_skip_reason() {
  return "KEEL_TEST_POSTGRES_URL is not set: run the tests through `make test` (scripts/with-postgres starts a server)";
}

std::optional<std::string> fresh_store_url(const std::string& backend, const TempDir& dir) {
  if (backend == "sqlite") return "sqlite://" + dir.path() + "/keel-" + new_id() + ".db";
  const char* base = std::getenv("KEEL_TEST_POSTGRES_URL");
  if (base == nullptr || *base == '\0') return std::nullopt;
  std::string schema = "t_" + new_id();
  for (auto& c : schema) {
    if (c == '-') c = '_';
  }
  auto admin = store::Db::open(base, 1);
  if (!admin.ok()) std::abort();
  if (!(*admin)->exec("CREATE SCHEMA " + schema).ok()) std::abort();
  std::string url = base;
  url += (url.find('?') == std::string::npos ? "?" : "&");
  url += "options=-csearch_path%3D" + schema;
  return url;
}

namespace {

void put_u32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& s, const std::string& v) {
  put_u64(s, v.size());
  s += v;
}

std::string gguf_header(const std::string& architecture, uint64_t tensor_elements) {
  std::string s = "GGUF";
  put_u32(s, 3);
  put_u64(s, 1);  // tensors
  put_u64(s, 2);  // metadata
  put_str(s, "general.architecture");
  put_u32(s, 8);
  put_str(s, architecture);
  put_str(s, "general.name");
  put_u32(s, 8);
  put_str(s, "keel test model");
  put_str(s, "weight");
  put_u32(s, 1);
  put_u64(s, tensor_elements);
  put_u32(s, 0);  // F32
  put_u64(s, 0);
  while (s.size() % 32 != 0) s.push_back('\0');
  return s;
}

}  // namespace

std::string make_test_gguf(const std::string& architecture, uint64_t tensor_elements) {
  std::string s = gguf_header(architecture, tensor_elements);
  for (uint64_t i = 0; i < tensor_elements; ++i) {
    float f = static_cast<float>(i % 1000) * 0.001f;
    s.append(reinterpret_cast<const char*>(&f), 4);
  }
  return s;
}

Status write_test_gguf(const std::string& path, const std::string& architecture, uint64_t tensor_elements) {
  std::string header = gguf_header(architecture, tensor_elements);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return os_error("create " + path, errno);
  KEEL_RETURN_IF_ERROR(write_all(fd, header.data(), header.size(), path));
  // Fill the data with a pattern so the content is not all zeros (and not sparse).
  std::string chunk(1 << 20, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131 % 251);
  uint64_t left = tensor_elements * 4;
  while (left > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    KEEL_RETURN_IF_ERROR(write_all(fd, chunk.data(), n, path));
    left -= n;
  }
  ::close(fd);
  return Status::Ok();
}

Result<SimpleHttpResponse> http_request(int port, const std::string& method, const std::string& target,
                                        const std::string& body, const std::map<std::string, std::string>& headers) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return os_error("socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return os_error("connect 127.0.0.1:" + std::to_string(port), err);
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  Status st = write_all(fd, req.data(), req.size(), "socket");
  if (!st.ok()) {
    ::close(fd);
    return st;
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || end == std::string::npos) return invalid_argument("malformed HTTP response: " + raw);
  SimpleHttpResponse r;
  r.status = std::atoi(raw.substr(9, 3).c_str());
  r.headers = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

int wait_for_keel_port(ChildProcess& up, int timeout_seconds) {
  auto line = up.wait_for_line("Keel is up at", timeout_seconds);
  if (!line) return 0;
  const size_t at = line->find("127.0.0.1:");
  return at == std::string::npos ? 0 : std::atoi(line->c_str() + at + 10);
}

KeelUp::KeelUp(const std::string& home, const std::string& model)
    : process_({keel_binary(), "up", "--port", "0", "--home", home, "--default-model", model}),
      port_(wait_for_keel_port(process_)) {
  EXPECT_GT(port_, 0) << "keel up did not come up: " << process_.stderr_text();
}

int KeelUp::stop() {
  process_.send_signal(SIGTERM);
  return process_.wait(30);
}

std::string KeelUp::v1_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

Json keel_json(const std::string& home, std::vector<std::string> args) {
  args.insert(args.begin(), {"--json", "--home", home});
  ProcessResult r = run_keel(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto json = parse_json(r.out);
  EXPECT_TRUE(json.ok()) << "not JSON: " << r.out;
  return json.ok() ? std::move(*json) : Json();
}

}  // namespace keel::testing
