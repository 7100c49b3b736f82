#include "keel/server/openai_routes.h"

#include <chrono>
#include <cstring>
#include <mutex>
#include <random>

#include "keel/engine/chat_prompt.h"
#include "keel/server/openai_proxy.h"
#include "keel/server/openai_request.h"
#include "keel/server/rate_limiter.h"

namespace keel::server {
namespace {

using engine::Generation;
using engine::GeneratedPiece;
using engine::TokenId;

using Clock = std::chrono::steady_clock;

struct Services {
  ServedModels& models;
  ServingMetrics& metrics;
  RateLimiter& limiter;
  monitor::TraceWriter* traces;  // null: requests are not traced

  // Everything a finished request feeds: the metrics, the caller's token allowance and
  // its trace (queued; the store is written by the trace writer's thread).
  void finish(const RequestRecord& r) {
    metrics.record(r);
    limiter.charge_tokens(r.key, r.prompt_tokens + r.completion_tokens);
    if (traces != nullptr) traces->submit(trace_of(r));
  }

  static monitor::Trace trace_of(const RequestRecord& r) {
    monitor::Trace t;
    t.id = r.id;
    t.started_at = r.started_at_ms;
    t.user = r.user;
    t.endpoint = r.endpoint;
    t.served_name = r.served_name;
    t.model = r.model;
    t.version = r.version;
    t.prompt = r.prompt;
    t.response = r.response;
    t.prompt_tokens = r.prompt_tokens;
    t.completion_tokens = r.completion_tokens;
    if (r.time_to_first_token_seconds) t.time_to_first_token_ms = *r.time_to_first_token_seconds * 1000;
    t.latency_ms = r.latency_seconds * 1000;
    if (r.upstream_seconds) t.upstream_ms = *r.upstream_seconds * 1000;
    // Decoding speed: the tokens after the first over the time after it.
    const double decoding = r.latency_seconds - r.time_to_first_token_seconds.value_or(r.latency_seconds);
    if (r.completion_tokens > 1 && decoding > 0) {
      t.tokens_per_second = static_cast<double>(r.completion_tokens - 1) / decoding;
    }
    t.finish_reason = r.finish_reason;
    t.status = r.status;
    t.error = r.error;
    return t;
  }
};

int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The parts of a request's record known when it arrives.
RequestRecord arriving(const HttpRequest& request, const char* endpoint) {
  return RequestRecord{.id = request.request_id,
                       .started_at_ms = now_millis(),
                       .user = request.user,
                       .key = request.key_id.empty() ? "address:" + request.remote_address : "key:" + request.key_id,
                       .endpoint = endpoint};
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r = HttpResponse::json(e.status, api_error_json(e));
  if (e.status == 429) r.headers["Retry-After"] = "1";
  return r;
}

// An engine or registry failure in OpenAI's terms.
ApiError api_error(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kNotFound: return {.status = 404, .message = s.message(), .param = "model", .code = "model_not_found"};
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFailedPrecondition: return {.status = 400, .message = s.message()};
    case ErrorCode::kResourceExhausted:
      return {.status = 429, .message = "the server is busy: " + s.message(), .type = "rate_limit_error",
              .code = "queue_full"};
    case ErrorCode::kUnavailable: return {.status = 503, .message = s.message(), .type = "server_error"};
    default: return {.status = 500, .message = s.message(), .type = "server_error"};
  }
}

std::string sse(const Json& event) { return "data: " + dump_json(event) + "\n\n"; }

Json token_bytes_json(const std::string& bytes) {
  Json out = Json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

// How the answer's log-probabilities are written.
enum class LogprobsShape { kNone, kChat, kLegacy };

// One request's choices on their way through the scheduler: collects them and answers
// (whole, or streamed as it goes) through the writer. Callbacks of one model come from
// its scheduler thread; the lock guards against everything else.
class CompletionJob : public std::enable_shared_from_this<CompletionJob> {
 public:
  struct Choice {
    std::string text;
    std::vector<TokenId> tokens;
    std::vector<engine::TokenLogprobs> logprobs;
    std::string finish_reason;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    size_t text_offset = 0;  // legacy logprobs: where the next token's text starts
    std::vector<TokenId> prompt;                       // echo: the prompt's tokens
    std::vector<engine::TokenLogprobs> prompt_logprobs;  // echo with logprobs: of prompt[1..]
  };

  CompletionJob(std::shared_ptr<Services> services, RequestRecord record, Clock::time_point received,
                std::shared_ptr<ServedModel> model, std::shared_ptr<ResponseWriter> writer, bool chat, std::string id,
                std::string model_name, bool stream, bool include_usage, LogprobsShape logprobs, size_t choices)
      : services_(std::move(services)),
        record_(std::move(record)),
        received_(received),
        model_(std::move(model)),
        writer_(std::move(writer)),
        chat_(chat),
        id_(std::move(id)),
        model_name_(std::move(model_name)),
        created_(now_seconds()),
        stream_(stream),
        include_usage_(include_usage),
        logprobs_(logprobs),
        choices_(choices),
        remaining_(choices) {}

  // Choices come n per prompt; usage counts each prompt's tokens once.
  void set_choices_per_prompt(size_t n) { choices_per_prompt_ = n; }
  // The legacy echo: each choice's text (and logprobs) starts with its prompt.
  void set_echo(size_t index, std::vector<TokenId> prompt) {
    echo_ = true;
    choices_[index].prompt = std::move(prompt);
  }

  void on_piece(size_t index, const GeneratedPiece& piece) {
    std::lock_guard lock(mutex_);
    Choice& c = choices_[index];
    if (!first_token_ && piece.token >= 0) first_token_ = Clock::now();
    if (!stream_ || failed_) return;
    begin_stream();
    Json logprobs = nullptr;
    if (piece.logprobs != nullptr) logprobs = logprobs_json(c, {&piece.logprobs, 1}, {&piece.token, 1}, piece.text);
    if (piece.text.empty() && logprobs.is_null()) return;
    const Json delta = chat_ ? Json{{"content", std::string(piece.text)}} : Json(std::string(piece.text));
    writer_->write(sse(chunk(index, delta, logprobs, nullptr)));
  }

  void on_done(size_t index, Result<Generation> result) {
    std::lock_guard lock(mutex_);
    --remaining_;
    if (!result.ok()) {
      fail(result.status());
      return;
    }
    Choice& c = choices_[index];
    c.text = std::move(result->text);
    c.tokens = std::move(result->tokens);
    c.logprobs = std::move(result->logprobs);
    c.prompt_logprobs = std::move(result->prompt_logprobs);
    c.finish_reason = result->finish_reason;
    c.prompt_tokens = result->prompt_tokens;
    c.completion_tokens = result->generated_tokens;
    if (failed_) return;
    if (stream_) {
      begin_stream();
      writer_->write(sse(chunk(index, chat_ ? Json::object() : Json(""), nullptr, c.finish_reason)));
    }
    if (remaining_ > 0) return;
    // The latency ends when the answer is ready, not when its bytes have left: a client
    // (a gateway) may have the answer before this thread takes the time.
    const Clock::time_point answered = Clock::now();
    if (stream_) {
      if (include_usage_) {
        Json last = envelope();
        last["choices"] = Json::array();
        last["usage"] = usage();
        writer_->write(sse(last));
      }
      writer_->write("data: [DONE]\n\n");
      writer_->end();
    } else {
      writer_->respond(HttpResponse::json(200, whole()));
    }
    record(200, "", answered);
  }

 private:
  // The stream starts with the first event: headers and, for chat, each choice's role
  // delta. Until then an error can still be a plain error response.
  // REQUIRES: mutex_ held.
  void begin_stream() {
    if (begun_) return;
    begun_ = true;
    Headers headers{{"Cache-Control", "no-cache"}};
    writer_->begin(200, "text/event-stream", headers);
    if (!chat_) return;
    for (size_t i = 0; i < choices_.size(); ++i) {
      writer_->write(sse(chunk(i, Json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)));
    }
  }

  // REQUIRES: mutex_ held.
  void fail(const Status& status) {
    if (failed_) return;
    failed_ = true;
    if (status.code() == ErrorCode::kUnavailable && writer_->cancelled()) {  // nobody is listening
      record(499, "the client closed the connection");  // nginx's "client closed request"
      return;
    }
    const ApiError e = api_error(status);
    if (stream_ && begun_) {
      writer_->write(sse(api_error_json(e)));
      writer_->write("data: [DONE]\n\n");
      writer_->end();
    } else {
      writer_->respond(error_response(e));
    }
    record(e.status, e.message);
  }

  // REQUIRES: mutex_ held.
  void record(int status, std::string error = "", Clock::time_point answered = Clock::now()) {
    RequestRecord r = record_;
    r.model = model_->name;
    r.version = model_->version;
    r.status = status;
    r.error = std::move(error);
    r.latency_seconds = std::chrono::duration<double>(answered - received_).count();
    if (first_token_) r.time_to_first_token_seconds = std::chrono::duration<double>(*first_token_ - received_).count();
    const Json u = usage();
    r.prompt_tokens = u["prompt_tokens"].get<int64_t>();
    r.completion_tokens = u["completion_tokens"].get<int64_t>();
    for (size_t i = 0; i < choices_.size(); ++i) {
      if (i > 0) r.response += "\n";
      r.response += choices_[i].text;
      if (i == 0) r.finish_reason = choices_[i].finish_reason;
    }
    services_->finish(r);
  }

  Json envelope() const {
    return Json{{"id", id_},
                {"object", chat_ ? (stream_ ? "chat.completion.chunk" : "chat.completion")
                                 : "text_completion"},
                {"created", created_},
                {"model", model_name_},
                {"system_fingerprint", "keel-" + model_->name + "@" + std::to_string(model_->version)}};
  }

  Json chunk(size_t index, const Json& delta, const Json& logprobs, const Json& finish_reason) const {
    Json e = envelope();
    Json choice = {{"index", index}, {"logprobs", logprobs}, {"finish_reason", finish_reason}};
    choice[chat_ ? "delta" : "text"] = delta;
    e["choices"] = Json::array({choice});
    if (include_usage_) e["usage"] = nullptr;
    return e;
  }

  Json usage() const {
    int64_t prompt = 0, completion = 0;
    for (size_t i = 0; i < choices_.size(); ++i) {
      if (i % choices_per_prompt_ == 0) prompt += choices_[i].prompt_tokens;
      completion += choices_[i].completion_tokens;
    }
    return Json{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }

  std::string token_text(TokenId id) const {
    auto bytes = model_->tokenizer->token_bytes(id);
    return bytes.ok() ? *bytes : std::string();
  }

  // Log-probabilities of some tokens in the request's shape. `text` is the text these
  // tokens made final (legacy offsets).
  Json logprobs_json(Choice& c, std::span<const engine::TokenLogprobs* const> lps, std::span<const TokenId> tokens,
                     std::string_view text) {
    if (logprobs_ == LogprobsShape::kChat) {
      Json content = Json::array();
      for (size_t i = 0; i < lps.size(); ++i) {
        const std::string t = token_text(tokens[i]);
        Json top = Json::array();
        for (const auto& alt : lps[i]->top) {
          const std::string a = token_text(alt.token);
          top.push_back({{"token", a}, {"logprob", alt.logprob}, {"bytes", token_bytes_json(a)}});
        }
        content.push_back(
            {{"token", t}, {"logprob", lps[i]->chosen.logprob}, {"bytes", token_bytes_json(t)}, {"top_logprobs", top}});
      }
      return Json{{"content", content}, {"refusal", nullptr}};
    }
    Json out = {{"tokens", Json::array()},
                {"token_logprobs", Json::array()},
                {"top_logprobs", Json::array()},
                {"text_offset", Json::array()}};
    for (size_t i = 0; i < lps.size(); ++i) {
      out["tokens"].push_back(token_text(tokens[i]));
      out["token_logprobs"].push_back(lps[i]->chosen.logprob);
      Json top = Json::object();
      for (const auto& alt : lps[i]->top) top[token_text(alt.token)] = alt.logprob;
      out["top_logprobs"].push_back(top);
      out["text_offset"].push_back(c.text_offset);
    }
    c.text_offset += text.size();
    return out;
  }

  // The prompt's part of an echo: its text, and its tokens' legacy log-probabilities
  // (null for the first, which nothing predicts), before the generated ones.
  std::pair<std::string, Json> echoed_prompt(Choice& c) {
    std::string text;
    Json out = {{"tokens", Json::array()},
                {"token_logprobs", Json::array()},
                {"top_logprobs", Json::array()},
                {"text_offset", Json::array()}};
    for (size_t i = 0; i < c.prompt.size(); ++i) {
      const std::string t = token_text(c.prompt[i]);
      out["tokens"].push_back(t);
      out["text_offset"].push_back(text.size());
      text += t;
      if (i == 0 || i - 1 >= c.prompt_logprobs.size()) {
        out["token_logprobs"].push_back(nullptr);
        out["top_logprobs"].push_back(nullptr);
        continue;
      }
      const engine::TokenLogprobs& lp = c.prompt_logprobs[i - 1];
      out["token_logprobs"].push_back(lp.chosen.logprob);
      Json top = Json::object();
      for (const auto& alt : lp.top) top[token_text(alt.token)] = alt.logprob;
      out["top_logprobs"].push_back(top);
    }
    return {std::move(text), std::move(out)};
  }

  Json whole() {
    Json e = envelope();
    e["choices"] = Json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      Choice& c = choices_[i];
      std::string echoed;
      Json prompt_logprobs;
      if (echo_) {
        std::tie(echoed, prompt_logprobs) = echoed_prompt(c);
        c.text_offset = echoed.size();
      }
      Json logprobs = nullptr;
      if (logprobs_ != LogprobsShape::kNone) {
        std::vector<const engine::TokenLogprobs*> lps;
        for (const auto& lp : c.logprobs) lps.push_back(&lp);
        logprobs = logprobs_json(c, lps, c.tokens, c.text);
        if (echo_) {
          for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
            for (auto& v : logprobs[key]) prompt_logprobs[key].push_back(std::move(v));
          }
          logprobs = std::move(prompt_logprobs);
        }
      }
      Json choice = {{"index", i}, {"logprobs", logprobs}, {"finish_reason", c.finish_reason}};
      if (chat_) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
      } else {
        choice["text"] = echoed + c.text;
      }
      e["choices"].push_back(choice);
    }
    e["usage"] = usage();
    return e;
  }

