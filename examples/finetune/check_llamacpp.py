#!/usr/bin/env python3
"""Checks that llama.cpp runs a Keel adapter as Keel does: the perplexity of the held-out
examples (on their answer tokens, as a training's validation loss counts them) with the
base model plus the adapter, by Keel (`keel train loss --lora`) and by llama.cpp
(llama-cpp-python with `lora_path`), on exactly the same token ids. Prints both and exits
1 when they differ by more than 1%.

Run: check_llamacpp.py KEEL MODEL.gguf ADAPTER.gguf HELD_OUT.jsonl
(llama-cpp-python builds from PyPI's sdist; see tests/reference/requirements-engine.txt.)
"""
import json
import math
import subprocess
import sys

import numpy as np
import llama_cpp.llama_cpp as low_level
from llama_cpp import Llama

# llama.cpp's extra weight buffers (AMX, repacking) stay off, as in the engine benchmark:
# its AMX matrix product crashes on some CPUs.
_default_params = low_level.llama_model_default_params


def _params_without_extra_buffers():
    params = _default_params()
    params.use_extra_bufts = False
    return params


low_level.llama_model_default_params = _params_without_extra_buffers


def llama_cpp_loss(llm, examples):
    """Mean negative log-likelihood per target position, and the target count."""
    total, count = 0.0, 0
    for e in examples:
        tokens, targets = e["tokens"], e["targets"]
        llm.reset()
        llm.eval(tokens)
        logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
        for t, target in enumerate(targets):
            if target < 0:
                continue
            z = logits[t]
            m = z.max()
            total += float(m + np.log(np.exp(z - m).sum()) - z[target])
            count += 1
    return total / count, count


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    keel, model, adapter, data = sys.argv[1:]
    keel_out = subprocess.run([keel, "train", "loss", "-m", model, "--lora", adapter, "-d", data, "-t", "2", "--json",
                               "--tokens"], check=True, capture_output=True, text=True).stdout
    report = json.loads(keel_out)
    examples = report["example_tokens"]
    longest = max(len(e["tokens"]) for e in examples)
    llm = Llama(model_path=model, lora_path=adapter, lora_scale=1.0, n_ctx=max(256, longest + 8), n_threads=2,
                logits_all=True, verbose=False, seed=1)
    loss, count = llama_cpp_loss(llm, examples)
    assert count == report["target_tokens"], (count, report["target_tokens"])
    ppl_keel, ppl_llama = report["perplexity"], math.exp(loss)
    gap = abs(ppl_keel - ppl_llama) / ppl_llama
    print(f"held-out perplexity with the adapter ({len(examples)} examples, {count} answer tokens): "
          f"Keel {ppl_keel:.4f}, llama.cpp {ppl_llama:.4f}, difference {100 * gap:.2f}%")
    sys.exit(0 if gap <= 0.01 else 1)


if __name__ == "__main__":
    main()
