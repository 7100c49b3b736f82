#include "keel/train/lora.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "keel/train/gemm.h"

namespace keel::train {
namespace {

constexpr LoraModule kAllModules[kLoraModuleCount] = {LoraModule::kQ,   LoraModule::kK,    LoraModule::kV,
                                                      LoraModule::kO,   LoraModule::kGate, LoraModule::kUp,
                                                      LoraModule::kDown};

// GGUF-style tensor names for parameter names: "attn_q", ..., "ffn_down".
std::string_view tensor_stem(LoraModule module) {
  switch (module) {
    case LoraModule::kQ:
      return "attn_q";
    case LoraModule::kK:
      return "attn_k";
    case LoraModule::kV:
      return "attn_v";
    case LoraModule::kO:
      return "attn_output";
    case LoraModule::kGate:
      return "ffn_gate";
    case LoraModule::kUp:
      return "ffn_up";
    case LoraModule::kDown:
      return "ffn_down";
  }
  return "?";
}

uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The masks of one call: the key's hash computed once, one mix per element. Element e
// survives when the top 53 bits of its hash, as a fraction of 2^53, are at least p:
// u * 2^-53 >= p holds exactly when the integer u >= ceil(p * 2^53) (both sides are
// exact in double), so the test is an integer comparison the compiler vectorizes.
class DropoutMask {
 public:
  DropoutMask(const DropoutKey& key, float p)
      : p_(p),
        keep_scale_(p > 0 ? 1.0f / (1.0f - p) : 1.0f),
        threshold_(static_cast<uint64_t>(std::ceil(static_cast<double>(p) * 0x1.0p53))) {
    uint64_t h = mix64(key.seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ key.step);
    base_ = mix64(h ^ (static_cast<uint64_t>(key.layer) << 8 | static_cast<uint64_t>(key.module)));
  }
  bool keeps(uint64_t element) const { return (mix64(base_ ^ element) >> 11) >= threshold_; }
  // factor[i] = 1 / (1 - p) for a kept element first + i, 0 for a dropped one (1
  // everywhere without dropout), for count elements.
  void factors(uint64_t first, int64_t count, float* factor) const {
    if (p_ <= 0) {
      std::fill(factor, factor + count, 1.0f);
      return;
    }
    const uint64_t base = base_, threshold = threshold_;
    const float keep = keep_scale_;
    for (int64_t i = 0; i < count; ++i) {
      factor[i] = (mix64(base ^ (first + static_cast<uint64_t>(i))) >> 11) >= threshold ? keep : 0.0f;
    }
  }

 private:
  float p_, keep_scale_;
  uint64_t threshold_;
  uint64_t base_ = 0;
};

}  // namespace

std::string_view lora_module_name(LoraModule module) {
  switch (module) {
    case LoraModule::kQ:
      return "q";
    case LoraModule::kK:
      return "k";
    case LoraModule::kV:
      return "v";
    case LoraModule::kO:
      return "o";
    case LoraModule::kGate:
      return "gate";
    case LoraModule::kUp:
      return "up";
    case LoraModule::kDown:
      return "down";
  }
  return "?";
}

Result<std::vector<LoraModule>> parse_lora_modules(std::string_view list) {
  std::vector<LoraModule> modules;
  if (list == "all") return std::vector<LoraModule>(std::begin(kAllModules), std::end(kAllModules));
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string_view name = list.substr(start, comma - start);
    if (name.size() > 5 && name.substr(name.size() - 5) == "_proj") name.remove_suffix(5);
    bool found = false;
    for (LoraModule m : kAllModules) {
      if (lora_module_name(m) == name) {
        if (std::find(modules.begin(), modules.end(), m) != modules.end()) {
          return invalid_argument("LoRA module \"" + std::string(name) + "\" is listed twice");
        }
        modules.push_back(m);
        found = true;
      }
    }
    if (!found) {
      return invalid_argument("unknown LoRA module \"" + std::string(name) +
                              "\" (known: q, k, v, o, gate, up, down, or all)");
    }
    start = comma + 1;
  }
  return modules;
}

const engine::WeightMatrix& lora_base_matrix(const engine::LayerWeights& layer, LoraModule module) {
  switch (module) {
    case LoraModule::kQ:
      return layer.attention_q;
    case LoraModule::kK:
      return layer.attention_k;
    case LoraModule::kV:
      return layer.attention_v;
    case LoraModule::kO:
      return layer.attention_output;
    case LoraModule::kGate:
      return layer.ffn_gate;
    case LoraModule::kUp:
      return layer.ffn_up;
    case LoraModule::kDown:
      return layer.ffn_down;
  }
  return layer.attention_q;
}

