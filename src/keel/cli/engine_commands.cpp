// `keel tokenize` and `keel generate`: the engine from the command line. MODEL is a
// path to a GGUF file or a name (NAME, NAME@VERSION) in the registry.
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <random>

#include "keel/cli/commands.h"
#include "keel/engine/forward.h"
#include "keel/engine/generation.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/tokenizer.h"
#include "keel/eval/text.h"
#include "keel/registry/model_registry.h"

namespace keel::cli {
namespace {

// A file path when one exists there; otherwise a registry reference.
Result<std::string> resolve_model_path(CliContext& ctx, const std::string& model) {
  struct stat st{};
  if (::stat(model.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return model;
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  auto version = models.get(model);
  if (!version.ok()) {
    return Status(version.status().code(), "'" + model + "' is neither a model file nor a registered model (" +
                                               version.status().message() + ")");
  }
  auto path = blobs->local_path(version->artifact_sha256);
  if (!path) return not_found("the file of " + model + " is missing from the artifact store (run `keel artifacts verify`)");
  return *path;
}

struct LoadedModel {
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<engine::Model> model;  // only when asked for
};

Result<LoadedModel> load(CliContext& ctx, const std::string& reference, bool with_weights) {
  KEEL_ASSIGN_OR_RETURN(std::string path, resolve_model_path(ctx, reference));
  LoadedModel m;
  KEEL_ASSIGN_OR_RETURN(m.file, engine::GgufFile::open(path));
  KEEL_ASSIGN_OR_RETURN(m.tokenizer, engine::Tokenizer::from_gguf(*m.file));
  if (with_weights) {
    KEEL_ASSIGN_OR_RETURN(m.model, engine::Model::load(*m.file));
  }
  return m;
}

Result<std::string> read_text_argument(const std::string& text) {
  std::string out = text;
  if (text == "-") out.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  if (!eval::is_valid_utf8(out)) return invalid_argument("the text is not valid UTF-8");
  return out;
}

struct TokenizeOptions {
  std::string model;
  std::string text;
  bool verbose = false;
  bool no_special = false;
};

Status run_tokenize(CliContext& ctx, const TokenizeOptions& o) {
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load(ctx, o.model, false));
  KEEL_ASSIGN_OR_RETURN(std::string text, read_text_argument(o.text));
  KEEL_ASSIGN_OR_RETURN(std::vector<engine::TokenId> ids, m.tokenizer->encode(text, !o.no_special, !o.no_special));
  if (ctx.json()) {
    Json out = {{"tokens", ids}};
    if (o.verbose) {
      Json pieces = Json::array();
      for (auto id : ids) pieces.push_back(m.tokenizer->token_bytes(id, true).value());
      out["pieces"] = pieces;
    }
    print_json(out);
    return Status::Ok();
  }
  if (!o.verbose) {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
    return Status::Ok();
  }
  for (auto id : ids) {
    KEEL_ASSIGN_OR_RETURN(std::string piece, m.tokenizer->token_bytes(id, true));
    std::cout << id << "\t" << Json(piece).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  }
  return Status::Ok();
}

struct GenerateOptions {
  std::string model;
  std::string prompt;
  int64_t max_tokens = 64;
  int threads = 1;
  engine::SamplingOptions sampling;  // greedy unless --temp says otherwise
  bool seed_given = false;
  std::vector<std::string> stop;
  int logprobs = -1;  // -1: none; else the number of alternatives per token
};

Json logprob_json(const engine::Tokenizer& tokenizer, const engine::TokenLogprob& lp) {
  // A token's bytes may be half a character; the JSON writer replaces them with U+FFFD.
  auto bytes = tokenizer.token_bytes(lp.token, true);
  return {{"token", lp.token}, {"text", bytes.ok() ? *bytes : std::string()}, {"logprob", lp.logprob}};
}

Status run_generate(CliContext& ctx, const GenerateOptions& o) {
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(std::string prompt, read_text_argument(o.prompt));
  KEEL_ASSIGN_OR_RETURN(std::vector<engine::TokenId> ids, m.tokenizer->encode(prompt, true, true));
  if (ids.empty()) return invalid_argument("the prompt is empty");
  engine::SessionOptions so;
  so.threads = o.threads;
  KEEL_ASSIGN_OR_RETURN(auto session, engine::InferenceSession::create(*m.model, so));

  engine::GenerationOptions go;
  go.max_tokens = o.max_tokens;
  go.sampling = o.sampling;
  // A random seed only where it matters, so greedy output (and its JSON) stays the same.
  if (!o.seed_given && go.sampling.temperature > 0) {
    std::random_device entropy;
    go.sampling.seed = (uint64_t{entropy()} << 32) | entropy();
  }
  go.stop = o.stop;
  go.logprobs = o.logprobs >= 0;
  go.top_logprobs = std::max(o.logprobs, 0);
  auto stream = [&](const engine::GeneratedPiece& piece) -> Status {
    if (!ctx.json()) std::cout << piece.text << std::flush;
    return Status::Ok();
  };
  KEEL_ASSIGN_OR_RETURN(engine::Generation g, engine::generate(*session, *m.tokenizer, ids, go, stream));

  if (ctx.json()) {
    Json out = {{"text", g.text},
                {"tokens", g.tokens},
                {"finish_reason", g.finish_reason},
                {"prompt_tokens", g.prompt_tokens},
                {"generated_tokens", g.generated_tokens},
                {"seed", go.sampling.seed},
                {"timings",
                 {{"prompt_tokens_per_s", g.prompt_tokens_per_second},
                  {"generated_tokens_per_s", g.generated_tokens_per_second}}}};
    if (go.logprobs) {
      Json lps = Json::array();
      for (const auto& lp : g.logprobs) {
        Json entry = logprob_json(*m.tokenizer, lp.chosen);
        Json top = Json::array();
        for (const auto& alt : lp.top) top.push_back(logprob_json(*m.tokenizer, alt));
        entry["top_logprobs"] = top;
        lps.push_back(entry);
      }
      out["logprobs"] = lps;
    }
    print_json(out);
    return Status::Ok();
  }
  std::cout << "\n";
  if (go.logprobs) {
    for (const auto& lp : g.logprobs) {
      std::fprintf(stderr, "%8.4f %6d %s", lp.chosen.logprob, lp.chosen.token,
                   dump_json(logprob_json(*m.tokenizer, lp.chosen)["text"], -1).c_str());
      for (const auto& alt : lp.top) {
        std::fprintf(stderr, " | %s %.4f", dump_json(logprob_json(*m.tokenizer, alt)["text"], -1).c_str(), alt.logprob);
      }
      std::fprintf(stderr, "\n");
    }
  }
  char sampling[96] = "greedy";
  if (go.sampling.temperature > 0) {
    std::snprintf(sampling, sizeof sampling, "temperature %g, seed %llu", go.sampling.temperature,
                  static_cast<unsigned long long>(go.sampling.seed));
  }
  std::fprintf(
      stderr, "[%lld prompt tokens, %.1f tokens/s; %lld generated, %.1f tokens/s; finish: %s; %s; %d thread%s]\n",
      static_cast<long long>(g.prompt_tokens), g.prompt_tokens_per_second, static_cast<long long>(g.generated_tokens),
      g.generated_tokens_per_second, g.finish_reason.c_str(), sampling, o.threads, o.threads == 1 ? "" : "s");
  return Status::Ok();
}

// A check on a number option with a message that says what is allowed.
CLI::Validator number_in(std::function<bool(double)> accept, const std::string& allowed) {
  return CLI::Validator(
      [accept, allowed](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || !accept(v)) {
          return "must be " + allowed + ", not '" + text + "'";
        }
        return "";
      },
      allowed);
}

// CLI11 reads "-1" into a uint64 as 2^64 - 1; a seed must be written as what it is.
CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        if (digits) std::strtoull(text.c_str(), &end, 10);
        if (!digits || errno == ERANGE) return "must be an integer from 0 to 2^64 - 1, not '" + text + "'";
        return "";
      },
      "");
}

