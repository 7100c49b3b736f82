// `keel tokenize`, `keel generate` and `keel chat`: the engine from the command line.
// MODEL is a path to a GGUF file or a name (NAME, NAME@VERSION) in the registry.

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <random>

#include "keel/cli/commands.h"
#include "keel/cli/model_files.h"
#include "keel/engine/chat_prompt.h"
#include "keel/engine/forward.h"
#include "keel/engine/generation.h"
#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/tokenizer.h"
#include "keel/eval/text.h"

namespace keel::cli {
namespace {

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
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_model(ctx, o.model, false));
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
  int logprobs = -1;   // -1: none; else the number of alternatives per token
  bool chat = false;   // the prompt is a user message, rendered with the chat template
  std::string system;  // an optional system message (with --chat, and in `keel chat`)
  std::string lora;    // a LoRA adapter to fold in
};

Result<LoadedModel> load_for_generation(CliContext& ctx, const GenerateOptions& o) {
  if (o.lora.empty()) return load_model(ctx, o.model, true);
  return load_model_with_lora(ctx, o.model, o.lora);
}

// The generation settings shared by `keel generate` and `keel chat`; a random seed
// only where it matters, so greedy output (and its JSON) stays the same.
engine::GenerationOptions generation_options(const GenerateOptions& o) {
  engine::GenerationOptions go;
  go.max_tokens = o.max_tokens;
  go.sampling = o.sampling;
  if (!o.seed_given && go.sampling.temperature > 0) {
    std::random_device entropy;
    go.sampling.seed = (uint64_t{entropy()} << 32) | entropy();
  }
  go.stop = o.stop;
  go.logprobs = o.logprobs >= 0;
  go.top_logprobs = std::max(o.logprobs, 0);
  return go;
}

Result<engine::ChatTemplate> load_chat_template(const LoadedModel& m, const std::string& reference) {
  auto tmpl = engine::chat_template_from_gguf(*m.file);
  if (!tmpl.ok() && tmpl.status().code() == ErrorCode::kNotFound) {
    return invalid_argument(reference +
                            " has no chat template (tokenizer.chat_template); use `keel generate` without --chat");
  }
  return tmpl;
}

Json timings_json(const engine::Generation& g) {
  return {{"prompt_tokens_per_s", g.prompt_tokens_per_second},
          {"generated_tokens_per_s", g.generated_tokens_per_second}};
}

Json logprob_json(const engine::Tokenizer& tokenizer, const engine::TokenLogprob& lp) {
  // A token's bytes may be half a character; the JSON writer replaces them with U+FFFD.
  auto bytes = tokenizer.token_bytes(lp.token, true);
  return {{"token", lp.token}, {"text", bytes.ok() ? *bytes : std::string()}, {"logprob", lp.logprob}};
}

Status run_generate(CliContext& ctx, const GenerateOptions& o) {
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_for_generation(ctx, o));
  KEEL_ASSIGN_OR_RETURN(std::string prompt, read_text_argument(o.prompt));
  std::vector<engine::TokenId> ids;
  if (o.chat) {
    KEEL_ASSIGN_OR_RETURN(engine::ChatTemplate tmpl, load_chat_template(m, o.model));
    std::vector<engine::ChatMessage> messages;
    if (!o.system.empty()) messages.push_back({"system", o.system});
    messages.push_back({"user", prompt});
    KEEL_ASSIGN_OR_RETURN(ids, engine::encode_chat(*m.tokenizer, tmpl, messages));
  } else {
    if (!o.system.empty()) return invalid_argument("--system needs --chat");
    KEEL_ASSIGN_OR_RETURN(ids, m.tokenizer->encode(prompt, true, true));
  }
  if (ids.empty()) return invalid_argument("the prompt is empty");
  engine::SessionOptions so;
  so.threads = o.threads;
  KEEL_ASSIGN_OR_RETURN(auto session, engine::InferenceSession::create(*m.model, so));

  const engine::GenerationOptions go = generation_options(o);
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
                {"timings", timings_json(g)}};
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

