#include "keel/train/sft_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "keel/engine/gguf.h"
#include "keel/engine/gguf_writer.h"
#include "keel/engine/tensor_types.h"

namespace keel::train {
namespace {

constexpr const char* kType = "keel.sft_checkpoint";

std::span<const uint8_t> float_bytes(std::span<const float> v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

std::string module_list(const std::vector<LoraModule>& modules) {
  std::string out;
  for (LoraModule m : modules) {
    if (!out.empty()) out += ',';
    out += lora_module_name(m);
  }
  return out;
}

}  // namespace

Status write_sft_checkpoint(const std::string& path, const engine::Model& model, const LoraWeights& lora,
                            const AdamW& optimizer, int64_t step, const std::string& config,
                            const SftValidation* validation) {
  // parameters() needs a mutable object only to hand out writable spans; nothing is written.
  std::vector<ParameterRef> params = const_cast<LoraWeights&>(lora).parameters();
  if (params.empty()) return invalid_argument("no LoRA adapters to checkpoint");
  if (optimizer.steps() > 0 && optimizer.parameter_count() != params.size()) {
    return invalid_argument("the optimizer's moments are for other parameters than the adapters'");
  }
  const LoraConfig& c = lora.config();
  engine::GgufWriter w;
  KEEL_RETURN_IF_ERROR(w.add_string("general.architecture", model.config().architecture));
  KEEL_RETURN_IF_ERROR(w.add_string("general.type", kType));
  KEEL_RETURN_IF_ERROR(w.add_int64("keel.checkpoint.step", step));
  KEEL_RETURN_IF_ERROR(w.add_int64("keel.checkpoint.adamw_steps", optimizer.steps()));
  KEEL_RETURN_IF_ERROR(w.add_string("keel.checkpoint.config", config));
  KEEL_RETURN_IF_ERROR(w.add_int64("keel.checkpoint.lora.rank", c.rank));
  KEEL_RETURN_IF_ERROR(w.add_float32("keel.checkpoint.lora.alpha", c.alpha));
  KEEL_RETURN_IF_ERROR(w.add_float32("keel.checkpoint.lora.dropout", c.dropout));
  KEEL_RETURN_IF_ERROR(w.add_string("keel.checkpoint.lora.seed", std::to_string(c.seed)));
  KEEL_RETURN_IF_ERROR(w.add_string("keel.checkpoint.lora.modules", module_list(c.modules)));
  std::vector<ParameterRef> best;
  if (validation != nullptr) {
    const SftValidationState& v = validation->state;
    if (v.best_step > 0 && !validation->best) return invalid_argument("the validation state has no best adapters");
    KEEL_RETURN_IF_ERROR(w.add_int64("keel.checkpoint.validation.best_step", v.best_step));
    KEEL_RETURN_IF_ERROR(w.add_int64("keel.checkpoint.validation.stale", v.stale));
    if (v.best_step > 0) {
      KEEL_RETURN_IF_ERROR(w.add_float64("keel.checkpoint.validation.best_loss", v.best_loss));
      best = const_cast<LoraWeights&>(*validation->best).parameters();
      if (best.size() != params.size()) return invalid_argument("the best adapters are not the training's");
    }
  }
  const auto f32 = static_cast<uint32_t>(engine::GgmlType::kF32);
  // The writer keeps views of the bytes until write(): of the adapters, the optimizer's
  // moments, or (before the first step, when there are no moments yet) zeros.
  size_t largest = 0;
  for (const ParameterRef& p : params) largest = std::max(largest, p.value.size());
  const std::vector<float> zeros(optimizer.steps() > 0 ? 0 : largest, 0.0f);
  for (size_t i = 0; i < params.size(); ++i) {
    const ParameterRef& p = params[i];
    const uint64_t n = p.value.size();
    KEEL_RETURN_IF_ERROR(w.add_tensor(p.name, {n}, f32, float_bytes(p.value)));
    const float* m = optimizer.steps() > 0 ? optimizer.first_moment(i).data() : zeros.data();
    const float* v = optimizer.steps() > 0 ? optimizer.second_moment(i).data() : zeros.data();
    KEEL_RETURN_IF_ERROR(w.add_tensor(p.name + ".adam_m", {n}, f32, float_bytes({m, n})));
    KEEL_RETURN_IF_ERROR(w.add_tensor(p.name + ".adam_v", {n}, f32, float_bytes({v, n})));
    if (!best.empty()) KEEL_RETURN_IF_ERROR(w.add_tensor(p.name + ".best", {n}, f32, float_bytes(best[i].value)));
  }
  return w.write(path);
}

Result<SftCheckpoint> read_sft_checkpoint(const std::string& path, const engine::Model& model,
                                          const AdamWOptions& adamw) {
  KEEL_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file, engine::GgufFile::open(path));
  auto bad = [&](const std::string& what) { return invalid_argument(path + " is not a usable checkpoint: " + what); };
  if (file->get_string("general.type").value_or("") != kType) return bad("general.type is not " + std::string(kType));
  if (file->architecture() != model.config().architecture) {
    return bad("it is for architecture \"" + file->architecture() + "\", the model is \"" +
               model.config().architecture + "\"");
  }
  auto number = [&](const char* key) -> std::optional<double> {
    const engine::GgufValue* v = file->find(key);
    return v == nullptr ? std::nullopt : v->as_double();
  };
  const auto step = file->get_int("keel.checkpoint.step");
  const auto adamw_steps = file->get_int("keel.checkpoint.adamw_steps");
  const auto rank = file->get_int("keel.checkpoint.lora.rank");
  const auto alpha = number("keel.checkpoint.lora.alpha");
  const auto dropout = number("keel.checkpoint.lora.dropout");
  const auto seed = file->get_string("keel.checkpoint.lora.seed");
  const auto modules = file->get_string("keel.checkpoint.lora.modules");
  const auto config = file->get_string("keel.checkpoint.config");
  if (!step || !adamw_steps || !rank || !alpha || !dropout || !seed || !modules || !config || *step < 0) {
    return bad("its keel.checkpoint.* metadata is incomplete");
  }
  LoraConfig lc{.rank = *rank, .alpha = static_cast<float>(*alpha), .dropout = static_cast<float>(*dropout)};
  try {
    size_t used = 0;
    lc.seed = std::stoull(*seed, &used);
    if (used != seed->size()) return bad("its LoRA seed is not a number");
  } catch (const std::exception&) {
    return bad("its LoRA seed is not a number");
  }
  KEEL_ASSIGN_OR_RETURN(lc.modules, parse_lora_modules(*modules));
  auto created = LoraWeights::create(model, lc);
  if (!created.ok()) return bad(created.status().message());
  SftCheckpoint out{.step = *step, .lora = std::move(*created), .optimizer = AdamW(adamw), .config = *config};

