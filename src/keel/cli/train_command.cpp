// `keel train sft -m MODEL -d DATA.jsonl -o ADAPTER.gguf`: LoRA supervised fine-tuning
// on the local engine (train/sft_trainer.h). DATA has one JSON record per line, either
// {"messages": [...]} (rendered with the model's chat template, loss on the assistant
// turns) or {"prompt": ..., "completion": ...} (loss on the completion); a bad line is
// an error naming its line number. The adapter is written in llama.cpp's GGUF LoRA
// layout. MODEL is a GGUF path or a registered NAME[@VERSION].
//
// A training is a tracking run (experiment "fine-tuning" unless --experiment): its
// options as parameters, the data file as its input (with its digest), loss, learning
// rate, gradient norm and tokens/s per step as metrics, and as artifacts the adapter and
// a checkpoint (train/sft_checkpoint.h) every --checkpoint-every steps, replaced each
// time. `keel train resume RUN` goes on from a run's checkpoint (after a kill, say) with
// the options it was started with, and takes the same steps the training would have.
//
// Validation: --val-data (another file or dataset) or --val-fraction (records held out
// by a hash of their text, as `keel data split` assigns them) gives a validation loss
// every --eval-every steps (metric val_loss); --patience stops training early after that
// many evaluations without a new lowest one. The adapter written is then the one of the
// lowest validation loss.
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <sys/stat.h>
#include <sstream>

#include "keel/cli/commands.h"
#include "keel/cli/dataset_inputs.h"
#include "keel/cli/model_files.h"
#include "keel/data/split_operator.h"
#include "keel/engine/chat_template.h"
#include "keel/registry/model_registry.h"
#include "keel/tracking/artifact_files.h"
#include "keel/tracking/tracking_service.h"
#include "keel/train/adapter_gguf.h"
#include "keel/train/merge.h"
#include "keel/train/sft_checkpoint.h"
#include "keel/train/sft_trainer.h"
#include "keel/util/file.h"
#include "keel/util/json.h"
#include "keel/util/sha256.h"

namespace keel::cli {
namespace {

constexpr const char* kCheckpointArtifact = "checkpoint.gguf";
constexpr const char* kAdapterArtifact = "adapter.gguf";

struct SftCommandOptions {
  std::string model, data, out, modules = "all", schedule = "cosine";
  int64_t rank = 8, epochs = 1, max_steps = 0, batch = 1, grad_accum = 1, max_len = 512, warmup = 0;
  float alpha = 16, dropout = 0.05f, lr = 2e-4f, weight_decay = 0, max_grad_norm = 1.0f;
  int threads = 1;
  uint64_t seed = 0;
  bool checkpointing = false;
  int64_t checkpoint_every = 50;
  std::string val_data;  // validation records: a file or dataset ...
  double val_fraction = 0;  // ... or this share of `data`'s records
  int64_t eval_every = 0, patience = 0;
  std::string experiment = "fine-tuning", run_name;
  std::string register_as;  // register the adapter as a new version of this model
  // Where the records are read: the file `data` names, or a dataset version's file
  // (`data` then is its NAME@VERSION). Found again on resume, not stored.
  std::string data_path, val_data_path;

  bool validates() const { return !val_data.empty() || val_fraction > 0; }
};

// The options that decide the course of a training (kept in its checkpoint, logged as
// its parameters); --threads and where things go may change on resume.
Json course_json(const SftCommandOptions& o) {
  return Json{{"model", o.model},   {"data", o.data},       {"out", o.out},
              {"modules", o.modules}, {"schedule", o.schedule}, {"rank", o.rank},
              {"epochs", o.epochs}, {"max_steps", o.max_steps}, {"batch", o.batch}, {"grad_accum", o.grad_accum},
              {"max_len", o.max_len}, {"warmup", o.warmup},   {"alpha", o.alpha},
              {"dropout", o.dropout}, {"lr", o.lr},           {"weight_decay", o.weight_decay},
              {"max_grad_norm", o.max_grad_norm}, {"seed", std::to_string(o.seed)},
              {"checkpointing", o.checkpointing}, {"checkpoint_every", o.checkpoint_every},
              {"val_data", o.val_data}, {"val_fraction", o.val_fraction}, {"eval_every", o.eval_every},
              {"patience", o.patience}, {"register", o.register_as}};
}

Result<SftCommandOptions> course_from_json(const std::string& text) {
  auto j = parse_json(text);
  if (!j.ok() || !j->is_object()) return invalid_argument("the checkpoint's configuration is not a JSON object");
  SftCommandOptions o;
  try {
    o.model = j->at("model").get<std::string>();
    o.data = j->at("data").get<std::string>();
    o.out = j->at("out").get<std::string>();
    o.modules = j->at("modules").get<std::string>();
    o.schedule = j->at("schedule").get<std::string>();
    o.rank = j->at("rank").get<int64_t>();
    o.epochs = j->at("epochs").get<int64_t>();
    o.max_steps = j->at("max_steps").get<int64_t>();
    o.batch = j->at("batch").get<int64_t>();
    o.max_len = j->at("max_len").get<int64_t>();
    o.warmup = j->at("warmup").get<int64_t>();
    o.alpha = j->at("alpha").get<float>();
    o.dropout = j->at("dropout").get<float>();
    o.lr = j->at("lr").get<float>();
    o.weight_decay = j->at("weight_decay").get<float>();
    o.max_grad_norm = j->at("max_grad_norm").get<float>();
    o.seed = std::stoull(j->at("seed").get<std::string>());
    o.checkpointing = j->at("checkpointing").get<bool>();
    o.checkpoint_every = j->at("checkpoint_every").get<int64_t>();
    // Later additions: a checkpoint written before them trained without.
    o.grad_accum = j->value("grad_accum", int64_t{1});
    o.val_data = j->value("val_data", std::string());
    o.val_fraction = j->value("val_fraction", 0.0);
    o.eval_every = j->value("eval_every", int64_t{0});
    o.patience = j->value("patience", int64_t{0});
    o.register_as = j->value("register", std::string());
  } catch (const std::exception& e) {
    return invalid_argument(std::string("the checkpoint's configuration is incomplete: ") + e.what());
  }
  return o;
}

// The tracking run a training reports to.
class TrainingRun {
 public:
  TrainingRun(store::Db& db, store::ArtifactStore& blobs, tracking::Run run)
      : db_(db), blobs_(blobs), tracking_(db), run_(std::move(run)) {}

