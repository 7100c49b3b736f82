#include "keel/train/lora_model.h"

#include <algorithm>

#include "keel/train/linear.h"
#include "keel/train/lora.h"
#include "keel/train/ops.h"

namespace keel::train {

std::vector<int32_t> next_token_targets(std::span<const int32_t> tokens, std::span<const uint8_t> loss_mask) {
  std::vector<int32_t> targets(tokens.size(), -1);
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    if (loss_mask.empty() || (t + 1 < loss_mask.size() && loss_mask[t + 1] != 0)) targets[t] = tokens[t + 1];
  }
  return targets;
}

// What one layer's backward needs from its forward, [rows][width] each.
struct LoraModel::LayerActivations {
  std::vector<float> x_in, rstd_attention, xn_attention, q, k, v, lse, attention, x_mid, rstd_ffn, xn_ffn, gate, up,
      act;
  LoraActivation lora[kLoraModuleCount];

  size_t bytes() const {
    size_t n = 0;
    for (const auto* b : {&x_in, &rstd_attention, &xn_attention, &q, &k, &v, &lse, &attention, &x_mid, &rstd_ffn,
                          &xn_ffn, &gate, &up, &act}) {
      n += b->capacity() * sizeof(float);
    }
    for (const auto& l : lora) n += l.h.capacity() * sizeof(float);
    return n;
  }
};

// A micro-batch laid out as rows: sequences one after another.
struct LoraModel::Batch {
  std::vector<int32_t> tokens, targets;
  std::vector<Segment> segments;
  std::vector<int64_t> positions;
  int64_t rows = 0;
  int64_t target_count = 0;
  std::vector<RopeAngles> rope;    // one per distinct (base, scale) of the layers
  std::vector<size_t> layer_rope;  // rope[layer_rope[l]] is layer l's
};

// Buffers kept from one call to the next: a step's buffers are as large as the last
// one's, so reusing them spares mapping and faulting in hundreds of MiB a step.
struct LoraModel::Buffers {
  // Every layer's activations (one set with checkpointing or without a backward), and
  // with checkpointing each layer's input.
  std::vector<LayerActivations> stored;
  std::vector<std::vector<float>> layer_inputs;
  std::vector<float> x, next, hidden, rstd, dhidden, dx;
  // Gradients inside a layer's backward.
  std::vector<float> d_act, d_gate, d_up, d_xn, d_att, dq, dk, dv;
  LinearScratch linear;
  LoraScratch lora;
  OutputLossScratch loss;
};

LoraModel::LoraModel(const engine::Model& model, LoraWeights& lora, const LoraModelOptions& options)
    : model_(model),
      lora_(lora),
      options_(options),
      pool_(std::make_unique<engine::ComputePool>(options.threads)),
      buffers_(std::make_unique<Buffers>()) {}

LoraModel::~LoraModel() = default;

Result<std::unique_ptr<LoraModel>> LoraModel::create(const engine::Model& model, LoraWeights& lora,
                                                     const LoraModelOptions& options) {
  const engine::ArchitectureDescription& arch = model.architecture();
  if (arch.has_qk_norm || arch.has_post_norms || arch.ffn_activation != engine::FfnActivation::kSilu ||
      arch.sliding_window_period > 0 || arch.scale_embedding) {
    return invalid_argument("training does not support the " + arch.name +
                            " architecture yet (q/k norms, post-norms, GeGLU, sliding windows or scaled "
                            "embeddings); supported: llama-family decoders");
  }
  if (options.threads < 1 || options.threads > 256) {
    return invalid_argument("threads must be in [1, 256], is " + std::to_string(options.threads));
  }
  if (options.loss_chunk_tokens < 1) return invalid_argument("loss_chunk_tokens must be positive");
  for (const LoraAdapter& a : lora.adapters()) {
    if (a.layer >= model.config().layer_count) return invalid_argument("LoRA adapters were made for another model");
    const engine::WeightMatrix& base = lora_base_matrix(model.layers()[static_cast<size_t>(a.layer)], a.module);
    if (base.rows != a.out || base.cols != a.in) {
      return invalid_argument("LoRA adapter for " + base.name + " has shape [" + std::to_string(a.out) + "][" +
                              std::to_string(a.in) + "], the model's is [" + std::to_string(base.rows) + "][" +
                              std::to_string(base.cols) + "]");
    }
  }
  return std::unique_ptr<LoraModel>(new LoraModel(model, lora, options));
}

