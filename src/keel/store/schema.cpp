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
      {3,
       "experiment tracking",
       {
           "CREATE TABLE experiments ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL UNIQUE,"
           " artifact_location TEXT NOT NULL,"
           " lifecycle_stage TEXT NOT NULL DEFAULT 'active',"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL)",
           "CREATE TABLE experiment_tags ("
           " experiment_id TEXT NOT NULL REFERENCES experiments(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (experiment_id, key))",
           "CREATE TABLE runs ("
           " id TEXT PRIMARY KEY,"
           " experiment_id TEXT NOT NULL REFERENCES experiments(id),"
           " name TEXT NOT NULL DEFAULT '',"
           " user_id TEXT NOT NULL DEFAULT '',"
           " status TEXT NOT NULL,"
           " start_time BIGINT NOT NULL,"
           " end_time BIGINT,"
           " artifact_uri TEXT NOT NULL,"
           " lifecycle_stage TEXT NOT NULL DEFAULT 'active',"
           " parent_run_id TEXT)",
           "CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time)",
           "CREATE TABLE run_params ("
           " run_id TEXT NOT NULL REFERENCES runs(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (run_id, key))",
           "CREATE TABLE run_tags ("
           " run_id TEXT NOT NULL REFERENCES runs(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (run_id, key))",
           // The full history; NaN is kept as is_nan = 1 (SQLite stores a NaN double as NULL).
           "CREATE TABLE run_metrics ("
           " run_id TEXT NOT NULL REFERENCES runs(id),"
           " key TEXT NOT NULL,"
           " step BIGINT NOT NULL,"
           " timestamp BIGINT NOT NULL,"
           " value DOUBLE PRECISION,"
           " is_nan INTEGER NOT NULL DEFAULT 0)",
           "CREATE INDEX run_metrics_by_key ON run_metrics (run_id, key, step, timestamp)",
           // The value each run shows for a key: highest step, then newest timestamp.
           "CREATE TABLE run_latest_metrics ("
           " run_id TEXT NOT NULL REFERENCES runs(id),"
           " key TEXT NOT NULL,"
           " step BIGINT NOT NULL,"
           " timestamp BIGINT NOT NULL,"
           " value DOUBLE PRECISION,"
           " is_nan INTEGER NOT NULL DEFAULT 0,"
           " PRIMARY KEY (run_id, key))",
           "CREATE TABLE datasets ("
           " id TEXT PRIMARY KEY,"
           " experiment_id TEXT NOT NULL REFERENCES experiments(id),"
           " name TEXT NOT NULL,"
           " digest TEXT NOT NULL,"
           " source_type TEXT NOT NULL DEFAULT '',"
           " source TEXT NOT NULL DEFAULT '',"
           " schema_json TEXT NOT NULL DEFAULT '',"
           " profile TEXT NOT NULL DEFAULT '',"
           " UNIQUE (experiment_id, name, digest))",
           "CREATE TABLE run_inputs ("
           " run_id TEXT NOT NULL REFERENCES runs(id),"
           " dataset_id TEXT NOT NULL REFERENCES datasets(id),"
           " tags TEXT NOT NULL DEFAULT '[]',"
           " PRIMARY KEY (run_id, dataset_id))",
           // Files under the artifact root, by path ("<experiment>/<run>/artifacts/x.txt");
           // the bytes live in the content-addressed store.
           "CREATE TABLE artifact_files ("
           " path TEXT PRIMARY KEY,"
           " sha256 TEXT NOT NULL REFERENCES artifacts(sha256),"
           " size_bytes BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL)",
           "INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, created_at, updated_at)"
           " VALUES ('0', 'Default', 'mlflow-artifacts:/0', 'active', 0, 0)",
       }},
      {4,
       "model registry: versions from runs, tags, aliases; logged models",
       {
           // model_versions is rebuilt so that a version may point to a run's artifact
           // folder (MLflow's source URI) instead of a single blob.
           "CREATE TABLE model_versions_v4 ("
           " id TEXT PRIMARY KEY,"
           " model_id TEXT NOT NULL REFERENCES models(id),"
           " version INTEGER NOT NULL,"
           " artifact_sha256 TEXT REFERENCES artifacts(sha256),"
           " format TEXT NOT NULL,"
           " size_bytes BIGINT NOT NULL DEFAULT 0,"
           " architecture TEXT NOT NULL DEFAULT '',"
           " parameter_count BIGINT NOT NULL DEFAULT 0,"
           " source TEXT NOT NULL DEFAULT '',"
           " metadata TEXT NOT NULL DEFAULT '{}',"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " run_id TEXT,"
           " description TEXT NOT NULL DEFAULT '',"
           " status TEXT NOT NULL DEFAULT 'READY',"
           " user_id TEXT NOT NULL DEFAULT '',"
           " logged_model_id TEXT,"
           " UNIQUE (model_id, version))",
           "INSERT INTO model_versions_v4 (id, model_id, version, artifact_sha256, format, size_bytes, architecture,"
           " parameter_count, source, metadata, created_at, updated_at)"
           " SELECT id, model_id, version, artifact_sha256, format, size_bytes, architecture, parameter_count, source,"
           " metadata, created_at, created_at FROM model_versions",
           "DROP TABLE model_versions",
           "ALTER TABLE model_versions_v4 RENAME TO model_versions",
           "CREATE INDEX model_versions_by_artifact ON model_versions (artifact_sha256)",
           "CREATE INDEX model_versions_by_run ON model_versions (run_id)",
           "CREATE TABLE model_tags ("
           " model_id TEXT NOT NULL REFERENCES models(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (model_id, key))",
           "CREATE TABLE model_version_tags ("
           " version_id TEXT NOT NULL REFERENCES model_versions(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (version_id, key))",
           // One row per alias: the primary key is what keeps an alias on one version.
           "CREATE TABLE model_aliases ("
           " model_id TEXT NOT NULL REFERENCES models(id),"
           " alias TEXT NOT NULL,"
           " version INTEGER NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " PRIMARY KEY (model_id, alias))",
           "CREATE TABLE logged_models ("
           " id TEXT PRIMARY KEY,"
           " experiment_id TEXT NOT NULL REFERENCES experiments(id),"
           " name TEXT NOT NULL,"
           " source_run_id TEXT NOT NULL DEFAULT '',"
           " status TEXT NOT NULL,"
           " model_type TEXT NOT NULL DEFAULT '',"
           " artifact_uri TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL)",
           "CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, created_at)",
           "CREATE TABLE logged_model_params ("
           " model_id TEXT NOT NULL REFERENCES logged_models(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (model_id, key))",
           "CREATE TABLE logged_model_tags ("
           " model_id TEXT NOT NULL REFERENCES logged_models(id),"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " PRIMARY KEY (model_id, key))",
       }},
      {5,
       "users, API keys, review and approval",
       {
           "CREATE TABLE users ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL UNIQUE,"
           " role TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " disabled INTEGER NOT NULL DEFAULT 0)",
           // Only a hash of each key is kept; the prefix lets a user tell keys apart.
           "CREATE TABLE api_keys ("
           " id TEXT PRIMARY KEY,"
           " user_id TEXT NOT NULL REFERENCES users(id),"
           " key_hash TEXT NOT NULL UNIQUE,"
           " prefix TEXT NOT NULL,"
           " name TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL,"
           " last_used_at BIGINT,"
           " revoked_at BIGINT)",
           "ALTER TABLE model_versions ADD COLUMN archived_at BIGINT",
           "CREATE TABLE model_policies ("
           " model_id TEXT PRIMARY KEY REFERENCES models(id),"
           " policy TEXT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " updated_by TEXT NOT NULL)",
           "CREATE TABLE check_results ("
           " id TEXT PRIMARY KEY,"
           " version_id TEXT NOT NULL REFERENCES model_versions(id),"
           " name TEXT NOT NULL,"
           " passed INTEGER NOT NULL,"
           " value DOUBLE PRECISION,"
           " details TEXT NOT NULL DEFAULT '',"
           " recorded_at BIGINT NOT NULL,"
           " recorded_by TEXT NOT NULL)",
           "CREATE INDEX check_results_by_version ON check_results (version_id, name, recorded_at)",
           "CREATE TABLE promotion_requests ("
           " id TEXT PRIMARY KEY,"
           " version_id TEXT NOT NULL REFERENCES model_versions(id),"
           " alias TEXT NOT NULL,"
           " requested_by TEXT NOT NULL,"
           " status TEXT NOT NULL,"
           " comment TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL)",
           "CREATE INDEX promotion_requests_by_version ON promotion_requests (version_id, alias)",
           "CREATE TABLE reviews ("
           " id TEXT PRIMARY KEY,"
           " request_id TEXT NOT NULL REFERENCES promotion_requests(id),"
           " reviewer TEXT NOT NULL,"
           " decision TEXT NOT NULL,"
           " comment TEXT NOT NULL DEFAULT '',"
           " at BIGINT NOT NULL,"
           " UNIQUE (request_id, reviewer))",
       }},
      {6,
       "request traces",
       {
           // One row per served request; the id is the request id. Text columns hold
           // what the server's trace text policy let through ('' when dropped).
           "CREATE TABLE traces ("
           " id TEXT PRIMARY KEY,"
           " started_at BIGINT NOT NULL,"
           " user_id TEXT NOT NULL DEFAULT '',"
           " endpoint TEXT NOT NULL DEFAULT '',"
           " served_name TEXT NOT NULL DEFAULT '',"
           " model TEXT NOT NULL DEFAULT '',"
           " version BIGINT NOT NULL DEFAULT 0,"
           " prompt TEXT NOT NULL DEFAULT '',"
           " response TEXT NOT NULL DEFAULT '',"
           " prompt_tokens BIGINT NOT NULL DEFAULT 0,"
           " completion_tokens BIGINT NOT NULL DEFAULT 0,"
           " time_to_first_token_ms DOUBLE PRECISION,"
           " latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,"
           " tokens_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,"
           " finish_reason TEXT NOT NULL DEFAULT '',"
           " status INTEGER NOT NULL,"
           " error TEXT NOT NULL DEFAULT '')",
           "CREATE INDEX traces_by_time ON traces (started_at, id)",
           "CREATE INDEX traces_by_model ON traces (model, version, started_at)",
           "CREATE INDEX traces_by_user ON traces (user_id, started_at)",
       }},
      {7,
       "human feedback on traces",
       {
           // model and version are the trace's, copied so that summaries and exports
           // filter feedback without a join.
           "CREATE TABLE feedback ("
           " id TEXT PRIMARY KEY,"
           " trace_id TEXT NOT NULL REFERENCES traces(id),"
           " kind TEXT NOT NULL,"
           " score INTEGER NOT NULL,"
           " comment TEXT NOT NULL DEFAULT '',"
           " corrected_answer TEXT NOT NULL DEFAULT '',"
           " user_id TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL,"
           " model TEXT NOT NULL DEFAULT '',"
           " version BIGINT NOT NULL DEFAULT 0)",
           "CREATE INDEX feedback_by_trace ON feedback (trace_id)",
           "CREATE INDEX feedback_by_time ON feedback (created_at, id)",
           "CREATE INDEX feedback_by_model ON feedback (model, version, created_at)",
       }},
      {8,
       "deployments: served names mapped to weighted model versions",
       {
           "CREATE TABLE deployment_targets ("
           " name TEXT NOT NULL,"
           " model TEXT NOT NULL,"
           " version BIGINT NOT NULL,"
           " weight BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " PRIMARY KEY (name, version))",
       }},
      {9,
       "API keys' own rate limits",
       {
           "ALTER TABLE api_keys ADD COLUMN requests_per_minute BIGINT",
           "ALTER TABLE api_keys ADD COLUMN tokens_per_minute BIGINT",
       }},
      {10,
       "dataset versions: immutable record sets with content hash, schema, profile and lineage",
       {
           // Their own table, not MLflow's `datasets` (migration 3): those rows belong to one
           // experiment and carry MLflow's wire fields; a version here is global, numbered
           // per name, and owns its records (a blob of canonical JSONL whose sha256 is the
           // content hash). A run that uses NAME@VERSION can log it there as an input.
           "CREATE TABLE dataset_versions ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL,"
           " version BIGINT NOT NULL,"
           " content_sha256 TEXT NOT NULL REFERENCES artifacts(sha256),"
           " size_bytes BIGINT NOT NULL,"
           " record_count BIGINT NOT NULL,"
           " schema_json TEXT NOT NULL,"
           " profile TEXT NOT NULL,"
           " source TEXT NOT NULL DEFAULT '',"
           " recipe TEXT NOT NULL DEFAULT '',"
           " keel_version TEXT NOT NULL,"
           " details TEXT NOT NULL DEFAULT '{}',"
           " user_id TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL,"
           " UNIQUE (name, version),"
           " UNIQUE (name, content_sha256))",
           "CREATE TABLE dataset_parents ("
           " dataset_version_id TEXT NOT NULL REFERENCES dataset_versions(id),"
           " parent_id TEXT NOT NULL REFERENCES dataset_versions(id),"
           " position BIGINT NOT NULL,"
           " PRIMARY KEY (dataset_version_id, parent_id))",
           "CREATE INDEX dataset_parents_by_parent ON dataset_parents (parent_id)",
       }},
      {11,
       "judge cache: an LLM judge's answers by model version, rendered prompt and parameters",
       {
           // key: sha256 of the judge model's identity (NAME@VERSION and its digest, or
           // the endpoint and model), the generation parameters and the rendered prompt,
           // so the same question to the same judge is asked once. trace_id names the
           // trace of the call that produced the answer.
           "CREATE TABLE judge_cache ("
           " key TEXT PRIMARY KEY,"
           " model TEXT NOT NULL,"
           " response TEXT NOT NULL,"
           " prompt_tokens BIGINT NOT NULL DEFAULT 0,"
           " completion_tokens BIGINT NOT NULL DEFAULT 0,"
           " trace_id TEXT NOT NULL DEFAULT '',"
           " created_at BIGINT NOT NULL)",
       }},
      {12,
       "traces: a remote model's upstream time",
       {
           // From sending the request upstream to the end of its answer; NULL for
           // local models and for traces written before.
           "ALTER TABLE traces ADD COLUMN upstream_ms DOUBLE PRECISION",
       }},
  };
  return migrations;
}

}  // namespace keel::store
