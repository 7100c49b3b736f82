#!/usr/bin/env python3
"""Writes tests/fixtures/train/lora_torch_reference.json, which tests/train/reference_test.cpp
checks as it checks make_lora_fixtures.py's numpy fixture (the same format).

Reference: PyTorch autograd through transformers' LlamaForCausalLM with PEFT's LoRA
(r 2, alpha 4, no dropout, on q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,
down_proj), on the tiny model of tests/train/tiny_model.h and the micro-batch of
make_lora_fixtures.py (its weight generator, sequences and AdamW settings are imported,
not copied): the mean next-token cross-entropy, the gradient of every LoRA tensor, and ten
steps of torch.optim.AdamW with torch.nn.utils.clip_grad_norm_ and transformers'
get_cosine_schedule_with_warmup.

float64: the model is tiny, so the cost is nothing, and the reference's own rounding then
stays far below the tolerances the C++ test applies (1e-4 on the loss, 1e-3 relative on
gradients), so a failure there is Keel's. transformers computes RMSNorm, the RoPE angles
and the attention softmax in float32 even in a float64 model, which bounds the agreement
with the numpy float64 reference at about 1e-7 relative; the script prints that agreement.

The GGUF layout the C++ side loads rotates pairs (2i, 2i+1) of each head (llama.cpp's
converter permutes q and k rows); transformers rotates halves (i, i + d/2). So the rows of
attn_q, attn_k and of their LoRA B matrices are permuted into transformers' order on the
way in, and the gradients of those B matrices permuted back on the way out; everything
else is written as it is.

Run: "$(scripts/reference-venv torch)" tests/reference/make_lora_torch_fixtures.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM, get_cosine_schedule_with_warmup

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_lora_fixtures as ref  # noqa: E402  (the tiny model, the adapters, the batch)

FIXTURES = os.path.join(HERE, "..", "fixtures", "train")
HF_MODULES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
              "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
              "ffn_down": "mlp.down_proj"}


def gguf_to_hf_rows(w, heads):
    """Rows of a q/k matrix from GGUF's interleaved-pair order to transformers' half order."""
    head_dim = w.shape[0] // heads
    return w.reshape(heads, head_dim // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_to_gguf_rows(w, heads):
    head_dim = w.shape[0] // heads
    return w.reshape(heads, 2, head_dim // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def row_heads(stem):
    return {"attn_q": ref.HEADS, "attn_k": ref.KV_HEADS}.get(stem)


def build_model():
    """The tiny model as a float64 transformers Llama with PEFT LoRA adapters set to the
    reference's initial values; returns (peft model, {keel name: (stem, lora module, A or B)})."""
    config = LlamaConfig(vocab_size=ref.VOCAB, hidden_size=ref.DIM, intermediate_size=ref.FFN,
                         num_hidden_layers=ref.LAYERS, num_attention_heads=ref.HEADS,
                         num_key_value_heads=ref.KV_HEADS, max_position_embeddings=64, rms_norm_eps=ref.EPS,
                         rope_parameters={"rope_type": "default", "rope_theta": ref.ROPE_BASE},
                         tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu")
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).to(torch.float64)
    weights, shapes = ref.make_model()
    state = {"model.embed_tokens.weight": weights["token_embd"], "model.norm.weight": weights["output_norm"]}
    for l in range(ref.LAYERS):
        p = f"blk.{l}."
        state[f"model.layers.{l}.input_layernorm.weight"] = weights[p + "attn_norm"]
        state[f"model.layers.{l}.post_attention_layernorm.weight"] = weights[p + "ffn_norm"]
        for stem, hf in HF_MODULES.items():
            w = weights[p + stem]
            if row_heads(stem):
                w = gguf_to_hf_rows(w, row_heads(stem))
            state[f"model.layers.{l}.{hf}.weight"] = w
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
                                                strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied

    lora_config = LoraConfig(r=ref.RANK, lora_alpha=ref.ALPHA, lora_dropout=0.0, bias="none",
                             target_modules=[hf.split(".")[1] for hf in HF_MODULES.values()])
    peft_model = get_peft_model(model, lora_config).to(torch.float64)
    initial = ref.make_lora(shapes)
    modules = dict(peft_model.named_modules())
    params = {}
    for name, value in initial.items():
        layer, stem, which = name.split(".")[1], name.split(".")[2], name.split(".")[3]
        module = modules[f"base_model.model.model.layers.{layer}.{HF_MODULES[stem]}"]
        tensor = (module.lora_A if which == "lora_a" else module.lora_B)["default"].weight
        if which == "lora_b" and row_heads(stem):
            value = gguf_to_hf_rows(value, row_heads(stem))
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        assert tensor.dtype == torch.float64 and tensor.requires_grad
        params[name] = (stem, which, tensor)
    assert math.isclose(module.scaling["default"], ref.ALPHA / ref.RANK)
    trainable = {id(p) for p in peft_model.parameters() if p.requires_grad}
    assert trainable == {id(t) for _, _, t in params.values()}, "only the LoRA tensors train"
    return peft_model, params


