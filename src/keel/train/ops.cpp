#include "keel/train/ops.h"

#include <algorithm>
#include <cmath>

#include "keel/engine/quant.h"
#include "keel/train/gemm.h"
#include "keel/train/vector_math.h"

namespace keel::train {

// ----- embedding ----------------------------------------------------------------------

void embedding_forward(const engine::WeightMatrix& table, std::span<const int32_t> tokens, float* out) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    engine::dequantize_row(table.type, table.row(tokens[t]), out + static_cast<int64_t>(t) * table.cols, table.cols);
  }
}

void embedding_backward(std::span<const int32_t> tokens, const float* dout, int64_t cols, float* dtable) {
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* row = dtable + static_cast<int64_t>(tokens[t]) * cols;
    const float* g = dout + static_cast<int64_t>(t) * cols;
    for (int64_t i = 0; i < cols; ++i) row[i] += g[i];
  }
}

// ----- RMSNorm ------------------------------------------------------------------------

void rms_norm_forward(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out,
                      float* rstd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const float s = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    rstd[r] = s;
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = xr[i] * s * weight[i];
  }
}

// y_i = w_i x_i s, s = (mean(x^2) + eps)^(-1/2), ds/dx_j = -s^3 x_j / n, so
// dx_j = w_j g_j s - x_j s^3 / n * sum_i w_i g_i x_i.
void rms_norm_backward(const float* dout, const float* x, const float* weight, const float* rstd, int64_t rows,
                       int64_t n, float* dx, float* dweight) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = dout + r * n;
    const float* xr = x + r * n;
    const double s = rstd[r];
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(weight[i]) * g[i] * xr[i];
    const double k = s * s * s * dot / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      dx[r * n + i] += static_cast<float>(weight[i] * g[i] * s - xr[i] * k);
    }
    if (dweight != nullptr) {
      for (int64_t i = 0; i < n; ++i) dweight[i] += static_cast<float>(g[i] * xr[i] * s);
    }
  }
}

// ----- RoPE ---------------------------------------------------------------------------

RopeAngles::RopeAngles(float base, float scale, int64_t n_rot, const float* factors, std::span<const int64_t> positions)
    : rows_(static_cast<int64_t>(positions.size())), half_(n_rot / 2), table_(static_cast<size_t>(rows_ * half_ * 2)) {
  for (int64_t r = 0; r < rows_; ++r) {
    for (int64_t i = 0; i < half_; ++i) {
      double theta = static_cast<double>(positions[r]) * scale *
                     std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
      if (factors != nullptr) theta /= factors[i];
      table_[(r * half_ + i) * 2] = static_cast<float>(std::cos(theta));
      table_[(r * half_ + i) * 2 + 1] = static_cast<float>(std::sin(theta));
    }
  }
}