  const std::shared_ptr<Services> services_;
  const RequestRecord record_;  // what was known on arrival
  const Clock::time_point received_;
  const std::shared_ptr<ServedModel> model_;  // the version this request runs on, kept alive
  const std::shared_ptr<ResponseWriter> writer_;
  const bool chat_;
  const std::string id_;
  const std::string model_name_;
  const int64_t created_;
  const bool stream_;
  const bool include_usage_;
  const LogprobsShape logprobs_;
  std::mutex mutex_;
  // REQUIRES: mutex_ held for these.
  std::vector<Choice> choices_;
  size_t remaining_;
  size_t choices_per_prompt_ = 1;
  bool echo_ = false;
  std::optional<Clock::time_point> first_token_;
  bool begun_ = false;
  bool failed_ = false;
};

// Parses the body; a malformed one is OpenAI's 400.
std::variant<Json, ApiError> body_json(const HttpRequest& request) {
  auto body = request.json_body();
  if (!body.ok()) return ApiError{.message = "we could not parse the JSON body of your request: " +
                                             body.status().message()};
  return std::move(*body);
}

Status check_token_ids(const std::vector<TokenId>& ids, const engine::Tokenizer& tokenizer) {
  for (TokenId id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tokenizer.vocab_size()) {
      return invalid_argument("token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                              std::to_string(tokenizer.vocab_size()));
    }
  }
  if (ids.empty()) return invalid_argument("the prompt has no tokens");
  return Status::Ok();
}

