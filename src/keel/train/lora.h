// LoRA adapters (Hu et al. 2021, as PEFT implements them) on the decoder's linear
// modules: y = W x + (alpha / r) B A dropout(x), A [r][in], B [out][r]. A starts
// kaiming-uniform (PEFT's nn.init.kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(in),
// 1/sqrt(in))), B at zero, so a fresh adapter leaves the model unchanged. Only A and B
// have gradients; the base weights stay frozen in the GGUF mapping. Dropout masks are
// a pure function of (seed, step, layer, module, element), so a backward (or a
// recomputed forward) sees the same mask as its forward without storing it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/engine/compute_pool.h"
#include "keel/engine/model.h"
#include "keel/util/status.h"

namespace keel::train {

// The linear modules of a llama-family layer LoRA can adapt.
enum class LoraModule { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraModuleCount = 7;

std::string_view lora_module_name(LoraModule module);  // "q", "k", ..., "down"
// "q,k,v,o,gate,up,down" (or "all"); PEFT's names (q_proj, ..., down_proj) too.
Result<std::vector<LoraModule>> parse_lora_modules(std::string_view list);
// The base matrix a module adapts in one layer.
const engine::WeightMatrix& lora_base_matrix(const engine::LayerWeights& layer, LoraModule module);

struct LoraConfig {
  int64_t rank = 8;
  float alpha = 16.0f;
  float dropout = 0.0f;  // in [0, 1)
  uint64_t seed = 0;     // initialisation of A and the dropout masks
  std::vector<LoraModule> modules = {LoraModule::kQ, LoraModule::kV};
};

// One module of one layer: parameters, their gradients (summed by backward).
struct LoraAdapter {
  int64_t layer = 0;
  LoraModule module = LoraModule::kQ;
  int64_t rank = 0, in = 0, out = 0;
  float scale = 0;                    // alpha / rank
  std::vector<float> a, b;            // a [rank][in], b [out][rank]
  std::vector<float> grad_a, grad_b;  // same shapes
};

// A parameter tensor and its gradient, as the optimizer sees it.
struct ParameterRef {
  std::string name;  // "blk.3.attn_q.lora_a"
  std::span<float> value;
  std::span<float> grad;
};

// Buffers of one adapted call: h = A dropout(x), [n][rank].
struct LoraActivation {
  std::vector<float> h;
};

// Buffers lora_forward and lora_backward reuse between calls (one per caller), so a
// step's hundreds of calls do not each map and fault in fresh pages.
struct LoraScratch {
  std::vector<float> xd, factor, dh, product;
};

class LoraWeights {
 public:
  // Adapters for every layer and configured module, initialised from config.seed.
  // kInvalidArgument for a rank < 1, a negative or >= 1 dropout, no modules, or a
  // module listed twice.
  static Result<LoraWeights> create(const engine::Model& model, const LoraConfig& config);

  const LoraConfig& config() const { return config_; }
  // The adapter of (layer, module), or nullptr when that module is not adapted.
  LoraAdapter* find(int64_t layer, LoraModule module);
  const LoraAdapter* find(int64_t layer, LoraModule module) const;
  std::vector<LoraAdapter>& adapters() { return adapters_; }
  const std::vector<LoraAdapter>& adapters() const { return adapters_; }
  // Every A and B with its gradient, in a fixed order (layer, module, A then B).
  std::vector<ParameterRef> parameters();
  int64_t parameter_count() const;
  void zero_grad();

 private:
  LoraConfig config_;
  std::vector<LoraAdapter> adapters_;
  // index_[layer * kLoraModuleCount + module] into adapters_, or -1.
  std::vector<int64_t> index_;
};

// The dropout key of one adapted call: which step, layer and module.
struct DropoutKey {
  uint64_t seed = 0;
  uint64_t step = 0;
  int64_t layer = 0;
  LoraModule module = LoraModule::kQ;
};

// Whether element i of the call's [n][in] input survives dropout with rate p.
bool lora_dropout_keeps(const DropoutKey& key, uint64_t element, float p);

// y += scale * B (A dropout(x)), x [n][in], y [n][out]; saves h = A dropout(x).
// dropout: the rate to apply (0 when evaluating).
void lora_forward(engine::ComputePool& pool, const LoraAdapter& adapter, const float* x, int64_t n, float dropout,
                  const DropoutKey& key, float* y, LoraActivation& saved, LoraScratch& scratch);
// grad_b += scale dy^T h; dh = scale dy B; grad_a += dh^T dropout(x);
// dx += dropout^T(A^T dh) (same mask, same 1/(1-p)).
void lora_backward(engine::ComputePool& pool, LoraAdapter& adapter, const float* x, int64_t n, float dropout,
                   const DropoutKey& key, const LoraActivation& saved, const float* dy, float* dx,
                   LoraScratch& scratch);

}  // namespace keel::train