// `keel chat`: one user message per line of standard input (a prompt "> " on a
// terminal), each answer streamed and kept in the conversation, which the model's chat
// template renders in full for every turn. "/reset" starts over, "/exit" (or the end
// of the input) quits. When the conversation no longer fits the context, the oldest
// exchanges are dropped (the system message stays) and a note says so.
Status run_chat(CliContext& ctx, const GenerateOptions& o) {
  KEEL_ASSIGN_OR_RETURN(LoadedModel m, load_for_generation(ctx, o));
  KEEL_ASSIGN_OR_RETURN(engine::ChatTemplate tmpl, load_chat_template(m, o.model));
  if (!eval::is_valid_utf8(o.system)) return invalid_argument("--system is not valid UTF-8");
  engine::SessionOptions so;
  so.threads = o.threads;
  KEEL_ASSIGN_OR_RETURN(auto session, engine::InferenceSession::create(*m.model, so));
  const bool terminal = ::isatty(STDIN_FILENO) == 1 && !ctx.json();
  std::vector<engine::ChatMessage> conversation;
  if (!o.system.empty()) conversation.push_back({"system", o.system});
  const size_t first_turn = conversation.size();
  engine::GenerationOptions go = generation_options(o);
  const int64_t room_for_answer = std::min<int64_t>(o.max_tokens, session->context_length() / 2);
  if (terminal) {
    std::fprintf(stderr, "Chatting with %s (%s). /reset starts over, /exit or Ctrl-D quits.\n", o.model.c_str(),
                 m.file->architecture().c_str());
  }
  std::string line;
  while (true) {
    if (terminal) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      conversation.resize(first_turn);
      if (terminal) std::fputs("(conversation cleared)\n", stderr);
      continue;
    }
    if (line.empty()) continue;
    if (!eval::is_valid_utf8(line)) {
      std::fputs("keel: that line is not valid UTF-8; it was not sent\n", stderr);
      continue;
    }
    conversation.push_back({"user", line});
    std::vector<engine::TokenId> ids;
    while (true) {
      KEEL_ASSIGN_OR_RETURN(ids, engine::encode_chat(*m.tokenizer, tmpl, conversation));
      if (static_cast<int64_t>(ids.size()) + room_for_answer <= session->context_length()) break;
      if (conversation.size() - first_turn <= 1) {
        conversation.pop_back();
        return resource_exhausted("one message of " + std::to_string(ids.size()) +
                                  " tokens does not fit the context of " + std::to_string(session->context_length()) +
                                  " with room for an answer");
      }
      // Drop the oldest exchange (a user message and the answer to it).
      conversation.erase(
          conversation.begin() + static_cast<std::ptrdiff_t>(first_turn),
          conversation.begin() + static_cast<std::ptrdiff_t>(std::min(first_turn + 2, conversation.size() - 1)));
      std::fputs("(older messages dropped to fit the context)\n", stderr);
    }
    auto stream = [&](const engine::GeneratedPiece& piece) -> Status {
      if (!ctx.json()) std::cout << piece.text << std::flush;
      return Status::Ok();
    };
    KEEL_ASSIGN_OR_RETURN(engine::Generation g, engine::generate(*session, *m.tokenizer, ids, go, stream));
    conversation.push_back({"assistant", g.text});
    if (ctx.json()) {
      const Json answer = {{"role", "assistant"},
                           {"content", g.text},
                           {"finish_reason", g.finish_reason},
                           {"prompt_tokens", g.prompt_tokens},
                           {"generated_tokens", g.generated_tokens},
                           {"timings", timings_json(g)}};
      std::cout << dump_json(answer, -1) << "\n" << std::flush;  // one line per answer
    } else {
      std::cout << "\n" << std::flush;
      if (terminal) {
        std::fprintf(stderr, "[%lld prompt tokens; %lld generated, %.1f tokens/s]\n",
                     static_cast<long long>(g.prompt_tokens), static_cast<long long>(g.generated_tokens),
                     g.generated_tokens_per_second);
      }
    }
    go.sampling.seed += 1;  // a new draw for every answer, still reproducible from --seed
  }
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

