#include "keel/cli/eval_judges.h"

#include <filesystem>
#include <map>

#include "keel/monitor/traces.h"
#include "keel/prompts/prompt_registry.h"
#include "keel/registry/model_registry.h"
#include "keel/util/id.h"
#include "keel/util/json.h"
#include "keel/util/sha256.h"

namespace keel::cli {
namespace {

Result<std::string> resolve_rubric(CliContext& ctx, const eval::Judge& judge) {
  if (judge.rubric_reference.empty()) return judge.rubric;
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx.db());
  KEEL_ASSIGN_OR_RETURN(store::LocalArtifactStore * blobs, ctx.artifacts());
  registry::ModelRegistry models(*db, *blobs);
  prompts::PromptRegistry registry(models);
  auto [name, ref] = prompts::split_prompt_reference(judge.rubric_reference);
  auto v = registry.get(name, ref);
  if (!v.ok()) return v.status().with_context(judge.source + ": the judge's rubric " + judge.rubric_reference);
  if (v->is_chat) {
    return invalid_argument(judge.source + ": the judge's rubric " + judge.rubric_reference +
                            " is a chat prompt; a rubric is a text prompt (set generation.chat for chat models)");
  }
  Status st = eval::check_rubric(judge, v->template_text);
  if (!st.ok())
    return invalid_argument(judge.source + ": the judge's rubric " + judge.rubric_reference + ": " + st.message());
  return v->template_text;
}

}  // namespace

Result<std::unique_ptr<JudgeClient>> JudgeClient::open(CliContext& ctx, const eval::Judge& judge,
                                                       const LocalGeneratorOptions& options,
                                                       const ResolvedModel* evaluated,
                                                       eval::Generator* evaluated_generator) {
  std::unique_ptr<JudgeClient> client(new JudgeClient(ctx, judge));
  KEEL_ASSIGN_OR_RETURN(client->rubric_, resolve_rubric(ctx, judge));
  auto model = resolve_model(ctx, judge.model.reference, judge.model.endpoint, judge.model.api_key_env);
  if (!model.ok()) return model.status().with_context(judge.source + ": the judge's model");
  client->model_ = std::move(*model);
  const ResolvedModel& m = client->model_;
  // What the cache must tell apart: a version by its bytes, a file by its bytes, an
  // endpoint by its address and model name (what it serves is its own business).
  if (m.remote) {
    client->identity_ = "endpoint " + m.remote->base_url + " model " + m.remote->upstream_model;
  } else if (m.version) {
    client->identity_ = "version " + m.reference + " sha256 " + m.sha256;
  } else {
    KEEL_ASSIGN_OR_RETURN(std::string digest, Sha256::of_file(m.local_reference));
    client->identity_ = "file sha256 " + digest;
  }
  const bool same = evaluated && evaluated_generator && evaluated->reference == m.reference &&
                    static_cast<bool>(evaluated->remote) == static_cast<bool>(m.remote) &&
                    (!m.remote || (evaluated->remote->base_url == m.remote->base_url &&
                                   evaluated->remote->upstream_model == m.remote->upstream_model));
  if (same) {
    client->generator_ = evaluated_generator;
  } else {
    auto generator = open_generator(ctx, m, options);
    if (!generator.ok()) return generator.status().with_context(judge.source + ": the judge's model " + m.reference);
    client->owned_ = std::move(*generator);
    client->generator_ = client->owned_.get();
  }
  return client;
}

std::string JudgeClient::cache_key(const std::string& prompt) const {
  const eval::GenerationParams& g = judge_.generation;
  Json params = {{"max_tokens", g.max_tokens},
                 {"temperature", g.temperature},
                 {"top_p", g.top_p},
                 {"seed", g.seed},
                 {"stop", g.stop},
                 {"chat", g.chat}};
  Sha256 h;
  h.update(identity_);
  h.update(std::string_view("\n", 1));
  h.update(dump_json(params));
  h.update(std::string_view("\n", 1));
  h.update(prompt);
  return h.hex_digest();
}

Result<std::vector<JudgeAnswer>> JudgeClient::ask(const std::vector<std::string>& prompts) {
  KEEL_ASSIGN_OR_RETURN(store::Db * db, ctx_.db());
  std::vector<JudgeAnswer> answers(prompts.size());
  std::vector<std::string> keys(prompts.size());
  std::map<std::string, std::vector<size_t>> missing;  // key -> the prompts that need it
  std::vector<std::string> order;                      // missing keys, first seen first
  for (size_t i = 0; i < prompts.size(); ++i) {
    keys[i] = cache_key(prompts[i]);
    KEEL_ASSIGN_OR_RETURN(store::DbRows rows,
                          db->query("SELECT response, trace_id FROM judge_cache WHERE key = ?", {keys[i]}));
    if (!rows.empty()) {
      answers[i] = {rows.rows[0].get_text(0), true, rows.rows[0].get_text(1)};
      ++cache_hits_;
      continue;
    }
    auto& waiting = missing[keys[i]];
    if (waiting.empty()) order.push_back(keys[i]);
    waiting.push_back(i);
  }
  if (order.empty()) return answers;

  std::vector<std::string> asked;
  for (const auto& key : order) asked.push_back(prompts[missing[key].front()]);
  const int64_t started_at = now_millis();
  auto completed = generator_->complete(asked, judge_.generation);
  if (!completed.ok()) return completed.status().with_context(judge_.source + ": the judge " + model_.reference);
  std::vector<eval::Completion> done = std::move(*completed);
  if (done.size() != asked.size()) return internal_error("the judge's model returned a wrong number of answers");
  calls_ += static_cast<int64_t>(asked.size());

  std::vector<monitor::Trace> traces;
  for (size_t k = 0; k < asked.size(); ++k) {
    monitor::Trace t;
    t.id = new_id();
    t.started_at = started_at;
    t.user = ctx_.actor();
    t.endpoint = kJudgeTraceEndpoint;
    t.served_name = judge_.model.reference;
    if (model_.version) {
      t.model = model_.version->model_name;
      t.version = model_.version->version;
    } else {
      t.model = model_.reference;
    }
    t.prompt = asked[k];
    t.response = monitor::storable_text(done[k].text);
    t.prompt_tokens = done[k].prompt_tokens;
    t.completion_tokens = done[k].completion_tokens;
    t.latency_ms = done[k].latency_ms;
    if (done[k].latency_ms > 0) {
      t.tokens_per_second = static_cast<double>(done[k].completion_tokens) / (done[k].latency_ms / 1000.0);
    }
    t.finish_reason = done[k].finish_reason;
    t.status = 200;
    traces.push_back(std::move(t));
  }
  // The traces first, then the cache rows that name them.
  monitor::TraceStore trace_store(*db);
  KEEL_RETURN_IF_ERROR(trace_store.append(traces).with_context("recording the judge's calls"));
  KEEL_RETURN_IF_ERROR(
      db->transaction([&](store::SqlExecutor& sql) -> Status {
          for (size_t k = 0; k < asked.size(); ++k) {
            KEEL_RETURN_IF_ERROR(
                sql.exec("INSERT INTO judge_cache (key, model, response, prompt_tokens, completion_tokens,"
                         " trace_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                         {order[k], model_.reference, traces[k].response, traces[k].prompt_tokens,
                          traces[k].completion_tokens, traces[k].id, now_millis()})
                    .status());
          }
          return Status::Ok();
        }).with_context("caching the judge's answers"));
  for (size_t k = 0; k < asked.size(); ++k) {
    for (size_t i : missing[order[k]]) answers[i] = {traces[k].response, false, traces[k].id};
  }
  return answers;
}

}  // namespace keel::cli