Result<LoraModel::Batch> LoraModel::prepare(std::span<const TrainingSequence> batch) const {
  const engine::ModelConfig& c = model_.config();
  if (batch.empty()) return invalid_argument("a training batch needs at least one sequence");
  Batch b;
  for (const TrainingSequence& s : batch) {
    if (s.tokens.empty()) return invalid_argument("a training sequence needs at least one token");
    if (s.targets.size() != s.tokens.size()) {
      return invalid_argument("a training sequence has " + std::to_string(s.tokens.size()) + " tokens but " +
                              std::to_string(s.targets.size()) + " targets");
    }
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= c.vocab_size || s.targets[i] < -1 || s.targets[i] >= c.vocab_size) {
        const int32_t id = s.tokens[i] < 0 || s.tokens[i] >= c.vocab_size ? s.tokens[i] : s.targets[i];
        return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(c.vocab_size) + ")" +
                                (id == s.targets[i] ? " (a target; -1 masks)" : ""));
      }
    }
    const auto length = static_cast<int64_t>(s.tokens.size());
    if (length > c.context_length) {
      return invalid_argument("a training sequence of " + std::to_string(length) +
                              " tokens exceeds the model's context of " + std::to_string(c.context_length));
    }
    b.segments.push_back({b.rows, length});
    b.tokens.insert(b.tokens.end(), s.tokens.begin(), s.tokens.end());
    b.targets.insert(b.targets.end(), s.targets.begin(), s.targets.end());
    for (int64_t t = 0; t < length; ++t) b.positions.push_back(t);
    b.rows += length;
  }
  for (int32_t t : b.targets) b.target_count += t >= 0 ? 1 : 0;
  if (b.target_count == 0) return invalid_argument("a training batch has no target token (everything is masked)");
  std::vector<std::pair<float, float>> seen;
  for (const engine::LayerWeights& w : model_.layers()) {
    const std::pair<float, float> key{w.rope_freq_base, w.rope_freq_scale};
    auto it = std::find(seen.begin(), seen.end(), key);
    if (it == seen.end()) {
      seen.push_back(key);
      b.rope.emplace_back(key.first, key.second, c.rope_dimension, model_.rope_frequency_factors(), b.positions);
      it = seen.end() - 1;
    }
    b.layer_rope.push_back(static_cast<size_t>(it - seen.begin()));
  }
  return b;
}

namespace {

// The row-wise operations of a layer, split by rows across the pool (each row's result
// is computed as on one thread).
void rms_norm_forward_rows(engine::ComputePool& pool, const float* x, const float* weight, int64_t rows, int64_t n,
                           float eps, float* out, float* rstd) {
  pool.run(rows,
           [&](int64_t b, int64_t e) { rms_norm_forward(x + b * n, weight, e - b, n, eps, out + b * n, rstd + b); });
}

void rms_norm_backward_rows(engine::ComputePool& pool, const float* dout, const float* x, const float* weight,
                            const float* rstd, int64_t rows, int64_t n, float* dx) {
  pool.run(rows, [&](int64_t b, int64_t e) {
    rms_norm_backward(dout + b * n, x + b * n, weight, rstd + b, e - b, n, dx + b * n);
  });
}

// x[i] += y[i] over rows of n.
void add_rows(engine::ComputePool& pool, float* x, const float* y, int64_t rows, int64_t n) {
  pool.run(rows, [&](int64_t b, int64_t e) {
    for (int64_t i = b * n; i < e * n; ++i) x[i] += y[i];
  });
}

void add_bias(float* x, const float* bias, int64_t rows, int64_t n) {
  if (bias == nullptr) return;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) x[r * n + i] += bias[i];
  }
}

}  // namespace

