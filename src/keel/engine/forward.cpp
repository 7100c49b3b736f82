#include "keel/engine/forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "keel/engine/matmul.h"
#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

// out = x / sqrt(mean(x^2) + eps) * weight, per row of n (ggml sums in double too).
void rms_norm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = xr[i] * scale * weight[i];
  }
}

void add_bias(float* x, const float* bias, int64_t rows, int64_t n) {
  if (bias == nullptr) return;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) x[r * n + i] += bias[i];
  }
}

void add_into(float* x, const float* delta, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += delta[i];
}

// ggml's tanh approximation of GELU.
float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoefficient = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefficient * x * x)));
}

// cos/sin of every (row, pair) for one RoPE configuration: theta = position * scale *
// base^(-2i/n_rot) / factor[i], as ggml's rope computes it (in double here).
class RopeTable {
 public:
  RopeTable(float base, float scale, int64_t n_rot, const float* factors, std::span<const int64_t> positions)
      : base_(base), scale_(scale), half_(n_rot / 2), cos_sin_(static_cast<size_t>(positions.size() * 2 * half_)) {
    for (size_t r = 0; r < positions.size(); ++r) {
      for (int64_t i = 0; i < half_; ++i) {
        double theta = static_cast<double>(positions[r]) * scale *
                       std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
        if (factors != nullptr) theta /= factors[i];
        cos_sin_[(r * half_ + i) * 2] = static_cast<float>(std::cos(theta));
        cos_sin_[(r * half_ + i) * 2 + 1] = static_cast<float>(std::sin(theta));
      }
    }
  }
  bool is(float base, float scale) const { return base == base_ && scale == scale_; }

  // Rotates the first n_rot dimensions of each of `heads` heads of row r.
  void apply(float* x, int64_t r, int64_t heads, int64_t head_dim, RopeStyle style) const {
    const float* cs = cos_sin_.data() + r * half_ * 2;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + h * head_dim;
      for (int64_t i = 0; i < half_; ++i) {
        const int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
        const int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half_;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }

 private:
  float base_, scale_;
  int64_t half_;
  std::vector<float> cos_sin_;
};

}  // namespace

int64_t argmax(std::span<const float> values) {
  int64_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  }
  return best;
}

// ----- Decoder --------------------------------------------------------------------------

Result<std::unique_ptr<Decoder>> Decoder::create(const Model& model, const SessionOptions& options) {
  if (options.threads < 1 || options.threads > 256) {
    return invalid_argument("threads must be in [1, 256], is " + std::to_string(options.threads));
  }
  if (options.context_length < 0) return invalid_argument("context_length must not be negative");
  const int64_t context =
      options.context_length > 0 ? options.context_length : std::min<int64_t>(model.config().context_length, 4096);
  return std::unique_ptr<Decoder>(new Decoder(model, options.threads, context, options.kv_cache_type));
}

Decoder::Decoder(const Model& model, int threads, int64_t context_length, KvCacheType kv_type)
    : model_(model), pool_(threads), context_length_(context_length), kv_type_(kv_type) {}

Decoder::~Decoder() = default;

SequenceId Decoder::add_sequence() {
  const ModelConfig& c = model_.config();
  const SequenceId id = next_id_++;
  sequences_.emplace(
      id, std::make_unique<Sequence>(KvCache(kv_type_, c.layer_count, c.head_count_kv * c.head_dim, context_length_)));
  return id;
}

Result<Decoder::Sequence*> Decoder::find(SequenceId sequence) const {
  auto it = sequences_.find(sequence);
  if (it == sequences_.end()) return not_found("no sequence " + std::to_string(sequence) + " in this decoder");
  return it->second.get();
}

Status Decoder::remove_sequence(SequenceId sequence) {
  if (sequences_.erase(sequence) == 0) return not_found("no sequence " + std::to_string(sequence) + " in this decoder");
  return Status::Ok();
}

Status Decoder::truncate(SequenceId sequence, int64_t length) {
  KEEL_ASSIGN_OR_RETURN(Sequence * s, find(sequence));
  if (length < 0) return invalid_argument("cannot truncate a sequence to a negative length");
  s->position = std::min(s->position, length);
  return Status::Ok();
}

