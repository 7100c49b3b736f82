// LoRA adapters as a GGUF file in llama.cpp's adapter layout (what its
// convert_lora_to_gguf.py writes and `--lora` loads), so an adapter trained here runs
// there and back: general.type "adapter", general.architecture of the base model,
// adapter.type "lora", adapter.lora.alpha; for each adapted matrix "<base tensor
// name>.lora_a" with dims [in, rank] (A's rank rows of `in`) and ".lora_b" with dims
// [rank, out] (B), in F32. A reader must pass the model the adapter was trained for.
#pragma once

#include <string>

#include "keel/engine/gguf.h"
#include "keel/engine/model.h"
#include "keel/train/lora.h"
#include "keel/util/status.h"

namespace keel::train {

// Writes every adapter of `lora` (atomically: the file appears whole or not at all).
Status write_lora_adapter(const std::string& path, const engine::Model& model, const LoraWeights& lora);

// Adapters read back for `model`: rank, alpha and modules from the file (dropout 0).
// kInvalidArgument when the file is not a LoRA adapter, is for another architecture,
// has a lora_a without its lora_b, a tensor the model lacks or of the wrong shape or
// type, mixed ranks, or a module on only some layers.
Result<LoraWeights> read_lora_adapter(const engine::GgufFile& file, const engine::Model& model);

}  // namespace keel::train
