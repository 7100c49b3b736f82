#include "keel/util/status.h"

#include <cerrno>
#include <cstring>

namespace keel {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kFailedPrecondition: return "failed_precondition";
    case ErrorCode::kPermissionDenied: return "permission_denied";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kIo: return "io_error";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(error_code_name(code_)) + ": " + message_;
}

Status invalid_argument(std::string m) { return Status(ErrorCode::kInvalidArgument, std::move(m)); }
Status not_found(std::string m) { return Status(ErrorCode::kNotFound, std::move(m)); }
Status already_exists(std::string m) { return Status(ErrorCode::kAlreadyExists, std::move(m)); }
Status failed_precondition(std::string m) { return Status(ErrorCode::kFailedPrecondition, std::move(m)); }
Status permission_denied(std::string m) { return Status(ErrorCode::kPermissionDenied, std::move(m)); }
Status resource_exhausted(std::string m) { return Status(ErrorCode::kResourceExhausted, std::move(m)); }
Status corrupt(std::string m) { return Status(ErrorCode::kCorrupt, std::move(m)); }
Status unavailable(std::string m) { return Status(ErrorCode::kUnavailable, std::move(m)); }
Status internal_error(std::string m) { return Status(ErrorCode::kInternal, std::move(m)); }
Status deadline_exceeded(std::string m) { return Status(ErrorCode::kDeadlineExceeded, std::move(m)); }
Status cancelled(std::string m) { return Status(ErrorCode::kCancelled, std::move(m)); }

Status os_error(std::string what, int err) {
  ErrorCode code = ErrorCode::kIo;
  switch (err) {
    case ENOENT:
    case ENOTDIR: code = ErrorCode::kNotFound; break;
    case EACCES:
    case EPERM:
    case EROFS: code = ErrorCode::kPermissionDenied; break;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EMFILE:
    case ENFILE: code = ErrorCode::kResourceExhausted; break;
    case EEXIST: code = ErrorCode::kAlreadyExists; break;
    case EISDIR:
    case EINVAL: code = ErrorCode::kInvalidArgument; break;
    default: break;
  }
  return Status(code, std::move(what) + ": " + std::strerror(err));
}

}  // namespace keel
