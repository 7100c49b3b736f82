#include "keel/cli/context.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include "keel/store/migrations.h"
#include "keel/util/file.h"
#include "keel/util/id.h"

namespace keel::cli {

Status CliContext::prepare_home() {
  if (home_ready_) return Status::Ok();
  if (options_.home.empty()) return invalid_argument("no Keel home folder: set --home or KEEL_HOME");
  Status st = ensure_writable_dir(options_.home);
  if (!st.ok()) {
    return Status(st.code(), "cannot use " + options_.home + " as the Keel home folder (" + st.message() +
                                 "); choose another with --home or KEEL_HOME");
  }
  for (const char* sub : {"/artifacts", "/models", "/logs"}) KEEL_RETURN_IF_ERROR(make_dirs(options_.home + sub));
  home_ready_ = true;
  return Status::Ok();
}

Result<store::Db*> CliContext::db() {
  if (db_) return db_.get();
  std::string url = options_.db_url;
  if (url.empty()) {
    KEEL_RETURN_IF_ERROR(prepare_home());
    url = "sqlite://" + options_.home + "/keel.db";
  } else if (url.rfind("sqlite:", 0) == 0) {
    auto parsed = store::parse_db_url(url);
    if (parsed.ok()) KEEL_RETURN_IF_ERROR(ensure_writable_dir(parent_dir(parsed->target)).with_context("database folder"));
  }
  KEEL_ASSIGN_OR_RETURN(auto db, store::Db::open(url));
  Status migrated = store::migrate_to_latest(*db);
  if (!migrated.ok()) return migrated.with_context("preparing the metadata store " + db->display_url());
  db_ = std::move(db);
  return db_.get();
}

Result<store::LocalArtifactStore*> CliContext::artifacts() {
  if (artifacts_) return artifacts_.get();
  KEEL_RETURN_IF_ERROR(prepare_home());
  KEEL_ASSIGN_OR_RETURN(artifacts_, store::LocalArtifactStore::open_at(options_.home + "/artifacts"));
  return artifacts_.get();
}

std::string CliContext::actor() const {
  if (const char* u = std::getenv("KEEL_USER"); u && *u) return u;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name) return std::string("os:") + pw->pw_name;
  return "os:uid" + std::to_string(::getuid());
}

void print_json(const Json& value) { std::cout << dump_json(value, 2) << std::endl; }

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string human_count(uint64_t count) {
  char buf[32];
  if (count >= 1000000000ull) {
    std::snprintf(buf, sizeof buf, "%.2fB", static_cast<double>(count) / 1e9);
  } else if (count >= 1000000ull) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(count) / 1e6);
  } else if (count >= 1000ull) {
    std::snprintf(buf, sizeof buf, "%.1fK", static_cast<double>(count) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(count));
  }
  return buf;
}

std::string format_time(int64_t epoch_ms) {
  std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

ProgressBar::ProgressBar(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(::isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(uint64_t done) { draw(done, ""); }

void ProgressBar::update(uint64_t done, uint64_t items, const char* unit) {
  if (!enabled_ || finished_) return;
  if (start_ms_ == 0) start_ms_ = now_millis();
  double seconds = static_cast<double>(now_millis() - start_ms_) / 1000.0;
  std::string detail = "  " + human_count(items) + " " + unit;
  if (seconds > 0.2) detail += " (" + human_count(static_cast<uint64_t>(static_cast<double>(items) / seconds)) + "/s)";
  draw(done, detail);
}

void ProgressBar::draw(uint64_t done, const std::string& detail) {
  if (!enabled_ || finished_) return;
  int64_t now = now_millis();
  if (now - last_draw_ms_ < 100 && done < total_) return;
  last_draw_ms_ = now;
  double frac = total_ == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
  if (frac > 1.0) frac = 1.0;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %3.0f%% %s / %s%s", label_.c_str(), bar.c_str(), frac * 100.0,
               human_bytes(done).c_str(), human_bytes(total_).c_str(), detail.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  std::fprintf(stderr, "\n");
}

}  // namespace keel::cli