Result<LoraWeights> LoraWeights::create(const engine::Model& model, const LoraConfig& config) {
  if (config.rank < 1) return invalid_argument("LoRA rank must be at least 1, is " + std::to_string(config.rank));
  if (!(config.dropout >= 0 && config.dropout < 1)) return invalid_argument("LoRA dropout must be in [0, 1)");
  if (!(config.alpha > 0)) return invalid_argument("LoRA alpha must be positive");
  if (config.modules.empty()) return invalid_argument("LoRA needs at least one module to adapt");
  for (size_t i = 0; i < config.modules.size(); ++i) {
    if (std::count(config.modules.begin(), config.modules.end(), config.modules[i]) > 1) {
      return invalid_argument("LoRA module \"" + std::string(lora_module_name(config.modules[i])) +
                              "\" is listed twice");
    }
  }
  LoraWeights w;
  w.config_ = config;
  const int64_t layers = model.config().layer_count;
  w.index_.assign(static_cast<size_t>(layers * kLoraModuleCount), -1);
  std::mt19937_64 rng(config.seed);
  // Layer by layer, modules in their fixed order, so the same seed gives the same A
  // whatever order config.modules lists them in.
  for (int64_t l = 0; l < layers; ++l) {
    for (LoraModule m : kAllModules) {
      if (std::find(config.modules.begin(), config.modules.end(), m) == config.modules.end()) continue;
      const engine::WeightMatrix& base = lora_base_matrix(model.layers()[static_cast<size_t>(l)], m);
      LoraAdapter a;
      a.layer = l;
      a.module = m;
      a.rank = config.rank;
      a.in = base.cols;
      a.out = base.rows;
      a.scale = config.alpha / static_cast<float>(config.rank);
      a.a.resize(static_cast<size_t>(a.rank * a.in));
      const double bound = 1.0 / std::sqrt(static_cast<double>(a.in));
      std::uniform_real_distribution<double> uniform(-bound, bound);
      for (float& v : a.a) v = static_cast<float>(uniform(rng));
      a.b.assign(static_cast<size_t>(a.out * a.rank), 0.0f);
      a.grad_a.assign(a.a.size(), 0.0f);
      a.grad_b.assign(a.b.size(), 0.0f);
      w.index_[static_cast<size_t>(l * kLoraModuleCount + static_cast<int>(m))] =
          static_cast<int64_t>(w.adapters_.size());
      w.adapters_.push_back(std::move(a));
    }
  }
  return w;
}

LoraAdapter* LoraWeights::find(int64_t layer, LoraModule module) {
  const auto i = static_cast<size_t>(layer * kLoraModuleCount + static_cast<int>(module));
  if (layer < 0 || i >= index_.size() || index_[i] < 0) return nullptr;
  return &adapters_[static_cast<size_t>(index_[i])];
}

const LoraAdapter* LoraWeights::find(int64_t layer, LoraModule module) const {
  return const_cast<LoraWeights*>(this)->find(layer, module);
}

std::vector<ParameterRef> LoraWeights::parameters() {
  std::vector<ParameterRef> out;
  for (LoraAdapter& a : adapters_) {
    const std::string stem = "blk." + std::to_string(a.layer) + "." + std::string(tensor_stem(a.module));
    out.push_back({stem + ".lora_a", a.a, a.grad_a});
    out.push_back({stem + ".lora_b", a.b, a.grad_b});
  }
  return out;
}

int64_t LoraWeights::parameter_count() const {
  int64_t n = 0;
  for (const LoraAdapter& a : adapters_) n += static_cast<int64_t>(a.a.size() + a.b.size());
  return n;
}

void LoraWeights::zero_grad() {
  for (LoraAdapter& a : adapters_) {
    std::fill(a.grad_a.begin(), a.grad_a.end(), 0.0f);
    std::fill(a.grad_b.begin(), a.grad_b.end(), 0.0f);
  }
}

bool lora_dropout_keeps(const DropoutKey& key, uint64_t element, float p) {
  return DropoutMask(key, p).keeps(element);
}

