#include "keel/cli/eval_generators.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>

#include "keel/engine/batch_scheduler.h"
#include "keel/engine/chat_prompt.h"
#include "keel/engine/forward.h"
#include "keel/engine/generation.h"
#include "keel/engine/perplexity.h"
#include "keel/server/upstream_client.h"
#include "keel/store/artifact_store.h"
#include "keel/util/json.h"

namespace keel::cli {
namespace {

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class LocalGenerator final : public eval::Generator {
 public:
  LocalGenerator(LoadedModel model, const LocalGeneratorOptions& options)
      : model_(std::move(model)), options_(options) {}

  Result<std::vector<std::string>> generate(const std::vector<std::string>& prompts,
                                            const eval::GenerationParams& params) override {
    KEEL_ASSIGN_OR_RETURN(std::vector<eval::Completion> done, complete(prompts, params));
    std::vector<std::string> out;
    for (auto& c : done) out.push_back(std::move(c.text));
    return out;
  }

  Result<std::vector<eval::Completion>> complete(const std::vector<std::string>& prompts,
                                                 const eval::GenerationParams& params) override {
    std::vector<std::vector<engine::TokenId>> encoded;
    for (const auto& prompt : prompts) {
      std::vector<engine::TokenId> ids;
      if (params.chat) {
        KEEL_ASSIGN_OR_RETURN(const engine::ChatTemplate* chat, chat_template());
        if (!chat) return invalid_argument("the task sets generation.chat but the model has no chat template");
        KEEL_ASSIGN_OR_RETURN(ids, engine::encode_chat(*model_.tokenizer, *chat, {{"user", prompt}}));
      } else {
        KEEL_ASSIGN_OR_RETURN(ids, model_.tokenizer->encode(prompt, true, false));
      }
      encoded.push_back(std::move(ids));
    }
    return run(std::move(encoded), params);
  }

  // Through the model's chat template; a model without one reads the plain transcript.
  Result<std::vector<eval::Completion>> converse(const std::vector<eval::Conversation>& conversations,
                                                 const eval::GenerationParams& params) override {
    KEEL_ASSIGN_OR_RETURN(const engine::ChatTemplate* chat, chat_template());
    std::vector<std::vector<engine::TokenId>> encoded;
    for (const auto& conversation : conversations) {
      std::vector<engine::TokenId> ids;
      if (chat) {
        std::vector<engine::ChatMessage> messages;
        for (const auto& turn : conversation) messages.push_back({turn.role, turn.content});
        KEEL_ASSIGN_OR_RETURN(ids, engine::encode_chat(*model_.tokenizer, *chat, messages));
      } else {
        KEEL_ASSIGN_OR_RETURN(ids, model_.tokenizer->encode(eval::plain_transcript(conversation), true, false));
      }
      encoded.push_back(std::move(ids));
    }
    return run(std::move(encoded), params);
  }

  // Generates for encoded prompts, all queued at once.
  Result<std::vector<eval::Completion>> run(std::vector<std::vector<engine::TokenId>> encoded,
                                            const eval::GenerationParams& params) {
    for (const auto& ids : encoded) {
      if (ids.empty()) return invalid_argument("a prompt is empty");
    }
    KEEL_RETURN_IF_ERROR(start_scheduler());
    engine::GenerationOptions go;
    go.max_tokens = params.max_tokens;
    go.sampling.temperature = static_cast<float>(params.temperature);
    go.sampling.top_p = static_cast<float>(params.top_p);
    go.sampling.seed = params.seed;
    go.stop = params.stop;

    // Every prompt is queued at once; the scheduler decodes up to batch_size together.
    struct Pending {
      std::mutex mutex;
      std::condition_variable done;
      size_t left = 0;  // REQUIRES: mutex held
      std::vector<std::optional<Result<engine::Generation>>> results;
    };
    auto pending = std::make_shared<Pending>();
    pending->results.resize(encoded.size());
    pending->left = encoded.size();
    for (size_t i = 0; i < encoded.size(); ++i) {
      engine::GenerationRequest request;
      request.prompt = std::move(encoded[i]);
      request.options = go;
      request.on_done = [pending, i](Result<engine::Generation> g) {
        std::lock_guard<std::mutex> lock(pending->mutex);
        pending->results[i] = std::move(g);
        if (--pending->left == 0) pending->done.notify_all();
      };
      Status submitted = scheduler_->submit(std::move(request));
      if (!submitted.ok()) {
        std::lock_guard<std::mutex> lock(pending->mutex);
        pending->results[i] = submitted;
        if (--pending->left == 0) pending->done.notify_all();
      }
    }
    std::unique_lock<std::mutex> lock(pending->mutex);
    pending->done.wait(lock, [&] { return pending->left == 0; });
    std::vector<eval::Completion> out;
    for (auto& r : pending->results) {
      if (!r->ok()) return r->status().with_context("generating");
      eval::Completion c;
      c.text = std::move((*r)->text);
      c.prompt_tokens = (*r)->prompt_tokens;
      c.completion_tokens = (*r)->generated_tokens;
      c.finish_reason = (*r)->finish_reason;
      c.latency_ms = ((*r)->prompt_seconds + (*r)->decode_seconds) * 1000.0;
      out.push_back(std::move(c));
    }
    return out;
  }

  // lm-eval's scoring: the context and context + continuation are encoded separately,
  // the continuation's tokens are what the whole has past the context's tokens, and
  // the model sees context tokens + continuation tokens. A context shared by
  // consecutive requests (the choices of one question) is run once.
  Result<std::vector<eval::LoglikelihoodResult>> loglikelihood(
      const std::vector<eval::LoglikelihoodRequest>& requests) override {
    if (!session_) {
      engine::SessionOptions so;
      so.threads = options_.threads;
      so.context_length = options_.context_length;
      KEEL_ASSIGN_OR_RETURN(session_, engine::InferenceSession::create(*model_.model, so));
    }
    const engine::Tokenizer& tok = *model_.tokenizer;
    std::vector<eval::LoglikelihoodResult> out;
    for (const auto& req : requests) {
      KEEL_ASSIGN_OR_RETURN(std::vector<engine::TokenId> context, tok.encode(req.context, true, false));
      KEEL_ASSIGN_OR_RETURN(std::vector<engine::TokenId> whole, tok.encode(req.context + req.continuation, true, false));
      if (whole.size() <= context.size()) {
        return invalid_argument("the continuation \"" + req.continuation + "\" adds no tokens to its context");
      }
      std::vector<engine::TokenId> continuation(whole.begin() + static_cast<std::ptrdiff_t>(context.size()), whole.end());
      if (context.empty()) {
        // Nothing to condition on: start from BOS (or EOS), as lm-eval starts from its prefix token.
        context.push_back(tok.bos_id() >= 0 ? tok.bos_id() : tok.eos_id());
      }
      if (static_cast<int64_t>(context.size() + continuation.size()) > session_->context_length()) {
        return invalid_argument("an example needs " + std::to_string(context.size() + continuation.size()) +
                                " tokens but the context holds " + std::to_string(session_->context_length()));
      }
      if (context != cached_context_) {
        session_->reset();
        KEEL_ASSIGN_OR_RETURN(cached_logits_, session_->forward(context, engine::LogitsFor::kLastToken));
        cached_context_ = context;
      } else {
        KEEL_RETURN_IF_ERROR(session_->truncate(static_cast<int64_t>(context.size())));
      }
      const size_t vocab = cached_logits_.size();
      eval::LoglikelihoodResult r;
      r.tokens = static_cast<int64_t>(continuation.size());
      r.is_greedy = true;
      auto score = [&](std::span<const float> logits, engine::TokenId target) {
        r.logprob -= engine::negative_log_likelihood(logits, target);
        const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
        if (best != target) r.is_greedy = false;
      };
      score(cached_logits_, continuation[0]);
      if (continuation.size() > 1) {
        std::span<const engine::TokenId> rest(continuation.data(), continuation.size() - 1);
        KEEL_ASSIGN_OR_RETURN(std::vector<float> logits, session_->forward(rest, engine::LogitsFor::kEveryToken));
        for (size_t t = 1; t < continuation.size(); ++t) {
          score(std::span<const float>(logits.data() + (t - 1) * vocab, vocab), continuation[t]);
        }
      }
      out.push_back(r);
    }
    return out;
  }

  std::string description() const override {
    return "local engine (" + std::to_string(options_.batch_size) + " sequences per batch, " +
           std::to_string(options_.threads) + " threads)";
  }

 private:
  // The model's chat template, read once; nullptr when it has none.
  Result<const engine::ChatTemplate*> chat_template() {
    if (!chat_checked_) {
      auto tmpl = engine::chat_template_from_gguf(*model_.file);
      if (!tmpl.ok() && tmpl.status().code() != ErrorCode::kNotFound) return tmpl.status();
      if (tmpl.ok()) chat_ = std::move(*tmpl);
      chat_checked_ = true;
    }
    return chat_ ? &*chat_ : nullptr;
  }

  Status start_scheduler() {
    if (scheduler_) return Status::Ok();
    engine::SessionOptions so;
    so.threads = options_.threads;
    so.context_length = options_.context_length;
    engine::SchedulerOptions sched;
    sched.max_sequences = options_.batch_size;
    sched.max_queue = 1 << 20;
    KEEL_ASSIGN_OR_RETURN(scheduler_, engine::BatchScheduler::create(*model_.model, *model_.tokenizer, so, sched));
    return Status::Ok();
  }

  LoadedModel model_;
  LocalGeneratorOptions options_;
  std::optional<engine::ChatTemplate> chat_;
  bool chat_checked_ = false;
  std::unique_ptr<engine::InferenceSession> session_;
  std::vector<engine::TokenId> cached_context_;  // what session_ holds
  std::vector<float> cached_logits_;             // of its last token
  std::unique_ptr<engine::BatchScheduler> scheduler_;  // last: stopped first
};

class RemoteGenerator final : public eval::Generator {
 public:
  RemoteGenerator(registry::RemoteEndpoint endpoint, registry::ParsedUrl url, std::string key)
      : endpoint_(std::move(endpoint)), url_(std::move(url)), key_(std::move(key)) {}

