// AVX2 / FMA / F16C variants of the row kernels (quant.h). The file is compiled for the
// build's baseline CPU; every function in it carries a target attribute, so the portable
// build (x86-64-v2) contains them too, and quant.cpp calls them only after cpuid said
// yes. Dequantizers and quantizers give the same bits as the scalar references; dot
// products add in a different order (eight float lanes, fused multiply-adds), so they
// agree with the references to rounding (see quant_test.cpp for the bound).
#pragma once

#include "keel/engine/quant.h"

namespace keel::engine::avx2 {

// True when this build contains the AVX2 kernels (x86 with a compiler that has the
// target attribute).
bool compiled();

// The scalar table with the AVX2 variants put in. REQUIRES: compiled() and a CPU with
// AVX2, FMA and F16C (CpuFeatures::has_avx2_kernel_set) before any kernel is called.
QuantKernelTable make_avx2_kernel_table();

}  // namespace keel::engine::avx2