void LoraModel::layer_forward(int64_t l, const Batch& batch, float dropout, uint64_t step, LayerActivations& a,
                              float* x_out) {
  const engine::ModelConfig& c = model_.config();
  const engine::LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
  const engine::RopeStyle style = model_.architecture().rope_style;
  const int64_t n = batch.rows, d = c.embedding_length, hd = c.head_dim, ff = c.feed_forward_length;
  const int64_t q_dim = c.head_count * hd, kv_dim = c.head_count_kv * hd;
  engine::ComputePool& pool = *pool_;
  Buffers& b = *buffers_;
  // y = W x (+ bias) + LoRA, for the module's adapter if it has one.
  const auto linear = [&](LoraModule m, const float* x, float* y, const float* bias = nullptr) {
    const engine::WeightMatrix& base = lora_base_matrix(w, m);
    linear_forward(pool, base, x, n, y, b.linear);
    add_bias(y, bias, n, base.rows);
    if (const LoraAdapter* ad = lora_.find(l, m)) {
      lora_forward(pool, *ad, x, n, dropout, {lora_.config().seed, step, l, m}, y, a.lora[static_cast<int>(m)], b.lora);
    }
  };
  a.rstd_attention.resize(static_cast<size_t>(n));
  a.xn_attention.resize(static_cast<size_t>(n * d));
  a.q.resize(static_cast<size_t>(n * q_dim));
  a.k.resize(static_cast<size_t>(n * kv_dim));
  a.v.resize(static_cast<size_t>(n * kv_dim));
  a.lse.resize(static_cast<size_t>(n * c.head_count));
  a.attention.resize(static_cast<size_t>(n * q_dim));
  a.x_mid.resize(static_cast<size_t>(n * d));
  a.rstd_ffn.resize(static_cast<size_t>(n));
  a.xn_ffn.resize(static_cast<size_t>(n * d));
  a.gate.resize(static_cast<size_t>(n * ff));
  a.up.resize(static_cast<size_t>(n * ff));
  a.act.resize(static_cast<size_t>(n * ff));

  rms_norm_forward_rows(pool, a.x_in.data(), w.attention_norm, n, d, c.rms_norm_epsilon, a.xn_attention.data(),
                        a.rstd_attention.data());
  linear(LoraModule::kQ, a.xn_attention.data(), a.q.data(), w.attention_q_bias);
  linear(LoraModule::kK, a.xn_attention.data(), a.k.data(), w.attention_k_bias);
  linear(LoraModule::kV, a.xn_attention.data(), a.v.data(), w.attention_v_bias);
  const RopeAngles& rope = batch.rope[batch.layer_rope[static_cast<size_t>(l)]];
  rope_forward(a.q.data(), n, c.head_count, hd, rope, style);
  rope_forward(a.k.data(), n, c.head_count_kv, hd, rope, style);
  const AttentionShape shape{c.head_count, c.head_count_kv, hd};
  attention_forward(pool, a.q.data(), a.k.data(), a.v.data(), batch.segments, shape, a.attention.data(), a.lse.data());
  linear(LoraModule::kO, a.attention.data(), a.x_mid.data());
  add_rows(pool, a.x_mid.data(), a.x_in.data(), n, d);

  rms_norm_forward_rows(pool, a.x_mid.data(), w.ffn_norm, n, d, c.rms_norm_epsilon, a.xn_ffn.data(), a.rstd_ffn.data());
  linear(LoraModule::kGate, a.xn_ffn.data(), a.gate.data());
  linear(LoraModule::kUp, a.xn_ffn.data(), a.up.data());
  pool.run(n, [&](int64_t b, int64_t e) {
    swiglu_forward(a.gate.data() + b * ff, a.up.data() + b * ff, (e - b) * ff, a.act.data() + b * ff);
  });
  linear(LoraModule::kDown, a.act.data(), x_out);
  add_rows(pool, x_out, a.x_mid.data(), n, d);
}

