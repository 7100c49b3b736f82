// Row kernels for the engine's tensor types: dequantize a row to float, quantize a
// float row, and the dot product of one weight row with an activation row already
// converted to the weight type's vec_dot_type (tensor_types.h). Every kernel has a
// scalar reference (quant_scalar.h) with ggml's scalar arithmetic; SIMD variants
// (quant_avx2.h, quant_avx512.h) are chosen once per process from cpuid, and
// KEEL_FORCE_SCALAR=1 (or KEEL_FORCE_AVX2=1) in the environment forces the scalar
// references (or caps the choice at AVX2). Callers must pass n as a multiple of
// the type's block size (check_row_shape says so as a Status) and activations of the
// vec_dot_type; the kernels themselves do not check.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "keel/engine/cpu_features.h"
#include "keel/engine/tensor_types.h"
#include "keel/util/status.h"

namespace keel::engine {

using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of a weight row (n elements of the weight type) with an activation row
// (n elements of its vec_dot_type).
using VecDotFn = float (*)(int64_t n, const void* weights, const void* activations);
// Dot products of `rows` weight rows (row r at weights + r * weight_stride bytes) with
// `tokens` activation rows (token t at activations + t * activation_stride bytes), n
// elements each: out[t * out_stride + r]. Each element has the same bits as the same
// table's vec_dot of that row and token, whatever rows and tokens are, so a batch of
// tokens gives the results of the tokens one at a time.
using GemmFn = void (*)(int64_t n, const void* weights, int64_t weight_stride, int64_t rows, const void* activations,
                        int64_t activation_stride, int64_t tokens, float* out, int64_t out_stride);

enum class KernelIsa { kScalar, kAvx2, kAvx512 };
std::string_view kernel_isa_name(KernelIsa isa);  // "scalar", "avx2", "avx512"

// The kernels of one type; a null pointer means the type has no such kernel (K-quant
// weights have no quantizer yet; the activation-side types Q8_1 and Q8_K no vec_dot).
struct TypeKernels {
  DequantizeRowFn dequantize_row = nullptr;
  QuantizeRowFn quantize_row = nullptr;
  VecDotFn vec_dot = nullptr;
  // A register-tiled product of many rows and tokens, where the table has one (else
  // callers loop over vec_dot).
  GemmFn gemm = nullptr;
  // Which of these are SIMD variants in this table (false in the scalar table).
  bool simd_dequantize = false;
  bool simd_quantize = false;
  bool simd_vec_dot = false;
};

class QuantKernelTable {
 public:
  explicit QuantKernelTable(KernelIsa isa) : isa_(isa) {}
  // A copy of `base`'s kernels under another name (SIMD tables start from the scalar one).
  QuantKernelTable(KernelIsa isa, const QuantKernelTable& base) : isa_(isa), by_id_(base.by_id_) {}
  KernelIsa isa() const { return isa_; }
  // An id the table has no slot for reads as a type without kernels.
  const TypeKernels& operator[](GgmlType type) const {
    static const TypeKernels kNone;
    const auto id = static_cast<uint32_t>(type);
    return id < by_id_.size() ? by_id_[id] : kNone;
  }
  TypeKernels& operator[](GgmlType type) { return by_id_.at(static_cast<uint32_t>(type)); }

 private:
  KernelIsa isa_;
  std::array<TypeKernels, 31> by_id_{};  // indexed by ggml type id (largest used: BF16 = 30)
};

// The scalar references: always available.
const QuantKernelTable& scalar_quant_kernels();
// The AVX2/FMA/F16C variants, or nullptr when this build has none (non-x86) or the CPU
// lacks one of the three. Types without an AVX2 variant carry the scalar functions.
const QuantKernelTable* avx2_quant_kernels();
// The AVX-512 (F, BW, VL, VNNI) variants, or nullptr when this build or CPU has none.
// Types without an AVX-512 variant carry the AVX2 functions.
const QuantKernelTable* avx512_quant_kernels();
// The table this process uses: chosen on first call from the CPU, KEEL_FORCE_SCALAR
// and KEEL_FORCE_AVX2.
const QuantKernelTable& quant_kernels();

// The choice quant_kernels() makes, as a pure function (for tests): scalar when
// force_scalar_env is set to anything but "" or "0"; else AVX-512 when compiled in, the
// CPU has the kernel set and force_avx2_env is unset, "" or "0"; else AVX2 when
// compiled in and the CPU has the kernel set.
KernelIsa choose_kernel_isa(const CpuFeatures& cpu, const char* force_scalar_env, const char* force_avx2_env = nullptr);

// kInvalidArgument unless the engine has kernels for `type` and n is a positive
// multiple of its block size.
Status check_row_shape(GgmlType type, int64_t n);

// The active table's kernels. REQUIRES: check_row_shape(type, n) is ok, the kernel
// exists (see TypeKernels), and for vec_dot the activations are in
// tensor_type_traits(weight_type).vec_dot_type with 8-bit quants in [-127, 127] (as
// quantize_row writes them).
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
float vec_dot(GgmlType weight_type, int64_t n, const void* weights, const void* activations);

}  // namespace keel::engine
