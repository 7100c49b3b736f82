// `keel train sft -m MODEL -d DATA.jsonl -o ADAPTER.gguf`: LoRA supervised fine-tuning
// on the local engine (train/sft_trainer.h). DATA has one JSON record per line, either
// {"messages": [...]} (rendered with the model's chat template, loss on the assistant
// turns) or {"prompt": ..., "completion": ...} (loss on the completion); a bad line is
// an error naming its line number. The adapter is written in llama.cpp's GGUF LoRA
// layout. MODEL is a GGUF path or a registered NAME[@VERSION].
#include <cstdio>
#include <sstream>

#include "keel/cli/commands.h"
#include "keel/cli/model_files.h"
#include "keel/engine/chat_template.h"
#include "keel/train/adapter_gguf.h"
#include "keel/train/sft_trainer.h"
#include "keel/util/file.h"
#include "keel/util/json.h"

namespace keel::cli {
namespace {

struct SftCommandOptions {
  std::string model, data, out, modules = "all", schedule = "cosine";
  int64_t rank = 8, epochs = 1, max_steps = 0, batch = 1, max_len = 512, warmup = 0;
  float alpha = 16, dropout = 0.05f, lr = 2e-4f, weight_decay = 0, max_grad_norm = 1.0f;
  int threads = 1;
  uint64_t seed = 0;
  bool checkpointing = false;
};

// The records of DATA, encoded; `skipped` counts those with nothing to train on
// within --max-len.
Result<std::vector<train::SftExample>> read_examples(const SftCommandOptions& o, const LoadedModel& m,
                                                     int64_t& skipped) {
  KEEL_ASSIGN_OR_RETURN(std::string text, read_file(o.data, size_t{1} << 30));
  std::optional<engine::ChatTemplate> tmpl;
  auto loaded = engine::chat_template_from_gguf(*m.file);
  if (loaded.ok()) tmpl = std::move(*loaded);
  std::vector<train::SftExample> examples;
  std::istringstream lines(text);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto record = parse_json(line);
    if (!record.ok()) return invalid_argument(o.data + ":" + std::to_string(number) + ": not JSON");
    auto example = train::encode_sft_record(*m.tokenizer, tmpl ? &*tmpl : nullptr, *record, o.max_len);
    if (!example.ok() && example.status().code() == ErrorCode::kFailedPrecondition) {
      ++skipped;
      continue;
    }
    if (!example.ok()) {
      return invalid_argument(o.data + ":" + std::to_string(number) + ": " + example.status().message());
    }
    examples.push_back(std::move(*example));
  }
  if (examples.empty()) {
    return invalid_argument(o.data + " has no record to train on" +
                            (skipped > 0 ? " within --max-len " + std::to_string(o.max_len) : std::string()));
  }
  return examples;
}

Status run_sft(CliContext& ctx, const SftCommandOptions& o) {
  KEEL_ASSIGN_OR_RETURN(train::LrDecay decay, train::parse_lr_decay(o.schedule));
  KEEL_ASSIGN_OR_RETURN(std::vector<train::LoraModule> modules, train::parse_lora_modules(o.modules));
  int64_t skipped = 0;
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_model(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(std::vector<train::SftExample> examples, read_examples(o, m, skipped));
  KEEL_ASSIGN_OR_RETURN(
      train::LoraWeights lora,
      train::LoraWeights::create(
          *m.model, {.rank = o.rank, .alpha = o.alpha, .dropout = o.dropout, .seed = o.seed, .modules = modules}));
  train::SftOptions so;
  so.epochs = o.epochs;
  so.max_steps = o.max_steps;
  so.batch = o.batch;
  so.learning_rate = o.lr;
  so.warmup_steps = o.warmup;
  so.decay = decay;
  so.adamw.weight_decay = o.weight_decay;
  so.adamw.max_grad_norm = o.max_grad_norm;
  so.threads = o.threads;
  so.gradient_checkpointing = o.checkpointing;
  so.seed = o.seed;
  if (!ctx.json()) {
    if (skipped > 0) {
      std::fprintf(stderr, "train sft: skipped %lld records with nothing to train on within --max-len %lld\n",
                   static_cast<long long>(skipped), static_cast<long long>(o.max_len));
    }
    std::fprintf(stderr, "train sft: %zu examples, %lld steps, %lld LoRA parameters (rank %lld on %s)\n",
                 examples.size(),
                 static_cast<long long>(train::sft_step_count(static_cast<int64_t>(examples.size()), so)),
                 static_cast<long long>(lora.parameter_count()), static_cast<long long>(o.rank), o.modules.c_str());
  }
  Json steps = Json::array();
  train::AdamW optimizer(so.adamw);
  KEEL_ASSIGN_OR_RETURN(
      train::SftResult r, train::train_sft(*m.model, lora, optimizer, examples, so, {.on_step = [&](const train::SftProgress& p) {
        steps.push_back({{"step", p.step}, {"loss", p.loss}, {"lr", p.learning_rate}, {"grad_norm", p.grad_norm}});
        if (!ctx.json()) {
          std::fprintf(stderr, "step %lld/%lld: loss %.4f, lr %.3g, grad norm %.3f, %.1f s\n",
                       static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.learning_rate,
                       p.grad_norm, p.seconds);
        }
      }}));
  KEEL_RETURN_IF_ERROR(train::write_lora_adapter(o.out, *m.model, lora));
  const double tokens_per_second = r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0;
  if (ctx.json()) {
    print_json({{"adapter", o.out},
                {"examples", examples.size()},
                {"skipped", skipped},
                {"steps", steps},
                {"first_loss", r.first_loss},
                {"last_loss", r.last_loss},
                {"tokens", r.tokens},
                {"seconds", r.seconds},
                {"tokens_per_second", tokens_per_second},
                {"lora_parameters", lora.parameter_count()}});
    return Status::Ok();
  }
  std::printf("wrote %s: %lld steps, loss %.4f -> %.4f, %.1f tokens/s\n", o.out.c_str(),
              static_cast<long long>(r.steps), r.first_loss, r.last_loss, tokens_per_second);
  return Status::Ok();
}

}  // namespace

void add_train_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto* train = app.add_subcommand("train", "Fine-tune a model on the local engine (LoRA)");
  train->require_subcommand(1);
  auto o = std::make_shared<SftCommandOptions>();
  auto* sft = train->add_subcommand("sft", "Supervised fine-tuning with LoRA; writes a GGUF LoRA adapter");
  sft->add_option("-m,--model", o->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  sft->add_option("-d,--data", o->data, "JSONL: {\"messages\": [...]} or {\"prompt\", \"completion\"} per line")
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
  sft->add_option("--batch", o->batch, "Examples per optimizer step")
      ->check(CLI::PositiveNumber)
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
  sft->callback([&ctx, &outcome, o] { outcome = run_sft(ctx, *o); });
}

}  // namespace keel::cli
