// `keel eval run` and `keel eval show`: a task (eval/task.h) over a dataset with a model,
// stored as a tracking run. The run holds the parameters (task, dataset and model with
// their digests), the aggregate metrics, the dataset as a run input, and artifacts:
// examples.jsonl (one row per example: input, output, reference, scores), task.yaml and
// summary.json. Tags link it to the model version (keel.model.*), and the version gets
// a tag keel.eval.<task> naming the run. While it runs, every finished batch is appended
// and fsynced to <home>/eval-runs/<run>/examples.jsonl, so a run that was killed or
// interrupted continues with --resume RUN without redoing finished examples; a torn
// last line (a kill mid-write) is dropped. Greedy generation makes a resumed run's
// results equal an uninterrupted one. A task with a judge (eval/judge.h, cli/eval_judges.h)
// has each batch's answers judged before the batch is checkpointed, so a resumed run
// keeps the verdicts it had; a judge file is stored beside task.yaml as judge.yaml.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "keel/cli/commands.h"
#include "keel/cli/dataset_inputs.h"
#include "keel/cli/eval_generators.h"
#include "keel/cli/eval_judges.h"
#include "keel/cli/eval_runs.h"
#include "keel/cli/model_files.h"
#include "keel/eval/judge.h"
#include "keel/eval/task.h"
#include "keel/eval/task_run.h"
#include "keel/prompts/prompt_registry.h"
#include "keel/registry/model_registry.h"
#include "keel/registry/remote_models.h"
#include "keel/tracking/artifact_files.h"
#include "keel/tracking/tracking_service.h"
#include "keel/util/file.h"
#include "keel/util/id.h"
#include "keel/util/sha256.h"

