// Users, roles and API keys. A user has one role: viewer (read), user (read, call
// models through the OpenAI-compatible API and give feedback), editor (write),
// reviewer (write and approve promotions), admin (everything, including users and
// keys). An API key belongs to one user; only its sha256 is stored, so the secret is
// shown once, at creation. The serving API and the platform API authenticate with the
// same keys. Every change here is written to the audit log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keel/store/db.h"
#include "keel/util/status.h"

namespace keel::auth {

// Stored by name, so the numbers only order them.
enum class Role { kViewer = 0, kUser = 1, kEditor = 2, kReviewer = 3, kAdmin = 4 };
std::string_view role_name(Role role);
Result<Role> parse_role(std::string_view name);
// True when `have` grants everything `need` does (roles are ordered).
inline bool role_at_least(Role have, Role need) { return static_cast<int>(have) >= static_cast<int>(need); }

struct User {
  std::string id;
  std::string name;
  Role role = Role::kViewer;
  int64_t created_at = 0;
  bool disabled = false;
};

// A key's own limits on the OpenAI-compatible API; unset: the server's (--rpm/--tpm).
struct KeyLimits {
  std::optional<int64_t> requests_per_minute;
  std::optional<int64_t> tokens_per_minute;
};

struct ApiKey {
  std::string id;
  std::string user;
  std::string prefix;  // the first characters of the secret, to tell keys apart
  std::string name;
  int64_t created_at = 0;
  std::optional<int64_t> last_used_at;
  std::optional<int64_t> revoked_at;
  KeyLimits limits;
};

struct NewApiKey {
  ApiKey key;
  std::string secret;  // "keel_" + 48 hex digits; shown once
};

class UserDirectory {
 public:
  explicit UserDirectory(store::Db& db) : db_(db) {}

  Result<User> create_user(const std::string& name, Role role, const std::string& actor);
  Result<User> get_user(const std::string& name);
  Result<std::vector<User>> list_users();
  Status set_role(const std::string& name, Role role, const std::string& actor);
  Status set_disabled(const std::string& name, bool disabled, const std::string& actor);
  // True once any user exists (the server then requires keys by default).
  Result<bool> has_users();

  // limits: positive values, at most 10^9.
  Result<NewApiKey> create_key(const std::string& user, const std::string& key_name, const std::string& actor,
                               const KeyLimits& limits = {});
  Result<std::vector<ApiKey>> list_keys(const std::string& user);
  // By id or prefix.
  Status revoke_key(const std::string& id_or_prefix, const std::string& actor);
  // The user a secret belongs to; kPermissionDenied for an unknown, revoked or disabled one.
  Result<User> authenticate(const std::string& secret);
  // The same, with the id of the key (rate limits are per key).
  struct KeyOwner {
    User user;
    std::string key_id;
    KeyLimits limits;
  };
  Result<KeyOwner> authenticate_key(const std::string& secret);

 private:
  store::Db& db_;
};

// User names: 1-64 characters of [A-Za-z0-9._@-].
Status validate_user_name(const std::string& name);

}  // namespace keel::auth