  const tracking::Run& run() const { return run_; }

  // Where the run's artifact `name` is kept ("<experiment>/<run>/artifacts/name").
  std::string artifact_path(const std::string& name) const {
    std::string root = run_.artifact_uri;
    const std::string scheme = "mlflow-artifacts:/";
    if (root.starts_with(scheme)) root = root.substr(scheme.size());
    return root + "/" + name;
  }

  Status log_file(const std::string& name, const std::string& file) {
    return tracking::ArtifactFiles(db_, blobs_).put_file(artifact_path(name), file).status();
  }

  // A local path of the artifact's bytes (the artifact store keeps them as a file).
  Result<std::string> artifact_file(const std::string& name) {
    auto stored = tracking::ArtifactFiles(db_, blobs_).stat(artifact_path(name));
    if (!stored.ok()) return stored.status();
    auto path = blobs_.local_path(stored->sha256);
    if (!path) return not_found("the bytes of " + artifact_path(name) + " are missing from the artifact store");
    return *path;
  }

  Status log_step(const train::SftProgress& p, double tokens_per_second) {
    const int64_t now = now_ms();
    return tracking_.log_batch(run_.id,
                               {{"loss", p.loss, now, p.step},
                                {"learning_rate", p.learning_rate, now, p.step},
                                {"grad_norm", p.grad_norm, now, p.step},
                                {"tokens_per_second", tokens_per_second, now, p.step}},
                               {}, {});
  }

  Status log_validation(int64_t step, double loss) {
    return tracking_.log_batch(run_.id, {{"val_loss", loss, now_ms(), step}}, {}, {});
  }

  Status end(tracking::RunStatus status) {
    return tracking_.update_run(run_.id, status, now_ms(), std::nullopt).status();
  }

  tracking::TrackingService& tracking() { return tracking_; }