namespace keel::cli {
namespace {

constexpr const char* kTaskTag = kEvalTaskTag;
constexpr const char* kModelNameTag = kEvalModelNameTag;
constexpr const char* kModelVersionTag = kEvalModelVersionTag;


std::atomic<bool> g_interrupted{false};  // set by SIGINT during a run; read between batches
extern "C" void on_interrupt(int) { g_interrupted.store(true); }

// Where a dataset comes from: a JSONL file, or a dataset version (NAME@VERSION, or NAME
// for the latest) of the dataset registry, read from its local canonical JSONL file.
struct ResolvedDataset {
  std::string reference;  // as the run records it: the absolute file, or NAME@VERSION
  std::string path;
  std::string sha256;
  std::string name;         // the run input's name
  std::string source_type;  // "local" or "keel-dataset"
};

Result<ResolvedDataset> resolve_dataset(CliContext& ctx, const std::string& spec) {
  if (spec.empty()) return invalid_argument("no dataset: give --dataset FILE.jsonl|NAME@VERSION or set dataset: in the task");
  std::error_code ec;
  if (std::filesystem::is_directory(spec, ec)) {
    return invalid_argument(spec + " is a folder; the dataset is a JSONL file (one JSON object per line)");
  }
  if (std::filesystem::is_regular_file(spec, ec)) {
    KEEL_ASSIGN_OR_RETURN(std::string digest, Sha256::of_file(spec));
    const std::string path = std::filesystem::absolute(spec).lexically_normal().string();
    return ResolvedDataset{path, path, digest, std::filesystem::path(path).stem().string(), "local"};
  }
  KEEL_ASSIGN_OR_RETURN(DataInput input, resolve_data_input(ctx, spec));
  if (!input.dataset) return not_found("no dataset file or dataset version " + spec);
  return ResolvedDataset{input.dataset->reference(), input.path, input.dataset->content_sha256, input.dataset->name,
                         "keel-dataset"};
}

std::string checkpoint_path(CliContext& ctx, const std::string& run_id) {
  return ctx.options().home + "/eval-runs/" + run_id + "/examples.jsonl";
}

// One process per run: a second `--resume` of a run that is still going would write the
// same examples twice. The kernel drops the lock when its holder dies.
class RunLock {
 public:
  static Result<RunLock> take(CliContext& ctx, const std::string& run_id) {
    const std::string folder = parent_dir(checkpoint_path(ctx, run_id));
    KEEL_RETURN_IF_ERROR(make_dirs(folder));
    const std::string path = folder + "/lock";
    RunLock lock(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (lock.fd_ < 0) return os_error("opening " + path, errno);
    if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      return failed_precondition("run " + run_id + " is being evaluated by another keel process right now");
    }
    return lock;
  }
  RunLock(RunLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  RunLock& operator=(RunLock&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

// The rows a killed or interrupted run finished. A last line without its newline was
// torn by the kill: it is cut off so that appending continues on a clean line.
Result<std::map<int64_t, Json>> read_checkpoint(const std::string& path) {
  std::map<int64_t, Json> rows;
  if (!path_exists(path)) return rows;
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(path, size_t{4} << 30));
  size_t begin = 0, complete = 0;
  while (begin < text.size()) {
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) break;
    auto row = parse_json(std::string_view(text.data() + begin, end - begin));
    if (!row.ok() || !row->is_object() || !row->contains("index") || !(*row)["index"].is_number_integer()) {
      return corrupt(path + " has a malformed row at byte " + std::to_string(begin));
    }
    const int64_t index = (*row)["index"].get<int64_t>();
    rows[index] = std::move(*row);
    begin = end + 1;
    complete = begin;
  }
  if (complete < text.size() && ::truncate(path.c_str(), static_cast<off_t>(complete)) != 0) {
    return os_error("truncating " + path, errno);
  }
  return rows;
}

// Appends rows and fsyncs, so that a finished batch survives a kill.
Status append_checkpoint(const std::string& path, const std::vector<Json>& rows) {
  std::string text;
  for (const auto& r : rows) text += dump_json(r) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return os_error("opening " + path, errno);
  Status st = write_all(fd, text.data(), text.size(), path);
  if (st.ok() && ::fsync(fd) != 0) st = os_error("fsync " + path, errno);
  ::close(fd);
  return st;
}

// "eval  12/40 [#######.......]  2.3 examples/s  ETA 12 s" on a terminal; silent elsewhere.
class ExampleProgress {
 public:
  ExampleProgress(int64_t total, int64_t already)
      : total_(total), already_(already), enabled_(::isatty(STDERR_FILENO) == 1), start_ms_(now_millis()) {}
  void update(int64_t done) {
    if (!enabled_) return;
    const double seconds = static_cast<double>(now_millis() - start_ms_) / 1000.0;
    const double rate = seconds > 0 ? static_cast<double>(done - already_) / seconds : 0;
    const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1;
    constexpr int kWidth = 24;
    std::string bar(static_cast<size_t>(frac * kWidth), '#');
    bar.resize(kWidth, '.');
    std::string eta = rate > 0 ? std::to_string(static_cast<int64_t>(std::ceil((total_ - done) / rate))) + " s" : "?";
    std::fprintf(stderr, "\r\033[Keval %lld/%lld [%s] %.2f examples/s  ETA %s", static_cast<long long>(done),
                 static_cast<long long>(total_), bar.c_str(), rate, eta.c_str());
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_) std::fprintf(stderr, "\n");
  }

