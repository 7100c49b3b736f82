// Small, checked file-system operations used across Keel: every call returns a
// Status naming the path and the OS error. Writes that must survive a crash go
// through write_file_atomic (temporary file, fsync, rename, fsync of the folder).
#pragma once

#include <string>
#include <string_view>

#include "keel/util/status.h"

namespace keel {

// Creates dir and its parents (mode 0755); OK when it already exists as a folder.
Status make_dirs(const std::string& dir);

// Reads a whole (small) file. Refuses files larger than max_bytes.
Result<std::string> read_file(const std::string& path, size_t max_bytes = 64u << 20);

// Replaces path with contents atomically: readers see the old or the new file, and a
// crash at any point leaves one of the two, never a torn file.
Status write_file_atomic(const std::string& path, std::string_view contents);

// fsyncs a folder so that a rename or create inside it is durable.
Status fsync_dir(const std::string& dir);

// Writes all of data to fd, retrying short writes and EINTR.
Status write_all(int fd, const void* data, size_t size, const std::string& what);

// Checks that dir exists (creating it if needed) and that this process can write there.
Status ensure_writable_dir(const std::string& dir);

bool path_exists(const std::string& path);

// The folder part of a path ("a/b/c" -> "a/b"; "c" -> ".").
std::string parent_dir(const std::string& path);

// Expands a leading "~/" with $HOME.
std::string expand_home(const std::string& path);

}  // namespace keel
