#include "keel/train/merge.h"

#include <cmath>
#include <map>
#include <vector>

#include "keel/engine/gguf_writer.h"
#include "keel/engine/quant.h"

namespace keel::train {
namespace {

using engine::GgmlType;

bool can_write(GgmlType type) { return engine::quant_kernels()[type].quantize_row != nullptr; }

std::vector<uint64_t> dims_of(const engine::GgufTensorInfo& t) { return {t.dims.begin(), t.dims.end()}; }

// Row r of the base, dequantized, into `base`, and of W + scale B A into `merged`
// (`ba` is scratch); each of w.cols floats.
void merged_row(const engine::WeightMatrix& w, const LoraAdapter& a, int64_t r, float* base, float* merged, float* ba) {
  engine::dequantize_row(w.type, w.row(r), base, w.cols);
  // (B A)[r] = sum_k B[r][k] A[k]
  std::fill(ba, ba + w.cols, 0.0f);
  for (int64_t k = 0; k < a.rank; ++k) {
    const float b = a.b[static_cast<size_t>(r * a.rank + k)];
    const float* arow = a.a.data() + k * a.in;
    for (int64_t c = 0; c < w.cols; ++c) ba[c] += b * arow[c];
  }
  for (int64_t c = 0; c < w.cols; ++c) merged[c] = base[c] + a.scale * ba[c];
}

// Produces W + scale B A row by row in `type`.
class MergedMatrix {
 public:
  MergedMatrix(const engine::WeightMatrix& w, const LoraAdapter& a, GgmlType type) : w_(w), a_(a), type_(type) {}

  Status operator()(engine::GgufTensorSink& sink) const {
    const auto cols = static_cast<size_t>(w_.cols);
    std::vector<float> base(cols), row(cols), ba(cols);
    std::vector<uint8_t> out(static_cast<size_t>(engine::row_size_bytes(type_, w_.cols)));
    for (int64_t r = 0; r < w_.rows; ++r) {
      merged_row(w_, a_, r, base.data(), row.data(), ba.data());
      engine::quantize_row(type_, row.data(), out.data(), w_.cols);
      KEEL_RETURN_IF_ERROR(sink.write(out));
    }
    return Status::Ok();
  }