// The body as `parse` reads it, or the error to answer.
template <typename T>
std::variant<T, ApiError> parse_body(const HttpRequest& request, Parsed<T> (*parse)(const Json&)) {
  auto body = body_json(request);
  if (auto* e = std::get_if<ApiError>(&body)) return *e;
  auto parsed = parse(std::get<Json>(body));
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  return std::move(std::get<T>(parsed));
}

// Each input's token ids: text through the tokenizer (control tokens parsed when
// parse_special), ids checked against the vocabulary.
std::variant<std::vector<std::vector<TokenId>>, ApiError> encode_inputs(const std::vector<PromptInput>& inputs,
                                                                        const engine::Tokenizer& tokenizer,
                                                                        bool parse_special, const char* param) {
  std::vector<std::vector<TokenId>> out;
  for (const PromptInput& input : inputs) {
    if (const auto* text = std::get_if<std::string>(&input)) {
      auto ids = tokenizer.encode(*text, /*add_special=*/true, parse_special);
      if (!ids.ok()) return ApiError{.message = ids.status().message(), .param = param};
      out.push_back(std::move(*ids));
    } else {
      out.push_back(std::get<std::vector<int32_t>>(input));
    }
    Status s = check_token_ids(out.back(), tokenizer);
    if (!s.ok()) return ApiError{.message = s.message(), .param = param};
  }
  return out;
}

