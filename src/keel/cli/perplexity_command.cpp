// `keel perplexity -m MODEL -f FILE`: a model's perplexity on a text, computed as
// llama.cpp's llama-perplexity computes it by default (engine/perplexity.h), so the two
// tools' numbers compare. The file is UTF-8 text (invalid UTF-8 is an error naming the
// first bad line; one trailing newline is dropped, as llama.cpp drops it); special-token
// text in it is read as plain text. MODEL is a GGUF path or a registered NAME[@VERSION].
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "keel/cli/commands.h"
#include "keel/cli/model_files.h"
#include "keel/engine/forward.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/perplexity.h"
#include "keel/engine/tokenizer.h"
#include "keel/eval/text.h"
#include "keel/util/file.h"

namespace keel::cli {
namespace {

struct PerplexityOptions {
  std::string model;
  std::string file;
  int64_t context = 512;
  int threads = 1;
};


// The text of `path` as llama-perplexity reads it: the whole file minus one trailing '\n'.
Result<std::string> read_text(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return invalid_argument(path + " is a folder, not a text file");
  auto text = read_file(path);
  if (!text.ok()) return text.status().with_context("reading the text");
  if (!eval::is_valid_utf8(*text)) {
    // '\n' never occurs inside a UTF-8 sequence, so the first invalid line is exact.
    int64_t line = 1;
    size_t begin = 0;
    while (true) {
      const size_t end = text->find('\n', begin);
      const std::string_view piece(text->data() + begin, (end == std::string::npos ? text->size() : end) - begin);
      if (!eval::is_valid_utf8(piece) || end == std::string::npos) break;
      begin = end + 1;
      ++line;
    }
    return invalid_argument(path + " is not valid UTF-8 (first at line " + std::to_string(line) +
                            "); perplexity reads UTF-8 text");
  }
  if (!text->empty() && text->back() == '\n') text->pop_back();
  return text;
}

// Where the per-chunk estimates go. On a terminal one line is redrawn in place and the
// llama.cpp-style list "[1]12.3456,[2]..." is printed once at the end; elsewhere (logs,
// pipes) the list is written as it grows, exactly as llama-perplexity writes it.
class ChunkReporter {
 public:
  ChunkReporter() : terminal_(::isatty(STDERR_FILENO) == 1) {}

  void report(const engine::PerplexityProgress& p) {
    char entry[64];
    std::snprintf(entry, sizeof entry, "[%lld]%.4f,", static_cast<long long>(p.chunk), p.running_perplexity);
    list_ += entry;
    elapsed_ += p.chunk_seconds;
    if (!terminal_) {
      std::fputs(entry, stderr);
    } else {
      const double left = elapsed_ / static_cast<double>(p.chunk) * static_cast<double>(p.chunks - p.chunk);
      std::fprintf(stderr, "\rperplexity: chunk %lld/%lld, PPL %.4f, %.0f s left   ", static_cast<long long>(p.chunk),
                   static_cast<long long>(p.chunks), p.running_perplexity, std::ceil(left));
    }
    std::fflush(stderr);
  }

  void finish() {
    if (terminal_) std::fprintf(stderr, "\r\033[K%s", list_.c_str());
    if (!list_.empty()) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool terminal_;
  std::string list_;
  double elapsed_ = 0;
};

Status run_perplexity(CliContext& ctx, const PerplexityOptions& o) {
  KEEL_ASSIGN_OR_RETURN(std::string path, resolve_model_path(ctx, o.model));
  KEEL_ASSIGN_OR_RETURN(std::string text, read_text(o.file));
  KEEL_ASSIGN_OR_RETURN(auto file, engine::GgufFile::open(path));
  KEEL_ASSIGN_OR_RETURN(auto tokenizer, engine::Tokenizer::from_gguf(*file));
  KEEL_ASSIGN_OR_RETURN(auto model, engine::Model::load(*file));
  const int64_t trained = model->config().context_length;
  if (trained > 0 && o.context > trained) {
    return invalid_argument("--ctx " + std::to_string(o.context) + " exceeds the model's context of " +
                            std::to_string(trained) + " tokens");
  }

  // llama-perplexity: the whole text with BOS where the vocabulary adds one, special
  // tokens not parsed, never an EOS.
  KEEL_ASSIGN_OR_RETURN(std::vector<engine::TokenId> ids, tokenizer->encode(text, false, false));
  engine::PerplexityOptions po;
  po.context = o.context;
  if (tokenizer->adds_bos() && tokenizer->bos_id() >= 0) {
    ids.insert(ids.begin(), tokenizer->bos_id());
    po.bos = tokenizer->bos_id();
  }
  if (static_cast<int64_t>(ids.size()) < engine::perplexity_min_tokens(o.context)) {
    return invalid_argument(o.file + " tokenizes to only " + std::to_string(ids.size()) +
                            " tokens; perplexity with --ctx " + std::to_string(o.context) + " needs at least " +
                            std::to_string(engine::perplexity_min_tokens(o.context)) +
                            " (use a longer text or a smaller --ctx)");
  }

  engine::SessionOptions so;
  so.threads = o.threads;
  so.context_length = o.context;
  KEEL_ASSIGN_OR_RETURN(auto session, engine::InferenceSession::create(*model, so));
  if (!ctx.json()) {
    std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld, scoring the last %lld tokens of each\n",
                 ids.size(), static_cast<long long>(static_cast<int64_t>(ids.size()) / o.context),
                 static_cast<long long>(o.context), static_cast<long long>(o.context - o.context / 2 - 1));
  }
  ChunkReporter reporter;
  auto result = engine::perplexity(*session, ids, po, [&](const engine::PerplexityProgress& p) {
    reporter.report(p);
    return Status::Ok();
  });
  reporter.finish();
  if (!result.ok()) return result.status();
  const engine::PerplexityResult& r = *result;
  const double tokens_per_second = r.seconds > 0 ? static_cast<double>(r.chunks * r.context) / r.seconds : 0.0;
  if (ctx.json()) {
    print_json({{"perplexity", r.perplexity},
                {"uncertainty", r.uncertainty},
                {"nll", r.mean_nll},
                {"tokens", r.tokens},
                {"ctx", r.context},
                {"chunks", r.chunks},
                {"scored_tokens", r.scored_tokens},
                {"running_perplexity", r.running_perplexity},
                {"threads", o.threads},
                {"seconds", r.seconds},
                {"tokens_per_second", tokens_per_second}});
    return Status::Ok();
  }
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.perplexity, r.uncertainty);
  std::fprintf(stderr, "[%lld tokens scored in %.1f s, %.1f tokens/s; %d thread%s]\n",
               static_cast<long long>(r.scored_tokens), r.seconds, tokens_per_second, o.threads,
               o.threads == 1 ? "" : "s");
  return Status::Ok();
}

}  // namespace

void add_perplexity_command(CLI::App& app, CliContext& ctx, Status& outcome) {
  auto o = std::make_shared<PerplexityOptions>();
  auto* cmd = app.add_subcommand("perplexity",
                                 "A model's perplexity on a text file, computed as llama.cpp's llama-perplexity does");
  cmd->add_option("-m,--model", o->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  cmd->add_option("-f,--file", o->file, "UTF-8 text file (at least 2 x --ctx tokens)")->required();
  cmd->add_option("-c,--ctx", o->context, "Tokens per chunk; the last half of each chunk is scored")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (the result does not depend on them)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->callback([&ctx, &outcome, o] { outcome = run_perplexity(ctx, *o); });
}

}  // namespace keel::cli