namespace {

// Rows (tokens, rows of B, columns of A) one gemm call of an adapter takes: a fixed
// size, so results do not depend on the thread count (gemm.h).
constexpr int64_t kTile = 128;

// xd[t][i] = x[t][i] * factor of element t * in + i, for rows [t0, t1); the factors
// go to factor (rows [t0, t1) of an [n][in] buffer).
void apply_dropout(const DropoutMask& mask, const float* x, int64_t in, int64_t t0, int64_t t1, float* xd,
                   float* factor) {
  const int64_t first = t0 * in, count = (t1 - t0) * in;
  mask.factors(static_cast<uint64_t>(first), count, factor + first);
  for (int64_t e = first; e < first + count; ++e) xd[e] = x[e] * factor[e];
}

}  // namespace

void lora_forward(engine::ComputePool& pool, const LoraAdapter& ad, const float* x, int64_t n, float dropout,
                  const DropoutKey& key, float* y, LoraActivation& saved, LoraScratch& scratch) {
  const int64_t r = ad.rank, in = ad.in, out = ad.out;
  saved.h.resize(static_cast<size_t>(n * r));
  const DropoutMask mask(key, dropout);
  if (dropout > 0) {
    scratch.xd.resize(static_cast<size_t>(n * in));
    scratch.factor.resize(scratch.xd.size());
  }
  const float* input = dropout > 0 ? scratch.xd.data() : x;
  // Per tile of tokens: h = dropout(x) A^T, y += scale h B^T.
  for_each_tile(pool, n, kTile, [&](int64_t t0, int64_t t1) {
    if (dropout > 0) apply_dropout(mask, x, in, t0, t1, scratch.xd.data(), scratch.factor.data());
    float* h = saved.h.data() + t0 * r;
    gemm(false, true, t1 - t0, r, in, 1.0f, input + t0 * in, in, ad.a.data(), in, 0.0f, h, r);
    gemm(false, true, t1 - t0, out, r, ad.scale, h, r, ad.b.data(), r, 1.0f, y + t0 * out, out);
  });
}

void lora_backward(engine::ComputePool& pool, LoraAdapter& ad, const float* x, int64_t n, float dropout,
                   const DropoutKey& key, const LoraActivation& saved, const float* dy, float* dx,
                   LoraScratch& scratch) {
  const int64_t r = ad.rank, in = ad.in, out = ad.out;
  const float* h = saved.h.data();
  const DropoutMask mask(key, dropout);
  // dropout(x) and the mask's factors, made once for both uses below.
  if (dropout > 0) {
    scratch.xd.resize(static_cast<size_t>(n * in));
    scratch.factor.resize(scratch.xd.size());
    scratch.product.resize(scratch.xd.size());
  }
  const float* input = dropout > 0 ? scratch.xd.data() : x;
  scratch.dh.resize(static_cast<size_t>(n * r));
  float* dh = scratch.dh.data();
  // Per tile of tokens: dh = scale dy B; dx += factor * (dh A).
  for_each_tile(pool, n, kTile, [&](int64_t t0, int64_t t1) {
    const int64_t rows = t1 - t0;
    gemm(false, false, rows, r, out, ad.scale, dy + t0 * out, out, ad.b.data(), r, 0.0f, dh + t0 * r, r);
    if (dropout <= 0) {
      gemm(false, false, rows, in, r, 1.0f, dh + t0 * r, r, ad.a.data(), in, 1.0f, dx + t0 * in, in);
      return;
    }
    apply_dropout(mask, x, in, t0, t1, scratch.xd.data(), scratch.factor.data());
    float* product = scratch.product.data() + t0 * in;
    const float* factor = scratch.factor.data() + t0 * in;
    gemm(false, false, rows, in, r, 1.0f, dh + t0 * r, r, ad.a.data(), in, 0.0f, product, in);
    for (int64_t e = 0; e < rows * in; ++e) dx[t0 * in + e] += factor[e] * product[e];
  });
  // grad_b[o][k] += scale sum_t dy[t][o] h[t][k]: rows of B split across the pool.
  for_each_tile(pool, out, kTile, [&](int64_t begin, int64_t end) {
    gemm(true, false, end - begin, r, n, ad.scale, dy + begin, out, h, r, 1.0f, ad.grad_b.data() + begin * r, r);
  });
  // grad_a[k][i] += sum_t dh[t][k] xd[t][i]: columns of A split across the pool.
  for_each_tile(pool, in, kTile, [&](int64_t begin, int64_t end) {
    gemm(true, false, r, end - begin, n, 1.0f, dh, r, input + begin, in, 1.0f, ad.grad_a.data() + begin, in);
  });
}

}  // namespace keel::train