 private:
  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  store::Db& db_;
  store::ArtifactStore& blobs_;
  tracking::TrackingService tracking_;
  tracking::Run run_;
};

// A new run in the options' experiment (created when missing), with the options as
// parameters and the data file as the input.
// One data input of a training: a file (by its path) or a dataset version.
tracking::DatasetInput data_input(const std::string& reference, const std::string& path, const std::string& digest,
                                  const char* context) {
  const bool is_version = reference != path;
  return {.name = is_version ? reference.substr(0, reference.find('@')) : reference.substr(reference.find_last_of('/') + 1),
          .digest = digest.substr(0, 16),
          .source_type = is_version ? "keel-dataset" : "local",
          .source = reference,
          .tags = {{"mlflow.data.context", context}}};
}

Result<TrainingRun> start_run(CliContext& ctx, const SftCommandOptions& o, const std::string& data_digest,
                              const std::string& val_digest, std::vector<tracking::KeyValue> tags) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  tracking::TrackingService tracking(*db);
  auto experiment = tracking.get_experiment_by_name(o.experiment);
  if (!experiment.ok() && experiment.status().code() == ErrorCode::kNotFound) {
    experiment = tracking.create_experiment(o.experiment, "", {}, ctx.actor());
  }
  if (!experiment.ok()) return experiment.status().with_context("experiment " + o.experiment);
  const std::string name = o.run_name.empty() ? "sft " + o.model.substr(o.model.find_last_of('/') + 1) : o.run_name;
  tags.push_back({"mlflow.source.name", "keel train sft"});
  tags.push_back({"keel.base_model", o.model});
  tags.push_back({"keel.task", "sft"});
  KEEL_ASSIGN_OR_RETURN(tracking::Run run, tracking.create_run(experiment->id, ctx.actor(), 0, name, tags));
  std::vector<tracking::KeyValue> params;
  const Json course = course_json(o);
  for (const auto& [key, value] : course.items()) {
    params.push_back({key, value.is_string() ? value.get<std::string>() : dump_json(value)});
  }
  params.push_back({"threads", std::to_string(o.threads)});
  params.push_back({"base_model", o.model});  // what lineage follows from a version this run produced
  KEEL_RETURN_IF_ERROR(tracking.log_batch(run.id, {}, params, {}));
  std::vector<tracking::DatasetInput> inputs{data_input(o.data, o.data_path, data_digest, "training")};
  if (!o.val_data.empty()) inputs.push_back(data_input(o.val_data, o.val_data_path, val_digest, "validation"));
  KEEL_RETURN_IF_ERROR(tracking.log_inputs(run.id, inputs));
  return TrainingRun(*db, *blobs, std::move(run));
}

// The encoded records a training reads: those it trains on, those it validates on,
// and the count of those with nothing to train on within --max-len.
struct Examples {
  std::vector<train::SftExample> train, validation;
  int64_t skipped = 0;
};

// The records of the file `path` (`name` in messages), encoded into `into`, or into
// `held_out` for the `held_out_share` of them that `keel data split` would assign to a
// second split of that ratio.
Status read_records(const std::string& path, const std::string& name, const SftCommandOptions& o,
                    const LoadedModel& m, const engine::ChatTemplate* tmpl, std::vector<train::SftExample>& into,
                    std::vector<train::SftExample>* held_out, double held_out_share, int64_t& skipped) {
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(path, size_t{1} << 30));
  data::SplitOptions split;
  split.ratios = {1 - held_out_share, held_out_share};
  split.names = {"train", "validation"};
  std::istringstream lines(text);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto record = parse_json(line);
    if (!record.ok()) return invalid_argument(name + ":" + std::to_string(number) + ": not JSON");
    auto example = train::encode_sft_record(*m.tokenizer, tmpl, *record, o.max_len);
    if (!example.ok() && example.status().code() == ErrorCode::kFailedPrecondition) {
      ++skipped;
      continue;
    }
    if (!example.ok()) {
      return invalid_argument(name + ":" + std::to_string(number) + ": " + example.status().message());
    }
    const bool hold_out =
        held_out != nullptr &&
        data::split_index(record->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), split) == 1;
    (hold_out ? *held_out : into).push_back(std::move(*example));
  }
  return Status::Ok();
}

Result<Examples> read_examples(const SftCommandOptions& o, const LoadedModel& m) {
  std::optional<engine::ChatTemplate> tmpl;
  auto loaded = engine::chat_template_from_gguf(*m.file);
  if (loaded.ok()) tmpl = std::move(*loaded);
  Examples out;
  const engine::ChatTemplate* t = tmpl ? &*tmpl : nullptr;
  KEEL_RETURN_IF_ERROR(read_records(o.data_path, o.data, o, m, t, out.train,
                                    o.val_fraction > 0 ? &out.validation : nullptr, o.val_fraction, out.skipped));
  const std::string within = out.skipped > 0 ? " within --max-len " + std::to_string(o.max_len) : std::string();
  if (out.train.empty()) return invalid_argument(o.data + " has no record to train on" + within);
  if (!o.val_data.empty()) {
    KEEL_RETURN_IF_ERROR(read_records(o.val_data_path, o.val_data, o, m, t, out.validation, nullptr, 0, out.skipped));
    if (out.validation.empty()) return invalid_argument(o.val_data + " has no record to validate on" + within);
  } else if (o.val_fraction > 0 && out.validation.empty()) {
    return invalid_argument("--val-fraction " + std::to_string(o.val_fraction) + " holds out none of the " +
                            std::to_string(out.train.size()) + " records of " + o.data +
                            "; use a larger share or --val-data");
  }
  return out;
}

