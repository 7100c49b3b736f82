// What the CPU this process runs on can execute, read once from cpuid. The kernel
// dispatch (quant.h) uses it to choose between scalar and SIMD variants at run time,
// so one binary built for a generic x86-64 still uses AVX2 where the CPU has it.
#pragma once

namespace keel::engine {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;

  // The set the AVX2 kernels are compiled for (target "avx2,fma,f16c").
  bool has_avx2_kernel_set() const { return avx2 && fma && f16c; }
  // The set the AVX-512 kernels are compiled for (the AVX2 set plus F, BW, VL, VNNI).
  bool has_avx512_kernel_set() const { return has_avx2_kernel_set() && avx512f && avx512bw && avx512vl && avx512vnni; }
};

// The running CPU's features (all false on non-x86 builds). The OS's support for the
// AVX register state is part of the check.
CpuFeatures detect_cpu_features();

}  // namespace keel::engine
