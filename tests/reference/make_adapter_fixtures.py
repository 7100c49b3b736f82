#!/usr/bin/env python3
"""Writes tests/fixtures/train/adapter_llamacpp.json, which tests/train/adapter_gguf_test.cpp checks.

Reference: llama.cpp (llama-cpp-python 0.3.36, built from PyPI) loading the default
model (SmolLM2-135M-Instruct Q4_1) with and without tests/fixtures/train/capitals_q_v_rank2.gguf,
a LoRA adapter that `keel train sft` wrote (rank 2, alpha 4, on q and v, trained on
examples/sft/capitals.jsonl:
  keel train sft -m SmolLM2-135M-Instruct.Q4_1.gguf -d examples/sft/capitals.jsonl \\
      -o tests/fixtures/train/capitals_q_v_rank2.gguf --rank 2 --alpha 4 --modules q,v \\
      --epochs 3 --lr 5e-3 --batch 2 --dropout 0 --seed 1 -t 2).
For each conversation below it records the token ids (llama.cpp's tokenizer, special
tokens parsed) and the negative log-likelihood of every next token, with the base model
and with the adapter at scale 1 (llama.cpp applies alpha / rank, as Keel trains it).
If llama.cpp read the adapter's layout differently from Keel (A and B swapped or
transposed, another scale), its numbers would not follow Keel's.

Run: python3 tests/reference/make_adapter_fixtures.py MODEL.gguf   (needs llama-cpp-python, numpy)
"""
import json
import os
import sys

import numpy as np
import llama_cpp.llama_cpp as low_level
from llama_cpp import Llama

# llama.cpp's extra weight buffers (AMX, repacking) are off, as in bench/engine_vs_llamacpp.py:
# its AMX matrix product crashes (SIGSEGV) on this machine's CPU.
_default_params = low_level.llama_model_default_params


def _params_without_extra_buffers():
    params = _default_params()
    params.use_extra_bufts = False
    return params


low_level.llama_model_default_params = _params_without_extra_buffers

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "train")
ADAPTER = os.path.join(FIXTURES, "capitals_q_v_rank2.gguf")

CONVERSATIONS = [
    # One the adapter was trained on, and one it was not.
    "<|im_start|>system\nAnswer in one sentence.<|im_end|>\n<|im_start|>user\nWhat is the capital of Spain?"
    "<|im_end|>\n<|im_start|>assistant\nThe capital of Spain is Madrid.<|im_end|>\n",
    "<|im_start|>system\nAnswer in one sentence.<|im_end|>\n<|im_start|>user\nWhat is the capital of Hungary?"
    "<|im_end|>\n<|im_start|>assistant\nThe capital of Hungary is Budapest.<|im_end|>\n",
]


def next_token_nll(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    out = []
    for t in range(len(tokens) - 1):
        z = logits[t]
        m = z.max()
        out.append(float(m + np.log(np.exp(z - m).sum()) - z[tokens[t + 1]]))
    return out


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/keel/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    common = dict(model_path=model, n_ctx=256, n_threads=2, logits_all=True, verbose=False, seed=1)
    base = Llama(**common)
    tuned = Llama(**common, lora_path=ADAPTER, lora_scale=1.0)
    out = {"adapter": os.path.basename(ADAPTER), "llama_cpp_python": "0.3.36", "conversations": []}
    for text in CONVERSATIONS:
        tokens = base.tokenize(text.encode(), add_bos=False, special=True)
        b = next_token_nll(base, tokens)
        a = next_token_nll(tuned, tokens)
        out["conversations"].append({"text": text, "tokens": tokens, "base_nll": b, "adapter_nll": a})
        print(f"{len(tokens)} tokens: mean NLL base {np.mean(b):.4f}, with adapter {np.mean(a):.4f}")
    path = os.path.join(FIXTURES, "adapter_llamacpp.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
