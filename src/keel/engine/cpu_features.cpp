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
#endif
  return features;
}

}  // namespace keel::engine