  // The batch's requests go out at once (the server batches them as it likes) and the
  // answers are read back in order.
  Result<std::vector<std::string>> generate(const std::vector<std::string>& prompts,
                                            const eval::GenerationParams& params) override {
    KEEL_ASSIGN_OR_RETURN(std::vector<eval::Completion> done, complete(prompts, params));
    std::vector<std::string> out;
    for (auto& c : done) out.push_back(std::move(c.text));
    return out;
  }

  Result<std::vector<eval::Completion>> complete(const std::vector<std::string>& prompts,
                                                 const eval::GenerationParams& params) override {
    std::vector<Json> inputs;
    for (const auto& p : prompts) {
      inputs.push_back(params.chat ? Json::array({{{"role", "user"}, {"content", p}}}) : Json(p));
    }
    return send(inputs, params.chat, params);
  }

  Result<std::vector<eval::Completion>> converse(const std::vector<eval::Conversation>& conversations,
                                                 const eval::GenerationParams& params) override {
    std::vector<Json> inputs;
    for (const auto& conversation : conversations) {
      Json messages = Json::array();
      for (const auto& turn : conversation) messages.push_back({{"role", turn.role}, {"content", turn.content}});
      inputs.push_back(std::move(messages));
    }
    return send(inputs, true, params);
  }

