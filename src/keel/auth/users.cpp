#include "keel/auth/users.h"

#include <cctype>
#include <cstdio>

#include "keel/store/audit_log.h"
#include "keel/util/id.h"
#include "keel/util/json.h"
#include "keel/util/sha256.h"

namespace keel::auth {
namespace {

constexpr const char* kUserColumns = "id, name, role, created_at, disabled";

User user_from_row(const store::DbRow& r) {
  User u;
  u.id = r.get_text(0);
  u.name = r.get_text(1);
  auto role = parse_role(r.get_text(2));
  u.role = role.ok() ? *role : Role::kViewer;
  u.created_at = r.get_int(3);
  u.disabled = r.get_int(4) != 0;
  return u;
}

Result<std::string> random_hex(size_t bytes) {
  std::FILE* f = std::fopen("/dev/urandom", "rb");
  if (f == nullptr) return os_error("cannot open /dev/urandom", errno);
  std::string raw(bytes, '\0');
  size_t got = std::fread(raw.data(), 1, bytes, f);
  std::fclose(f);
  if (got != bytes) return internal_error("short read from /dev/urandom");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kUser: return "user";
    case Role::kEditor: return "editor";
    case Role::kReviewer: return "reviewer";
    case Role::kAdmin: return "admin";
  }
  return "viewer";
}

Result<Role> parse_role(std::string_view name) {
  for (Role r : {Role::kViewer, Role::kUser, Role::kEditor, Role::kReviewer, Role::kAdmin}) {
    if (role_name(r) == name) return r;
  }
  return invalid_argument("unknown role '" + std::string(name) + "' (use viewer, user, editor, reviewer or admin)");
}

Status validate_user_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return invalid_argument("a user name must have 1 to 64 characters");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' || c == '-')) {
      return invalid_argument("user name '" + name + "' may only use letters, digits, '.', '_', '@' and '-'");
    }
  }
  return Status::Ok();
}

Result<User> UserDirectory::create_user(const std::string& name, Role role, const std::string& actor) {
  KEEL_RETURN_IF_ERROR(validate_user_name(name));
  User u{new_id(), name, role, now_millis(), false};
  Status st = db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(store::DbRows same, sql.query("SELECT id FROM users WHERE name = ?", {name}));
    if (!same.empty()) return already_exists("user '" + name + "' already exists");
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO users (id, name, role, created_at, disabled) VALUES (?, ?, ?, ?, 0)",
                                  {u.id, u.name, std::string(role_name(role)), u.created_at})
                             .status());
    return store::record_audit_event(sql, actor, "user.create", "user:" + name, Json{{"role", role_name(role)}});
  });
  if (st.code() == ErrorCode::kAlreadyExists) return already_exists("user '" + name + "' already exists");
  KEEL_RETURN_IF_ERROR(st);
  return u;
}

Result<User> UserDirectory::get_user(const std::string& name) {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query(std::string("SELECT ") + kUserColumns + " FROM users WHERE name = ?", {name}));
  if (rows.empty()) return not_found("no user named '" + name + "' (see `keel users list`)");
  return user_from_row(rows.rows[0]);
}

Result<std::vector<User>> UserDirectory::list_users() {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(std::string("SELECT ") + kUserColumns + " FROM users ORDER BY name"));
  std::vector<User> out;
  for (const auto& r : rows.rows) out.push_back(user_from_row(r));
  return out;
}

Status UserDirectory::set_role(const std::string& name, Role role, const std::string& actor) {
  return db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("UPDATE users SET role = ? WHERE name = ?", {std::string(role_name(role)), name}));
    if (n == 0) return not_found("no user named '" + name + "'");
    return store::record_audit_event(sql, actor, "user.set_role", "user:" + name, Json{{"role", role_name(role)}});
  });
}

Status UserDirectory::set_disabled(const std::string& name, bool disabled, const std::string& actor) {
  return db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(int64_t n, sql.exec("UPDATE users SET disabled = ? WHERE name = ?", {int64_t{disabled ? 1 : 0}, name}));
    if (n == 0) return not_found("no user named '" + name + "'");
    return store::record_audit_event(sql, actor, disabled ? "user.disable" : "user.enable", "user:" + name, Json::object());
  });
}

Result<bool> UserDirectory::has_users() {
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query("SELECT COUNT(*) FROM users"));
  return rows.rows[0].get_int(0) > 0;
}