 private:
  int64_t total_, already_;
  bool enabled_;
  int64_t start_ms_;
};

std::string param(const tracking::Run& run, const std::string& key) { return run_param(run, key); }
std::string tag(const tracking::Run& run, const std::string& key) { return run_tag(run, key); }

Result<std::string> resolve_prompt(CliContext& ctx, const eval::Task& task) {
  if (task.prompt_reference.empty()) return task.prompt;
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  prompts::PromptRegistry registry(models);
  auto [name, ref] = prompts::split_prompt_reference(task.prompt_reference);
  auto v = registry.get(name, ref);
  if (!v.ok()) return v.status().with_context(task.source + ": prompt " + task.prompt_reference);
  if (v->is_chat) {
    return invalid_argument(task.source + ": prompt " + task.prompt_reference +
                            " is a chat prompt; a task takes a text prompt (set generation.chat for chat models)");
  }
  return v->template_text;
}

// A resumed run's setting must be what it was: else the results would mix.
Status must_match_param(const tracking::Run& run, const std::string& key, const std::string& now,
                        const std::string& what) {
  if (param(run, key) != now) {
    return failed_precondition(what + " changed since run " + run.id +
                               " started; resuming would mix results (start a new run)");
  }
  return Status::Ok();
}

// A metric the run has no value for (a judge none of whose verdicts parsed) fails its
// threshold: an unknown is not good enough.
Json thresholds_json(const eval::Task& task, const std::map<std::string, double>& metrics, bool* all_passed) {
  Json out = Json::array();
  *all_passed = true;
  for (const auto& t : task.thresholds) {
    const auto it = metrics.find(t.metric);
    const bool passed = it != metrics.end() && eval::threshold_met(t, it->second);
    *all_passed = *all_passed && passed;
    out.push_back({{"metric", t.metric},
                   {"op", t.op},
                   {"threshold", t.value},
                   {"value", it != metrics.end() ? Json(it->second) : Json(nullptr)},
                   {"passed", passed}});
  }
  return out;
}

// The judge's verdicts on a batch's answers, kept in each result's "judge".
Status judge_batch(JudgeClient& judge, std::span<const eval::EvalExample> examples,
                   std::vector<eval::ExampleResult>& results) {
  std::vector<std::string> prompts;
  for (size_t i = 0; i < results.size(); ++i) {
    KEEL_ASSIGN_OR_RETURN(std::string prompt, eval::judge_prompt(judge.rubric(), examples[i].fields, results[i]));
    prompts.push_back(std::move(prompt));
  }
  KEEL_ASSIGN_OR_RETURN(std::vector<JudgeAnswer> answers, judge.ask(prompts));
  for (size_t i = 0; i < results.size(); ++i) {
    Json j = eval::to_json(eval::parse_verdict(judge.judge().verdict, answers[i].text));
    j["cached"] = answers[i].cached;
    j["trace_id"] = answers[i].trace_id;
    results[i].judge = std::move(j);
  }
  return Status::Ok();
}

}  // namespace

Status run_eval_task(CliContext& ctx, EvalRunOptions o, std::string* run_id) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  tracking::TrackingService tracking(*db);

  std::optional<tracking::Run> resumed;
  std::optional<RunLock> lock;
  if (!o.resume.empty()) {
    auto run = tracking.get_run(o.resume);
    if (!run.ok()) return run.status().with_context("--resume");
    if (tag(*run, kTaskTag).empty()) return invalid_argument("run " + o.resume + " is not an eval run");
    if (run->status == tracking::RunStatus::kFinished) {
      return failed_precondition("run " + o.resume + " already finished; there is nothing to resume");
    }
    // Before anything is loaded or written: a run still going elsewhere is left alone.
    KEEL_ASSIGN_OR_RETURN(lock, RunLock::take(ctx, run->id));
    // The run's own settings; any given again must agree.
    auto same = [&](std::string& given, const std::string& key, const char* flag) -> Status {
      const std::string stored = param(*run, key);
      if (given.empty()) {
        given = stored;
      } else if (given != stored && !(key == "task_file" || key == "dataset")) {
        return invalid_argument(std::string(flag) + " " + given + " differs from the run's " + stored);
      }
      return Status::Ok();
    };
    // The model as the run resolved it (NAME@VERSION, not a moving NAME or alias); one
    // given again must resolve to the same, which the digest check below makes sure of.
    if (o.model.empty()) o.model = param(*run, "model");
    KEEL_RETURN_IF_ERROR(same(o.task, "task_file", "--task"));
    KEEL_RETURN_IF_ERROR(same(o.dataset, "dataset", "--dataset"));
    if (o.endpoint.empty()) o.endpoint = param(*run, "endpoint");
    if (o.api_key_env.empty()) o.api_key_env = param(*run, "api_key_env");
    const std::string limit = param(*run, "limit");
    o.limit = limit.empty() ? 0 : std::stoll(limit);
    resumed = std::move(*run);
  }
  if (o.task.empty()) return invalid_argument("no task: give --task TASK.yaml");