  // lm-eval's scoring over the legacy completions API, as its local-completions model
  // does it: the endpoint echoes the prompt with each token's log-probability (echo,
  // logprobs, max_tokens 0). As on the engine, the context and context + continuation
  // are tokenized apart (the server's own tokenizer: its prompt_tokens) and the
  // continuation's tokens are what the whole has past the context's. A Keel server and
  // vLLM answer this; an endpoint that refuses it is kFailedPrecondition.
  Result<std::vector<eval::LoglikelihoodResult>> loglikelihood(
      const std::vector<eval::LoglikelihoodRequest>& requests) override {
    // A context is counted once however many continuations share it (the choices of a question).
    std::vector<Json> contexts, wholes;
    std::vector<size_t> context_of;
    for (const auto& r : requests) {
      if (contexts.empty() || contexts.back().get<std::string>() != r.context) contexts.push_back(r.context);
      context_of.push_back(contexts.size() - 1);
      if (r.context.empty()) {
        return invalid_argument("an empty context at an endpoint: nothing would predict the continuation's first "
                                "token (give the task a prompt)");
      }
      wholes.push_back(r.context + r.continuation);
    }
    const Json fields = {{"max_tokens", 0}, {"echo", true}, {"logprobs", 1}, {"temperature", 0}};
    auto refused = [&](const Status& st) {
      return failed_precondition(
          "scoring text at " + endpoint_.base_url +
          " needs its /completions to echo the prompt with log-probabilities (echo, logprobs, max_tokens 0), as a "
          "Keel server or vLLM does: " +
          st.message());
    };
    auto context_answers = post(contexts, false, Json{{"max_tokens", 0}, {"echo", true}, {"temperature", 0}});
    if (!context_answers.ok()) return refused(context_answers.status());
    auto whole_answers = post(wholes, false, fields);
    if (!whole_answers.ok()) return refused(whole_answers.status());
    std::vector<eval::LoglikelihoodResult> out;
    for (size_t i = 0; i < requests.size(); ++i) {
      try {
        const int64_t context_tokens =
            (*context_answers)[context_of[i]].body.at("usage").at("prompt_tokens").get<int64_t>();
        const Json& lp = (*whole_answers)[i].body.at("choices").at(0).at("logprobs");
        const Json& values = lp.at("token_logprobs");
        const Json& tops = lp.at("top_logprobs");
        const auto total = static_cast<int64_t>(values.size());
        if (total <= context_tokens) {
          return invalid_argument("the continuation \"" + requests[i].continuation + "\" adds no tokens to its context");
        }
        eval::LoglikelihoodResult r;
        r.tokens = total - context_tokens;
        r.is_greedy = true;
        for (int64_t t = context_tokens; t < total; ++t) {
          const Json& v = values.at(static_cast<size_t>(t));
          if (!v.is_number()) return refused(unavailable("no log-probability for prompt token " + std::to_string(t)));
          const double chosen = v.get<double>();
          r.logprob += chosen;
          const Json& top = tops.at(static_cast<size_t>(t));
          if (top.is_object()) {
            for (const auto& [token, value] : top.items()) {
              if (value.is_number() && value.get<double>() > chosen) r.is_greedy = false;
            }
          }
        }
        out.push_back(r);
      } catch (const Json::exception&) {
        return refused(unavailable("the answer has no usage.prompt_tokens or choices[0].logprobs"));
      }
    }
    return out;
  }

