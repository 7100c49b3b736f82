// Status and Result<T>: how Keel reports expected failures (bad input, missing file,
// conflict, I/O error) as values. Every fallible function returns one of these; an
// exception never crosses a module boundary. A caller must check `ok()` before using
// a Result's value: `value()` on an error aborts.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace keel {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (bad flag, malformed file)
  kNotFound,           // a named thing does not exist
  kAlreadyExists,      // a create collides with something already there
  kFailedPrecondition, // the system is not in a state that allows this
  kPermissionDenied,   // the OS or an access rule refused
  kResourceExhausted,  // disk full, too large, too many
  kCorrupt,            // stored data does not match what it claims to be
  kUnavailable,        // a service (database server) cannot be reached
  kIo,                 // an operating-system I/O call failed
  kDeadlineExceeded,   // a service did not answer in time
  kCancelled,          // the caller gave up on the work
  kInternal,           // a bug: an invariant broke
};

// Stable snake-case name of a code ("not_found"), used in JSON errors and logs.
std::string_view error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with context: "importing model: open x.gguf: no such file".
  Status with_context(std::string_view context) const;
  std::string to_string() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

Status invalid_argument(std::string message);
Status not_found(std::string message);
Status already_exists(std::string message);
Status failed_precondition(std::string message);
Status permission_denied(std::string message);
Status resource_exhausted(std::string message);
Status corrupt(std::string message);
Status unavailable(std::string message);
Status internal_error(std::string message);
Status deadline_exceeded(std::string message);
Status cancelled(std::string message);
// An error from an OS call: "<what>: <strerror(err)>", with the code chosen from errno
// (ENOENT -> kNotFound, EACCES -> kPermissionDenied, ENOSPC -> kResourceExhausted, ...).
Status os_error(std::string what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(data_).ok()) std::abort();  // an OK status carries no value
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(data_);
  }

  T& value() & { return checked(); }
  const T& value() const& { return const_cast<Result*>(this)->checked(); }
  T&& value() && { return std::move(checked()); }
  T* operator->() { return &checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->checked(); }
  T& operator*() & { return checked(); }
  const T& operator*() const& { return const_cast<Result*>(this)->checked(); }

 private:
  T& checked() {
    if (!ok()) std::abort();
    return std::get<T>(data_);
  }
  std::variant<T, Status> data_;
};

}  // namespace keel

// Returns early from the enclosing function when `expr` (a Status) is an error.
#define KEEL_RETURN_IF_ERROR(expr)             \
  do {                                         \
    ::keel::Status keel_status_ = (expr);      \
    if (!keel_status_.ok()) return keel_status_; \
  } while (0)

#define KEEL_CONCAT_INNER(a, b) a##b
#define KEEL_CONCAT(a, b) KEEL_CONCAT_INNER(a, b)
// `KEEL_ASSIGN_OR_RETURN(auto x, f());` binds the value of a Result or returns its error.
#define KEEL_ASSIGN_OR_RETURN(lhs, expr) \
  KEEL_ASSIGN_OR_RETURN_IMPL(KEEL_CONCAT(keel_result_, __LINE__), lhs, expr)
#define KEEL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