std::string duration_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char out[32];
  if (s >= 3600) {
    std::snprintf(out, sizeof out, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  } else {
    std::snprintf(out, sizeof out, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  }
  return out;
}

// Trains from `from` (a checkpoint, or nullptr for a new training) to the end, reporting
// to `run`: metrics per step, the checkpoint every o.checkpoint_every steps, then the
// adapter. The run ends FINISHED, or FAILED with the error.
Status train_in_run(CliContext& ctx, const SftCommandOptions& o, const LoadedModel& m, const Examples& examples,
                    TrainingRun& run, std::optional<train::SftCheckpoint> from) {
  KEEL_ASSIGN_OR_RETURN(train::LrDecay decay, train::parse_lr_decay(o.schedule));
  KEEL_ASSIGN_OR_RETURN(std::vector<train::LoraModule> modules, train::parse_lora_modules(o.modules));
  train::SftOptions so;
  so.epochs = o.epochs;
  so.max_steps = o.max_steps;
  so.batch = o.batch;
  so.accumulation = o.grad_accum;
  so.eval_every = o.eval_every;
  so.patience = o.patience;
  so.learning_rate = o.lr;
  so.warmup_steps = o.warmup;
  so.decay = decay;
  so.adamw.weight_decay = o.weight_decay;
  so.adamw.max_grad_norm = o.max_grad_norm;
  so.threads = o.threads;
  so.gradient_checkpointing = o.checkpointing;
  so.seed = o.seed;
  so.checkpoint_every = o.checkpoint_every;
  std::optional<train::LoraWeights> fresh;
  std::optional<train::AdamW> fresh_optimizer;
  train::LoraWeights* lora = nullptr;
  train::AdamW* optimizer = nullptr;
  train::SftValidation validation;
  if (from) {
    so.start_step = from->step;
    lora = &from->lora;
    optimizer = &from->optimizer;
    if (from->validation) validation = std::move(*from->validation);
  } else {
    KEEL_ASSIGN_OR_RETURN(fresh, train::LoraWeights::create(*m.model, {.rank = o.rank,
                                                                       .alpha = o.alpha,
                                                                       .dropout = o.dropout,
                                                                       .seed = o.seed,
                                                                       .modules = modules}));
    fresh_optimizer.emplace(so.adamw);
    lora = &*fresh;
    optimizer = &*fresh_optimizer;
  }
  validation.examples = examples.validation;
  const int64_t steps = train::sft_step_count(static_cast<int64_t>(examples.train.size()), so);
  if (!ctx.json()) {
    std::fprintf(stderr, "train sft: run %s; %zu examples (%zu for validation), %lld steps%s, %lld LoRA parameters (rank %lld on %s)\n",
                 run.run().id.c_str(), examples.train.size(), examples.validation.size(), static_cast<long long>(steps),
                 from ? (", resuming after step " + std::to_string(from->step)).c_str() : "",
                 static_cast<long long>(lora->parameter_count()), static_cast<long long>(lora->config().rank),
                 o.modules.c_str());
  }
  const std::string scratch = ctx.options().home + "/tmp";
  KEEL_RETURN_IF_ERROR(make_dirs(scratch));
  const std::string checkpoint_file = scratch + "/checkpoint-" + run.run().id + ".gguf";
  const std::string config = dump_json(course_json(o));
  int64_t last_checkpoint = from ? from->step : 0;
  Json step_log = Json::array();
  double previous_seconds = 0;
  Status logging = Status::Ok();
  train::SftHooks hooks;
  hooks.on_step = [&](const train::SftProgress& p) {
    const double took = p.seconds - previous_seconds;
    previous_seconds = p.seconds;
    const double tokens_per_second = took > 0 ? static_cast<double>(p.tokens) / took : 0.0;
    if (logging.ok()) logging = run.log_step(p, tokens_per_second);
    step_log.push_back({{"step", p.step}, {"loss", p.loss}, {"lr", p.learning_rate}, {"grad_norm", p.grad_norm}});
    if (!ctx.json()) {
      const int64_t done_here = p.step - so.start_step;
      const double eta = done_here > 0 ? p.seconds / static_cast<double>(done_here) * static_cast<double>(p.steps - p.step) : 0;
      std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  grad norm %.3f  %.0f tokens/s  ETA %s\n",
                   static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.learning_rate,
                   p.grad_norm, tokens_per_second, duration_text(eta).c_str());
    }
  };
  Json validation_log = Json::array();
  hooks.on_validation = [&](int64_t step, double loss, const train::SftValidationState& state) {
    if (logging.ok()) logging = run.log_validation(step, loss);
    validation_log.push_back({{"step", step}, {"val_loss", loss}});
    if (ctx.json()) return;
    if (state.best_step == step) {
      std::fprintf(stderr, "step %lld  validation loss %.4f  (best)\n", static_cast<long long>(step), loss);
    } else {
      std::fprintf(stderr, "step %lld  validation loss %.4f  (best %.4f at step %lld)\n", static_cast<long long>(step),
                   loss, state.best_loss, static_cast<long long>(state.best_step));
    }
  };
  const bool validating = !examples.validation.empty();
  hooks.on_checkpoint = [&](int64_t step, const train::LoraWeights& weights, const train::AdamW& adam) -> Status {
    KEEL_RETURN_IF_ERROR(logging);
    KEEL_RETURN_IF_ERROR(train::write_sft_checkpoint(checkpoint_file, *m.model, weights, adam, step, config,
                                                     validating ? &validation : nullptr));
    Status logged = run.log_file(kCheckpointArtifact, checkpoint_file);
    std::remove(checkpoint_file.c_str());
    KEEL_RETURN_IF_ERROR(logged);
    last_checkpoint = step;
    return Status::Ok();
  };
  auto trained = train::train_sft(*m.model, *lora, *optimizer, examples.train, so, hooks, &validation);
  Status outcome = trained.status();
  if (outcome.ok()) outcome = logging;
  // With validation, the adapter of the lowest validation loss is the training's result.
  const train::LoraWeights& result_lora = validating && validation.best ? *validation.best : *lora;
  if (outcome.ok() && validating) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    outcome = run.tracking().log_batch(run.run().id, {{"best_val_loss", validation.state.best_loss, now, validation.state.best_step}},
                                       {}, {{"keel.best_step", std::to_string(validation.state.best_step)}});
  }
  if (outcome.ok()) outcome = train::write_lora_adapter(o.out, *m.model, result_lora);
  if (outcome.ok()) outcome = run.log_file(kAdapterArtifact, o.out);
  std::string registered;
  if (outcome.ok() && !o.register_as.empty()) {
    auto imported = register_adapter(ctx, o.out, o.register_as, o.model, run.run().id);
    if (imported.ok()) {
      registered = imported->version.model_name + "@" + std::to_string(imported->version.version);
    } else {
      outcome = imported.status().with_context("registering the adapter as " + o.register_as);
    }
  }
  if (!outcome.ok()) {
    (void)run.end(tracking::RunStatus::kFailed);
    const std::string kept = last_checkpoint > 0 ? "its checkpoint of step " + std::to_string(last_checkpoint) + " is kept"
                                                 : "no checkpoint was written";
    return Status(outcome.code(), outcome.message() + " (run " + run.run().id + "; " + kept + ")");
  }
  KEEL_RETURN_IF_ERROR(run.end(tracking::RunStatus::kFinished));
  const train::SftResult& r = *trained;
  const double tokens_per_second = r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0;
  if (ctx.json()) {
    Json out = {{"run_id", run.run().id},
                {"adapter", o.out},
                {"examples", examples.train.size()},
                {"validation_examples", examples.validation.size()},
                {"skipped", examples.skipped},
                {"start_step", so.start_step},
                {"steps", step_log},
                {"first_loss", r.first_loss},
                {"last_loss", r.last_loss},
                {"stopped_early", r.stopped_early},
                {"tokens", r.tokens},
                {"seconds", r.seconds},
                {"tokens_per_second", tokens_per_second},
                {"lora_parameters", lora->parameter_count()}};
    if (!registered.empty()) out["registered"] = registered;
    if (validating) {
      out["validation"] = validation_log;
      out["best_step"] = validation.state.best_step;
      out["best_val_loss"] = validation.state.best_loss;
    }
    print_json(out);
    return Status::Ok();
  }
  std::printf("wrote %s: %lld steps%s, loss %.4f -> %.4f, %.1f tokens/s (run %s)\n", o.out.c_str(),
              static_cast<long long>(so.start_step + r.steps), r.stopped_early ? " (stopped early)" : "", r.first_loss,
              r.last_loss, tokens_per_second, run.run().id.c_str());
  if (validating) {
    std::printf("the adapter is step %lld's, of the lowest validation loss %.4f\n",
                static_cast<long long>(validation.state.best_step), validation.state.best_loss);
  }
  if (!registered.empty()) std::printf("registered the adapter as %s (base %s)\n", registered.c_str(), o.model.c_str());
  return Status::Ok();
}

