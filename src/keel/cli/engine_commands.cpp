// `keel tokenize` and `keel generate`: the engine from the command line. MODEL is a
// path to a GGUF file or a name (NAME, NAME@VERSION) in the registry.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <iterator>

#include "keel/cli/commands.h"
#include "keel/engine/forward.h"
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
};

Status run_generate(CliContext& ctx, const GenerateOptions& o) {
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load(ctx, o.model, true));
  KEEL_ASSIGN_OR_RETURN(std::string prompt, read_text_argument(o.prompt));
  KEEL_ASSIGN_OR_RETURN(std::vector<engine::TokenId> ids, m.tokenizer->encode(prompt, true, true));
  if (ids.empty()) return invalid_argument("the prompt is empty");
  engine::SessionOptions so;
  so.threads = o.threads;
  KEEL_ASSIGN_OR_RETURN(auto session, engine::InferenceSession::create(*m.model, so));
  std::vector<int32_t> prompt_ids(ids.begin(), ids.end());
  engine::StreamingDecoder decoder(*m.tokenizer);
  std::string text;
  auto stream = [&](int32_t id) -> Status {
    KEEL_ASSIGN_OR_RETURN(std::string piece, decoder.feed(id));
    text += piece;
    if (!ctx.json()) std::cout << piece << std::flush;
    return Status::Ok();
  };
  KEEL_ASSIGN_OR_RETURN(engine::GenerationResult r, engine::generate_greedy(*session, prompt_ids, o.max_tokens,
                                                                            m.tokenizer->eos_id(), stream));
  std::string tail = decoder.finish();
  text += tail;
  if (ctx.json()) {
    print_json({{"text", text},
                {"tokens", r.tokens},
                {"prompt_tokens", prompt_ids.size()},
                {"timings",
                 {{"prompt_tokens_per_s", r.prompt_tokens_per_second},
                  {"generated_tokens_per_s", r.generated_tokens_per_second}}}});
  } else {
    std::cout << tail << "\n";
    std::fprintf(stderr, "[%zu prompt tokens, %.1f tokens/s; %zu generated, %.1f tokens/s; %d thread%s]\n",
                 prompt_ids.size(), r.prompt_tokens_per_second, r.tokens.size(), r.generated_tokens_per_second,
                 o.threads, o.threads == 1 ? "" : "s");
  }
  return Status::Ok();
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
  auto* generate = app.add_subcommand("generate", "Generate text from a prompt (greedy decoding, streamed)");
  generate->add_option("-m,--model", g->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  generate->add_option("-p,--prompt", g->prompt, "Prompt text, or - for standard input")->required();
  generate->add_option("-n,--max-tokens", g->max_tokens, "Tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  generate->add_option("-t,--threads", g->threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  generate->callback([&ctx, &outcome, g] { outcome = run_generate(ctx, *g); });
}

}  // namespace keel::cli
