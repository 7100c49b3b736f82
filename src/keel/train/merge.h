// A base model with a LoRA adapter folded in, as a new GGUF model file: every metadata
// entry and tensor of the base as it is, except each adapted matrix W, written as
// W + (alpha / rank) B A in the chosen type. The adapter is in the base file's layout
// (adapter_gguf.h: llama-family Q/K rows already permuted as the GGUF stores them), so
// the sum is taken row by row on the file's own matrices; each row is dequantized,
// summed in F32 and converted, never the whole model at once.
#pragma once

#include <optional>
#include <string>

#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/engine/tensor_types.h"
#include "keel/train/lora.h"
#include "keel/util/status.h"

namespace keel::train {

// "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", or "same" (nullopt: each
// matrix in its own type where the engine can quantize to it, F16 otherwise).
Result<std::optional<engine::GgmlType>> parse_merge_type(const std::string& name);

// The type an adapted matrix of `base_type` is written in.
engine::GgmlType merged_matrix_type(engine::GgmlType base_type, std::optional<engine::GgmlType> type);

// Writes the merged model to path (atomically). `base` is the file `model` was loaded
// from and `lora` adapters for that model. The base's metadata is kept as it is, plus
// keel.merged_lora.rank, .alpha and .modules, so that the file says what was folded in.
Status write_merged_model(const std::string& path, const engine::GgufFile& base, const engine::Model& model,
                          const LoraWeights& lora, std::optional<engine::GgmlType> type);

// How much of the adapter's change to the weights a merged file keeps: re-quantizing
// W + ΔW to a coarse type rounds a small ΔW away. Over every row_stride-th row of each
// adapted matrix, with W the dequantized base row, ΔW the adapter's change and M the
// merged row as written (quantized and read back):
//   kept  = <M - W, ΔW> / |ΔW|²   (1: all of it; about 0: none)
//   error = |M - (W + ΔW)| / |ΔW|  (the rounding, relative to the change)
struct MergeFidelity {
  double kept = 0;
  double error = 0;
};
Result<MergeFidelity> merge_fidelity(const engine::Model& model, const LoraWeights& lora,
                                     std::optional<engine::GgmlType> type, int64_t row_stride = 8);

}  // namespace keel::train