void report_skipped(CliContext& ctx, const SftCommandOptions& o, int64_t skipped) {
  if (ctx.json() || skipped == 0) return;
  std::fprintf(stderr, "train sft: skipped %lld records with nothing to train on within --max-len %lld\n",
               static_cast<long long>(skipped), static_cast<long long>(o.max_len));
}

// The data: a file by its absolute path, or a dataset version by its exact NAME@VERSION
// (its records in data_path), so that a resumed training reads the same records.
Status locate(CliContext& ctx, std::string& reference, std::string& path) {
  KEEL_ASSIGN_OR_RETURN(DataInput input, resolve_data_input(ctx, reference));
  if (input.dataset) {
    reference = input.dataset->reference();
    path = input.path;
    return Status::Ok();
  }
  char resolved[PATH_MAX];
  if (::realpath(input.path.c_str(), resolved) == nullptr) return not_found("cannot read " + reference);
  reference = path = resolved;
  return Status::Ok();
}

Status locate_data(CliContext& ctx, SftCommandOptions& o) {
  KEEL_RETURN_IF_ERROR(locate(ctx, o.data, o.data_path));
  if (!o.val_data.empty()) KEEL_RETURN_IF_ERROR(locate(ctx, o.val_data, o.val_data_path));
  return Status::Ok();
}

