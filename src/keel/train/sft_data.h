// Supervised fine-tuning examples: one JSON record (a line of a JSONL file) becomes the
// token ids the model reads and the next-token targets it is trained on, so the loss
// falls on what the model should write and nowhere else. Two record shapes:
//   {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}, ...]}
//     rendered with the model's chat template; the tokens of every assistant turn
//     (as the template closes it, end-of-turn token included) are the targets;
//   {"prompt": ..., "completion": ...} (or "response", as `keel data`'s format step
//     writes it) plain text, BOS as the tokenizer adds it, EOS after the completion;
//     the completion and EOS are the targets.
// Two more shapes of public instruction datasets are read as these: ShareGPT's
//   {"conversations": [{"from": "human" | "gpt" | "system", "value": ...}, ...]}
//     as "messages" (human: user, gpt: assistant);
//   Alpaca's {"instruction": ..., "input": ..., "output": ...}
//     as a user message (the instruction, then a blank line and the input when it is not
//     empty) and an assistant message (the output); without a chat template, as a
//     prompt (the same text and a blank line) and its completion.
// The trap: a chat template that does not render a conversation's turns as prefixes of
// the whole (some rewrite earlier turns) cannot be masked this way; that is an error,
// not a silently wrong mask.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "keel/engine/chat_template.h"
#include "keel/engine/tokenizer.h"
#include "keel/util/status.h"

namespace keel::train {

struct SftExample {
  std::vector<int32_t> tokens;
  std::vector<int32_t> targets;  // -1 where no loss is taken (see lora_model.h)
  int64_t target_count() const;
};

// Encodes one record; chat_template may be null when no record has "messages".
// max_tokens > 0 cuts longer examples to their first max_tokens tokens.
// kInvalidArgument for a record of neither shape, a role or content that is not a
// string, no assistant turn, or a template whose turns are not prefixes of the
// conversation; kFailedPrecondition when the cut leaves no target (callers may skip
// such records).
Result<SftExample> encode_sft_record(const engine::Tokenizer& tokenizer, const engine::ChatTemplate* chat_template,
                                     const nlohmann::json& record, int64_t max_tokens = 0);

}  // namespace keel::train
