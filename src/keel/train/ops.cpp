#include "keel/train/ops.h"

#include <algorithm>
#include <cmath>

#include "keel/engine/quant.h"
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

void attention_forward(engine::ComputePool& pool, const float* q, const float* k, const float* v,
                       std::span<const Segment> segments, const AttentionShape& shape, float* out, float* lse) {
  const int64_t hd = shape.head_dim, q_dim = shape.heads * hd, kv_dim = shape.kv_heads * hd;
  const int64_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto units = static_cast<int64_t>(segments.size()) * shape.heads;
  pool.run(units, [&](int64_t begin, int64_t end) {
    std::vector<float> p;
    for (int64_t unit = begin; unit < end; ++unit) {
      const Segment& seg = segments[static_cast<size_t>(unit / shape.heads)];
      const int64_t h = unit % shape.heads, g = h / group;
      for (int64_t t = 0; t < seg.length; ++t) {
        const int64_t row = seg.begin + t;
        const float* qt = q + row * q_dim + h * hd;
        p.resize(static_cast<size_t>(t + 1));
        float max_score = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          p[j] = dot(qt, k + (seg.begin + j) * kv_dim + g * hd, hd) * scale;
          max_score = std::max(max_score, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          p[j] = std::exp(p[j] - max_score);
          sum += p[j];
        }
        lse[row * shape.heads + h] = max_score + static_cast<float>(std::log(sum));
        const float inv = static_cast<float>(1.0 / sum);
        float* o = out + row * q_dim + h * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j <= t; ++j) {
          const float w = p[j] * inv;
          const float* vj = v + (seg.begin + j) * kv_dim + g * hd;
          for (int64_t i = 0; i < hd; ++i) o[i] += w * vj[i];
        }
      }
    }
  });
}