 private:
  const engine::WeightMatrix& w_;
  const LoraAdapter& a_;
  GgmlType type_;
};

}  // namespace

Result<std::optional<GgmlType>> parse_merge_type(const std::string& name) {
  static const std::map<std::string, GgmlType> kTypes = {
      {"f32", GgmlType::kF32},   {"f16", GgmlType::kF16},   {"bf16", GgmlType::kBF16}, {"q8_0", GgmlType::kQ8_0},
      {"q4_0", GgmlType::kQ4_0}, {"q4_1", GgmlType::kQ4_1}, {"q5_0", GgmlType::kQ5_0}, {"q5_1", GgmlType::kQ5_1}};
  if (name == "same") return std::optional<GgmlType>();
  auto it = kTypes.find(name);
  if (it == kTypes.end()) {
    return invalid_argument("unknown type '" + name + "' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 or same)");
  }
  return std::optional<GgmlType>(it->second);
}

GgmlType merged_matrix_type(GgmlType base_type, std::optional<GgmlType> type) {
  if (type) return *type;
  return can_write(base_type) ? base_type : GgmlType::kF16;
}

Status write_merged_model(const std::string& path, const engine::GgufFile& base, const engine::Model& model,
                          const LoraWeights& lora, std::optional<GgmlType> type) {
  if (lora.adapters().empty()) return invalid_argument("no LoRA adapters to merge");
  if (type && !can_write(*type)) return invalid_argument("the engine cannot write matrices of that type");
  // The adapted matrices by tensor name.
  std::map<std::string, std::pair<const engine::WeightMatrix*, const LoraAdapter*>> adapted;
  for (const LoraAdapter& a : lora.adapters()) {
    if (a.layer < 0 || a.layer >= model.config().layer_count) return invalid_argument("the adapters are for another model");
    const engine::WeightMatrix& w = lora_base_matrix(model.layers()[static_cast<size_t>(a.layer)], a.module);
    if (w.rows != a.out || w.cols != a.in) return invalid_argument("the adapter of " + w.name + " has another shape");
    adapted[w.name] = {&w, &a};
  }
  engine::GgufWriter writer;
  for (const engine::GgufKeyValue& kv : base.metadata()) {
    if (kv.key == "general.alignment") {
      const auto alignment = kv.value.as_int();
      if (alignment && *alignment > 0) KEEL_RETURN_IF_ERROR(writer.set_alignment(static_cast<uint64_t>(*alignment)));
      continue;
    }
    if (kv.key.starts_with("keel.merged_lora.")) continue;  // a merged model merged again says the latest
    KEEL_RETURN_IF_ERROR(writer.add(kv.key, kv.value));
  }
  std::string modules;
  for (LoraModule m : lora.config().modules) {
    if (!modules.empty()) modules += ',';
    modules += lora_module_name(m);
  }
  KEEL_RETURN_IF_ERROR(writer.add_int64("keel.merged_lora.rank", lora.config().rank));
  KEEL_RETURN_IF_ERROR(writer.add_float32("keel.merged_lora.alpha", lora.config().alpha));
  KEEL_RETURN_IF_ERROR(writer.add_string("keel.merged_lora.modules", modules));
  size_t merged = 0;
  for (const engine::GgufTensorInfo& t : base.tensors()) {
    auto it = adapted.find(t.name);
    if (it == adapted.end()) {
      KEEL_RETURN_IF_ERROR(writer.add_tensor(t.name, dims_of(t), t.type, {base.tensor_data(t), t.size_bytes}));
      continue;
    }
    const engine::WeightMatrix& w = *it->second.first;
    const GgmlType out = merged_matrix_type(w.type, type);
    KEEL_RETURN_IF_ERROR(engine::check_row_shape(out, w.cols));
    const auto size = static_cast<uint64_t>(engine::row_size_bytes(out, w.cols) * w.rows);
    KEEL_RETURN_IF_ERROR(writer.add_tensor(t.name, dims_of(t), static_cast<uint32_t>(out), size,
                                           MergedMatrix(w, *it->second.second, out)));
    ++merged;
  }
  if (merged != adapted.size()) return invalid_argument("the base file lacks some of the adapted matrices");
  return writer.write(path);
}

Result<MergeFidelity> merge_fidelity(const engine::Model& model, const LoraWeights& lora,
                                     std::optional<GgmlType> type, int64_t row_stride) {
  if (row_stride < 1) return invalid_argument("row_stride must be at least 1");
  if (type && !can_write(*type)) return invalid_argument("the engine cannot write matrices of that type");
  double kept = 0, change = 0, error = 0;
  for (const LoraAdapter& a : lora.adapters()) {
    if (a.layer < 0 || a.layer >= model.config().layer_count) return invalid_argument("the adapters are for another model");
    const engine::WeightMatrix& w = lora_base_matrix(model.layers()[static_cast<size_t>(a.layer)], a.module);
    if (w.rows != a.out || w.cols != a.in) return invalid_argument("the adapter of " + w.name + " has another shape");
    const GgmlType out = merged_matrix_type(w.type, type);
    KEEL_RETURN_IF_ERROR(engine::check_row_shape(out, w.cols));
    const auto cols = static_cast<size_t>(w.cols);
    std::vector<float> base(cols), row(cols), ba(cols), written(cols);
    std::vector<uint8_t> bytes(static_cast<size_t>(engine::row_size_bytes(out, w.cols)));
    for (int64_t r = 0; r < w.rows; r += row_stride) {
      merged_row(w, a, r, base.data(), row.data(), ba.data());
      engine::quantize_row(out, row.data(), bytes.data(), w.cols);
      engine::dequantize_row(out, bytes.data(), written.data(), w.cols);
      for (size_t c = 0; c < cols; ++c) {
        const double want = static_cast<double>(row[c]) - base[c];  // the adapter's change
        kept += (static_cast<double>(written[c]) - base[c]) * want;
        change += want * want;
        error += (static_cast<double>(written[c]) - row[c]) * (static_cast<double>(written[c]) - row[c]);
      }
    }
  }
  if (change == 0) return MergeFidelity{.kept = 1, .error = 0};
  return MergeFidelity{.kept = kept / change, .error = std::sqrt(error / change)};
}

}  // namespace keel::train
