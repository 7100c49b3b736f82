#include "keel/engine/quant.h"

#include <cstdlib>
#include <string>

#include "keel/engine/quant_avx2.h"
#include "keel/engine/quant_avx512.h"
#include "keel/engine/quant_scalar.h"

namespace keel::engine {

std::string_view kernel_isa_name(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kScalar:
      return "scalar";
    case KernelIsa::kAvx2:
      return "avx2";
    case KernelIsa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

const QuantKernelTable& scalar_quant_kernels() {
  static const QuantKernelTable table = scalar::make_scalar_kernel_table();
  return table;
}

const QuantKernelTable* avx2_quant_kernels() {
  // Built once, and only on a CPU that can run it; immutable afterwards.
  static const QuantKernelTable* const table = []() -> const QuantKernelTable* {
    if (!avx2::compiled() || !detect_cpu_features().has_avx2_kernel_set()) return nullptr;
    static const QuantKernelTable avx2_table = avx2::make_avx2_kernel_table();
    return &avx2_table;
  }();
  return table;
}

const QuantKernelTable* avx512_quant_kernels() {
  static const QuantKernelTable* const table = []() -> const QuantKernelTable* {
    if (!avx512::compiled() || !detect_cpu_features().has_avx512_kernel_set()) return nullptr;
    static const QuantKernelTable avx512_table = avx512::make_avx512_kernel_table();
    return &avx512_table;
  }();
  return table;
}

namespace {

bool env_flag_set(const char* value) {
  return value != nullptr && std::string_view(value) != "" && std::string_view(value) != "0";
}

}  // namespace

KernelIsa choose_kernel_isa(const CpuFeatures& cpu, const char* force_scalar_env, const char* force_avx2_env) {
  if (env_flag_set(force_scalar_env)) return KernelIsa::kScalar;
  if (!env_flag_set(force_avx2_env) && avx512::compiled() && cpu.has_avx512_kernel_set()) return KernelIsa::kAvx512;
  if (avx2::compiled() && cpu.has_avx2_kernel_set()) return KernelIsa::kAvx2;
  return KernelIsa::kScalar;
}

const QuantKernelTable& quant_kernels() {
  static const QuantKernelTable* const active = []() -> const QuantKernelTable* {
    const KernelIsa isa =
        choose_kernel_isa(detect_cpu_features(), std::getenv("KEEL_FORCE_SCALAR"), std::getenv("KEEL_FORCE_AVX2"));
    if (isa == KernelIsa::kAvx512 && avx512_quant_kernels() != nullptr) return avx512_quant_kernels();
    if (isa == KernelIsa::kAvx2 && avx2_quant_kernels() != nullptr) return avx2_quant_kernels();
    return &scalar_quant_kernels();
  }();
  return *active;
}

Status check_row_shape(GgmlType type, int64_t n) {
  const auto traits = tensor_type_traits(static_cast<uint32_t>(type));
  if (!traits) {
    return invalid_argument("tensor type " + std::to_string(static_cast<uint32_t>(type)) +
                            " has no kernels in this engine");
  }
  if (n <= 0 || n % traits->block_size != 0) {
    return invalid_argument(std::string(traits->name) + " row of " + std::to_string(n) +
                            " elements: must be a positive multiple of the block size " +
                            std::to_string(traits->block_size));
  }
  return Status::Ok();
}

namespace {

// A missing kernel is the caller's bug (see TypeKernels); fail loudly, not via a null call.
template <typename Fn>
Fn require(Fn fn) {
  if (fn == nullptr) std::abort();
  return fn;
}

}  // namespace

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  require(quant_kernels()[type].dequantize_row)(src, dst, n);
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  require(quant_kernels()[type].quantize_row)(src, dst, n);
}

float vec_dot(GgmlType weight_type, int64_t n, const void* weights, const void* activations) {
  return require(quant_kernels()[weight_type].vec_dot)(n, weights, activations);
}

}  // namespace keel::engine
