#include "keel/engine/forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>

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

// Rotates the first n_rot dimensions of each of `heads` heads of one token at `position`.
void rope(float* x, int64_t heads, int64_t head_dim, int64_t n_rot, int64_t position, float base,
          RopeStyle style, std::vector<float>& cos_sin) {
  const int64_t half = n_rot / 2;
  cos_sin.resize(static_cast<size_t>(2 * half));
  for (int64_t i = 0; i < half; ++i) {
    const double theta = static_cast<double>(position) *
                         std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    cos_sin[2 * i] = static_cast<float>(std::cos(theta));
    cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta));
  }
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
      const int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

}  // namespace

int64_t argmax(std::span<const float> values) {
  int64_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  }
  return best;
}

Result<std::unique_ptr<InferenceSession>> InferenceSession::create(const Model& model,
                                                                   const SessionOptions& options) {
  if (options.threads < 1 || options.threads > 256) {
    return invalid_argument("threads must be in [1, 256], is " + std::to_string(options.threads));
  }
  if (options.context_length < 0) return invalid_argument("context_length must not be negative");
  const int64_t context = options.context_length > 0 ? options.context_length
                                                     : std::min<int64_t>(model.config().context_length, 4096);
  return std::unique_ptr<InferenceSession>(new InferenceSession(model, options.threads, context));
}

InferenceSession::InferenceSession(const Model& model, int threads, int64_t context_length)
    : model_(model), pool_(threads), context_length_(context_length) {
  const ModelConfig& c = model_.config();
  const size_t cache = static_cast<size_t>(c.layer_count * context_length_ * c.head_count_kv * c.head_dim);
  key_cache_.resize(cache);
  value_cache_.resize(cache);
}

InferenceSession::~InferenceSession() = default;

void InferenceSession::matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* out) {
  engine::matmul(pool_, w, x, n_tokens, out, quantized_);
}

void InferenceSession::attention(int64_t layer, int64_t n_tokens, const float* q, float* out) {
  const ModelConfig& c = model_.config();
  const int64_t hd = c.head_dim, kv_dim = c.head_count_kv * hd, q_dim = c.head_count * hd;
  const int64_t group = c.head_count / c.head_count_kv;
  const float* keys = key_cache_.data() + layer * context_length_ * kv_dim;
  const float* values = value_cache_.data() + layer * context_length_ * kv_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_.run(c.head_count, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(position_ + n_tokens));
    for (int64_t h = begin; h < end; ++h) {
      const int64_t kv_offset = (h / group) * hd;
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* qv = q + t * q_dim + h * hd;
        const int64_t visible = position_ + t + 1;  // causal: positions 0 .. position_ + t
        float max_score = -INFINITY;
        for (int64_t j = 0; j < visible; ++j) {
          const float* kv = keys + j * kv_dim + kv_offset;
          float s = 0;
          for (int64_t i = 0; i < hd; ++i) s += qv[i] * kv[i];
          scores[j] = s * scale;
          max_score = std::max(max_score, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          scores[j] = std::exp(scores[j] - max_score);
          sum += scores[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* o = out + t * q_dim + h * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j < visible; ++j) {
          const float p = scores[j] * inv;
          const float* vv = values + j * kv_dim + kv_offset;
          for (int64_t i = 0; i < hd; ++i) o[i] += p * vv[i];
        }
      }
    }
  });
}

Result<std::vector<float>> InferenceSession::forward(std::span<const int32_t> tokens, LogitsFor which) {
  const ModelConfig& c = model_.config();
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) return invalid_argument("forward needs at least one token");
  for (int32_t id : tokens) {
    if (id < 0 || id >= c.vocab_size) {
      return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(c.vocab_size) + ")");
    }
  }
  if (position_ + n > context_length_) {
    return resource_exhausted("sequence of " + std::to_string(position_ + n) + " tokens exceeds the context of " +
                              std::to_string(context_length_));
  }
  const ArchitectureDescription& arch = model_.architecture();
  const int64_t d = c.embedding_length, hd = c.head_dim, ff = c.feed_forward_length;
  const int64_t q_dim = c.head_count * hd, kv_dim = c.head_count_kv * hd;
  std::vector<float> x(n * d), xn(n * d), q(n * q_dim), k(n * kv_dim), v(n * kv_dim), att(n * q_dim), delta(n * d);
  std::vector<float> gate(n * ff), up(n * ff), cos_sin;

  const WeightMatrix& embedding = model_.token_embedding();
  for (int64_t t = 0; t < n; ++t) dequantize_row(embedding.type, embedding.row(tokens[t]), x.data() + t * d, d);

  for (int64_t l = 0; l < c.layer_count; ++l) {
    const LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
    rms_norm(x.data(), w.attention_norm, n, d, c.rms_norm_epsilon, xn.data());
    matmul(w.attention_q, xn.data(), n, q.data());
    matmul(w.attention_k, xn.data(), n, k.data());
    matmul(w.attention_v, xn.data(), n, v.data());
    float* layer_keys = key_cache_.data() + l * context_length_ * kv_dim;
    float* layer_values = value_cache_.data() + l * context_length_ * kv_dim;
    for (int64_t t = 0; t < n; ++t) {
      const int64_t pos = position_ + t;
      rope(q.data() + t * q_dim, c.head_count, hd, c.rope_dimension, pos, c.rope_freq_base, arch.rope_style, cos_sin);
      rope(k.data() + t * kv_dim, c.head_count_kv, hd, c.rope_dimension, pos, c.rope_freq_base, arch.rope_style,
           cos_sin);
      std::copy_n(k.data() + t * kv_dim, kv_dim, layer_keys + pos * kv_dim);
      std::copy_n(v.data() + t * kv_dim, kv_dim, layer_values + pos * kv_dim);
    }
    attention(l, n, q.data(), att.data());
    matmul(w.attention_output, att.data(), n, delta.data());
    for (int64_t i = 0; i < n * d; ++i) x[i] += delta[i];

    rms_norm(x.data(), w.ffn_norm, n, d, c.rms_norm_epsilon, xn.data());
    matmul(w.ffn_gate, xn.data(), n, gate.data());
    matmul(w.ffn_up, xn.data(), n, up.data());
    for (int64_t i = 0; i < n * ff; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];  // SwiGLU
    matmul(w.ffn_down, gate.data(), n, delta.data());
    for (int64_t i = 0; i < n * d; ++i) x[i] += delta[i];
  }

  const int64_t first = which == LogitsFor::kLastToken ? n - 1 : 0;
  const int64_t rows = n - first;
  rms_norm(x.data() + first * d, model_.output_norm(), rows, d, c.rms_norm_epsilon, xn.data());
  std::vector<float> logits(static_cast<size_t>(rows * c.vocab_size));
  matmul(model_.output(), xn.data(), rows, logits.data());
  position_ += n;
  return logits;
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
  if (result.prompt_seconds > 0) result.prompt_tokens_per_second = static_cast<double>(prompt.size()) / result.prompt_seconds;
  const auto steps = static_cast<double>(result.tokens.empty() ? 0 : result.tokens.size() - 1);
  if (result.decode_seconds > 0 && steps > 0) result.generated_tokens_per_second = steps / result.decode_seconds;
  return result;
}

}  // namespace keel::engine
