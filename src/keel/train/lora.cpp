#include "keel/train/lora.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "keel/train/vector_math.h"

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

// The masks of one call: the key's hash computed once, one mix per element.
class DropoutMask {
 public:
  DropoutMask(const DropoutKey& key, float p) : p_(p), keep_scale_(p > 0 ? 1.0f / (1.0f - p) : 1.0f) {
    uint64_t h = mix64(key.seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ key.step);
    base_ = mix64(h ^ (static_cast<uint64_t>(key.layer) << 8 | static_cast<uint64_t>(key.module)));
  }
  bool keeps(uint64_t element) const {
    const uint64_t h = mix64(base_ ^ element);
    return static_cast<double>(h >> 11) * 0x1.0p-53 >= p_;  // uniform in [0, 1) against p
  }
  // 1 / (1 - p) for a kept element, 0 for a dropped one (1 without dropout).
  float factor(uint64_t element) const {
    if (p_ <= 0) return 1.0f;
    return keeps(element) ? keep_scale_ : 0.0f;
  }

 private:
  float p_, keep_scale_;
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

void lora_forward(engine::ComputePool& pool, const LoraAdapter& ad, const float* x, int64_t n, float dropout,
                  const DropoutKey& key, float* y, LoraActivation& saved) {
  const int64_t r = ad.rank, in = ad.in, out = ad.out;
  saved.h.assign(static_cast<size_t>(n * r), 0.0f);
  const DropoutMask mask(key, dropout);
  pool.run(n, [&](int64_t begin, int64_t end) {
    std::vector<float> xd(static_cast<size_t>(in));
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t i = 0; i < in; ++i) {
        xd[i] = x[t * in + i] * mask.factor(static_cast<uint64_t>(t * in + i));
      }
      float* h = saved.h.data() + t * r;
      for (int64_t k = 0; k < r; ++k) h[k] = dot_product(ad.a.data() + k * in, xd.data(), in);
      float* yt = y + t * out;
      for (int64_t o = 0; o < out; ++o) {
        const float* bo = ad.b.data() + o * r;
        float s = 0;
        for (int64_t k = 0; k < r; ++k) s += bo[k] * h[k];
        yt[o] += ad.scale * s;
      }
    }
  });
}

void lora_backward(engine::ComputePool& pool, LoraAdapter& ad, const float* x, int64_t n, float dropout,
                   const DropoutKey& key, const LoraActivation& saved, const float* dy, float* dx) {
  const int64_t r = ad.rank, in = ad.in, out = ad.out;
  const float* h = saved.h.data();
  // grad_b[o][k] += scale sum_t dy[t][o] h[t][k]: rows of B split across the pool.
  pool.run(out, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      float* g = ad.grad_b.data() + o * r;
      for (int64_t t = 0; t < n; ++t) {
        const float d = ad.scale * dy[t * out + o];
        for (int64_t k = 0; k < r; ++k) g[k] += d * h[t * r + k];
      }
    }
  });
  // dh[t][k] = scale sum_o dy[t][o] B[o][k].
  std::vector<float> dh(static_cast<size_t>(n * r), 0.0f);
  pool.run(n, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t o = 0; o < out; ++o) {
        const float d = ad.scale * dy[t * out + o];
        const float* bo = ad.b.data() + o * r;
        for (int64_t k = 0; k < r; ++k) dh[t * r + k] += d * bo[k];
      }
    }
  });
  // The mask's factors, computed once for both uses below (n x in floats, freed on return).
  std::vector<float> factor;
  if (dropout > 0) {
    const DropoutMask mask(key, dropout);
    factor.resize(static_cast<size_t>(n * in));
    pool.run(n, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin * in; e < end * in; ++e) factor[e] = mask.factor(static_cast<uint64_t>(e));
    });
  }
  const auto f = [&](int64_t e) { return factor.empty() ? 1.0f : factor[static_cast<size_t>(e)]; };
  // grad_a[k][i] += sum_t dh[t][k] xd[t][i]: columns of A split across the pool.
  pool.run(in, [&](int64_t begin, int64_t end) {
    std::vector<float> xd(static_cast<size_t>(end - begin));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = begin; i < end; ++i) xd[i - begin] = x[t * in + i] * f(t * in + i);
      for (int64_t k = 0; k < r; ++k) {
        const float d = dh[t * r + k];
        float* g = ad.grad_a.data() + k * in;
        for (int64_t i = begin; i < end; ++i) g[i] += d * xd[i - begin];
      }
    }
  });
  // dx[t][i] += factor(t, i) sum_k dh[t][k] A[k][i].
  pool.run(n, [&](int64_t begin, int64_t end) {
    std::vector<float> s(static_cast<size_t>(in));
    for (int64_t t = begin; t < end; ++t) {
      std::fill(s.begin(), s.end(), 0.0f);
      for (int64_t k = 0; k < r; ++k) {
        const float d = dh[t * r + k];
        const float* ak = ad.a.data() + k * in;
        for (int64_t i = 0; i < in; ++i) s[i] += d * ak[i];
      }
      for (int64_t i = 0; i < in; ++i) dx[t * in + i] += f(t * in + i) * s[i];
    }
  });
}

}  // namespace keel::train