namespace {

// Rotates every pair of every head by +theta (direction 1) or -theta (direction -1).
void rotate(float* x, int64_t rows, int64_t heads, int64_t head_dim, const RopeAngles& angles, engine::RopeStyle style,
            float direction) {
  const int64_t half = angles.pairs();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = style == engine::RopeStyle::kNormal ? 2 * i : i;
        const int64_t b = style == engine::RopeStyle::kNormal ? 2 * i + 1 : i + half;
        const float c = angles.cos(r, i), s = direction * angles.sin(r, i);
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace

void rope_forward(float* x, int64_t rows, int64_t heads, int64_t head_dim, const RopeAngles& angles,
                  engine::RopeStyle style) {
  rotate(x, rows, heads, head_dim, angles, style, 1.0f);
}

void rope_backward(float* dx, int64_t rows, int64_t heads, int64_t head_dim, const RopeAngles& angles,
                   engine::RopeStyle style) {
  rotate(dx, rows, heads, head_dim, angles, style, -1.0f);
}

// ----- attention ----------------------------------------------------------------------

namespace {

float dot(const float* a, const float* b, int64_t n) {
  return dot_product(a, b, n);
}

}  // namespace

// Both passes go through a segment and query head in blocks of kQueryBlock query rows:
// the block's scores against every key up to its last row are one matrix product
// (gemm.h), and so is each product with them. Only the block on the diagonal computes
// scores that the causal mask then drops.
namespace {

constexpr int64_t kQueryBlock = 64;

// Attention's operands for one segment and query head h (kv head g): row t of q is
// q + t * q_stride, and likewise for the rest.
struct HeadView {
  const float* q;
  const float* k;
  const float* v;
  int64_t q_stride, kv_stride;
};

HeadView head_view(const float* q, const float* k, const float* v, const Segment& seg, int64_t h, int64_t g,
                   const AttentionShape& shape) {
  const int64_t hd = shape.head_dim, q_dim = shape.heads * hd, kv_dim = shape.kv_heads * hd;
  return {q + seg.begin * q_dim + h * hd, k + seg.begin * kv_dim + g * hd, v + seg.begin * kv_dim + g * hd, q_dim,
          kv_dim};
}

}  // namespace

void attention_forward(engine::ComputePool& pool, const float* q, const float* k, const float* v,
                       std::span<const Segment> segments, const AttentionShape& shape, float* out, float* lse) {
  const int64_t hd = shape.head_dim, q_dim = shape.heads * hd;
  const int64_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto units = static_cast<int64_t>(segments.size()) * shape.heads;
  pool.run(units, [&](int64_t begin, int64_t end) {
    std::vector<float> p;
    for (int64_t unit = begin; unit < end; ++unit) {
      const Segment& seg = segments[static_cast<size_t>(unit / shape.heads)];
      const int64_t h = unit % shape.heads, g = h / group;
      const HeadView x = head_view(q, k, v, seg, h, g, shape);
      for (int64_t i0 = 0; i0 < seg.length; i0 += kQueryBlock) {
        const int64_t i1 = std::min(seg.length, i0 + kQueryBlock), bq = i1 - i0;
        // p[t - i0][j] = q_t . k_j * scale for the block's rows t and keys j < i1.
        p.resize(static_cast<size_t>(bq * i1));
        gemm(false, true, bq, i1, hd, scale, x.q + i0 * x.q_stride, x.q_stride, x.k, x.kv_stride, 0.0f, p.data(), i1);
        for (int64_t t = i0; t < i1; ++t) {
          float* pt = p.data() + (t - i0) * i1;
          const float max_score = *std::max_element(pt, pt + t + 1);
          for (int64_t j = 0; j <= t; ++j) pt[j] = exp_float(pt[j] - max_score);
          double sum = 0;
          for (int64_t j = 0; j <= t; ++j) sum += pt[j];
          lse[(seg.begin + t) * shape.heads + h] = max_score + static_cast<float>(std::log(sum));
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t j = 0; j <= t; ++j) pt[j] *= inv;
          std::fill(pt + t + 1, pt + i1, 0.0f);
        }
        gemm(false, false, bq, hd, i1, 1.0f, p.data(), i1, x.v, x.kv_stride, 0.0f,
             out + (seg.begin + i0) * q_dim + h * hd, q_dim);
      }
    }
  });
}

// With s_j = q.k_j * scale, p = softmax(s), o = sum_j p_j v_j:
//   dv_j += p_j do;  dp_j = do . v_j;  ds_j = p_j (dp_j - D), D = sum_j p_j dp_j = do . o;
//   dq += scale sum_j ds_j k_j;  dk_j += scale ds_j q.
// p_j = exp(s_j - lse) is recomputed from the forward's lse. A unit owns one query head
// of one segment: it adds that head's dq in place, and its shares of dk and dv (a kv
// head is read by `group` query heads) go to a buffer of its own, summed afterwards in
// head order, so the result does not depend on the thread count.
void attention_backward(engine::ComputePool& pool, const float* dout, const float* q, const float* k, const float* v,
                        const float* out, const float* lse, std::span<const Segment> segments,
                        const AttentionShape& shape, float* dq, float* dk, float* dv) {
  const int64_t hd = shape.head_dim, q_dim = shape.heads * hd, kv_dim = shape.kv_heads * hd;
  const int64_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // D = do . o for every row and head.
  int64_t rows = 0;
  for (const Segment& seg : segments) rows = std::max(rows, seg.begin + seg.length);
  std::vector<float> d_sum(static_cast<size_t>(rows * shape.heads));
  pool.run(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t h = 0; h < shape.heads; ++h) {
        d_sum[r * shape.heads + h] = dot(dout + r * q_dim + h * hd, out + r * q_dim + h * hd, hd);
      }
    }
  });
  // Query head h's shares of dk and dv: rows of [rows][heads * hd], laid out as q is.
  std::vector<float> dk_share(static_cast<size_t>(rows * q_dim), 0.0f), dv_share(dk_share.size(), 0.0f);
  const auto units = static_cast<int64_t>(segments.size()) * shape.heads;
  pool.run(units, [&](int64_t begin, int64_t end) {
    std::vector<float> p, ds;
    for (int64_t unit = begin; unit < end; ++unit) {
      const Segment& seg = segments[static_cast<size_t>(unit / shape.heads)];
      const int64_t h = unit % shape.heads, g = h / group;
      const HeadView x = head_view(q, k, v, seg, h, g, shape);
      const float* dout_h = dout + seg.begin * q_dim + h * hd;
      float* dq_h = dq + seg.begin * q_dim + h * hd;
      float* dk_h = dk_share.data() + seg.begin * q_dim + h * hd;
      float* dv_h = dv_share.data() + seg.begin * q_dim + h * hd;
      for (int64_t i0 = 0; i0 < seg.length; i0 += kQueryBlock) {
        const int64_t i1 = std::min(seg.length, i0 + kQueryBlock), bq = i1 - i0;
        p.resize(static_cast<size_t>(bq * i1));
        ds.resize(p.size());
        gemm(false, true, bq, i1, hd, scale, x.q + i0 * q_dim, q_dim, x.k, kv_dim, 0.0f, p.data(), i1);
        // ds starts as dp[t][j] = do_t . v_j.
        gemm(false, true, bq, i1, hd, 1.0f, dout_h + i0 * q_dim, q_dim, x.v, kv_dim, 0.0f, ds.data(), i1);
        for (int64_t t = i0; t < i1; ++t) {
          float* pt = p.data() + (t - i0) * i1;
          float* dst = ds.data() + (t - i0) * i1;
          const float l = lse[(seg.begin + t) * shape.heads + h];
          const float d = d_sum[(seg.begin + t) * shape.heads + h];
          for (int64_t j = 0; j <= t; ++j) {
            pt[j] = exp_float(pt[j] - l);
            dst[j] = pt[j] * (dst[j] - d) * scale;
          }
          std::fill(pt + t + 1, pt + i1, 0.0f);
          std::fill(dst + t + 1, dst + i1, 0.0f);
        }
        gemm(false, false, bq, hd, i1, 1.0f, ds.data(), i1, x.k, kv_dim, 1.0f, dq_h + i0 * q_dim, q_dim);
        gemm(true, false, i1, hd, bq, 1.0f, ds.data(), i1, x.q + i0 * q_dim, q_dim, 1.0f, dk_h, q_dim);
        gemm(true, false, i1, hd, bq, 1.0f, p.data(), i1, dout_h + i0 * q_dim, q_dim, 1.0f, dv_h, q_dim);
      }
    }
  });
  // dk, dv: each row and kv head sums the shares of its query heads in order.
  pool.run(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t h = 0; h < shape.heads; ++h) {
        const float* ks = dk_share.data() + r * q_dim + h * hd;
        const float* vs = dv_share.data() + r * q_dim + h * hd;
        float* kd = dk + r * kv_dim + (h / group) * hd;
        float* vd = dv + r * kv_dim + (h / group) * hd;
        for (int64_t i = 0; i < hd; ++i) {
          kd[i] += ks[i];
          vd[i] += vs[i];
        }
      }
    }
  });
}

