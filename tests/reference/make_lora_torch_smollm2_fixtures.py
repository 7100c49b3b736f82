#!/usr/bin/env python3
"""Writes tests/fixtures/train/lora_torch_smollm2.json, which
tests/train/default_model_reference_test.cpp checks: the default model
(SmolLM2-135M-Instruct Q4_1, scripts/fetch-default-model) with LoRA rank 8, alpha 16 on
q, k, v, o, gate, up, down of all 30 layers, one 32-token sequence, in PyTorch.

The GGUF is loaded by transformers (gguf-py dequantizes Q4_1 and Q8_0 to exactly the
values Keel's kernels decode; the script checks layer 0's q and k against gguf-py's own
dequantization, which also pins the q/k row order) and run in float64 with PEFT's LoRA
(no dropout). The adapters start from a fixed, generated value that the C++ side
reproduces: element i of tensor NAME ("blk.3.attn_q.lora_a", Keel's parameter names) is
SCALE * pseudo_uniform(NAME, i) of make_lora_fixtures.py (tiny_model.h's pseudo_uniform),
SCALE being a_scale for A and b_scale for B; B is not zero, so every A has a gradient.
As in make_lora_torch_fixtures.py, the rows of q and k's B (and their gradients) are
permuted between GGUF's interleaved RoPE pairs and transformers' halves.

Written: the token ids, the loss (mean next-token cross-entropy over the 31 targets), the
norm of the gradient of every LoRA tensor (420), the global norm, and the full gradients
of a few tensors spread over the layers and modules.

Run: "$(scripts/reference-venv torch)" tests/reference/make_lora_torch_smollm2_fixtures.py
"""
import hashlib
import json
import os
import subprocess
import sys

import gguf
import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import make_lora_fixtures as ref  # noqa: E402  (pseudo_uniform)
from make_lora_torch_fixtures import HF_MODULES, gguf_to_hf_rows, hf_to_gguf_rows  # noqa: E402

OUT = os.path.join(HERE, "..", "fixtures", "train", "lora_torch_smollm2.json")
RANK, ALPHA = 8, 16.0
A_SCALE, B_SCALE = np.float32(0.04), np.float32(0.01)
TEXT = ("The river flows past the old mill, where the baker sells warm bread every morning. "
        "Children run to the market before school, and the teacher waves from her window.")
TOKENS = 32
FULL_GRADIENTS = ["blk.0.attn_q.lora_b", "blk.0.attn_k.lora_b", "blk.7.ffn_gate.lora_a", "blk.14.attn_v.lora_a",
                  "blk.21.ffn_down.lora_b", "blk.29.attn_output.lora_b"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    torch.manual_seed(0)
    path = subprocess.check_output([os.path.join(ROOT, "scripts", "fetch-default-model")], text=True).strip()
    folder, name = os.path.split(path)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    assert config.tie_word_embeddings and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    # transformers' weights are gguf-py's dequantization, with q and k rows in its order.
    reader = gguf.GGUFReader(path)
    raw = {t.name: t for t in reader.tensors}
    for stem, hf, h in (("attn_q", "q_proj", heads), ("attn_k", "k_proj", kv_heads)):
        t = raw[f"blk.0.{stem}.weight"]
        w = gguf.dequantize(t.data, t.tensor_type).reshape(int(t.shape[1]), int(t.shape[0]))
        ours = getattr(model.model.layers[0].self_attn, hf).weight.detach().numpy()
        assert np.array_equal(ours, gguf_to_hf_rows(w, h)), stem

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    ids = tokenizer(TEXT, add_special_tokens=False).input_ids
    assert len(ids) >= TOKENS, len(ids)
    ids = ids[:TOKENS]

    model = model.to(torch.float64)
    model.config._attn_implementation = "eager"
    lora_config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, bias="none",
                             target_modules=[hf.split(".")[1] for hf in HF_MODULES.values()])
    model = get_peft_model(model, lora_config).to(torch.float64)
    modules = dict(model.named_modules())
    params = {}  # Keel's name -> (rows permuted by heads or None, tensor), in LoraWeights::parameters() order
    for layer in range(config.num_hidden_layers):
        for _, stem in ref.MODULES:
            module = modules[f"base_model.model.model.layers.{layer}.{HF_MODULES[stem]}"]
            permute = {"attn_q": heads, "attn_k": kv_heads}.get(stem)
            for which, scale, tensor in (("lora_a", A_SCALE, module.lora_A["default"].weight),
                                         ("lora_b", B_SCALE, module.lora_B["default"].weight)):
                key = f"blk.{layer}.{stem}.{which}"
                value = (scale * ref.pseudo_uniform(key, tensor.numel())).astype(np.float32).astype(np.float64)
                value = value.reshape(tensor.shape)
                rows = permute if which == "lora_b" else None
                if rows:
                    value = gguf_to_hf_rows(value, rows)
                with torch.no_grad():
                    tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))
                params[key] = (rows, tensor)
    assert abs(module.scaling["default"] - ALPHA / RANK) < 1e-12

    input_ids = torch.tensor([ids])
    targets = torch.tensor(ids[1:] + [-1])
    logits = model(input_ids=input_ids).logits[0]
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-1, reduction="mean")
    loss.backward()

    def keel_layout(rows, t):
        g = t.grad.detach().numpy()
        return hf_to_gguf_rows(g, rows) if rows else g

    grads = {k: keel_layout(rows, t) for k, (rows, t) in params.items()}
    norms = {k: float(np.sqrt((g * g).sum())) for k, g in grads.items()}
    total = float(np.sqrt(sum(n * n for n in norms.values())))
    print(f"{len(ids)} tokens, loss {float(loss.detach()):.6f}, global gradient norm {total:.6f}, "
          f"{sum(t.numel() for _, t in params.values())} LoRA parameters in {len(params)} tensors")
    out = {
        "reference": f"torch {torch.__version__.split('+')[0]} autograd, transformers LlamaForCausalLM from the "
                     f"GGUF (dequantized), PEFT LoRA; float64",
        "model": {"file": name, "sha256": sha256(path)},
        "lora": {"rank": RANK, "alpha": ALPHA, "a_scale": float(A_SCALE), "b_scale": float(B_SCALE),
                 "modules": [short for short, _ in ref.MODULES]},
        "tokens": ids,
        "loss": float(loss.detach()),
        "grad_norm": total,
        "gradient_norms": norms,
        "gradients": {k: [float(f"{x:.7g}") for x in grads[k].reshape(-1)] for k in FULL_GRADIENTS},
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