Result<NewApiKey> UserDirectory::create_key(const std::string& user, const std::string& key_name,
                                            const std::string& actor, const KeyLimits& limits) {
  for (const auto& limit : {limits.requests_per_minute, limits.tokens_per_minute}) {
    if (limit && (*limit <= 0 || *limit > 1000000000)) {
      return invalid_argument("a key's limit per minute must be between 1 and 1000000000, not " +
                              std::to_string(*limit));
    }
  }
  auto nullable = [](const std::optional<int64_t>& v) { return v ? store::DbValue(*v) : store::DbValue(nullptr); };
  KEEL_ASSIGN_OR_RETURN(User u, get_user(user));
  KEEL_ASSIGN_OR_RETURN(std::string random, random_hex(24));
  NewApiKey out;
  out.secret = "keel_" + random;
  out.key = ApiKey{new_id(), u.name, out.secret.substr(0, 12), key_name, now_millis(), std::nullopt, std::nullopt, limits};
  KEEL_RETURN_IF_ERROR(db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_RETURN_IF_ERROR(sql.exec("INSERT INTO api_keys (id, user_id, key_hash, prefix, name, created_at, "
                                  "requests_per_minute, tokens_per_minute) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  {out.key.id, u.id, Sha256::of(out.secret), out.key.prefix, key_name, out.key.created_at,
                                   nullable(limits.requests_per_minute), nullable(limits.tokens_per_minute)})
                             .status());
    Json details{{"key_id", out.key.id}, {"prefix", out.key.prefix}};
    if (limits.requests_per_minute) details["requests_per_minute"] = *limits.requests_per_minute;
    if (limits.tokens_per_minute) details["tokens_per_minute"] = *limits.tokens_per_minute;
    return store::record_audit_event(sql, actor, "api_key.create", "user:" + u.name, details);
  }));
  return out;
}

Result<std::vector<ApiKey>> UserDirectory::list_keys(const std::string& user) {
  std::string sql =
      "SELECT k.id, u.name, k.prefix, k.name, k.created_at, k.last_used_at, k.revoked_at, k.requests_per_minute, "
      "k.tokens_per_minute FROM api_keys k JOIN users u "
      "ON u.id = k.user_id";
  std::vector<store::DbValue> params;
  if (!user.empty()) {
    sql += " WHERE u.name = ?";
    params.emplace_back(user);
  }
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows, db_.query(sql + " ORDER BY k.created_at", params));
  std::vector<ApiKey> out;
  for (const auto& r : rows.rows) {
    ApiKey k{r.get_text(0), r.get_text(1), r.get_text(2), r.get_text(3), r.get_int(4), std::nullopt, std::nullopt, {}};
    if (!r.is_null(5)) k.last_used_at = r.get_int(5);
    if (!r.is_null(6)) k.revoked_at = r.get_int(6);
    if (!r.is_null(7)) k.limits.requests_per_minute = r.get_int(7);
    if (!r.is_null(8)) k.limits.tokens_per_minute = r.get_int(8);
    out.push_back(std::move(k));
  }
  return out;
}

Status UserDirectory::revoke_key(const std::string& id_or_prefix, const std::string& actor) {
  if (id_or_prefix.size() < 8) return invalid_argument("give the key's id or its prefix (at least 8 characters)");
  return db_.transaction([&](store::SqlExecutor& sql) -> Status {
    KEEL_ASSIGN_OR_RETURN(store::DbRows rows, sql.query("SELECT id FROM api_keys WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL",
                                                        {id_or_prefix, id_or_prefix}));
    if (rows.empty()) return not_found("no active API key with id or prefix '" + id_or_prefix + "'");
    if (rows.size() > 1) return invalid_argument("prefix '" + id_or_prefix + "' matches several keys; give the key id");
    std::string id = rows.rows[0].get_text(0);
    KEEL_RETURN_IF_ERROR(sql.exec("UPDATE api_keys SET revoked_at = ? WHERE id = ?", {now_millis(), id}).status());
    return store::record_audit_event(sql, actor, "api_key.revoke", "api_key:" + id, Json::object());
  });
}

Result<User> UserDirectory::authenticate(const std::string& secret) {
  KEEL_ASSIGN_OR_RETURN(KeyOwner owner, authenticate_key(secret));
  return std::move(owner.user);
}

Result<UserDirectory::KeyOwner> UserDirectory::authenticate_key(const std::string& secret) {
  if (secret.empty() || secret.size() > 200) return permission_denied("invalid API key");
  KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                        db_.query("SELECT u.id, u.name, u.role, u.created_at, u.disabled, k.id, k.revoked_at, "
                                  "k.last_used_at, k.requests_per_minute, k.tokens_per_minute FROM api_keys k JOIN "
                                  "users u ON u.id = k.user_id WHERE k.key_hash = ?",
                                  {Sha256::of(secret)}));
  if (rows.empty()) return permission_denied("invalid API key");
  const store::DbRow& r = rows.rows[0];
  if (!r.is_null(6)) return permission_denied("this API key was revoked");
  User u = user_from_row(r);
  if (u.disabled) return permission_denied("user '" + u.name + "' is disabled");
  // Recorded at most once a minute per key, so that reads do not become writes.
  int64_t now = now_millis();
  if (r.is_null(7) || now - r.get_int(7) > 60000) {
    (void)db_.exec("UPDATE api_keys SET last_used_at = ? WHERE id = ?", {now, r.get_text(5)});
  }
  KeyOwner owner{std::move(u), r.get_text(5), {}};
  if (!r.is_null(8)) owner.limits.requests_per_minute = r.get_int(8);
  if (!r.is_null(9)) owner.limits.tokens_per_minute = r.get_int(9);
  return owner;
}

}  // namespace keel::auth
