#include "keel/engine/cpu_features.h"

namespace keel::engine {

CpuFeatures detect_cpu_features() {
  CpuFeatures features;
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's cpu model checks CPUID and, for AVX, that the OS saves the YMM state (XCR0).
  __builtin_cpu_init();
  features.avx2 = __builtin_cpu_supports("avx2");
  features.fma = __builtin_cpu_supports("fma");
  features.f16c = __builtin_cpu_supports("f16c");
  // For AVX-512, libgcc also checks that the OS saves the ZMM and opmask state.
  features.avx512f = __builtin_cpu_supports("avx512f");
  features.avx512bw = __builtin_cpu_supports("avx512bw");
  features.avx512vl = __builtin_cpu_supports("avx512vl");
  features.avx512vnni = __builtin_cpu_supports("avx512vnni");
#endif
  return features;
}

}  // namespace keel::engine
