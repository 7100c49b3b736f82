#include "keel/train/merge.h"

#include <map>
#include <vector>

#include "keel/engine/gguf_writer.h"
#include "keel/engine/quant.h"

namespace keel::train {
namespace {

using engine::GgmlType;

bool can_write(GgmlType type) { return engine::quant_kernels()[type].quantize_row != nullptr; }

std::vector<uint64_t> dims_of(const engine::GgufTensorInfo& t) { return {t.dims.begin(), t.dims.end()}; }

// Produces W + scale B A row by row in `type`.
class MergedMatrix {
 public:
  MergedMatrix(const engine::WeightMatrix& w, const LoraAdapter& a, GgmlType type) : w_(w), a_(a), type_(type) {}

  Status operator()(engine::GgufTensorSink& sink) const {
    std::vector<float> row(static_cast<size_t>(w_.cols));
    std::vector<float> ba(static_cast<size_t>(w_.cols));
    std::vector<uint8_t> out(static_cast<size_t>(engine::row_size_bytes(type_, w_.cols)));
    for (int64_t r = 0; r < w_.rows; ++r) {
      engine::dequantize_row(w_.type, w_.row(r), row.data(), w_.cols);
      // (B A)[r] = sum_k B[r][k] A[k]
      std::fill(ba.begin(), ba.end(), 0.0f);
      for (int64_t k = 0; k < a_.rank; ++k) {
        const float b = a_.b[static_cast<size_t>(r * a_.rank + k)];
        const float* arow = a_.a.data() + k * a_.in;
        for (int64_t c = 0; c < w_.cols; ++c) ba[static_cast<size_t>(c)] += b * arow[c];
      }
      for (int64_t c = 0; c < w_.cols; ++c) row[static_cast<size_t>(c)] += a_.scale * ba[static_cast<size_t>(c)];
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

}  // namespace keel::train
