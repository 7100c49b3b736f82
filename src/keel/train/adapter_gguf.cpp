#include "keel/train/adapter_gguf.h"

#include <cstring>
#include <map>

#include "keel/engine/gguf_writer.h"
#include "keel/engine/tensor_types.h"

namespace keel::train {
namespace {

constexpr LoraModule kModules[kLoraModuleCount] = {LoraModule::kQ,    LoraModule::kK,  LoraModule::kV,   LoraModule::kO,
                                                   LoraModule::kGate, LoraModule::kUp, LoraModule::kDown};

std::span<const uint8_t> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

}  // namespace

Status write_lora_adapter(const std::string& path, const engine::Model& model, const LoraWeights& lora) {
  if (lora.adapters().empty()) return invalid_argument("no LoRA adapters to write");
  engine::GgufWriter w;
  KEEL_RETURN_IF_ERROR(w.add_string("general.architecture", model.config().architecture));
  KEEL_RETURN_IF_ERROR(w.add_string("general.type", "adapter"));
  KEEL_RETURN_IF_ERROR(w.add_string("adapter.type", "lora"));
  KEEL_RETURN_IF_ERROR(w.add_float32("adapter.lora.alpha", lora.config().alpha));
  const auto f32 = static_cast<uint32_t>(engine::GgmlType::kF32);
  for (const LoraAdapter& a : lora.adapters()) {
    if (a.layer >= model.config().layer_count) return invalid_argument("LoRA adapters were made for another model");
    const std::string& base = lora_base_matrix(model.layers()[static_cast<size_t>(a.layer)], a.module).name;
    const auto in = static_cast<uint64_t>(a.in), out = static_cast<uint64_t>(a.out),
               rank = static_cast<uint64_t>(a.rank);
    KEEL_RETURN_IF_ERROR(w.add_tensor(base + ".lora_a", {in, rank}, f32, bytes_of(a.a)));
    KEEL_RETURN_IF_ERROR(w.add_tensor(base + ".lora_b", {rank, out}, f32, bytes_of(a.b)));
  }
  return w.write(path);
}

Result<LoraWeights> read_lora_adapter(const engine::GgufFile& file, const engine::Model& model) {
  if (file.get_string("general.type").value_or("") != "adapter" ||
      file.get_string("adapter.type").value_or("") != "lora") {
    return invalid_argument("not a LoRA adapter (general.type must be \"adapter\", adapter.type \"lora\")");
  }
  const std::string arch = file.architecture();
  if (arch != model.config().architecture) {
    return invalid_argument("LoRA adapter is for architecture \"" + arch + "\", the model is \"" +
                            model.config().architecture + "\"");
  }
  const engine::GgufValue* alpha = file.find("adapter.lora.alpha");
  const auto alpha_value = alpha != nullptr ? alpha->as_double() : std::nullopt;
  if (!alpha_value || !(*alpha_value > 0)) return invalid_argument("LoRA adapter lacks a positive adapter.lora.alpha");

  // Base tensor name -> (layer, module), for every matrix LoRA can adapt.
  std::map<std::string, std::pair<int64_t, LoraModule>> targets;
  for (int64_t l = 0; l < model.config().layer_count; ++l) {
    for (LoraModule m : kModules) {
      targets[lora_base_matrix(model.layers()[static_cast<size_t>(l)], m).name] = {l, m};
    }
  }
  struct Pair {
    const engine::GgufTensorInfo* a = nullptr;
    const engine::GgufTensorInfo* b = nullptr;
  };
  std::map<std::pair<int64_t, LoraModule>, Pair> pairs;
  for (const engine::GgufTensorInfo& t : file.tensors()) {
    const bool is_a = t.name.ends_with(".lora_a"), is_b = t.name.ends_with(".lora_b");
    if (!is_a && !is_b) return invalid_argument("LoRA adapter tensor " + t.name + " is neither .lora_a nor .lora_b");
    const std::string base = t.name.substr(0, t.name.size() - 7);
    auto it = targets.find(base);
    if (it == targets.end())
      return invalid_argument("LoRA adapter tensor " + t.name + " adapts no matrix of the model");
    if (t.type != static_cast<uint32_t>(engine::GgmlType::kF32)) {
      return invalid_argument("LoRA adapter tensor " + t.name + " must be F32");
    }
    (is_a ? pairs[it->second].a : pairs[it->second].b) = &t;
  }
  if (pairs.empty()) return invalid_argument("LoRA adapter has no tensors");
  int64_t rank = -1;
  std::map<LoraModule, int64_t> layers_per_module;
  for (const auto& [key, pair] : pairs) {
    const engine::WeightMatrix& base = lora_base_matrix(model.layers()[static_cast<size_t>(key.first)], key.second);
    if (pair.a == nullptr || pair.b == nullptr) {
      return invalid_argument("LoRA adapter has only one of " + base.name + ".lora_a and .lora_b");
    }
    const auto& da = pair.a->dims;
    const auto& db = pair.b->dims;
    if (da.size() != 2 || db.size() != 2 || static_cast<int64_t>(da[0]) != base.cols ||
        static_cast<int64_t>(db[1]) != base.rows || da[1] != db[0]) {
      return invalid_argument("LoRA adapter tensors of " + base.name + " have the wrong shape for the model");
    }
    if (rank >= 0 && static_cast<int64_t>(da[1]) != rank) return invalid_argument("LoRA adapter mixes ranks");
    rank = static_cast<int64_t>(da[1]);
    ++layers_per_module[key.second];
  }
  LoraConfig config{.rank = rank, .alpha = static_cast<float>(*alpha_value), .dropout = 0, .modules = {}};
  for (const auto& [module, count] : layers_per_module) {
    if (count != model.config().layer_count) {
      return invalid_argument("LoRA adapter covers module " + std::string(lora_module_name(module)) + " on " +
                              std::to_string(count) + " of " + std::to_string(model.config().layer_count) + " layers");
    }
    config.modules.push_back(module);
  }
  KEEL_ASSIGN_OR_RETURN(LoraWeights weights, LoraWeights::create(model, config));
  for (LoraAdapter& a : weights.adapters()) {
    const Pair& pair = pairs.at({a.layer, a.module});
    std::memcpy(a.a.data(), file.tensor_data(*pair.a), a.a.size() * sizeof(float));
    std::memcpy(a.b.data(), file.tensor_data(*pair.b), a.b.size() * sizeof(float));
  }
  return weights;
}

}  // namespace keel::train