// ----- SwiGLU -------------------------------------------------------------------------

void swiglu_forward(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + exp_float(-gate[i])) * up[i];
}

void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const float sig = 1.0f / (1.0f + exp_float(-gate[i]));
    const float silu = gate[i] * sig;
    dgate[i] += dout[i] * up[i] * sig * (1.0f + gate[i] * (1.0f - sig));
    dup[i] += dout[i] * silu;
  }
}

// ----- output layer and cross-entropy -------------------------------------------------

double output_cross_entropy(engine::ComputePool& pool, const engine::WeightMatrix& output, const float* hidden,
                            std::span<const int32_t> targets, float scale, float* dhidden, OutputLossScratch& s,
                            int64_t chunk) {
  const int64_t d = output.cols, vocab = output.rows;
  // Only rows with a target go through the output layer.
  std::vector<int64_t> rows;
  for (size_t t = 0; t < targets.size(); ++t) {
    if (targets[t] >= 0) rows.push_back(static_cast<int64_t>(t));
  }
  double total = 0;
  s.row_loss.assign(targets.size(), 0.0);
  for (size_t first = 0; first < rows.size(); first += static_cast<size_t>(chunk)) {
    const auto m = static_cast<int64_t>(std::min(rows.size() - first, static_cast<size_t>(chunk)));
    s.rows.resize(static_cast<size_t>(m * d));
    for (int64_t i = 0; i < m; ++i) {
      std::copy(hidden + rows[first + i] * d, hidden + (rows[first + i] + 1) * d, s.rows.data() + i * d);
    }
    s.logits.resize(static_cast<size_t>(m * vocab));
    linear_forward(pool, output, s.rows.data(), m, s.logits.data(), s.linear);
    std::vector<double> losses(static_cast<size_t>(m));
    pool.run(m, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* z = s.logits.data() + i * vocab;
        const int32_t target = targets[static_cast<size_t>(rows[first + i])];
        const float max_z = *std::max_element(z, z + vocab);
        const float z_target = z[target];
        // z_j becomes e_j = exp(z_j - max) <= 1 (in float, summed in double), so the
        // gradient below needs no second exp.
        for (int64_t j = 0; j < vocab; ++j) z[j] = exp_float(z[j] - max_z);
        double sum = 0;
        for (int64_t j = 0; j < vocab; ++j) sum += z[j];
        const double log_sum = static_cast<double>(max_z) + std::log(sum);
        losses[static_cast<size_t>(i)] = log_sum - z_target;
        if (dhidden == nullptr) continue;
        // dloss/dz_j = softmax_j - [j == target]; z is overwritten by its gradient.
        const float factor = static_cast<float>(static_cast<double>(scale) / sum);
        for (int64_t j = 0; j < vocab; ++j) z[j] *= factor;
        z[target] -= scale;
      }
    });
    for (int64_t i = 0; i < m; ++i) {
      total += losses[static_cast<size_t>(i)];
      s.row_loss[static_cast<size_t>(rows[first + i])] = losses[static_cast<size_t>(i)];
    }
    if (dhidden == nullptr) continue;
    s.dhidden.assign(static_cast<size_t>(m * d), 0.0f);
    linear_backward_input(pool, output, s.logits.data(), m, s.dhidden.data(), s.linear);
    for (int64_t i = 0; i < m; ++i) {
      float* dst = dhidden + rows[first + i] * d;
      const float* src = s.dhidden.data() + i * d;
      for (int64_t c = 0; c < d; ++c) dst[c] += src[c];
    }
  }
  return total;
}

}  // namespace keel::train