Status Decoder::copy_prefix(SequenceId from, SequenceId to, int64_t length) {
  KEEL_ASSIGN_OR_RETURN(Sequence * source, find(from));
  KEEL_ASSIGN_OR_RETURN(Sequence * target, find(to));
  if (length < 0 || length > source->position) {
    return invalid_argument("sequence " + std::to_string(from) + " has " + std::to_string(source->position) +
                            " positions, cannot copy " + std::to_string(length));
  }
  if (source != target) target->cache.copy_prefix(source->cache, length);
  target->position = length;
  return Status::Ok();
}

Result<int64_t> Decoder::position(SequenceId sequence) const {
  KEEL_ASSIGN_OR_RETURN(Sequence * s, find(sequence));
  return s->position;
}

size_t Decoder::kv_cache_bytes() const {
  size_t total = 0;
  for (const auto& [id, s] : sequences_) total += s->cache.bytes();
  return total;
}

size_t Decoder::kv_bytes_per_position() const {
  const ModelConfig& c = model_.config();
  const size_t element = kv_type_ == KvCacheType::kF16 ? 2 : 4;
  return 2 * element * static_cast<size_t>(c.layer_count * c.head_count_kv * c.head_dim);
}

void Decoder::matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* out) {
  engine::matmul(pool_, w, x, n_tokens, out, quantized_);
}

void Decoder::matmul_group(std::initializer_list<const WeightMatrix*> weights, const float* x, int64_t n_tokens,
                           std::initializer_list<float*> out) {
  const GgmlType activation = tensor_type_traits((*weights.begin())->type).vec_dot_type;
  bool shared = true;
  for (const WeightMatrix* w : weights) shared = shared && tensor_type_traits(w->type).vec_dot_type == activation;
  if (shared) {
    engine::matmul_shared_input(pool_, std::span<const WeightMatrix* const>(weights.begin(), weights.size()), x,
                                n_tokens, std::span<float* const>(out.begin(), out.size()), quantized_);
    return;
  }
  auto o = out.begin();
  for (const WeightMatrix* w : weights) matmul(*w, x, n_tokens, *o++);
}

void Decoder::attention(int64_t layer, std::span<const BatchItem> batch, const std::vector<Sequence*>& sequences,
                        const float* q, float* out) {
  const ModelConfig& c = model_.config();
  const LayerWeights& w = model_.layers()[static_cast<size_t>(layer)];
  const int64_t hd = c.head_dim, q_dim = c.head_count * hd;
  const int64_t group = c.head_count / c.head_count_kv;
  const int64_t window = w.sliding_window ? c.sliding_window : 0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Work units are (item, head) pairs; rows of item i start at first_row[i].
  std::vector<int64_t> first_row(batch.size() + 1, 0);
  for (size_t i = 0; i < batch.size(); ++i)
    first_row[i + 1] = first_row[i] + static_cast<int64_t>(batch[i].tokens.size());
  const auto units = static_cast<int64_t>(batch.size()) * c.head_count;
  pool_.run(units, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t unit = begin; unit < end; ++unit) {
      const auto item = static_cast<size_t>(unit / c.head_count);
      const int64_t h = unit % c.head_count;
      const KvCache& cache = sequences[item]->cache;
      const int64_t start = sequences[item]->position;  // position of the item's first token
      const int64_t kv_offset = (h / group) * hd;
      const int64_t stride = cache.row_stride();
      const int64_t element = cache.type() == KvCacheType::kF16 ? 2 : 4;
      const auto* keys = static_cast<const uint8_t*>(cache.keys(layer, 0)) + kv_offset * element;
      const auto* values = static_cast<const uint8_t*>(cache.values(layer, 0)) + kv_offset * element;
      for (int64_t t = 0; t < static_cast<int64_t>(batch[item].tokens.size()); ++t) {
        const int64_t row = first_row[item] + t;
        const int64_t p = start + t;
        const int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;  // causal (and windowed)
        const int64_t visible = p + 1 - lo;
        scores.resize(static_cast<size_t>(visible));
        const float* qv = q + row * q_dim + h * hd;
        float max_score = -INFINITY;
        kv_dot_rows(cache.type(), qv, keys + lo * stride, stride, visible, hd, scores.data());
        for (int64_t j = 0; j < visible; ++j) {
          scores[j] *= scale;
          max_score = std::max(max_score, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          scores[j] = std::exp(scores[j] - max_score);
          sum += scores[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* o = out + row * q_dim + h * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j < visible; ++j) scores[j] *= inv;
        kv_accumulate_rows(cache.type(), scores.data(), values + lo * stride, stride, visible, o, hd);
      }
    }
  });
}