// The limit on new tokens for a prompt of `prompt_tokens` in this model's context.
std::variant<int64_t, ApiError> completion_budget(const SamplingRequest& r, int64_t prompt_tokens, int64_t context) {
  auto too_long = [&](int64_t asked) {
    return ApiError{.message = "This model's maximum context length is " + std::to_string(context) +
                               " tokens. However, you requested " + std::to_string(prompt_tokens + asked) +
                               " tokens (" + std::to_string(prompt_tokens) + " in the prompt, " +
                               std::to_string(asked) + " for the completion). Please reduce the prompt or the "
                               "completion length.",
                    .param = "messages",
                    .code = "context_length_exceeded"};
  };
  if (prompt_tokens >= context) return too_long(r.max_tokens.value_or(1));
  if (r.max_tokens && prompt_tokens + *r.max_tokens > context) return too_long(*r.max_tokens);
  return r.max_tokens.value_or(context - prompt_tokens);
}

// The options every choice shares; run_job gives each choice its own seed.
engine::GenerationOptions generation_options(const SamplingRequest& r, int64_t max_tokens) {
  engine::GenerationOptions o;
  o.max_tokens = max_tokens;
  o.stop = r.stop;
  o.sampling.temperature = static_cast<float>(r.temperature);
  o.sampling.top_p = static_cast<float>(r.top_p);
  o.sampling.presence_penalty = static_cast<float>(r.presence_penalty);
  o.sampling.frequency_penalty = static_cast<float>(r.frequency_penalty);
  o.sampling.logit_bias = r.logit_bias;
  // OpenAI's penalties count the tokens generated so far, all of them.
  o.sampling.penalty_last_n = -1;
  o.penalize_prompt = false;
  return o;
}