def batch_loss(model):
    """Mean cross-entropy over every target of the micro-batch (each sequence on its own,
    attending from position 0, as Keel's rows do)."""
    total, count = 0.0, 0
    for seq in ref.SEQUENCES:
        ids = torch.tensor([seq["tokens"]])
        targets = torch.tensor(ref.targets_of(seq))
        logits = model(input_ids=ids).logits[0]
        total = total + torch.nn.functional.cross_entropy(logits, targets, ignore_index=-1, reduction="sum")
        count += int((targets >= 0).sum())
    return total / count


def keel_layout(stem, which, t):
    """A LoRA tensor (or its gradient) as Keel stores it, flattened."""
    v = t.detach().numpy()
    if which == "lora_b" and row_heads(stem):
        v = hf_to_gguf_rows(v, row_heads(stem))
    return v.reshape(-1).tolist()


def relative_difference(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def cross_check(out, path):
    """How far the numpy fixture is from this one."""
    if not os.path.exists(path):
        print(f"no {os.path.normpath(path)} to compare with")
        return
    with open(path) as f:
        numpy_ref = json.load(f)
    loss = abs(out["initial"]["loss"] - numpy_ref["initial"]["loss"])
    grads = max(relative_difference(out["initial"]["gradients"][k], numpy_ref["initial"]["gradients"][k])
                for k in out["initial"]["gradients"])
    steps = max(abs(a["loss"] - b["loss"]) for a, b in zip(out["steps"], numpy_ref["steps"]))
    norms = max(abs(a["grad_norm"] - b["grad_norm"]) / b["grad_norm"] for a, b in zip(out["steps"], numpy_ref["steps"]))
    lrs = max(abs(a["lr"] - b["lr"]) for a, b in zip(out["steps"], numpy_ref["steps"]))
    final = max(relative_difference(out["final"]["parameters"][k], numpy_ref["final"]["parameters"][k])
                for k in out["final"]["parameters"])
    print("torch (transformers + PEFT, float64, autograd) against numpy (float64, finite differences):")
    print(f"  initial loss        |diff| {loss:.3e}")
    print(f"  initial gradients   max |diff| / max |numpy| over tensors {grads:.3e}")
    print(f"  ten step losses     max |diff| {steps:.3e}")
    print(f"  ten grad norms      max relative diff {norms:.3e}")
    print(f"  ten learning rates  max |diff| {lrs:.3e}")
    print(f"  final parameters    max |diff| / max |numpy| over tensors {final:.3e}")
    print(f"  final loss          |diff| {abs(out['final']['loss'] - numpy_ref['final']['loss']):.3e}")
    assert loss < 1e-6 and grads < 1e-5 and steps < 1e-6 and final < 1e-5, "torch and numpy disagree"


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model, params = build_model()
    tensors = [t for _, _, t in params.values()]

    loss = batch_loss(model)
    loss.backward()
    first = {"loss": float(loss.detach()), "gradients": {k: keel_layout(s, w, t.grad) for k, (s, w, t) in params.items()}}

    a = ref.ADAM
    optimizer = torch.optim.AdamW(tensors, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"],
                                  weight_decay=a["weight_decay"])
    schedule = get_cosine_schedule_with_warmup(optimizer, a["warmup_steps"], a["total_steps"])
    steps = []
    for step in range(a["total_steps"]):
        optimizer.zero_grad()
        loss = batch_loss(model)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(tensors, a["max_grad_norm"]))
        lr = schedule.get_last_lr()[0]
        optimizer.step()
        schedule.step()
        steps.append({"loss": float(loss.detach()), "grad_norm": norm, "lr": lr})
        print(f"step {step}: loss {steps[-1]['loss']:.6f} grad norm {norm:.6f} lr {lr:.6f}")
    with torch.no_grad():
        final_loss = float(batch_loss(model))
    print(f"final loss {final_loss:.6f}")

    out = {
        "reference": f"torch {torch.__version__.split('+')[0]} autograd, transformers LlamaForCausalLM, "
                     f"PEFT LoRA, torch.optim.AdamW; float64",
        "model": {"vocab": ref.VOCAB, "embedding": ref.DIM, "feed_forward": ref.FFN, "layers": ref.LAYERS,
                  "heads": ref.HEADS, "kv_heads": ref.KV_HEADS, "weight_scale": float(ref.WEIGHT_SCALE),
                  "tied_output": True},
        "lora": {"rank": ref.RANK, "alpha": ref.ALPHA, "a_scale": float(ref.A_SCALE), "b_scale": float(ref.B_SCALE),
                 "modules": [short for short, _ in ref.MODULES]},
        "sequences": ref.SEQUENCES,
        "adamw": ref.ADAM,
        "initial": first,
        "steps": steps,
        "final": {"loss": final_loss, "parameters": {k: keel_layout(s, w, t) for k, (s, w, t) in params.items()}},
    }
    cross_check(out, os.path.join(FIXTURES, "lora_reference.json"))
    path = os.path.join(FIXTURES, "lora_torch_reference.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
