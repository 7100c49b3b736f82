// Schema migrations: forward-only, numbered, applied at start and recorded in the
// table keel_schema_migrations. Safe when several processes start at once: the
// check-and-apply runs under the store's write lock (SQLite BEGIN IMMEDIATE,
// PostgreSQL advisory lock), so exactly one of them applies each migration.
// Never edit a migration that has shipped; add a new one.
#pragma once

#include <string>
#include <vector>

#include "keel/store/db.h"

namespace keel::store {

struct Migration {
  int version;                          // 1, 2, 3, ... without gaps
  std::string name;                     // what it does, for humans
  std::vector<std::string> statements;  // portable SQL, one statement each
};

// Keel's schema, in order. Defined in schema.cpp.
const std::vector<Migration>& keel_migrations();

// The highest applied version (0 for an empty database). A database that has tables
// but no migration table is someone else's: kFailedPrecondition.
Result<int> schema_version(Db& db);

// Applies the migrations above the current version, up to `target` (default: all),
// each in its own transaction. Refuses a database whose version is newer than the
// newest migration this binary knows (an older keel must not touch a newer schema).
Status migrate(Db& db, const std::vector<Migration>& migrations, int target = -1);

// migrate(db, keel_migrations()).
Status migrate_to_latest(Db& db);

}  // namespace keel::store