void LoraModel::layer_backward(int64_t l, const Batch& batch, float dropout, uint64_t step, LayerActivations& a,
                               std::vector<float>& dx) {
  const engine::ModelConfig& c = model_.config();
  const engine::LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
  const engine::RopeStyle style = model_.architecture().rope_style;
  const int64_t n = batch.rows, d = c.embedding_length, hd = c.head_dim, ff = c.feed_forward_length;
  const int64_t q_dim = c.head_count * hd, kv_dim = c.head_count_kv * hd;
  engine::ComputePool& pool = *pool_;
  Buffers& b = *buffers_;
  // dx_in += dy W (+ the adapter's share), and the adapter's gradients.
  const auto linear_back = [&](LoraModule m, const float* x, const float* dy, float* dx_in) {
    linear_backward_input(pool, lora_base_matrix(w, m), dy, n, dx_in, b.linear);
    if (LoraAdapter* ad = lora_.find(l, m)) {
      lora_backward(pool, *ad, x, n, dropout, {lora_.config().seed, step, l, m}, a.lora[static_cast<int>(m)], dy, dx_in,
                    b.lora);
    }
  };
  const auto zeros = [](std::vector<float>& v, int64_t size) { v.assign(static_cast<size_t>(size), 0.0f); };

  // Feed-forward branch: x_out = x_mid + down(silu(gate(xn)) * up(xn)), xn = norm(x_mid).
  zeros(b.d_act, n * ff);
  linear_back(LoraModule::kDown, a.act.data(), dx.data(), b.d_act.data());
  zeros(b.d_gate, n * ff);
  zeros(b.d_up, n * ff);
  pool.run(n, [&](int64_t r0, int64_t r1) {
    swiglu_backward(b.d_act.data() + r0 * ff, a.gate.data() + r0 * ff, a.up.data() + r0 * ff, (r1 - r0) * ff,
                    b.d_gate.data() + r0 * ff, b.d_up.data() + r0 * ff);
  });
  zeros(b.d_xn, n * d);
  linear_back(LoraModule::kGate, a.xn_ffn.data(), b.d_gate.data(), b.d_xn.data());
  linear_back(LoraModule::kUp, a.xn_ffn.data(), b.d_up.data(), b.d_xn.data());
  // dx now holds d(x_mid): the residual path plus the norm's share.
  rms_norm_backward_rows(pool, b.d_xn.data(), a.x_mid.data(), w.ffn_norm, a.rstd_ffn.data(), n, d, dx.data());

  // Attention branch: x_mid = x_in + o(attention(rope(q(xn)), rope(k(xn)), v(xn))), xn = norm(x_in).
  zeros(b.d_att, n * q_dim);
  linear_back(LoraModule::kO, a.attention.data(), dx.data(), b.d_att.data());
  zeros(b.dq, n * q_dim);
  zeros(b.dk, n * kv_dim);
  zeros(b.dv, n * kv_dim);
  const AttentionShape shape{c.head_count, c.head_count_kv, hd};
  attention_backward(pool, b.d_att.data(), a.q.data(), a.k.data(), a.v.data(), a.attention.data(), a.lse.data(),
                     batch.segments, shape, b.dq.data(), b.dk.data(), b.dv.data());
  const RopeAngles& rope = batch.rope[batch.layer_rope[static_cast<size_t>(l)]];
  rope_backward(b.dq.data(), n, c.head_count, hd, rope, style);
  rope_backward(b.dk.data(), n, c.head_count_kv, hd, rope, style);
  zeros(b.d_xn, n * d);
  linear_back(LoraModule::kQ, a.xn_attention.data(), b.dq.data(), b.d_xn.data());
  linear_back(LoraModule::kK, a.xn_attention.data(), b.dk.data(), b.d_xn.data());
  linear_back(LoraModule::kV, a.xn_attention.data(), b.dv.data(), b.d_xn.data());
  rms_norm_backward_rows(pool, b.d_xn.data(), a.x_in.data(), w.attention_norm, a.rstd_attention.data(), n, d,
                         dx.data());
}

