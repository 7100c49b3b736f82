#include "keel/server/openai_proxy.h"

#include <deque>
#include <optional>

#include "keel/server/openai_routes.h"
#include "keel/util/json_members.h"

namespace keel::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxErrorBody = 1 << 20;   // an upstream's error answer kept for the message
constexpr size_t kMaxWholeBody = 64 << 20;  // a non-streamed answer (embeddings of many inputs)

std::string short_text(const std::string& s) { return s.size() <= 300 ? s : s.substr(0, 300) + "..."; }

// The upstream's error message: OpenAI's error.message, or the start of the body.
std::string upstream_message(const std::string& body) {
  auto json = parse_json(body);
  if (json.ok() && json->is_object() && json->contains("error")) {
    const Json& e = (*json)["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  return short_text(body);
}

// One proxied request, from the first byte sent upstream to the record. The upstream
// call's callbacks run one at a time where the call runs (the connection's strand, or
// the upstream client's thread).
class ProxyJob : public std::enable_shared_from_this<ProxyJob> {
 public:
  ProxyJob(std::shared_ptr<ServedModel> model, ProxiedRequest request, std::shared_ptr<ResponseWriter> writer,
           std::function<void(const RequestRecord&)> finish)
      : model_(std::move(model)), r_(std::move(request)), writer_(std::move(writer)), finish_(std::move(finish)) {
    served_name_ = r_.record.served_name;
  }

  ~ProxyJob() { model_->remote->in_flight.fetch_sub(1, std::memory_order_relaxed); }

  void start(UpstreamClient& client) {
    const RemoteModel& remote = *model_->remote;
    UpstreamRequest request;
    request.target = remote.url.path + r_.path;
    request.headers["Content-Type"] = "application/json";
    request.headers["Accept"] = r_.stream ? "text/event-stream" : "application/json";
    request.headers["x-request-id"] = r_.record.id;  // the upstream's trace, if it keeps one, has the same id
    if (!remote.api_key.empty()) request.headers["Authorization"] = "Bearer " + remote.api_key;
    request.body = upstream_body(remote.endpoint.upstream_model);
    auto self = shared_from_this();
    sent_ = Clock::now();
    auto call = client.start(remote.url, std::move(request),
                             {.on_head = [self](int status, const Headers& headers) { self->on_head(status, headers); },
                              .on_data = [self](std::string_view data) { self->on_data(data); },
                              .on_done = [self](Status s) { self->on_done(std::move(s)); }},
                             r_.io);
    writer_->on_cancel([weak = std::weak_ptr<UpstreamCall>(call)] {
      if (auto c = weak.lock()) c->cancel();
    });
  }

 private:
  // The client's body with the upstream's model name and, for a stream, the usage chunk
  // asked for (for the token counts; dropped again unless the client asked); the rest is
  // passed on as the client wrote it.
  std::string upstream_body(const std::string& upstream_model) const {
    auto members = json_object_members(r_.body);
    if (!members.ok()) return r_.body;  // cannot happen: the route parsed it
    const std::string model = dump_json(Json(upstream_model));
    std::string options;
    bool has_model = false;
    bool has_options = false;
    for (JsonMember& m : *members) {
      if (m.key == "model") {
        m.value = model;
        has_model = true;
      } else if (m.key == "stream_options" && r_.stream && !has_options) {
        auto parsed = parse_json(m.value);
        Json o = parsed.ok() && parsed->is_object() ? std::move(*parsed) : Json::object();
        o["include_usage"] = true;
        options = dump_json(o);
        m.value = options;
        has_options = true;
      }
    }
    if (!has_model) members->push_back({.key = "model", .value = model});
    if (r_.stream && !has_options) {
      options = R"({"include_usage":true})";
      members->push_back({.key = "stream_options", .value = options});
    }
    return json_object_text(*members);
  }

  void on_head(int status, const Headers& headers) {
    status_ = status;
    if (auto it = headers.find("x-request-id"); it != headers.end()) upstream_id_ = it->second;
    if (auto it = headers.find("retry-after"); it != headers.end()) retry_after_ = it->second;
    // An upstream that answers a stream request with one JSON body is relayed whole.
    auto type = headers.find("content-type");
    streaming_ = r_.stream && status == 200 && type != headers.end() &&
                 type->second.find("text/event-stream") != std::string::npos;
    if (streaming_) {
      Headers h{{"Cache-Control", "no-cache"}};
      if (!upstream_id_.empty()) h["x-upstream-request-id"] = upstream_id_;
      writer_->begin(200, "text/event-stream", h);
    }
  }

  void on_data(std::string_view data) {
    if (!streaming_) {
      const size_t limit = status_ == 200 ? kMaxWholeBody : kMaxErrorBody;
      if (body_.size() + data.size() <= limit) {
        body_.append(data);
      } else {
        too_big_ = true;
      }
      return;
    }
    pending_.append(data);
    // Events end with a blank line; the upstream may use \r\n.
    for (;;) {
      size_t end = pending_.find("\n\n");
      size_t sep = 2;
      const size_t crlf = pending_.find("\r\n\r\n");
      if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
        end = crlf;
        sep = 4;
      }
      if (end == std::string::npos) break;
      const std::string event = pending_.substr(0, end);
      pending_.erase(0, end + sep);
      relay_event(event);
    }
  }

  // One upstream event: each `data:` line rewritten and passed on; other lines (SSE
  // comments, keep-alives) pass as they are.
  void relay_event(const std::string& event) {
    std::string out;
    size_t start = 0;
    while (start <= event.size()) {
      size_t nl = event.find('\n', start);
      if (nl == std::string::npos) nl = event.size();
      std::string line = event.substr(start, nl - start);
      start = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.starts_with("data:")) {
        std::string_view payload = std::string_view(line).substr(5);
        if (payload.starts_with(" ")) payload.remove_prefix(1);
        if (payload == "[DONE]") {
          out += "data: [DONE]\n";
        } else if (auto rewritten = relay_chunk(payload)) {
          out += "data: " + *rewritten + "\n";
        }
      } else if (!line.empty()) {
        out += line + "\n";
      }
    }
    if (!out.empty()) writer_->write(out + "\n");
  }

  // A streamed chunk: noted for the trace, then given Keel's id and the served name.
  // nullopt drops it (the usage chunk the client did not ask for).
  std::optional<std::string> relay_chunk(std::string_view payload) {
    auto parsed = parse_json(payload);
    if (!parsed.ok() || !parsed->is_object()) return std::string(payload);  // not ours to judge
    Json& chunk = *parsed;
    if (chunk.contains("error")) error_ = upstream_message(std::string(payload));
    note_usage(chunk);
    if (chunk.contains("choices") && chunk["choices"].is_array()) {
      for (const Json& choice : chunk["choices"]) note_choice(choice, /*delta=*/true);
    }
    const bool usage_only = chunk.contains("usage") && chunk["usage"].is_object() &&
                            (!chunk.contains("choices") || chunk["choices"].empty());
    if (!r_.include_usage) {
      if (usage_only) return std::nullopt;
      chunk.erase("usage");
    }
    rewrite(chunk);
    return dump_json(chunk);
  }

  void note_usage(const Json& body) {
    if (!body.contains("usage") || !body["usage"].is_object()) return;
    const Json& u = body["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) prompt_tokens_ = u["prompt_tokens"].get<int64_t>();
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) {
      completion_tokens_ = u["completion_tokens"].get<int64_t>();
    }
    usage_seen_ = true;
  }

  void note_choice(const Json& choice, bool delta) {
    if (!choice.is_object()) return;
    const size_t index = choice.contains("index") && choice["index"].is_number_unsigned() ? choice["index"].get<size_t>() : 0;
    if (index >= 1024) return;
    if (texts_.size() <= index) texts_.resize(index + 1);
    const Json* text = nullptr;
    if (delta && choice.contains("delta") && choice["delta"].is_object() && choice["delta"].contains("content")) {
      text = &choice["delta"]["content"];
    } else if (!delta && choice.contains("message") && choice["message"].is_object() &&
               choice["message"].contains("content")) {
      text = &choice["message"]["content"];
    } else if (choice.contains("text")) {
      text = &choice["text"];
    }
    if (text != nullptr && text->is_string() && !text->get_ref<const std::string&>().empty()) {
      if (!first_token_) first_token_ = Clock::now();
      texts_[index] += text->get_ref<const std::string&>();
      ++content_chunks_;
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      finish_reason_ = choice["finish_reason"].get<std::string>();
    }
  }

  // Keel's id, the served name, and the version that answered (as local models give
  // it) in place of the upstream's.
  void rewrite(Json& body) const {
    if (!r_.id.empty() && body.contains("id")) body["id"] = r_.id;
    if (body.contains("model")) body["model"] = served_name_;
    if (!r_.id.empty()) body["system_fingerprint"] = fingerprint();
  }

  std::string fingerprint() const { return "keel-" + model_->name + "@" + std::to_string(model_->version); }

  void on_done(Status s) {
    upstream_done_ = Clock::now();
    if (!s.ok()) return fail(s);
    if (streaming_) {
      if (!pending_.empty()) relay_event(pending_);
      writer_->end();
      return record(200, error_);
    }
    if (status_ != 200) return relay_error();
    if (too_big_) return fail(unavailable("the upstream's answer is larger than " + std::to_string(kMaxWholeBody >> 20) +
                                          " MiB"));
    // The answer is relayed as it came but for the members Keel rewrites; the rest (an
    // embedding's vectors) is checked, not parsed.
    auto members = json_object_members(body_);
    if (!members.ok()) {
      return fail(unavailable("the upstream answered with something that is not a JSON object (" +
                              members.status().message() + "): " + short_text(body_)));
    }
    Json edits = Json::object();  // the members' new values
    if (!r_.id.empty()) edits["system_fingerprint"] = fingerprint();
    for (JsonMember& m : *members) {
      if (m.key == "usage") {
        if (auto usage = parse_json(m.value); usage.ok()) note_usage(Json{{"usage", std::move(*usage)}});
      } else if (m.key == "choices") {
        auto choices = parse_json(m.value);
        if (choices.ok() && choices->is_array()) {
          for (const Json& choice : *choices) note_choice(choice, /*delta=*/false);
        }
      } else if (m.key == "id" && !r_.id.empty()) {
        edits["id"] = r_.id;
      } else if (m.key == "model") {
        edits["model"] = served_name_;
      }
    }
    std::deque<std::string> texts;  // the new values' text, which the members point at
    for (JsonMember& m : *members) {
      if (!edits.contains(m.key)) continue;
      m.value = texts.emplace_back(dump_json(edits[m.key]));
      edits.erase(m.key);
    }
    for (const auto& [key, value] : edits.items()) {
      members->push_back({.key = key, .value = texts.emplace_back(dump_json(value))});
    }
    first_token_.reset();  // a whole answer has no first token of its own
    HttpResponse response = HttpResponse::text(200, json_object_text(*members), "application/json");
    if (!upstream_id_.empty()) response.headers["x-upstream-request-id"] = upstream_id_;
    writer_->respond(std::move(response));
    record(200);
  }

  // The upstream refused or failed: its own errors pass through where they are the
  // client's to fix; the rest say that the upstream failed.
  void relay_error() {
    const std::string message = upstream_message(body_);
    const std::string where = "the upstream of '" + served_name_ + "'";
    if (status_ == 401 || status_ == 403) {
      return answer_error(502, where + " refused Keel's credentials (HTTP " + std::to_string(status_) + ": " + message + ")",
                          "server_error", "upstream_auth_failed");
    }
    if (status_ == 404) {
      return answer_error(502, where + " does not serve '" + model_->remote->endpoint.upstream_model + "' (HTTP 404: " +
                                   message + ")",
                          "server_error", "upstream_model_not_found");
    }
    if (status_ == 429) return answer_error(429, message, "rate_limit_error", "upstream_rate_limited");
    if (status_ >= 400 && status_ < 500) {
      // The client's mistake as the upstream judged it: its own error object.
      auto parsed = parse_json(body_);
      if (parsed.ok() && parsed->is_object() && parsed->contains("error") && (*parsed)["error"].is_object()) {
        writer_->respond(HttpResponse::json(status_, *parsed));
        return record(status_, message);
      }
      return answer_error(status_, message, "invalid_request_error", "");
    }
    answer_error(status_ == 504 ? 504 : 502, where + " failed (HTTP " + std::to_string(status_) + ": " + message + ")",
                 "server_error", "upstream_error");
  }

  void fail(const Status& s) {
    if (s.code() == ErrorCode::kCancelled && writer_->cancelled()) {
      return record(499, "the client closed the connection");
    }
    const int status = s.code() == ErrorCode::kDeadlineExceeded ? 504 : 502;
    const std::string message = "the upstream of '" + served_name_ + "' failed: " + s.message();
    if (streaming_) {
      writer_->write("data: " + dump_json(Json{{"error", {{"message", message}, {"type", "server_error"},
                                                           {"param", nullptr}, {"code", "upstream_error"}}}}) +
                     "\n\ndata: [DONE]\n\n");
      writer_->end();
      return record(status, message);
    }
    answer_error(status, message, "server_error", "upstream_error");
  }

  void answer_error(int status, const std::string& message, const char* type, const char* code) {
    HttpResponse response = openai_error(status, message, type, code);
    if (status == 429) response.headers["Retry-After"] = retry_after_.empty() ? "1" : retry_after_;
    writer_->respond(std::move(response));
    record(status, message);
  }

  void record(int status, std::string error = "") {
    RequestRecord r = r_.record;
    r.model = model_->name;
    r.version = model_->version;
    r.status = status;
    r.error = std::move(error);
    r.latency_seconds = std::chrono::duration<double>(Clock::now() - r_.received).count();
    r.upstream_seconds = std::chrono::duration<double>(upstream_done_ - sent_).count();
    if (first_token_) r.time_to_first_token_seconds = std::chrono::duration<double>(*first_token_ - r_.received).count();
    r.prompt_tokens = prompt_tokens_;
    // Without the upstream's usage, each content chunk is about one token.
    r.completion_tokens = usage_seen_ ? completion_tokens_ : content_chunks_;
    for (size_t i = 0; i < texts_.size(); ++i) {
      if (i > 0) r.response += "\n";
      r.response += texts_[i];
    }
    r.finish_reason = finish_reason_;
    finish_(r);
  }

  const std::shared_ptr<ServedModel> model_;
  const ProxiedRequest r_;
  const std::shared_ptr<ResponseWriter> writer_;
  const std::function<void(const RequestRecord&)> finish_;
  std::string served_name_;
  // Touched by the call's callbacks only.
  int status_ = 0;
  bool streaming_ = false;
  bool too_big_ = false;
  std::string upstream_id_;
  std::string retry_after_;
  std::string body_;     // a whole (non-streamed) answer or an error
  std::string pending_;  // streamed bytes short of a whole event
  std::string error_;    // an error event inside a stream
  std::vector<std::string> texts_;  // by choice index
  std::string finish_reason_;
  std::optional<Clock::time_point> first_token_;
  Clock::time_point sent_;           // the request handed to the upstream client
  Clock::time_point upstream_done_;  // the upstream's answer ended (or failed)
  bool usage_seen_ = false;
  int64_t prompt_tokens_ = 0;
  int64_t completion_tokens_ = 0;
  int64_t content_chunks_ = 0;
};

}  // namespace

HttpResponse proxy_openai_request(ServedModels& models, const std::shared_ptr<ServedModel>& model,
                                  ProxiedRequest request, std::function<void(const RequestRecord&)> finish) {
  RemoteModel& remote = *model->remote;
  if (remote.in_flight.fetch_add(1, std::memory_order_relaxed) >= remote.max_in_flight) {
    remote.in_flight.fetch_sub(1, std::memory_order_relaxed);
    HttpResponse busy = openai_error(429, "the server is busy: " + std::to_string(remote.max_in_flight) +
                                              " requests to this upstream are in flight",
                                     "rate_limit_error", "queue_full");
    busy.headers["Retry-After"] = "1";
    return busy;
  }
  auto writer = std::make_shared<ResponseWriter>();
  auto job = std::make_shared<ProxyJob>(model, std::move(request), writer, std::move(finish));  // owns the in-flight count now
  job->start(models.upstreams());
  return HttpResponse::deferred(writer);
}

}  // namespace keel::server