  std::string description() const override { return endpoint_.base_url + " (model " + endpoint_.upstream_model + ")"; }

 private:
  // Each input is a prompt (/completions) or, with chat, a messages array (/chat/completions).
  Result<std::vector<eval::Completion>> send(const std::vector<Json>& inputs, bool chat,
                                             const eval::GenerationParams& params) {
    Json fields = {{"max_tokens", params.max_tokens},
                   {"temperature", params.temperature},
                   {"top_p", params.top_p},
                   {"seed", params.seed}};
    if (!params.stop.empty()) fields["stop"] = params.stop;
    KEEL_ASSIGN_OR_RETURN(std::vector<Answer> answers, post(inputs, chat, fields));
    std::vector<eval::Completion> out;
    for (const Answer& a : answers) {
      try {
        const Json& choice = a.body.at("choices").at(0);
        eval::Completion c;
        c.text =
            chat ? choice.at("message").at("content").get<std::string>() : choice.at("text").get<std::string>();
        if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
          c.finish_reason = choice["finish_reason"].get<std::string>();
        }
        if (a.body.contains("usage") && a.body["usage"].is_object()) {
          const Json& usage = a.body["usage"];
          c.prompt_tokens = usage.value("prompt_tokens", int64_t{0});
          c.completion_tokens = usage.value("completion_tokens", int64_t{0});
        }
        c.latency_ms = a.latency_ms;
        out.push_back(std::move(c));
      } catch (const Json::exception&) {
        return unavailable(endpoint_.base_url + " answered without choices[0]" +
                           (chat ? ".message.content" : ".text"));
      }
    }
    return out;
  }

  struct Answer {
    Json body;
    double latency_ms = 0;
  };

  // Sends every input at once (the server batches them as it likes) with `fields` and
  // reads the answers back in order; an HTTP error is kUnavailable with the server's message.
  Result<std::vector<Answer>> post(const std::vector<Json>& inputs, bool chat, const Json& fields) {
    const size_t count = inputs.size();
    struct Pending {
      std::mutex mutex;
      std::condition_variable done;
      size_t left = 0;  // REQUIRES: mutex held, for this and the vectors
      std::vector<int> status;
      std::vector<std::string> bodies;
      std::vector<Status> errors;
      std::vector<int64_t> finished_us;  // when each answer was complete
    };
    auto pending = std::make_shared<Pending>();
    pending->left = count;
    pending->status.assign(count, 0);
    pending->bodies.resize(count);
    pending->errors.assign(count, Status::Ok());
    pending->finished_us.assign(count, 0);
    const int64_t started_us = now_micros();
    std::vector<std::shared_ptr<server::UpstreamCall>> calls;
    for (size_t i = 0; i < count; ++i) {
      Json body = fields;
      body["model"] = endpoint_.upstream_model;
      server::UpstreamRequest request;
      if (chat) {
        body["messages"] = inputs[i];
        request.target = url_.path + "/chat/completions";
      } else {
        body["prompt"] = inputs[i];
        request.target = url_.path + "/completions";
      }
      request.headers["Content-Type"] = "application/json";
      if (!key_.empty()) request.headers["Authorization"] = "Bearer " + key_;
      request.body = dump_json(body);
      server::UpstreamHandlers handlers;
      handlers.on_head = [pending, i](int status, const server::Headers&) {
        std::lock_guard<std::mutex> lock(pending->mutex);
        pending->status[i] = status;
      };
      handlers.on_data = [pending, i](std::string_view data) {
        std::lock_guard<std::mutex> lock(pending->mutex);
        pending->bodies[i].append(data);
      };
      handlers.on_done = [pending, i](Status st) {
        std::lock_guard<std::mutex> lock(pending->mutex);
        pending->errors[i] = std::move(st);
        pending->finished_us[i] = now_micros();
        if (--pending->left == 0) pending->done.notify_all();
      };
      calls.push_back(client_.start(url_, std::move(request), std::move(handlers)));
    }
    std::unique_lock<std::mutex> lock(pending->mutex);
    pending->done.wait(lock, [&] { return pending->left == 0; });

    std::vector<Answer> out;
    for (size_t i = 0; i < count; ++i) {
      if (!pending->errors[i].ok()) return pending->errors[i].with_context(endpoint_.base_url);
      auto parsed = parse_json(pending->bodies[i]);
      if (pending->status[i] != 200) {
        std::string message = pending->bodies[i].substr(0, 300);
        if (parsed.ok() && parsed->contains("error") && (*parsed)["error"].is_object() &&
            (*parsed)["error"].contains("message") && (*parsed)["error"]["message"].is_string()) {
          message = (*parsed)["error"]["message"].get<std::string>();
        }
        return unavailable(endpoint_.base_url + " answered HTTP " + std::to_string(pending->status[i]) + ": " +
                           message);
      }
      if (!parsed.ok() || !parsed->is_object()) return unavailable(endpoint_.base_url + " answered with malformed JSON");
      out.push_back({std::move(*parsed), static_cast<double>(pending->finished_us[i] - started_us) / 1000.0});
    }
    return out;
  }