CLI::Validator valid_stop_string() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty()) return "a stop string must not be empty";
        if (!eval::is_valid_utf8(text)) return "a stop string must be valid UTF-8";
        return "";
      },
      "");
}

}  // namespace

void add_engine_commands(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto t = std::make_shared<TokenizeOptions>();
  auto* tokenize = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  tokenize->add_option("-m,--model", t->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  tokenize->add_option("text", t->text, "Text to tokenize, or - for standard input")->required();
  tokenize->add_flag("--verbose", t->verbose, "Show each token's text");
  tokenize->add_flag("--no-special", t->no_special, "Neither add BOS/EOS nor parse special tokens in the text");
  tokenize->callback([&ctx, &outcome, t] { outcome = run_tokenize(ctx, *t); });

  auto g = std::make_shared<GenerateOptions>();
  auto* generate =
      app.add_subcommand("generate", "Generate text from a prompt, streamed (greedy unless --temp is above 0)");
  generate->footer(
      "Sampling follows llama.cpp's chain: repeat/presence/frequency penalties, top-k, top-p, min-p, temperature, "
      "then a draw from a seeded xoshiro256** generator (the same --seed gives the same text on every machine).");
  generate->add_option("-m,--model", g->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  generate->add_option("-p,--prompt", g->prompt, "Prompt text, or - for standard input")->required();
  generate->add_option("-n,--max-tokens", g->max_tokens, "Tokens to generate at most (clipped to the context)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  generate->add_option("-t,--threads", g->threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  auto& s = g->sampling;
  generate->add_option("--temp", s.temperature, "Temperature; 0 is greedy decoding (the default, deterministic)")
      ->check(number_in([](double v) { return v >= 0; }, "a number >= 0"))
      ->capture_default_str();
  generate->add_option("--top-k", s.top_k, "Keep the K most likely tokens (0: off)")
      ->check(number_in([](double v) { return v >= 0 && v <= INT32_MAX; }, "an integer >= 0"))
      ->capture_default_str();
  generate->add_option("--top-p", s.top_p, "Keep the smallest set of tokens whose probability reaches P (1: off)")
      ->check(number_in([](double v) { return v > 0 && v <= 1; }, "in (0, 1]"))
      ->capture_default_str();
  generate->add_option("--min-p", s.min_p, "Drop tokens less likely than P times the most likely one (0: off)")
      ->check(number_in([](double v) { return v >= 0 && v <= 1; }, "in [0, 1]"))
      ->capture_default_str();
  generate
      ->add_option("--repeat-penalty", s.repetition_penalty,
                   "Divide positive / multiply negative logits of recent tokens by this (1: off)")
      ->check(number_in([](double v) { return v > 0; }, "a number > 0"))
      ->capture_default_str();
  generate
      ->add_option("--repeat-last-n", s.penalty_last_n,
                   "Recent tokens (prompt included) the penalties look at (0: none, -1: all)")
      ->check(number_in([](double v) { return v >= -1 && v <= INT32_MAX; }, "an integer >= -1"))
      ->capture_default_str();
  generate->add_option("--presence-penalty", s.presence_penalty, "Subtract this from the logit of every recent token")
      ->check(number_in([](double) { return true; }, "a finite number"))
      ->capture_default_str();
  generate
      ->add_option("--frequency-penalty", s.frequency_penalty,
                   "Subtract this times its count from the logit of every recent token")
      ->check(number_in([](double) { return true; }, "a finite number"))
      ->capture_default_str();
  auto* seed =
      generate->add_option("--seed", s.seed, "Random seed for --temp > 0 (default: random, reported in --json)")
          ->check(unsigned_64());
  generate->add_option("--stop", g->stop, "Stop before this text (repeatable; it is not printed)")
      ->check(valid_stop_string())
      ->take_all()
      ->allow_extra_args(false);
  generate
      ->add_option("--logprobs", g->logprobs,
                   "Report each token's log-probability and its N most likely alternatives (0-20)")
      ->check(CLI::Range(0, engine::kMaxTopLogprobs));
  generate->callback([&ctx, &outcome, g, seed] {
    g->seed_given = seed->count() > 0;
    outcome = run_generate(ctx, *g);
  });
}

}  // namespace keel::cli
