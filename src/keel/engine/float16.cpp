#include "keel/engine/float16.h"

#include "keel/engine/quant.h"

namespace keel::engine {

void fp16_to_fp32_row(const Fp16Bits* src, float* dst, int64_t n) {
  quant_kernels()[GgmlType::kF16].dequantize_row(src, dst, n);
}

void fp32_to_fp16_row(const float* src, Fp16Bits* dst, int64_t n) {
  quant_kernels()[GgmlType::kF16].quantize_row(src, dst, n);
}

void bf16_to_fp32_row(const Bf16Bits* src, float* dst, int64_t n) {
  quant_kernels()[GgmlType::kBF16].dequantize_row(src, dst, n);
}

void fp32_to_bf16_row(const float* src, Bf16Bits* dst, int64_t n) {
  quant_kernels()[GgmlType::kBF16].quantize_row(src, dst, n);
}

}  // namespace keel::engine