Result<std::vector<BatchItemOutput>> Decoder::forward(std::span<const BatchItem> batch) {
  const ModelConfig& c = model_.config();
  if (batch.empty()) return invalid_argument("forward needs at least one batch item");
  std::vector<Sequence*> sequences;
  std::set<SequenceId> seen;
  int64_t n = 0;
  for (const BatchItem& item : batch) {
    KEEL_ASSIGN_OR_RETURN(Sequence * s, find(item.sequence));
    if (!seen.insert(item.sequence).second) {
      return invalid_argument("sequence " + std::to_string(item.sequence) + " appears twice in one batch");
    }
    if (item.tokens.empty()) return invalid_argument("forward needs at least one token");
    for (int32_t id : item.tokens) {
      if (id < 0 || id >= c.vocab_size) {
        return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(c.vocab_size) + ")");
      }
    }
    const auto count = static_cast<int64_t>(item.tokens.size());
    if (s->position + count > context_length_) {
      return resource_exhausted("sequence of " + std::to_string(s->position + count) +
                                " tokens exceeds the context of " + std::to_string(context_length_));
    }
    sequences.push_back(s);
    n += count;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    sequences[i]->cache.reserve(sequences[i]->position + static_cast<int64_t>(batch[i].tokens.size()));
  }

  const ArchitectureDescription& arch = model_.architecture();
  const int64_t d = c.embedding_length, hd = c.head_dim, ff = c.feed_forward_length;
  const int64_t q_dim = c.head_count * hd, kv_dim = c.head_count_kv * hd;
  std::vector<float> x(n * d), xn(n * d), q(n * q_dim), k(n * kv_dim), v(n * kv_dim), att(n * q_dim), delta(n * d);
  std::vector<float> gate(n * ff), up(n * ff);
  std::vector<int64_t> positions;
  positions.reserve(static_cast<size_t>(n));
  std::vector<Sequence*> row_sequence;
  row_sequence.reserve(static_cast<size_t>(n));
  for (size_t i = 0; i < batch.size(); ++i) {
    for (int64_t t = 0; t < static_cast<int64_t>(batch[i].tokens.size()); ++t) {
      positions.push_back(sequences[i]->position + t);
      row_sequence.push_back(sequences[i]);
    }
  }

  const WeightMatrix& embedding = model_.token_embedding();
  int64_t row = 0;
  for (const BatchItem& item : batch) {
    for (int32_t id : item.tokens) dequantize_row(embedding.type, embedding.row(id), x.data() + row++ * d, d);
  }
  if (arch.scale_embedding) {
    const float s = std::sqrt(static_cast<float>(d));
    for (float& e : x) e *= s;
  }

  std::vector<RopeTable> rope_tables;
  const auto rope_for = [&](const LayerWeights& w) -> const RopeTable& {
    for (const RopeTable& t : rope_tables) {
      if (t.is(w.rope_freq_base, w.rope_freq_scale)) return t;
    }
    return rope_tables.emplace_back(w.rope_freq_base, w.rope_freq_scale, c.rope_dimension,
                                    model_.rope_frequency_factors(), positions);
  };
  const auto rows_parallel = [&](int64_t rows, const std::function<void(int64_t)>& fn) {
    pool_.run(rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) fn(r);
    });
  };

  for (int64_t l = 0; l < c.layer_count; ++l) {
    const LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
    rms_norm(x.data(), w.attention_norm, n, d, c.rms_norm_epsilon, xn.data());
    matmul_group({&w.attention_q, &w.attention_k, &w.attention_v}, xn.data(), n, {q.data(), k.data(), v.data()});
    add_bias(q.data(), w.attention_q_bias, n, q_dim);
    add_bias(k.data(), w.attention_k_bias, n, kv_dim);
    add_bias(v.data(), w.attention_v_bias, n, kv_dim);
    if (w.attention_q_norm != nullptr) {
      rms_norm(q.data(), w.attention_q_norm, n * c.head_count, hd, c.rms_norm_epsilon, q.data());
      rms_norm(k.data(), w.attention_k_norm, n * c.head_count_kv, hd, c.rms_norm_epsilon, k.data());
    }
    const RopeTable& rope = rope_for(w);
    for (int64_t r = 0; r < n; ++r) {
      rope.apply(q.data() + r * q_dim, r, c.head_count, hd, arch.rope_style);
      rope.apply(k.data() + r * kv_dim, r, c.head_count_kv, hd, arch.rope_style);
      row_sequence[r]->cache.store(l, positions[r], k.data() + r * kv_dim, v.data() + r * kv_dim);
    }
    attention(l, batch, sequences, q.data(), att.data());
    matmul(w.attention_output, att.data(), n, delta.data());
    if (w.post_attention_norm != nullptr) {
      rms_norm(delta.data(), w.post_attention_norm, n, d, c.rms_norm_epsilon, delta.data());
    }
    add_into(x.data(), delta.data(), n * d);

    rms_norm(x.data(), w.ffn_norm, n, d, c.rms_norm_epsilon, xn.data());
    matmul_group({&w.ffn_gate, &w.ffn_up}, xn.data(), n, {gate.data(), up.data()});
    rows_parallel(n, [&](int64_t r) {
      float* g = gate.data() + r * ff;
      const float* u = up.data() + r * ff;
      if (arch.ffn_activation == FfnActivation::kGeluTanh) {
        for (int64_t i = 0; i < ff; ++i) g[i] = gelu_tanh(g[i]) * u[i];
      } else {
        for (int64_t i = 0; i < ff; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      }
    });
    matmul(w.ffn_down, gate.data(), n, delta.data());
    if (w.post_ffn_norm != nullptr) rms_norm(delta.data(), w.post_ffn_norm, n, d, c.rms_norm_epsilon, delta.data());
    add_into(x.data(), delta.data(), n * d);
  }

  // Rows whose hidden states are wanted, in batch order, and which of them need logits.
  std::vector<int64_t> out_rows;
  std::vector<int64_t> item_rows(batch.size());
  row = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchItem& item = batch[i];
    const auto count = static_cast<int64_t>(item.tokens.size());
    const bool every = item.logits == LogitsFor::kEveryToken || (item.logits == LogitsFor::kNone && item.hidden_states);
    const bool last = item.logits == LogitsFor::kLastToken || item.hidden_states;
    item_rows[i] = every ? count : last ? 1 : 0;
    for (int64_t t = count - item_rows[i]; t < count; ++t) out_rows.push_back(row + t);
    row += count;
  }
  const auto m = static_cast<int64_t>(out_rows.size());
  std::vector<float> hidden(static_cast<size_t>(m * d));
  for (int64_t i = 0; i < m; ++i) {
    rms_norm(x.data() + out_rows[i] * d, model_.output_norm(), 1, d, c.rms_norm_epsilon, hidden.data() + i * d);
  }
  // The output layer runs on the hidden rows of items that want logits (all of them,
  // unless an item asked for hidden states alone).
  std::vector<float> logit_input;
  const float* logit_rows = hidden.data();
  int64_t logit_count = m;
  const bool hidden_only = std::any_of(batch.begin(), batch.end(), [](const BatchItem& item) {
    return item.logits == LogitsFor::kNone && item.hidden_states;
  });
  if (hidden_only) {
    logit_count = 0;
    int64_t next = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].logits != LogitsFor::kNone) {
        logit_input.insert(logit_input.end(), hidden.begin() + next * d, hidden.begin() + (next + item_rows[i]) * d);
        logit_count += item_rows[i];
      }
      next += item_rows[i];
    }
    logit_rows = logit_input.data();
  }
  std::vector<float> logits(static_cast<size_t>(logit_count * c.vocab_size));
  if (logit_count > 0) matmul(model_.output(), logit_rows, logit_count, logits.data());

  std::vector<BatchItemOutput> outputs(batch.size());
  int64_t next = 0;
  int64_t next_logits = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchItem& item = batch[i];
    const int64_t rows = item_rows[i];
    if (item.logits != LogitsFor::kNone) {
      outputs[i].logits.assign(logits.begin() + next_logits * c.vocab_size,
                               logits.begin() + (next_logits + rows) * c.vocab_size);
      next_logits += rows;
    }
    if (item.hidden_states) {
      outputs[i].hidden_states.assign(hidden.begin() + next * d, hidden.begin() + (next + rows) * d);
    }
    next += rows;
    sequences[i]->position += static_cast<int64_t>(item.tokens.size());
  }
  return outputs;
}

