// The decoder's layers as training needs them: each forward beside its backward, in
// plain loops over row-major F32 activations (llm.c style), so a reader can check
// each derivative by hand. A forward saves what its backward needs (RMSNorm's
// reciprocal root mean square, attention's log-sum-exp per row). Every backward
// ADDS into its gradient outputs (dx += ...), so callers zero gradients once and
// branches of the graph sum themselves; weights of the frozen base model get no
// gradient unless a caller passes a buffer for one. Matrix products against the
// model's (possibly quantized) weights live in linear.h; the output layer's
// cross-entropy is here because it streams the vocabulary through linear.h.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"
#include "keel/engine/model_architecture.h"
#include "keel/train/linear.h"

namespace keel::train {

// ----- embedding ----------------------------------------------------------------------

// out[t] = table.row(tokens[t]) dequantized ([n][table.cols]). REQUIRES: ids in range.
void embedding_forward(const engine::WeightMatrix& table, std::span<const int32_t> tokens, float* out);
// dtable[tokens[t]] += dout[t]; dtable is a dense F32 [table.rows][table.cols].
void embedding_backward(std::span<const int32_t> tokens, const float* dout, int64_t cols, float* dtable);

// ----- RMSNorm ------------------------------------------------------------------------

// out = x * rstd * weight per row of n, rstd = 1 / sqrt(mean(x^2) + eps) (summed in
// double, as the engine's forward does); rstd[r] is saved for the backward.
void rms_norm_forward(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out, float* rstd);
// dx += rstd * (w*dout - x * rstd^2 * mean(w*dout*x)); dweight (optional) += dout*x*rstd.
void rms_norm_backward(const float* dout, const float* x, const float* weight, const float* rstd, int64_t rows,
                       int64_t n, float* dx, float* dweight = nullptr);

// ----- RoPE ---------------------------------------------------------------------------

// cos and sin of theta = position * scale * base^(-2i/n_rot) / factors[i] for every
// row's position and pair i, as the engine's forward computes them (in double).
class RopeAngles {
 public:
  RopeAngles(float base, float scale, int64_t n_rot, const float* factors, std::span<const int64_t> positions);
  int64_t rows() const { return rows_; }
  int64_t pairs() const { return half_; }
  float cos(int64_t row, int64_t pair) const { return table_[(row * half_ + pair) * 2]; }
  float sin(int64_t row, int64_t pair) const { return table_[(row * half_ + pair) * 2 + 1]; }

 private:
  int64_t rows_, half_;
  std::vector<float> table_;
};

// Rotates the first n_rot dims of each head of every row of x ([rows][heads*head_dim])
// in place: kNormal pairs (2i, 2i+1), kNeox pairs (i, i + n_rot/2).
void rope_forward(float* x, int64_t rows, int64_t heads, int64_t head_dim, const RopeAngles& angles,
                  engine::RopeStyle style);
// The rotation is orthogonal: the gradient turns back by -theta, in place.
void rope_backward(float* dx, int64_t rows, int64_t heads, int64_t head_dim, const RopeAngles& angles,
                   engine::RopeStyle style);

// ----- causal self-attention with grouped-query heads ---------------------------------

// Shapes of one attention call over `segments`: rows [begin, begin + length) of q, k, v
// form one sequence, attending causally within itself (position 0 at begin).
struct AttentionShape {
  int64_t heads = 0;     // query heads
  int64_t kv_heads = 0;  // heads % kv_heads == 0; query head h reads kv head h / (heads / kv_heads)
  int64_t head_dim = 0;
};
struct Segment {
  int64_t begin = 0;
  int64_t length = 0;
};

// out[t, h] = sum_{j<=t} softmax_j(q[t,h].k[j,g] / sqrt(head_dim)) v[j,g], g = kv head of
// h. q, out: [rows][heads*head_dim]; k, v: [rows][kv_heads*head_dim]; lse [rows][heads]
// keeps log(sum(exp(score))) of each row and head for the backward. Splits segments x
// heads across the pool; scores and products go through OpenBLAS a block of 64 query
// rows at a time.
void attention_forward(engine::ComputePool& pool, const float* q, const float* k, const float* v,
                       std::span<const Segment> segments, const AttentionShape& shape, float* out, float* lse);
// Recomputes the probabilities from q, k and lse; dq, dk, dv += the gradients. Needs
// the forward's out (D = dout . out = sum_j p_j dp_j). Splits segments x heads; the
// result does not depend on the thread count.
void attention_backward(engine::ComputePool& pool, const float* dout, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, std::span<const Segment> segments,
                        const AttentionShape& shape, float* dq, float* dk, float* dv);

// ----- SwiGLU -------------------------------------------------------------------------

// out = silu(gate) * up, elementwise over n values.
void swiglu_forward(const float* gate, const float* up, int64_t n, float* out);
// dgate += dout * up * silu'(gate), dup += dout * silu(gate);
// silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))).
void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup);

// ----- output layer and cross-entropy -------------------------------------------------

// Scratch an OutputLoss call reuses between calls.
struct OutputLossScratch {
  std::vector<float> rows, logits, dhidden;
  LinearScratch linear;
  // After a call: loss_t of every row (0 where masked), [targets.size()].
  std::vector<double> row_loss;
};

// Cross-entropy of the output layer: logits[t] = output . hidden[t] ([vocab]), and for
// every row with targets[t] >= 0, loss_t = logsumexp(logits[t]) - logits[t][targets[t]];
// rows with targets[t] < 0 are masked out (no loss, no gradient). Returns the SUM of
// loss_t. With dhidden non-null, also dhidden[t] += scale * d(loss_t)/d(hidden[t])
// (scale: 1 / target count for a mean). Rows go through in chunks of `chunk` tokens,
// so only chunk x vocab logits exist at a time. REQUIRES: every target < vocab.
double output_cross_entropy(engine::ComputePool& pool, const engine::WeightMatrix& output, const float* hidden,
                            std::span<const int32_t> targets, float scale, float* dhidden, OutputLossScratch& scratch,
                            int64_t chunk = 64);

}  // namespace keel::train