// Submits one job's prompts (each n times) and returns the deferred or error response.
HttpResponse run_job(const std::shared_ptr<Services>& services, RequestRecord record, Clock::time_point received,
                     const std::shared_ptr<ServedModel>& model, const SamplingRequest& r, bool chat,
                     const std::string& id, const std::vector<std::vector<TokenId>>& prompts, LogprobsShape shape,
                     int top_logprobs, bool echo = false) {
  std::vector<engine::GenerationOptions> options;
  for (const auto& prompt : prompts) {
    auto budget = completion_budget(r, static_cast<int64_t>(prompt.size()), model->scheduler->context_length());
    if (auto* e = std::get_if<ApiError>(&budget)) return error_response(*e);
    options.push_back(generation_options(r, std::get<int64_t>(budget)));
    options.back().logprobs = shape != LogprobsShape::kNone;
    options.back().top_logprobs = top_logprobs;
  }
  auto writer = std::make_shared<ResponseWriter>();
  const size_t n = static_cast<size_t>(r.n);
  record.served_name = r.model;
  auto job = std::make_shared<CompletionJob>(services, std::move(record), received, model, writer, chat, id, r.model,
                                             r.stream, r.include_usage, shape, prompts.size() * n);
  job->set_choices_per_prompt(n);
  std::random_device entropy;
  const uint64_t base_seed = r.seed.value_or((uint64_t{entropy()} << 32) | entropy());
  std::vector<engine::GenerationRequest> requests;
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (size_t k = 0; k < n; ++k) {
      const size_t index = p * n + k;
      engine::GenerationRequest g;
      g.prompt = prompts[p];
      g.options = options[p];
      g.options.sampling.seed = base_seed + index;  // n choices differ; the same seed repeats them
      g.on_piece = [job, index](const GeneratedPiece& piece) { job->on_piece(index, piece); };
      g.on_done = [job, index](Result<Generation> result) { job->on_done(index, std::move(result)); };
      g.cancelled = [writer] { return writer->cancelled(); };
      if (echo) {
        job->set_echo(index, prompts[p]);
        if (shape != LogprobsShape::kNone) g.prompt_logprobs = top_logprobs;
      }
      requests.push_back(std::move(g));
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    Status s = model->scheduler->submit(std::move(requests[i]));
    if (!s.ok()) {
      if (i == 0) return error_response(api_error(s));
      // Later choices failing: the job reports the error when the first ones finish.
      job->on_done(i, s);
      for (size_t j = i + 1; j < requests.size(); ++j) job->on_done(j, s);
      break;
    }
  }
  return HttpResponse::deferred(writer);
}