// The model by its absolute path or its exact registered version, so that a resumed
// training (from anywhere) reads the same one.
Status pin_model(CliContext& ctx, std::string& model, std::vector<tracking::KeyValue>& tags) {
  char resolved[PATH_MAX];
  struct stat st {};
  if (::stat(model.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    if (::realpath(model.c_str(), resolved) != nullptr) model = resolved;
    return Status::Ok();
  }
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  auto version = registry::ModelRegistry(*db, *blobs).resolve(model);
  if (!version.ok()) return Status::Ok();  // load_model says what is wrong with it
  model = version->model_name + "@" + std::to_string(version->version);
  tags.push_back({"keel.base_model_version", model});
  return Status::Ok();
}

Status run_sft(CliContext& ctx, SftCommandOptions o) {
  if (!o.register_as.empty()) KEEL_RETURN_IF_ERROR(registry::validate_model_name(o.register_as));
  if (!o.val_data.empty() && o.val_fraction > 0) return invalid_argument("give --val-data or --val-fraction, not both");
  if (o.patience > 0 && !o.validates()) {
    return invalid_argument("--patience (early stopping) needs validation data: --val-data or --val-fraction");
  }
  std::vector<tracking::KeyValue> tags;
  KEEL_RETURN_IF_ERROR(pin_model(ctx, o.model, tags));
  KEEL_RETURN_IF_ERROR(locate_data(ctx, o));
  KEEL_RETURN_IF_ERROR(train::parse_lr_decay(o.schedule).status());
  KEEL_RETURN_IF_ERROR(train::parse_lora_modules(o.modules).status());
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_model(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(Examples examples, read_examples(o, m));
  report_skipped(ctx, o, examples.skipped);
  KEEL_ASSIGN_OR_RETURN(std::string digest, Sha256::of_file(o.data_path));
  std::string val_digest;
  if (!o.val_data.empty()) {
    KEEL_ASSIGN_OR_RETURN(val_digest, Sha256::of_file(o.val_data_path));
  }
  KEEL_ASSIGN_OR_RETURN(TrainingRun run, start_run(ctx, o, digest, val_digest, tags));
  return train_in_run(ctx, o, m, examples, run, std::nullopt);
}

// `keel train resume RUN`: the run's checkpoint, its options, the same data (checked by
// digest), then the rest of the steps in the same run.
Status run_resume(CliContext& ctx, const std::string& run_id, int threads) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  tracking::TrackingService tracking(*db);
  KEEL_ASSIGN_OR_RETURN(tracking::Run found, tracking.get_run(run_id));
  if (found.status == tracking::RunStatus::kFinished) {
    return failed_precondition("run " + run_id + " has finished; there is nothing to resume");
  }
  TrainingRun run(*db, *blobs, found);
  auto file = run.artifact_file(kCheckpointArtifact);
  if (!file.ok()) {
    if (file.status().code() == ErrorCode::kNotFound) {
      return not_found("run " + run_id + " has no checkpoint to resume from (is it a training run, and did it reach "
                       "its first checkpoint?)");
    }
    return file.status();
  }
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> peek, engine::GgufFile::open(*file));
  KEEL_ASSIGN_OR_RETURN(SftCommandOptions o,
                        course_from_json(peek->get_string("keel.checkpoint.config").value_or("")));
  peek.reset();
  o.threads = threads;
  KEEL_RETURN_IF_ERROR(locate_data(ctx, o));
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_model(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(Examples examples, read_examples(o, m));
  report_skipped(ctx, o, examples.skipped);
  for (const auto& [reference, path] : {std::pair{o.data, o.data_path}, std::pair{o.val_data, o.val_data_path}}) {
    if (reference.empty()) continue;
    KEEL_ASSIGN_OR_RETURN(std::string digest, Sha256::of_file(path));
    for (const tracking::DatasetInput& input : found.inputs) {
      if (input.source == reference && !digest.starts_with(input.digest)) {
        return failed_precondition(reference + " has changed since run " + run_id +
                                   " started (its digest differs); resuming would train on other data");
      }
    }
  }
  train::AdamWOptions adamw;
  adamw.weight_decay = o.weight_decay;
  adamw.max_grad_norm = o.max_grad_norm;
  KEEL_ASSIGN_OR_RETURN(train::SftCheckpoint checkpoint, train::read_sft_checkpoint(*file, *m.model, adamw));
  KEEL_RETURN_IF_ERROR(tracking.update_run(run_id, tracking::RunStatus::kRunning, std::nullopt, std::nullopt).status());
  return train_in_run(ctx, o, m, examples, run, std::move(checkpoint));
}

struct LossCommandOptions {
  std::string model, adapter, data;
  int64_t max_len = 512, batch = 4;
  int threads = 1;
  bool tokens = false;
};

// `keel train loss`: the mean loss per target token (and its perplexity) of MODEL, with
// an adapter when given, on DATA's records as training reads them: what a training's
// validation loss measures, for any adapter and any held-out file. With --tokens the
// JSON also lists every example's token ids and targets, so that another engine can
// score exactly the same positions.
Status run_loss(CliContext& ctx, const LossCommandOptions& lo) {
  SftCommandOptions o;
  o.model = lo.model;
  o.data = lo.data;
  o.max_len = lo.max_len;
  KEEL_RETURN_IF_ERROR(locate_data(ctx, o));
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_model(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(Examples examples, read_examples(o, m));
  std::optional<train::LoraWeights> lora;
  if (!lo.adapter.empty()) {
    KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file, engine::GgufFile::open(lo.adapter));
    auto read = train::read_lora_adapter(*file, *m.model);
    if (!read.ok()) return Status(read.status().code(), lo.adapter + ": " + read.status().message());
    lora = std::move(*read);
  } else {  // B = 0: the adapter changes nothing, the loss is the base model's
    KEEL_ASSIGN_OR_RETURN(lora, train::LoraWeights::create(*m.model, {.rank = 1, .alpha = 1, .modules = {train::LoraModule::kQ}}));
  }
  KEEL_ASSIGN_OR_RETURN(double loss, train::sft_loss(*m.model, *lora, examples.train, lo.batch, lo.threads));
  int64_t targets = 0;
  for (const train::SftExample& e : examples.train) targets += e.target_count();
  Json out = {{"model", o.model},       {"adapter", lo.adapter},    {"data", o.data},
              {"examples", examples.train.size()}, {"skipped", examples.skipped}, {"target_tokens", targets},
              {"loss", loss},           {"perplexity", std::exp(loss)}};
  if (lo.tokens) {
    Json list = Json::array();
    for (const train::SftExample& e : examples.train) list.push_back({{"tokens", e.tokens}, {"targets", e.targets}});
    out["example_tokens"] = std::move(list);
  }
  if (ctx.json()) {
    print_json(out);
  } else {
    report_skipped(ctx, o, examples.skipped);
    std::printf("%s%s on %s: loss %.4f per target token, perplexity %.4f (%zu examples, %lld target tokens)\n",
                o.model.c_str(), lo.adapter.empty() ? "" : (" + " + lo.adapter).c_str(), o.data.c_str(), loss,
                std::exp(loss), examples.train.size(), static_cast<long long>(targets));
  }
  return Status::Ok();
}

struct MergeCommandOptions {
  // F16 by default: re-quantizing W + ΔW to 4 or 5 bits rounds most of a LoRA's small
  // change away (merge_fidelity measures it, and the command says so).
  std::string model, adapter, out, type = "f16", register_as, run;
};

// `keel train merge`: the base with the adapter folded in, as a GGUF model; with
// --register, a new version of NAME whose lineage names the base (and the training run).
Status run_merge(CliContext& ctx, const MergeCommandOptions& o) {
  KEEL_ASSIGN_OR_RETURN(std::optional<engine::GgmlType> type, train::parse_merge_type(o.type));
  if (!o.register_as.empty()) KEEL_RETURN_IF_ERROR(registry::validate_model_name(o.register_as));
  std::string base = o.model;
  std::vector<tracking::KeyValue> base_tags;
  KEEL_RETURN_IF_ERROR(pin_model(ctx, base, base_tags));
  char resolved[PATH_MAX];
  const std::string adapter = ::realpath(o.adapter.c_str(), resolved) != nullptr ? resolved : o.adapter;
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_model(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> adapter_file, engine::GgufFile::open(o.adapter));
  auto lora = train::read_lora_adapter(*adapter_file, *m.model);
  if (!lora.ok()) return Status(lora.status().code(), o.adapter + ": " + lora.status().message());
  KEEL_ASSIGN_OR_RETURN(train::MergeFidelity fidelity, train::merge_fidelity(*m.model, *lora, type));
  KEEL_RETURN_IF_ERROR(train::write_merged_model(o.out, *m.file, *m.model, *lora, type));
  Json out = {{"merged", o.out},
              {"base", base},
              {"adapter", o.adapter},
              {"type", o.type},
              {"adapter_change_kept", fidelity.kept},
              {"rounding_error", fidelity.error}};
  if ((std::abs(fidelity.kept - 1) > 0.1 || fidelity.error > 1) && !ctx.json()) {
    std::fprintf(stderr,
                 "train merge: as %s the merged weights are not the base plus the adapter: they keep %.0f%% of the "
                 "adapter's change, with rounding %.2f times the change's size, so the merged model may not behave as "
                 "the base with --lora does. f16 (or q8_0) keeps the change.\n",
                 o.type.c_str(), 100 * fidelity.kept, fidelity.error);
  }
  if (!o.register_as.empty()) {
    KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
    KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
    registry::ModelRegistry models(*db, *blobs);
    KEEL_ASSIGN_OR_RETURN(registry::ModelFileFacts facts, read_model_facts(o.out));
    KEEL_ASSIGN_OR_RETURN(registry::ImportResult imported, models.import_file(o.out, o.register_as, facts, ctx.actor()));
    const registry::ModelVersion& v = imported.version;
    KEEL_RETURN_IF_ERROR(models.set_version_tag(v.model_name, v.version, {"base_model", base}, ctx.actor()));
    KEEL_RETURN_IF_ERROR(models.set_version_tag(v.model_name, v.version, {"keel.lora_adapter", adapter}, ctx.actor()));
    if (!o.run.empty()) KEEL_RETURN_IF_ERROR(models.set_version_run(v.model_name, v.version, o.run, ctx.actor()));
    out["registered"] = v.model_name + "@" + std::to_string(v.version);
  }
  if (ctx.json()) {
    print_json(out);
  } else {
    std::printf("wrote %s (%s + %s)%s\n", o.out.c_str(), base.c_str(), o.adapter.c_str(),
                out.contains("registered") ? ("; registered as " + out["registered"].get<std::string>()).c_str() : "");
  }
  return Status::Ok();
}

}  // namespace