  registry::RemoteEndpoint endpoint_;
  registry::ParsedUrl url_;
  std::string key_;
  server::UpstreamClient client_;
};

}  // namespace

Result<std::unique_ptr<eval::Generator>> make_local_generator(LoadedModel model, const LocalGeneratorOptions& options) {
  if (!model.model) return invalid_argument("the local generator needs the model's weights");
  return std::unique_ptr<eval::Generator>(std::make_unique<LocalGenerator>(std::move(model), options));
}

Result<std::unique_ptr<eval::Generator>> make_remote_generator(const registry::RemoteEndpoint& endpoint) {
  KEEL_ASSIGN_OR_RETURN(registry::ParsedUrl url, registry::parse_http_url(endpoint.base_url));
  std::string key;
  if (!endpoint.api_key_env.empty()) {
    const char* value = std::getenv(endpoint.api_key_env.c_str());
    if (!value || !*value) {
      return invalid_argument("$" + endpoint.api_key_env + " is not set: it should hold the API key for " +
                              endpoint.base_url);
    }
    key = value;
  }
  return std::unique_ptr<eval::Generator>(std::make_unique<RemoteGenerator>(endpoint, std::move(url), std::move(key)));
}

Result<ResolvedModel> resolve_model(CliContext& ctx, const std::string& model, const std::string& endpoint,
                                    const std::string& api_key_env) {
  ResolvedModel m;
  if (model.empty()) return invalid_argument("no model: give --model NAME[@VERSION|@ALIAS] or a GGUF file");
  if (!endpoint.empty()) {
    m.reference = model;
    m.remote = registry::RemoteEndpoint{endpoint, model, api_key_env};
    return m;
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(model, ec)) {
    m.reference = std::filesystem::absolute(model).lexically_normal().string();
    m.local_reference = m.reference;
    return m;
  }
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  auto version = models.get(model);
  if (!version.ok()) {
    if (version.status().code() == ErrorCode::kNotFound) {
      return not_found("no model file or registered model " + model + ": " + version.status().message());
    }
    return version.status();
  }
  m.version = *version;
  m.reference = version->model_name + "@" + std::to_string(version->version);
  if (registry::is_remote(*version)) {
    KEEL_ASSIGN_OR_RETURN(registry::RemoteEndpoint endpoint, registry::remote_endpoint(*version));
    m.remote = endpoint;
  } else {
    m.local_reference = m.reference;
    m.sha256 = version->artifact_sha256;
  }
  return m;
}

Result<std::unique_ptr<eval::Generator>> open_generator(CliContext& ctx, const ResolvedModel& model,
                                                        const LocalGeneratorOptions& options) {
  if (model.remote) return make_remote_generator(*model.remote);
  KEEL_ASSIGN_OR_RETURN(LoadedModel loaded, load_model(ctx, model.local_reference, true));
  return make_local_generator(std::move(loaded), options);
}

}  // namespace keel::cli