  std::vector<ParameterRef> params = out.lora.parameters();
  const auto best_step = file->get_int("keel.checkpoint.validation.best_step");
  const auto stale = file->get_int("keel.checkpoint.validation.stale");
  const auto best_loss = number("keel.checkpoint.validation.best_loss");
  std::vector<ParameterRef> best;
  if (best_step || stale) {
    if (!best_step || !stale || *best_step < 0 || *stale < 0 || *best_step > *step || (*best_step > 0 && !best_loss)) {
      return bad("its keel.checkpoint.validation.* metadata is incomplete");
    }
    SftValidation& v = out.validation.emplace();
    v.state.best_step = *best_step;
    v.state.stale = *stale;
    if (*best_step > 0) {
      v.state.best_loss = *best_loss;
      v.best = out.lora;
      best = v.best->parameters();
    }
  }
  if (file->tensors().size() != params.size() * (best.empty() ? 3 : 4)) {
    return bad("it holds other tensors than its adapters need");
  }
  std::unordered_map<std::string, const engine::GgufTensorInfo*> by_name;
  for (const engine::GgufTensorInfo& info : file->tensors()) by_name[info.name] = &info;
  auto tensor = [&](const std::string& name, size_t n, float* into) -> Status {
    auto found = by_name.find(name);
    if (found == by_name.end()) return bad("the tensor " + name + " is missing");
    const engine::GgufTensorInfo* t = found->second;
    if (t->type != static_cast<uint32_t>(engine::GgmlType::kF32) || t->dims.size() != 1 || t->dims[0] != n) {
      return bad("the tensor " + name + " has the wrong type or shape for this model");
    }
    std::memcpy(into, file->tensor_data(*t), n * sizeof(float));
    return Status::Ok();
  };
  std::vector<std::vector<float>> m, v;
  for (const ParameterRef& p : params) {
    KEEL_RETURN_IF_ERROR(tensor(p.name, p.value.size(), p.value.data()));
    KEEL_RETURN_IF_ERROR(tensor(p.name + ".adam_m", p.value.size(), m.emplace_back(p.value.size()).data()));
    KEEL_RETURN_IF_ERROR(tensor(p.name + ".adam_v", p.value.size(), v.emplace_back(p.value.size()).data()));
  }
  for (ParameterRef& p : best) KEEL_RETURN_IF_ERROR(tensor(p.name + ".best", p.value.size(), p.value.data()));
  if (*adamw_steps == 0) {
    m.clear();
    v.clear();
  }
  KEEL_RETURN_IF_ERROR(out.optimizer.restore(*adamw_steps, std::move(m), std::move(v)));
  return out;
}

}  // namespace keel::train