  KEEL_ASSIGN_OR_RETURN(eval::Task task, eval::load_task(o.task));
  KEEL_ASSIGN_OR_RETURN(std::string task_text, read_file(o.task));
  const std::string task_sha = Sha256::of(task_text);
  std::string judge_text, judge_sha;  // a judge file's; an inline judge is in the task's
  if (task.judge && !task.judge_file.empty()) {
    KEEL_ASSIGN_OR_RETURN(judge_text, read_file(task.judge_file));
    judge_sha = Sha256::of(judge_text);
  }
  KEEL_ASSIGN_OR_RETURN(ResolvedDataset dataset, resolve_dataset(ctx, o.dataset.empty() ? task.dataset : o.dataset));
  KEEL_ASSIGN_OR_RETURN(std::string prompt_template, resolve_prompt(ctx, task));
  KEEL_ASSIGN_OR_RETURN(std::vector<eval::DatasetRecord> records, eval::read_jsonl_examples(dataset.path));
  KEEL_ASSIGN_OR_RETURN(std::vector<eval::EvalExample> examples,
                        eval::prepare_examples(task, prompt_template, records, dataset.path));
  if (o.limit > 0 && static_cast<int64_t>(examples.size()) > o.limit) examples.resize(static_cast<size_t>(o.limit));
  KEEL_ASSIGN_OR_RETURN(ResolvedModel model, resolve_model(ctx, o.model, o.endpoint, o.api_key_env));

  if (resumed) {
    auto must_match = [&](const std::string& key, const std::string& now, const std::string& what) -> Status {
      return must_match_param(*resumed, key, now, what);
    };
    KEEL_RETURN_IF_ERROR(must_match("task_sha256", task_sha, "the task file " + o.task));
    if (!judge_sha.empty()) {
      KEEL_RETURN_IF_ERROR(must_match("judge_sha256", judge_sha, "the judge file " + task.judge_file));
    }
    KEEL_RETURN_IF_ERROR(must_match("dataset_sha256", dataset.sha256, "the dataset " + dataset.path));
    KEEL_RETURN_IF_ERROR(must_match("model", model.reference, "the model"));
    if (model.version) {
      KEEL_RETURN_IF_ERROR(must_match("model_sha256", model.sha256, "the model " + model.reference));
    }
  }