void add_train_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* train = app.add_subcommand("train", "Fine-tune a model on the local engine (LoRA)");
  train->require_subcommand(1);
  auto o = std::make_shared<SftCommandOptions>();
  auto* sft = train->add_subcommand("sft", "Supervised fine-tuning with LoRA; writes a GGUF LoRA adapter");
  sft->add_option("-m,--model", o->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  sft->add_option("-d,--data", o->data,
                  "JSONL file or dataset NAME[@VERSION]: {\"messages\": [...]} or {\"prompt\", \"completion\"} per record")
      ->required();
  sft->add_option("-o,--out", o->out, "Adapter file to write (GGUF, llama.cpp's LoRA layout)")->required();
  sft->add_option("--rank", o->rank, "LoRA rank")->check(CLI::Range(int64_t{1}, int64_t{4096}))->capture_default_str();
  sft->add_option("--alpha", o->alpha, "LoRA alpha (scale alpha / rank)")->capture_default_str();
  sft->add_option("--dropout", o->dropout, "LoRA dropout")->check(CLI::Range(0.0f, 0.99f))->capture_default_str();
  sft->add_option("--modules", o->modules, "Adapted matrices: q,k,v,o,gate,up,down or all")->capture_default_str();
  sft->add_option("--lr", o->lr, "Peak learning rate")->capture_default_str();
  sft->add_option("--schedule", o->schedule, "constant, linear or cosine decay after warmup")->capture_default_str();
  sft->add_option("--warmup", o->warmup, "Warmup steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  sft->add_option("--epochs", o->epochs, "Passes over the data")->check(CLI::PositiveNumber)->capture_default_str();
  sft->add_option("--max-steps", o->max_steps, "Stop after this many steps (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sft->add_option("--batch", o->batch, "Examples per micro-batch (computed at once)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sft->add_option("--grad-accum", o->grad_accum, "Micro-batches of --batch examples per optimizer step")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sft->add_option("--val-data", o->val_data, "Validation records: JSONL file, or a dataset NAME[@VERSION]");
  sft->add_option("--val-fraction", o->val_fraction, "Hold out this share of --data's records for validation")
      ->check(CLI::Range(0.0, 0.9));
  sft->add_option("--eval-every", o->eval_every, "Validation loss every N steps (0: after the last only)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sft->add_option("--patience", o->patience,
                  "Stop after N validations without a lower loss (early stopping; 0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sft->add_option("--max-len", o->max_len, "Tokens per example; longer ones are cut")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sft->add_option("--weight-decay", o->weight_decay, "AdamW weight decay")->capture_default_str();
  sft->add_option("--max-grad-norm", o->max_grad_norm, "Clip the gradient's global norm (0: off)")
      ->capture_default_str();
  sft->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  sft->add_option("--seed", o->seed, "Seed of A's initialisation, dropout and example order")->capture_default_str();
  sft->add_flag("--checkpointing", o->checkpointing, "Recompute each layer in the backward (less memory)");
  sft->add_option("--checkpoint-every", o->checkpoint_every,
                  "Save a checkpoint (the run's artifact checkpoint.gguf) every N steps, and after the last")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sft->add_option("--experiment", o->experiment, "Tracking experiment of the run (created when missing)")
      ->capture_default_str();
  sft->add_option("--run-name", o->run_name, "Name of the run (default: \"sft MODEL\")");
  sft->add_option("--register", o->register_as,
                  "Register the adapter as a new version of this model (served and evaluated on its base)");
  sft->callback([&ctx, &outcome, o] { outcome = run_sft(ctx, *o); });

  auto resume_run = std::make_shared<std::string>();
  auto resume_threads = std::make_shared<int>(1);
  auto* resume = train->add_subcommand("resume", "Go on with a training run from its last checkpoint");
  resume->add_option("run", *resume_run, "The training's run id")->required();
  resume->add_option("-t,--threads", *resume_threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  resume->callback([&ctx, &outcome, resume_run, resume_threads] {
    outcome = run_resume(ctx, *resume_run, *resume_threads);
  });

  auto lo = std::make_shared<LossCommandOptions>();
  auto* loss = train->add_subcommand(
      "loss", "Mean loss per target token and perplexity of a model (with an adapter) on SFT records");
  loss->add_option("-m,--model", lo->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  loss->add_option("--lora", lo->adapter, "A LoRA adapter (GGUF) for the model");
  loss->add_option("-d,--data", lo->data, "JSONL file or dataset NAME[@VERSION] of SFT records")->required();
  loss->add_option("--max-len", lo->max_len, "Tokens per example; longer ones are cut")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  loss->add_option("--batch", lo->batch, "Examples computed at once")->check(CLI::PositiveNumber)->capture_default_str();
  loss->add_option("-t,--threads", lo->threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  loss->add_flag("--tokens", lo->tokens, "With --json: every example's token ids and targets");
  loss->callback([&ctx, &outcome, lo] { outcome = run_loss(ctx, *lo); });

  auto mo = std::make_shared<MergeCommandOptions>();
  auto* merge = train->add_subcommand("merge", "Fold a LoRA adapter into its base model: a new GGUF model file");
  merge->add_option("-m,--model", mo->model, "The base: GGUF file, or a registered NAME[@VERSION]")->required();
  merge->add_option("--lora", mo->adapter, "The adapter (GGUF, llama.cpp's LoRA layout)")->required();
  merge->add_option("-o,--out", mo->out, "Model file to write")->required();
  merge->add_option("--type", mo->type,
                    "Type of the adapted matrices: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, or same (each its "
                    "own type; F16 where the engine cannot write it)")
      ->capture_default_str();
  merge->add_option("--register", mo->register_as, "Register the merged model as a new version of NAME");
  merge->add_option("--run", mo->run, "The training run that made the adapter (recorded on the version)");
  merge->callback([&ctx, &outcome, mo] { outcome = run_merge(ctx, *mo); });
}

}  // namespace keel::cli