Result<LossAndTargets> LoraModel::run(std::span<const TrainingSequence> sequences, bool backward, uint64_t step,
                                      int64_t gradient_targets, std::vector<double>* row_loss) {
  KEEL_ASSIGN_OR_RETURN(Batch batch, prepare(sequences));
  if (gradient_targets < 0) return invalid_argument("gradient_targets must not be negative");
  const engine::ModelConfig& c = model_.config();
  const int64_t n = batch.rows, d = c.embedding_length, layers = c.layer_count;
  const float dropout = backward ? lora_.config().dropout : 0.0f;
  const bool checkpoint = backward && options_.gradient_checkpointing;

  // Without checkpointing every layer keeps its activations; with it (or without a
  // backward) one set is reused and only the layer inputs are kept.
  Buffers& b = *buffers_;
  b.stored.resize(backward && !checkpoint ? static_cast<size_t>(layers) : 1);
  b.layer_inputs.resize(checkpoint ? static_cast<size_t>(layers) : 0);
  std::vector<LayerActivations>& stored = b.stored;
  std::vector<float>& x = b.x;
  std::vector<float>& next = b.next;
  x.resize(static_cast<size_t>(n * d));
  next.resize(static_cast<size_t>(n * d));
  embedding_forward(model_.token_embedding(), batch.tokens, x.data());
  size_t peak = 0;
  for (int64_t l = 0; l < layers; ++l) {
    LayerActivations& a = stored.size() == 1 ? stored[0] : stored[static_cast<size_t>(l)];
    if (checkpoint) b.layer_inputs[static_cast<size_t>(l)] = x;
    a.x_in = x;
    layer_forward(l, batch, dropout, step, a, next.data());
    std::swap(x, next);
    size_t bytes = 0;
    for (const LayerActivations& s : stored) bytes += s.bytes();
    for (const auto& in : b.layer_inputs) bytes += in.capacity() * sizeof(float);
    peak = std::max(peak, bytes);
  }
  b.hidden.resize(static_cast<size_t>(n * d));
  b.rstd.resize(static_cast<size_t>(n));
  rms_norm_forward_rows(*pool_, x.data(), model_.output_norm(), n, d, c.rms_norm_epsilon, b.hidden.data(),
                        b.rstd.data());
  const float scale = 1.0f / static_cast<float>(gradient_targets > 0 ? gradient_targets : batch.target_count);
  b.dhidden.assign(backward ? static_cast<size_t>(n * d) : 0, 0.0f);
  const double total = output_cross_entropy(*pool_, model_.output(), b.hidden.data(), batch.targets, scale,
                                            backward ? b.dhidden.data() : nullptr, b.loss, options_.loss_chunk_tokens);
  LossAndTargets result{total / static_cast<double>(batch.target_count), batch.target_count};
  if (row_loss != nullptr) *row_loss = b.loss.row_loss;
  if (!backward) return result;

  b.dx.assign(static_cast<size_t>(n * d), 0.0f);
  rms_norm_backward_rows(*pool_, b.dhidden.data(), x.data(), model_.output_norm(), b.rstd.data(), n, d, b.dx.data());
  for (int64_t l = layers - 1; l >= 0; --l) {
    LayerActivations& a = checkpoint ? stored[0] : stored[static_cast<size_t>(l)];
    if (checkpoint) {
      a.x_in = b.layer_inputs[static_cast<size_t>(l)];
      layer_forward(l, batch, dropout, step, a, next.data());
    }
    layer_backward(l, batch, dropout, step, a, b.dx);
  }
  activation_bytes_ = peak;
  return result;
}

Result<LossAndTargets> LoraModel::forward_backward(std::span<const TrainingSequence> batch, uint64_t step,
                                                   int64_t gradient_targets) {
  return run(batch, true, step, gradient_targets, nullptr);
}

Result<LossAndTargets> LoraModel::loss(std::span<const TrainingSequence> batch, std::vector<double>* row_loss) {
  return run(batch, false, 0, 0, row_loss);
}

}  // namespace keel::train
