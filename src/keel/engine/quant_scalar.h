// The scalar reference kernels: plain loops with the arithmetic of ggml's reference
// (ggml-quants.c *_ref, dequantize_row_*) and scalar dot products (ggml-cpu quants.c
// *_generic, vec.cpp), float operations in the same order. This file is compiled with
// -ffp-contract=off so that no build (native or portable) fuses a multiply and an add:
// the results are the same bits on every x86-64 machine. SIMD variants are tested
// against these. Used by quant.cpp (the dispatch table) and quant_avx2.cpp (tails).
#pragma once

#include <cstdint>

#include "keel/engine/quant.h"

namespace keel::engine::scalar {

void dequantize_row_f32(const void* src, float* dst, int64_t n);
void dequantize_row_f16(const void* src, float* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* dst, int64_t n);
void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q5_0(const void* src, float* dst, int64_t n);
void dequantize_row_q5_1(const void* src, float* dst, int64_t n);
void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q8_1(const void* src, float* dst, int64_t n);
void dequantize_row_q4_k(const void* src, float* dst, int64_t n);
void dequantize_row_q5_k(const void* src, float* dst, int64_t n);
void dequantize_row_q6_k(const void* src, float* dst, int64_t n);
void dequantize_row_q8_k(const void* src, float* dst, int64_t n);

// Weight quantizers: round-to-nearest, as ggml's quantize_row_*_ref.
void quantize_row_f32(const float* src, void* dst, int64_t n);
void quantize_row_f16(const float* src, void* dst, int64_t n);
void quantize_row_bf16(const float* src, void* dst, int64_t n);
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_1(const float* src, void* dst, int64_t n);
void quantize_row_q5_0(const float* src, void* dst, int64_t n);
void quantize_row_q5_1(const float* src, void* dst, int64_t n);
// Q8_0 and Q8_1 serve as weights and as activations (roundf: ties away from zero).
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q8_1(const float* src, void* dst, int64_t n);
// Activations for K-quant dot products (nearest, ties to even; scale -127/max).
void quantize_row_q8_k(const float* src, void* dst, int64_t n);

// Dot products; the name says weight type and activation type.
float vec_dot_f32(int64_t n, const void* weights, const void* activations);
float vec_dot_f16(int64_t n, const void* weights, const void* activations);
float vec_dot_bf16(int64_t n, const void* weights, const void* activations);
float vec_dot_q4_0_q8_0(int64_t n, const void* weights, const void* activations);
float vec_dot_q4_1_q8_1(int64_t n, const void* weights, const void* activations);
float vec_dot_q5_0_q8_0(int64_t n, const void* weights, const void* activations);
float vec_dot_q5_1_q8_1(int64_t n, const void* weights, const void* activations);
float vec_dot_q8_0_q8_0(int64_t n, const void* weights, const void* activations);
float vec_dot_q4_k_q8_k(int64_t n, const void* weights, const void* activations);
float vec_dot_q5_k_q8_k(int64_t n, const void* weights, const void* activations);
float vec_dot_q6_k_q8_k(int64_t n, const void* weights, const void* activations);

// Unpacks the 6-bit scales and mins of a Q4_K / Q5_K block (8 of each).
void unpack_k4_scales(const uint8_t packed[kKScaleBytes], uint8_t scales[8], uint8_t mins[8]);

// The table of the functions above.
QuantKernelTable make_scalar_kernel_table();

}  // namespace keel::engine::scalar