// A remote model's request goes upstream as the client sent it (checked above).
HttpResponse proxy(const std::shared_ptr<Services>& services, const HttpRequest& request,
                   const std::shared_ptr<ServedModel>& model, RequestRecord record, Clock::time_point received,
                   const char* path, std::string id, const std::string& served_name, bool stream, bool include_usage) {
  record.served_name = served_name;
  return proxy_openai_request(services->models, model,
                              ProxiedRequest{.path = path,
                                             .body = request.body,
                                             .id = std::move(id),
                                             .stream = stream,
                                             .include_usage = include_usage,
                                             .record = std::move(record),
                                             .received = received,
                                             .io = request.io},
                              [services](const RequestRecord& r) { services->finish(r); });
}

HttpResponse chat_completions(const std::shared_ptr<Services>& services, const HttpRequest& request) {
  const auto received = Clock::now();
  RequestRecord record = arriving(request, "chat.completions");
  auto parsed = parse_body(request, parse_chat_request);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  const ChatRequest& r = std::get<ChatRequest>(parsed);
  auto model = services->models.get(r.model);
  if (!model.ok()) return error_response(api_error(model.status()));
  const ServedModel& m = **model;
  if (m.remote) {
    record.prompt = r.messages.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    return proxy(services, request, *model, std::move(record), received, "/chat/completions",
                 "chatcmpl-" + request.request_id, r.model, r.stream, r.include_usage);
  }
  if (!m.chat_template) {
    return error_response({.message = "the model '" + r.model +
                                      "' has no chat template (tokenizer.chat_template): use /v1/completions"});
  }
  auto prompt = engine::encode_chat_json(*m.tokenizer, *m.chat_template, r.messages);
  if (!prompt.ok()) return error_response({.message = prompt.status().message(), .param = "messages"});
  record.prompt = r.messages.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return run_job(services, std::move(record), received, *model, r, true, "chatcmpl-" + request.request_id, {std::move(*prompt)},
                 r.logprobs ? LogprobsShape::kChat : LogprobsShape::kNone, r.top_logprobs);
}

HttpResponse completions(const std::shared_ptr<Services>& services, const HttpRequest& request) {
  const auto received = Clock::now();
  RequestRecord record = arriving(request, "completions");
  auto parsed = parse_body(request, parse_completion_request);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  const CompletionRequest& r = std::get<CompletionRequest>(parsed);
  auto model = services->models.get(r.model);
  if (!model.ok()) return error_response(api_error(model.status()));
  for (const PromptInput& input : r.prompts) {
    if (!record.prompt.empty()) record.prompt += "\n";
    if (const auto* text = std::get_if<std::string>(&input)) record.prompt += *text;
  }
  if ((*model)->remote) {
    return proxy(services, request, *model, std::move(record), received, "/completions", "cmpl-" + request.request_id,
                 r.model, r.stream, r.include_usage);
  }
  auto encoded = encode_inputs(r.prompts, *(*model)->tokenizer, /*parse_special=*/true, "prompt");
  if (auto* e = std::get_if<ApiError>(&encoded)) return error_response(*e);
  const auto& prompts = std::get<std::vector<std::vector<TokenId>>>(encoded);
  return run_job(services, std::move(record), received, *model, r, false, "cmpl-" + request.request_id, prompts,
                 r.logprobs ? LogprobsShape::kLegacy : LogprobsShape::kNone, r.logprobs.value_or(0), r.echo);
}

