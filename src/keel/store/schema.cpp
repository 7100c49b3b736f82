// Keel's metadata schema as numbered migrations. Portable SQL only: it runs
// unchanged on SQLite and PostgreSQL (TEXT ids, BIGINT epoch-millisecond times,
// JSON kept as TEXT). Append new migrations at the end; never edit shipped ones.
#include "keel/store/migrations.h"

namespace keel::store {

const std::vector<Migration>& keel_migrations() {
  static const std::vector<Migration> migrations = {
      {1,
       "artifacts and model registry",
       {
           "CREATE TABLE artifacts ("
           " sha256 TEXT PRIMARY KEY,"
           " size_bytes BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL)",
           "CREATE TABLE models ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL UNIQUE,"
           " description TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL)",
           "CREATE TABLE model_versions ("
           " id TEXT PRIMARY KEY,"
           " model_id TEXT NOT NULL REFERENCES models(id),"
           " version INTEGER NOT NULL,"
           " artifact_sha256 TEXT NOT NULL REFERENCES artifacts(sha256),"
           " format TEXT NOT NULL,"
           " size_bytes BIGINT NOT NULL,"
           " architecture TEXT NOT NULL DEFAULT '',"
           " parameter_count BIGINT NOT NULL DEFAULT 0,"
           " source TEXT NOT NULL DEFAULT '',"
           " metadata TEXT NOT NULL DEFAULT '{}',"
           " created_at BIGINT NOT NULL,"
           " UNIQUE (model_id, version))",
           "CREATE INDEX model_versions_by_artifact ON model_versions (artifact_sha256)",
       }},
      {2,
       "audit log",
       {
           "CREATE TABLE audit_events ("
           " id TEXT PRIMARY KEY,"
           " at BIGINT NOT NULL,"
           " actor TEXT NOT NULL,"
           " action TEXT NOT NULL,"
           " target TEXT NOT NULL,"
           " details TEXT NOT NULL DEFAULT '{}')",
           "CREATE INDEX audit_events_by_target ON audit_events (target, at)",
       }},
  };
  return migrations;
}

}  // namespace keel::store
