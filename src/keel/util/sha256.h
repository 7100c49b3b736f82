// Streaming SHA-256 (OpenSSL EVP): feed bytes in pieces, get the lowercase hex digest.
// Used by the artifact store to address blobs by content. Not thread-safe per object.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "keel/util/status.h"

namespace keel {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  std::string hex_digest();

  static std::string of(std::string_view data);
  // Hashes a file by streaming it in fixed-size chunks (constant memory).
  static Result<std::string> of_file(const std::string& path);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// True for 64 lowercase hex characters.
bool is_sha256_hex(std::string_view text);

}  // namespace keel