  LocalGeneratorOptions local_options;
  local_options.threads = o.threads;
  local_options.batch_size = o.batch_size;
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<eval::Generator> generator, open_generator(ctx, model, local_options));
  std::unique_ptr<JudgeClient> judge;
  if (task.judge) {
    KEEL_ASSIGN_OR_RETURN(judge, JudgeClient::open(ctx, *task.judge, local_options, &model, generator.get()));
    if (resumed) {
      KEEL_RETURN_IF_ERROR(must_match_param(*resumed, "judge_model", judge->model_reference(), "the judge's model"));
    }
  }

  tracking::Run run;
  if (resumed) {
    run = *resumed;
    if (run.status != tracking::RunStatus::kRunning) {
      KEEL_ASSIGN_OR_RETURN(run, tracking.update_run(run.id, tracking::RunStatus::kRunning, std::nullopt, std::nullopt));
    }
  } else {
    KEEL_ASSIGN_OR_RETURN(run, start_eval_run(ctx, tracking, o.experiment, task.name, model));
    std::vector<tracking::KeyValue> params = {
        {"task", task.name},
        {"task_file", std::filesystem::absolute(o.task).lexically_normal().string()},
        {"task_sha256", task_sha},
        {"output_type", std::string(eval::output_type_name(task.output_type))},
        {"dataset", dataset.reference},
        {"dataset_sha256", dataset.sha256},
        {"examples", std::to_string(examples.size())},
        {"limit", std::to_string(o.limit)},
        {"num_fewshot", std::to_string(task.num_fewshot)},
        {"model", model.reference},
        {"model_reference", o.model},
        {"generator", generator->description()}};
    if (model.version) params.push_back({"model_sha256", model.sha256});
    if (!o.endpoint.empty()) {
      params.push_back({"endpoint", o.endpoint});
      if (!o.api_key_env.empty()) params.push_back({"api_key_env", o.api_key_env});
    }
    if (judge) {
      params.push_back({"judge", task.judge->name});
      params.push_back({"judge_model", judge->model_reference()});
      params.push_back({"judge_verdict", std::string(eval::verdict_kind_name(task.judge->verdict.kind))});
      params.push_back({"judge_max_tokens", std::to_string(task.judge->generation.max_tokens)});
      params.push_back({"judge_temperature", std::to_string(task.judge->generation.temperature)});
      if (!task.judge->rubric_reference.empty()) params.push_back({"judge_rubric", task.judge->rubric_reference});
      if (!judge_sha.empty()) {
        params.push_back({"judge_file", std::filesystem::absolute(task.judge_file).lexically_normal().string()});
        params.push_back({"judge_sha256", judge_sha});
      }
    }
    if (task.output_type == eval::OutputType::kGenerateUntil) {
      params.push_back({"max_tokens", std::to_string(task.generation.max_tokens)});
      params.push_back({"temperature", std::to_string(task.generation.temperature)});
      params.push_back({"chat", task.generation.chat ? "true" : "false"});
    }
    KEEL_RETURN_IF_ERROR(tracking.log_batch(run.id, {}, params, {}));
    tracking::DatasetInput input;
    input.name = dataset.name;
    input.digest = dataset.sha256.substr(0, 16);
    input.source_type = dataset.source_type;
    input.source = dataset.reference;
    input.profile = dump_json(Json{{"num_rows", records.size()}, {"evaluated", examples.size()}});
    input.tags = {{"mlflow.data.context", "eval"}};
    KEEL_RETURN_IF_ERROR(tracking.log_inputs(run.id, {input}));
  }
  if (run_id) *run_id = run.id;
  if (!ctx.json()) {
    if (o.quiet) {
      std::cout << "eval run " << run.id << ": " << task.name << " on " << model.reference << std::endl;
    } else {
      std::cout << "run " << run.id << (resumed ? " (resumed)" : "") << std::endl;
    }
  }

  // Finished examples first (from an earlier attempt), then the rest in batches.
  const std::string checkpoint = checkpoint_path(ctx, run.id);
  if (!lock) {
    KEEL_ASSIGN_OR_RETURN(lock, RunLock::take(ctx, run.id));
  }
  KEEL_ASSIGN_OR_RETURN(auto done_rows, read_checkpoint(checkpoint));
  for (const auto& [index, row] : done_rows) {
    if (index < 0 || index >= static_cast<int64_t>(examples.size()) || !row.contains("input") ||
        row["input"] != examples[static_cast<size_t>(index)].prompt) {
      return failed_precondition(checkpoint + " does not match the examples of run " + run.id +
                                 " (row " + std::to_string(index) + "); start a new run");
    }
  }
  const int64_t reused = static_cast<int64_t>(done_rows.size());
  std::vector<eval::EvalExample> todo;
  for (const auto& e : examples) {
    if (!done_rows.count(e.index)) todo.push_back(e);
  }

  g_interrupted.store(false);
  struct sigaction action {}, previous {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &previous);
  ExampleProgress progress(static_cast<int64_t>(examples.size()), reused);
  int64_t finished = reused;
  progress.update(finished);
  Status loop = Status::Ok();
  const size_t batch = static_cast<size_t>(std::max(o.batch_size, 1));
  for (size_t start = 0; start < todo.size() && loop.ok(); start += batch) {
    if (g_interrupted.load()) break;
    std::span<const eval::EvalExample> slice(todo.data() + start, std::min(batch, todo.size() - start));
    auto results = eval::evaluate_batch(task, *generator, slice);
    if (!results.ok()) {
      loop = results.status();
      break;
    }
    if (judge) {
      loop = judge_batch(*judge, slice, *results);
      if (!loop.ok()) break;
    }
    std::vector<Json> rows;
    const int64_t at = now_millis();
    for (const auto& r : *results) {
      Json row = eval::to_json(r);
      row["finished_at"] = at;
      rows.push_back(row);
      done_rows[r.index] = std::move(row);
    }
    loop = append_checkpoint(checkpoint, rows);
    finished += static_cast<int64_t>(rows.size());
    if (loop.ok()) {
      loop = tracking.log_batch(run.id, {{"examples_done", static_cast<double>(finished), now_millis(), finished}}, {}, {});
    }
    progress.update(finished);
  }
  progress.finish();
  ::sigaction(SIGINT, &previous, nullptr);
  if (!loop.ok() || g_interrupted.load()) {
    const auto status = loop.ok() ? tracking::RunStatus::kKilled : tracking::RunStatus::kFailed;
    (void)tracking.update_run(run.id, status, now_millis(), std::nullopt);
    const std::string hint = "; " + std::to_string(finished) + " of " + std::to_string(examples.size()) +
                             " examples are kept: continue with `keel eval run --resume " + run.id + "`";
    if (!loop.ok()) return Status(loop.code(), loop.message() + hint);
    return cancelled("interrupted" + hint);
  }

  // Everything is done: aggregate, store the artifacts, close the run.
  std::vector<eval::ExampleResult> results;
  std::string rows_text;
  for (const auto& [index, row] : done_rows) {
    KEEL_ASSIGN_OR_RETURN(eval::ExampleResult r, eval::example_result_from_json(row));
    results.push_back(std::move(r));
    rows_text += dump_json(row) + "\n";
  }
  KEEL_ASSIGN_OR_RETURN(auto metrics, eval::aggregate_metrics(task, results));
  Json judge_json;
  if (judge) {
    const eval::JudgeSummary js = eval::summarize_judge(results);
    if (js.mean) metrics["judge"] = *js.mean;
    metrics["judge_parse_failures"] = static_cast<double>(js.unparsed);
    judge_json = {{"name", task.judge->name},
                  {"model", judge->model_reference()},
                  {"verdict", eval::verdict_kind_name(task.judge->verdict.kind)},
                  {"judged", js.judged},
                  {"parsed", js.parsed},
                  {"parse_failures", js.unparsed},
                  {"parse_rate", js.judged > 0 ? Json(static_cast<double>(js.parsed) / static_cast<double>(js.judged))
                                               : Json(nullptr)},
                  {"mean", js.mean ? Json(*js.mean) : Json(nullptr)},
                  {"cache_hits", js.cache_hits},
                  {"calls", judge->calls()}};
  }
  bool passed = true;
  Json thresholds = thresholds_json(task, metrics, &passed);
  Json metrics_json = Json::object();
  for (const auto& [k, v] : metrics) metrics_json[k] = tracking::number_json(v);
  Json summary = {{"run_id", run.id},
                  {"task", task.name},
                  {"output_type", eval::output_type_name(task.output_type)},
                  {"model", model.reference},
                  {"dataset", dataset.reference},
                  {"examples", results.size()},
                  {"reused_examples", reused},
                  {"generated_examples", static_cast<int64_t>(results.size()) - reused},
                  {"metrics", metrics_json},
                  {"thresholds", thresholds},
                  {"passed", passed}};
  if (judge) summary["judge"] = judge_json;

  std::vector<std::pair<std::string, std::string>> files = {{"examples.jsonl", rows_text}, {"task.yaml", task_text}};
  if (!judge_text.empty()) files.push_back({"judge.yaml", judge_text});
  files.push_back({"summary.json", dump_json(summary, 2) + "\n"});
  KEEL_RETURN_IF_ERROR(finish_eval_run(ctx, tracking, run, task.name, model, files,
                                       std::vector<std::pair<std::string, double>>(metrics.begin(), metrics.end()),
                                       {{"keel.eval.passed", passed ? "true" : "false"}}));
  std::error_code ec;
  std::filesystem::remove_all(parent_dir(checkpoint), ec);

  if (o.quiet) {
  } else if (ctx.json()) {
    print_json(summary);
  } else {
    std::printf("%s on %s: %zu examples (%lld from an earlier attempt)\n", task.name.c_str(), model.reference.c_str(),
                results.size(), static_cast<long long>(reused));
    for (const auto& [k, v] : metrics) std::printf("  %-20s %.4f\n", k.c_str(), v);
    if (judge) {
      std::printf(
          "  judge %s (%s): %lld of %lld verdicts parsed, %lld from the cache, %lld calls\n", task.judge->name.c_str(),
          judge->model_reference().c_str(), static_cast<long long>(judge_json["parsed"].get<int64_t>()),
          static_cast<long long>(judge_json["judged"].get<int64_t>()),
          static_cast<long long>(judge_json["cache_hits"].get<int64_t>()), static_cast<long long>(judge->calls()));
    }
    for (const auto& t : thresholds) {
      std::printf("  threshold %s %s %g: %s\n", t["metric"].get<std::string>().c_str(), t["op"].get<std::string>().c_str(),
                  t["threshold"].get<double>(), t["passed"].get<bool>() ? "passed" : "FAILED");
    }
    std::fflush(stdout);
  }
  if (!passed) return failed_precondition("task " + task.name + " is below its thresholds (run " + run.id + ")");
  return Status::Ok();
}

