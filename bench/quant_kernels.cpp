// Microbenchmark of the row kernels (src/keel/engine/quant.h): the AVX2 variants against
// their named peer, the scalar reference, measured in the same run. One 4096-element row
// (L1-resident: the kernel's own speed) and a 4096 x 4096 matrix-vector product (the
// weights stream from memory, as in token generation). Prints the speedup table last.
//
//   keel_bench_quant_kernels [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "keel/engine/float16.h"
#include "keel/engine/quant.h"

namespace keel::engine {
namespace {

constexpr int64_t kRow = 4096;

const QuantKernelTable* table_for(KernelIsa isa) {
  return isa == KernelIsa::kScalar ? &scalar_quant_kernels() : avx2_quant_kernels();
}

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(n);
  for (auto& v : x) v = normal(rng);
  return x;
}

// Weight rows of `type` (quantized from gaussian floats; K-quants have no quantizer, so
// their rows are random well-formed blocks) and one activation row of its vec_dot_type.
struct Operands {
  std::vector<uint8_t> weights;
  std::vector<uint8_t> activations;
};

Operands make_operands(GgmlType type, int64_t rows) {
  const GgmlType act = tensor_type_traits(type).vec_dot_type;
  Operands o;
  const int64_t row_bytes = row_size_bytes(type, kRow);
  o.weights.resize(rows * row_bytes);
  std::mt19937 rng(1);
  const auto x = random_floats(kRow, 2);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = o.weights.data() + r * row_bytes;
    if (scalar_quant_kernels()[type].quantize_row != nullptr) {
      scalar_quant_kernels()[type].quantize_row(random_floats(kRow, 10 + static_cast<uint32_t>(r % 16)).data(), row,
                                                kRow);
    } else {
      for (int64_t i = 0; i < row_bytes; ++i) row[i] = static_cast<uint8_t>(rng());
      const int64_t type_size = tensor_type_traits(type).type_size;
      for (int64_t b = 0; b < kRow / 256; ++b) {  // sane fp16 scales: d (and dmin) at their offsets
        const Fp16Bits d = fp32_to_fp16(0.01f);
        const int64_t at = type == GgmlType::kQ6_K ? 208 : 0;
        std::memcpy(row + b * type_size + at, &d, 2);
        if (type != GgmlType::kQ6_K) std::memcpy(row + b * type_size + 2, &d, 2);
      }
    }
  }
  o.activations.resize(row_size_bytes(act, kRow));
  scalar_quant_kernels()[act].quantize_row(x.data(), o.activations.data(), kRow);
  return o;
}

void BM_VecDotRow(benchmark::State& state, GgmlType type, KernelIsa isa) {
  const QuantKernelTable* table = table_for(isa);
  if (table == nullptr) {
    state.SkipWithError("CPU without AVX2/FMA/F16C");
    return;
  }
  const Operands o = make_operands(type, 1);
  const VecDotFn dot = (*table)[type].vec_dot;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dot(kRow, o.weights.data(), o.activations.data()));
  }
  state.SetItemsProcessed(state.iterations() * kRow);
}

void BM_MatVec(benchmark::State& state, GgmlType type, KernelIsa isa) {
  const QuantKernelTable* table = table_for(isa);
  if (table == nullptr) {
    state.SkipWithError("CPU without AVX2/FMA/F16C");
    return;
  }
  constexpr int64_t kRows = 4096;
  const Operands o = make_operands(type, kRows);
  const int64_t row_bytes = row_size_bytes(type, kRow);
  const VecDotFn dot = (*table)[type].vec_dot;
  std::vector<float> out(kRows);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) out[r] = dot(kRow, o.weights.data() + r * row_bytes, o.activations.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * kRows * row_bytes);
}

void BM_QuantizeActivations(benchmark::State& state, GgmlType act, KernelIsa isa) {
  const QuantKernelTable* table = table_for(isa);
  if (table == nullptr) {
    state.SkipWithError("CPU without AVX2/FMA/F16C");
    return;
  }
  const auto x = random_floats(kRow, 3);
  std::vector<uint8_t> out(row_size_bytes(act, kRow));
  const QuantizeRowFn quantize = (*table)[act].quantize_row;
  for (auto _ : state) {
    quantize(x.data(), out.data(), kRow);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRow);
}

void BM_DequantizeRow(benchmark::State& state, GgmlType type, KernelIsa isa) {
  const QuantKernelTable* table = table_for(isa);
  if (table == nullptr) {
    state.SkipWithError("CPU without AVX2/FMA/F16C");
    return;
  }
  const Operands o = make_operands(type, 1);
  std::vector<float> out(kRow);
  const DequantizeRowFn dequantize = (*table)[type].dequantize_row;
  for (auto _ : state) {
    dequantize(o.weights.data(), out.data(), kRow);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kRow);
}

// Remembers each benchmark's time so that main() can print scalar / avx2 ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      // CPU time: the build machines are shared, and waiting for a core is not the kernel's cost.
      if (!run.error_occurred) {
        ns_[run.benchmark_name()] = run.GetAdjustedCPUTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
      }
    }
  }
  void print_ratios() const {
    std::printf("\nAVX2 speedup over the scalar reference (same run, CPU time per call):\n");
    for (const auto& [name, ns] : ns_) {
      const auto at = name.find("/scalar");
      if (at == std::string::npos) continue;
      const auto simd = ns_.find(name.substr(0, at) + "/avx2" + name.substr(at + 7));
      if (simd == ns_.end()) continue;
      std::printf("  %-40s scalar %10.1f ns   avx2 %10.1f ns   x%.1f\n", name.substr(0, at).c_str(), ns, simd->second,
                  ns / simd->second);
    }
  }

 private:
  std::map<std::string, double> ns_;
};

void register_all() {
  using G = GgmlType;
  const std::pair<const char*, KernelIsa> isas[] = {{"scalar", KernelIsa::kScalar}, {"avx2", KernelIsa::kAvx2}};
  for (G type : {G::kQ4_1, G::kQ4_K, G::kQ8_0, G::kQ4_0, G::kQ5_K, G::kQ6_K, G::kF16}) {
    const std::string name(tensor_type_traits(type).name);
    for (const auto& [isa_name, isa] : isas) {
      benchmark::RegisterBenchmark(("vec_dot_row/" + name + "/" + isa_name).c_str(), BM_VecDotRow, type, isa);
    }
  }
  for (G type : {G::kQ4_1, G::kQ4_K}) {
    const std::string name(tensor_type_traits(type).name);
    for (const auto& [isa_name, isa] : isas) {
      benchmark::RegisterBenchmark(("matvec_4096x4096/" + name + "/" + isa_name).c_str(), BM_MatVec, type, isa)
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (G type : {G::kQ8_1, G::kQ8_K, G::kQ8_0}) {
    const std::string name(tensor_type_traits(type).name);
    for (const auto& [isa_name, isa] : isas) {
      benchmark::RegisterBenchmark(("quantize_row/" + name + "/" + isa_name).c_str(), BM_QuantizeActivations, type,
                                   isa);
    }
  }
  for (G type : {G::kQ4_1, G::kQ4_K, G::kQ6_K}) {
    const std::string name(tensor_type_traits(type).name);
    for (const auto& [isa_name, isa] : isas) {
      benchmark::RegisterBenchmark(("dequantize_row/" + name + "/" + isa_name).c_str(), BM_DequantizeRow, type, isa);
    }
  }
}

}  // namespace
}  // namespace keel::engine

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  keel::engine::register_all();
  keel::engine::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
