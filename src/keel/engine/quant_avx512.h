// AVX-512 (F, BW, VL, VNNI) register-tiled products (GemmFn) of several weight rows and
// tokens for the types the engine's models spend their time in (Q4_0, Q4_1, Q8_0). Each
// element gets exactly the float operations of the AVX2 vec_dot (two elements per
// 512-bit register, VNNI for the integer sums), so results have the AVX2 kernels' bits
// whichever table runs. Q8_0 batches first lay their operands out for the VNNI product
// (activations per call, weight rows per tile, in a per-thread buffer that is kept), so
// that their inner loop holds nothing else. Like quant_avx2.cpp, every function carries
// a target attribute and quant.cpp calls them only after cpuid said yes. Everything
// else, vec_dot included, is the AVX2 table's.
#pragma once

#include "keel/engine/quant.h"

namespace keel::engine::avx512 {

// True when this build contains the AVX-512 kernels (x86 with GCC's target attribute).
bool compiled();

// The AVX2 table with the AVX-512 variants put in. REQUIRES: compiled() and a CPU with
// CpuFeatures::has_avx512_kernel_set() before any kernel is called.
QuantKernelTable make_avx512_kernel_table();

}  // namespace keel::engine::avx512