namespace {

Status run_show(CliContext& ctx, const std::string& run_id, bool examples) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run run, get_eval_run(tracking, run_id));
  Json out = {{"run", tracking::to_json(run)}, {"task", tag(run, kTaskTag)}, {"model", param(run, "model")}};
  if (!tag(run, kModelNameTag).empty()) {
    out["model_version"] = {{"name", tag(run, kModelNameTag)},
                            {"version", std::stoll(tag(run, kModelVersionTag))},
                            {"id", tag(run, kEvalModelVersionIdTag)}};
  }
  std::vector<Json> rows;
  if (run.status == tracking::RunStatus::kFinished) {
    KEEL_ASSIGN_OR_RETURN(rows, read_eval_rows(*db, *blobs, run));
  }
  if (examples) out["examples"] = rows;
  if (ctx.json()) {
    print_json(out);
    return Status::Ok();
  }
  std::cout << "run:     " << run.id << " (" << tracking::run_status_name(run.status) << ")\n"
            << "task:    " << tag(run, kTaskTag) << "\nmodel:   " << param(run, "model") << "\n"
            << "dataset: " << param(run, "dataset") << " (" << param(run, "examples") << " examples)\n";
  for (const auto& m : run.latest_metrics) {
    if (m.key != "examples_done") std::printf("  %-14s %.4f\n", m.key.c_str(), m.value);
  }
  if (examples) {
    for (const auto& r : rows) {
      std::cout << "[" << r["index"].get<int64_t>() << "] " << r["id"].get<std::string>() << "\n  output:    "
                << dump_json(r["output"]);
      if (r.contains("filtered")) std::cout << "\n  filtered:  " << dump_json(r["filtered"]);
      std::cout << "\n  reference: " << dump_json(r["reference"]) << "\n  scores:    "
                << dump_json(r["scores"]) << "\n";
      if (r.contains("judge") && r["judge"].is_object()) {
        const Json& j = r["judge"];
        std::cout << "  judge:     " << j.value("status", "") << " "
                  << (j.contains("value") && j["value"].is_number() ? std::to_string(j["value"].get<double>())
                                                                    : std::string("-"))
                  << (j.value("cached", false) ? " (cached)" : "") << "  " << dump_json(j.value("raw", "")) << "\n";
      }
    }
  }
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