std::string base64_floats(const std::vector<float>& values) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // little-endian float32, as OpenAI sends them
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// Collects one embeddings request's vectors and answers when the last arrives.
class EmbeddingJob {
 public:
  EmbeddingJob(std::shared_ptr<Services> services, RequestRecord record, Clock::time_point received,
               std::shared_ptr<ServedModel> model, std::shared_ptr<ResponseWriter> writer, std::string model_name,
               bool base64, size_t inputs, int64_t tokens)
      : services_(std::move(services)),
        record_(std::move(record)),
        received_(received),
        model_(std::move(model)),
        writer_(std::move(writer)),
        model_name_(std::move(model_name)),
        base64_(base64),
        vectors_(inputs),
        remaining_(inputs),
        tokens_(tokens) {}

  void on_done(size_t index, Result<std::vector<float>> result) {
    std::lock_guard lock(mutex_);
    --remaining_;
    if (failed_) return;
    if (!result.ok()) {
      failed_ = true;
      const ApiError e = api_error(result.status());
      writer_->respond(error_response(e));
      record(e.status, e.message);
      return;
    }
    vectors_[index] = std::move(*result);
    if (remaining_ > 0) return;
    Json data = Json::array();
    for (size_t i = 0; i < vectors_.size(); ++i) {
      data.push_back({{"object", "embedding"},
                      {"index", i},
                      {"embedding", base64_ ? Json(base64_floats(vectors_[i])) : Json(vectors_[i])}});
    }
    HttpResponse response = HttpResponse::json(
        200, Json{{"object", "list"},
                  {"data", data},
                  {"model", model_name_},
                  {"usage", {{"prompt_tokens", tokens_}, {"total_tokens", tokens_}}}});
    const Clock::time_point answered = Clock::now();  // before the bytes leave, as for completions
    writer_->respond(std::move(response));
    record(200, "", answered);
  }

 private:
  void record(int status, std::string error = "", Clock::time_point answered = Clock::now()) {
    RequestRecord r = record_;
    r.model = model_->name;
    r.version = model_->version;
    r.status = status;
    r.error = std::move(error);
    r.latency_seconds = std::chrono::duration<double>(answered - received_).count();
    r.prompt_tokens = status == 200 ? tokens_ : 0;
    services_->finish(r);
  }

  const std::shared_ptr<Services> services_;
  const RequestRecord record_;
  const Clock::time_point received_;
  const std::shared_ptr<ServedModel> model_;
  const std::shared_ptr<ResponseWriter> writer_;
  const std::string model_name_;
  const bool base64_;
  std::mutex mutex_;
  // REQUIRES: mutex_ held.
  std::vector<std::vector<float>> vectors_;
  size_t remaining_;
  bool failed_ = false;
  const int64_t tokens_;
};

HttpResponse embeddings(const std::shared_ptr<Services>& services, const HttpRequest& request) {
  const auto received = Clock::now();
  RequestRecord record = arriving(request, "embeddings");
  auto parsed = parse_body(request, parse_embeddings_request);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  const EmbeddingsRequest& r = std::get<EmbeddingsRequest>(parsed);
  auto model = services->models.get(r.model);
  if (!model.ok()) return error_response(api_error(model.status()));
  if ((*model)->remote) {
    return proxy(services, request, *model, std::move(record), received, "/embeddings", "", r.model, false, false);
  }
  const int64_t context = (*model)->scheduler->context_length();
  auto encoded = encode_inputs(r.inputs, *(*model)->tokenizer, /*parse_special=*/false, "input");
  if (auto* e = std::get_if<ApiError>(&encoded)) return error_response(*e);
  auto& inputs = std::get<std::vector<std::vector<TokenId>>>(encoded);
  int64_t tokens = 0;
  for (const auto& input : inputs) {
    if (static_cast<int64_t>(input.size()) > context) {
      return error_response({.message = "an input has " + std::to_string(input.size()) +
                                        " tokens, more than this model's context of " + std::to_string(context),
                             .param = "input",
                             .code = "context_length_exceeded"});
    }
    tokens += static_cast<int64_t>(input.size());
  }
  auto writer = std::make_shared<ResponseWriter>();
  record.served_name = r.model;
  auto job = std::make_shared<EmbeddingJob>(services, std::move(record), received, *model, writer, r.model, r.base64,
                                            inputs.size(), tokens);
  for (size_t i = 0; i < inputs.size(); ++i) {
    Status s = (*model)->scheduler->submit(engine::EmbeddingRequest{
        .tokens = std::move(inputs[i]),
        .on_done = [job, i](Result<std::vector<float>> e) { job->on_done(i, std::move(e)); }});
    if (!s.ok()) {
      if (i == 0) return error_response(api_error(s));
      for (size_t j = i; j < inputs.size(); ++j) job->on_done(j, s);
      break;
    }
  }
  return HttpResponse::deferred(writer);
}