// The sampling, stop and logprob flags of `keel generate` and `keel chat`; returns the
// --seed option (whether it was given decides between a fixed and a random seed).
CLI::Option* add_sampling_options(CLI::App* cmd, GenerateOptions& o) {
  auto& s = o.sampling;
  cmd->add_option("--temp", s.temperature, "Temperature; 0 is greedy decoding (the default, deterministic)")
      ->check(number_in([](double v) { return v >= 0; }, "a number >= 0"))
      ->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "Keep the K most likely tokens (0: off)")
      ->check(number_in([](double v) { return v >= 0 && v <= INT32_MAX; }, "an integer >= 0"))
      ->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Keep the smallest set of tokens whose probability reaches P (1: off)")
      ->check(number_in([](double v) { return v > 0 && v <= 1; }, "in (0, 1]"))
      ->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Drop tokens less likely than P times the most likely one (0: off)")
      ->check(number_in([](double v) { return v >= 0 && v <= 1; }, "in [0, 1]"))
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repetition_penalty,
                  "Divide positive / multiply negative logits of recent tokens by this (1: off)")
      ->check(number_in([](double v) { return v > 0; }, "a number > 0"))
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", s.penalty_last_n,
                  "Recent tokens (prompt included) the penalties look at (0: none, -1: all)")
      ->check(number_in([](double v) { return v >= -1 && v <= INT32_MAX; }, "an integer >= -1"))
      ->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "Subtract this from the logit of every recent token")
      ->check(number_in([](double) { return true; }, "a finite number"))
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty,
                  "Subtract this times its count from the logit of every recent token")
      ->check(number_in([](double) { return true; }, "a finite number"))
      ->capture_default_str();
  CLI::Option* seed =
      cmd->add_option("--seed", s.seed, "Random seed for --temp > 0 (default: random, reported in --json)")
          ->check(unsigned_64());
  cmd->add_option("--stop", o.stop, "Stop before this text (repeatable; it is not printed)")
      ->check(valid_stop_string())
      ->take_all()
      ->allow_extra_args(false);
  cmd->add_option("--logprobs", o.logprobs,
                  "Report each token's log-probability and its N most likely alternatives (0-20)")
      ->check(CLI::Range(0, engine::kMaxTopLogprobs));
  return seed;
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
  generate->add_flag("--chat", g->chat, "Send the prompt as a user message through the model's chat template");
  generate->add_option("--system", g->system, "A system message before the prompt (with --chat)");
  generate->add_option("--lora", g->lora, "A LoRA adapter (GGUF, llama.cpp's layout) for the model, folded in");
  CLI::Option* seed = add_sampling_options(generate, *g);
  generate->callback([&ctx, &outcome, g, seed] {
    g->seed_given = seed->count() > 0;
    outcome = run_generate(ctx, *g);
  });

  auto c = std::make_shared<GenerateOptions>();
  c->max_tokens = 512;
  auto* chat = app.add_subcommand("chat", "Chat with a model: one message per line of input, answers streamed");
  chat->footer(
      "The conversation is kept and rendered with the model's chat template every turn. /reset starts over, /exit "
      "or the end of the input quits. With --json every answer is one JSON line.");
  chat->add_option("-m,--model", c->model, "GGUF file, or a registered NAME[@VERSION]")->required();
  chat->add_option("--system", c->system, "A system message that opens the conversation");
  chat->add_option("--lora", c->lora, "A LoRA adapter (GGUF, llama.cpp's layout) for the model, folded in");
  chat->add_option("-n,--max-tokens", c->max_tokens, "Tokens per answer at most (clipped to the context)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  chat->add_option("-t,--threads", c->threads, "Threads")->check(CLI::Range(1, 256))->capture_default_str();
  CLI::Option* chat_seed = add_sampling_options(chat, *c);
  chat->callback([&ctx, &outcome, c, chat_seed] {
    c->seed_given = chat_seed->count() > 0;
    outcome = run_chat(ctx, *c);
  });
}

}  // namespace keel::cli