void add_eval_run_commands(CLI::App& eval, CliContext& ctx, Status& outcome) {
  auto o = std::make_shared<EvalRunOptions>();
  auto* run = eval.add_subcommand(
      "run", "Run an evaluation task (YAML) on a model and store it as a tracking run; --resume RUN continues one");
  run->add_option("-m,--model", o->model,
                  "Registered NAME[@VERSION|@ALIAS] (local or remote), a GGUF file, or the model name at --endpoint");
  run->add_option("-d,--dataset", o->dataset, "JSONL file (one example per line); default: the task's dataset");
  run->add_option("-t,--task", o->task, "Task file (YAML)");
  run->add_option("--resume", o->resume, "Continue an interrupted or killed eval run without redoing its examples");
  run->add_option("--endpoint", o->endpoint, "An OpenAI-compatible base URL (http://host:port/v1) to evaluate");
  run->add_option("--api-key-env", o->api_key_env, "Environment variable holding the endpoint's API key");
  run->add_option("--experiment", o->experiment, "Experiment of the run")->capture_default_str();
  run->add_option("--limit", o->limit, "Evaluate only the first N examples (0: all)")->check(CLI::Range(int64_t{0}, INT64_MAX));
  run->add_option("--batch-size", o->batch_size, "Examples per batch (sequences decoded together); results do not depend on it")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  run->add_option("--threads", o->threads, "Engine threads")->check(CLI::Range(1, 256))->capture_default_str();
  run->callback([&ctx, &outcome, o] {
    if (o->resume.empty() && (o->model.empty() || o->task.empty())) {
      outcome = invalid_argument("give --model and --task (or --resume RUN)");
      return;
    }
    outcome = run_eval_task(ctx, *o, nullptr);
  });

  auto show_id = std::make_shared<std::string>();
  auto show_examples = std::make_shared<bool>(false);
  auto* show = eval.add_subcommand("show", "Show an eval run: task, model version, metrics and (--examples) its rows");
  show->add_option("run", *show_id, "Run id")->required();
  show->add_flag("--examples", *show_examples, "Also print every example's output, reference and scores");
  show->callback([&ctx, &outcome, show_id, show_examples] { outcome = run_show(ctx, *show_id, *show_examples); });
}

}  // namespace keel::cli