// ----- InferenceSession -----------------------------------------------------------------

Result<std::unique_ptr<InferenceSession>> InferenceSession::create(const Model& model, const SessionOptions& options) {
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder, Decoder::create(model, options));
  const SequenceId sequence = decoder->add_sequence();
  return std::unique_ptr<InferenceSession>(new InferenceSession(std::move(decoder), sequence));
}

int64_t InferenceSession::position() const {
  auto p = decoder_->position(sequence_);
  return p.ok() ? *p : 0;
}

Result<std::vector<float>> InferenceSession::forward(std::span<const int32_t> tokens, LogitsFor which) {
  const BatchItem item{.sequence = sequence_, .tokens = tokens, .logits = which};
  KEEL_ASSIGN_OR_RETURN(std::vector<BatchItemOutput> out, decoder_->forward(std::span<const BatchItem>(&item, 1)));
  return std::move(out[0].logits);
}

Result<GenerationResult> generate_greedy(InferenceSession& session, std::span<const int32_t> prompt,
                                         int64_t max_new_tokens, int32_t stop_token,
                                         const std::function<Status(int32_t)>& on_token) {
  if (max_new_tokens < 0) return invalid_argument("max_new_tokens must not be negative");
  if (static_cast<int64_t>(prompt.size()) + max_new_tokens > session.context_length() + 1) {
    return resource_exhausted("prompt plus " + std::to_string(max_new_tokens) + " new tokens exceeds the context of " +
                              std::to_string(session.context_length()));
  }
  using Clock = std::chrono::steady_clock;
  session.reset();
  GenerationResult result;
  const auto prompt_start = Clock::now();
  KEEL_ASSIGN_OR_RETURN(std::vector<float> logits, session.forward(prompt, LogitsFor::kLastToken));
  const auto decode_start = Clock::now();
  while (static_cast<int64_t>(result.tokens.size()) < max_new_tokens) {
    if (!result.tokens.empty()) {
      const int32_t last = result.tokens.back();
      KEEL_ASSIGN_OR_RETURN(logits, session.forward(std::span<const int32_t>(&last, 1), LogitsFor::kLastToken));
    }
    const auto next = static_cast<int32_t>(argmax(logits));
    if (next == stop_token) break;
    result.tokens.push_back(next);
    if (on_token) KEEL_RETURN_IF_ERROR(on_token(next));
  }
  const auto end = Clock::now();
  result.prompt_seconds = std::chrono::duration<double>(decode_start - prompt_start).count();
  result.decode_seconds = std::chrono::duration<double>(end - decode_start).count();
  if (result.prompt_seconds > 0)
    result.prompt_tokens_per_second = static_cast<double>(prompt.size()) / result.prompt_seconds;
  const auto steps = static_cast<double>(result.tokens.empty() ? 0 : result.tokens.size() - 1);
  if (result.decode_seconds > 0 && steps > 0) result.generated_tokens_per_second = steps / result.decode_seconds;
  return result;
}

}  // namespace keel::engine