// With s_j = q.k_j * scale, p = softmax(s), o = sum_j p_j v_j:
//   dv_j += p_j do;  dp_j = do . v_j;  ds_j = p_j (dp_j - D), D = sum_j p_j dp_j = do . o;
//   dq += scale sum_j ds_j k_j;  dk_j += scale ds_j q.
// p_j = exp(s_j - lse) needs no other key, so the work splits by blocks of keys (as
// FlashAttention-2's backward does): a unit owns kKeyBlock keys of one kv head of one
// segment, sums their dk and dv over every later query of the heads that read them,
// and leaves its share of dq in its own buffer; the shares are added afterwards in
// block order, so the result does not depend on the thread count.
namespace {
constexpr int64_t kKeyBlock = 32;
}  // namespace

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
  // Units: (segment, kv head, key block); unit u's dq share for query row t (of its
  // segment) and query head h of its group lives at partial[u] + ((t - first key) *
  // group + h - g * group) * hd.
  struct Unit {
    const Segment* seg;
    int64_t g, j0, j1;
    size_t offset;  // into partial
  };
  std::vector<Unit> units;
  size_t partial_size = 0;
  for (const Segment& seg : segments) {
    for (int64_t g = 0; g < shape.kv_heads; ++g) {
      for (int64_t j0 = 0; j0 < seg.length; j0 += kKeyBlock) {
        units.push_back({&seg, g, j0, std::min(seg.length, j0 + kKeyBlock), partial_size});
        partial_size += static_cast<size_t>((seg.length - j0) * group * hd);
      }
    }
  }
  std::vector<float> partial(partial_size, 0.0f);
  pool.run(static_cast<int64_t>(units.size()), [&](int64_t begin, int64_t end) {
    std::vector<float> dk_acc(static_cast<size_t>(kKeyBlock * hd)), dv_acc(static_cast<size_t>(kKeyBlock * hd));
    for (int64_t u = begin; u < end; ++u) {
      const Unit& unit = units[static_cast<size_t>(u)];
      const Segment& seg = *unit.seg;
      const int64_t g = unit.g, j0 = unit.j0, j1 = unit.j1;
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0f);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0f);
      for (int64_t t = j0; t < seg.length; ++t) {
        const int64_t row = seg.begin + t;
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          const float* __restrict__ qt = q + row * q_dim + h * hd;
          const float* __restrict__ dot_ = dout + row * q_dim + h * hd;
          const float l = lse[row * shape.heads + h];
          const float d = d_sum[row * shape.heads + h];
          float* __restrict__ dqt = partial.data() + unit.offset + ((t - j0) * group + h - g * group) * hd;
          for (int64_t j = j0; j < std::min(j1, t + 1); ++j) {
            const int64_t kj = (seg.begin + j) * kv_dim + g * hd;
            const float* __restrict__ kr = k + kj;
            const float pj = std::exp(dot(qt, kr, hd) * scale - l);
            const float ds = pj * (dot(dot_, v + kj, hd) - d) * scale;
            float* __restrict__ dkr = dk_acc.data() + (j - j0) * hd;
            float* __restrict__ dvr = dv_acc.data() + (j - j0) * hd;
            for (int64_t i = 0; i < hd; ++i) dqt[i] += ds * kr[i];
            for (int64_t i = 0; i < hd; ++i) dkr[i] += ds * qt[i];
            for (int64_t i = 0; i < hd; ++i) dvr[i] += pj * dot_[i];
          }
        }
      }
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t kj = (seg.begin + j) * kv_dim + g * hd;
        for (int64_t i = 0; i < hd; ++i) {
          dk[kj + i] += dk_acc[(j - j0) * hd + i];
          dv[kj + i] += dv_acc[(j - j0) * hd + i];
        }
      }
    }
  });
  // dq: each (row, head) adds the shares of the key blocks at or before it, in order.
  std::vector<size_t> first_unit;  // per segment and kv head, index of its first unit
  for (size_t u = 0; u < units.size(); ++u) {
    if (units[u].j0 == 0) first_unit.push_back(u);
  }
  pool.run(static_cast<int64_t>(first_unit.size()), [&](int64_t begin, int64_t end) {
    for (int64_t f = begin; f < end; ++f) {
      const size_t u0 = first_unit[static_cast<size_t>(f)];
      const Unit& first = units[u0];
      const Segment& seg = *first.seg;
      const int64_t g = first.g;
      for (size_t u = u0; u < units.size() && units[u].seg == &seg && units[u].g == g; ++u) {
        const Unit& unit = units[u];
        for (int64_t t = unit.j0; t < seg.length; ++t) {
          for (int64_t hl = 0; hl < group; ++hl) {
            const float* src = partial.data() + unit.offset + ((t - unit.j0) * group + hl) * hd;
            float* dst = dq + (seg.begin + t) * q_dim + (g * group + hl) * hd;
            for (int64_t i = 0; i < hd; ++i) dst[i] += src[i];
          }
        }
      }
    }
  });
}

// ----- SwiGLU -------------------------------------------------------------------------

void swiglu_forward(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_backward(const float* dout, const float* gate, const float* up, int64_t n, float* dgate, float* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const float sig = 1.0f / (1.0f + std::exp(-gate[i]));
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
    linear_forward(pool, output, s.rows.data(), m, s.logits.data(), s.quantized);
    std::vector<double> losses(static_cast<size_t>(m));
    pool.run(m, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* z = s.logits.data() + i * vocab;
        const int32_t target = targets[static_cast<size_t>(rows[first + i])];
        const float max_z = *std::max_element(z, z + vocab);
        double sum = 0;
        for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(z[j] - max_z));
        const double log_sum = static_cast<double>(max_z) + std::log(sum);
        losses[static_cast<size_t>(i)] = log_sum - z[target];
        if (dhidden == nullptr) continue;
        // dloss/dz_j = softmax_j - [j == target]; z is overwritten by its gradient.
        for (int64_t j = 0; j < vocab; ++j) {
          z[j] = static_cast<float>(std::exp(static_cast<double>(z[j]) - log_sum)) * scale;
        }
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