Json model_json(const std::string& id, int64_t created_ms) {
  return Json{{"id", id}, {"object", "model"}, {"created", created_ms / 1000}, {"owned_by", "keel"}};
}

}  // namespace

HttpResponse openai_error(int status, std::string_view message, std::string_view type, std::string_view code) {
  return error_response(
      {.status = status, .message = std::string(message), .type = std::string(type), .code = std::string(code)});
}

void add_openai_routes(Router& router, ServedModels& models, ServingMetrics& metrics, RateLimiter& limiter,
                       monitor::TraceWriter* traces) {
  auto services = std::make_shared<Services>(Services{models, metrics, limiter, traces});
  using Endpoint = HttpResponse (*)(const std::shared_ptr<Services>&, const HttpRequest&);
  // The rate limit comes first; requests refused before they reach a model are
  // counted here, the jobs count the rest.
  auto counted = [services](const char* endpoint, Endpoint handler) {
    return [services, endpoint, handler](const HttpRequest& request) {
      const auto received = Clock::now();
      RequestRecord record = arriving(request, endpoint);
      HttpResponse response;
      const OwnLimits own{request.key_requests_per_minute, request.key_tokens_per_minute};
      if (auto wait = services->limiter.admit(record.key, own)) {
        response = error_response({.status = 429,
                                   .message = "rate limit reached for this API key: retry in " +
                                              std::to_string(*wait) + " s",
                                   .type = "requests",
                                   .code = "rate_limit_exceeded"});
        response.headers["Retry-After"] = std::to_string(*wait);
      } else {
        response = handler(services, request);
      }
      if (!response.later) {
        record.status = response.status;
        record.latency_seconds = std::chrono::duration<double>(Clock::now() - received).count();
        if (response.status >= 400) {
          auto body = parse_json(response.body);
          if (body.ok() && body->contains("error")) record.error = (*body)["error"].value("message", "");
        }
        services->finish(record);
      }
      return response;
    };
  };
  router.post("/v1/chat/completions", counted("chat.completions", chat_completions));
  router.post("/v1/completions", counted("completions", completions));
  router.post("/v1/embeddings", counted("embeddings", embeddings));
  router.get("/v1/models", [services](const HttpRequest&) {
    auto list = services->models.list();
    if (!list.ok()) return error_response(api_error(list.status()));
    Json data = Json::array();
    for (const auto& m : *list) data.push_back(model_json(m.name, m.created_at));
    auto deployments = services->models.deployments();
    if (!deployments.ok()) return error_response(api_error(deployments.status()));
    for (const auto& d : *deployments) data.push_back(model_json(d.name, d.updated_at));
    return HttpResponse::json(200, Json{{"object", "list"}, {"data", data}});
  });
  router.get("/v1/models/{model...}", [services](const HttpRequest& r) {
    const std::string& name = r.path_params.at("model");
    auto model = services->models.get(name);
    if (!model.ok()) return error_response(api_error(model.status()));
    return HttpResponse::json(200, model_json(name, 0));
  });
  router.get("/metrics", [services](const HttpRequest&) {
    return HttpResponse::text(200, services->metrics.prometheus_text(services->models, services->traces),
                              "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace keel::server
