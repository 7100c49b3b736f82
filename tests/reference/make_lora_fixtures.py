#!/usr/bin/env python3
"""Writes tests/fixtures/train/lora_reference.json, which tests/train/reference_test.cpp checks.

Reference: a plain numpy float64 implementation of the llama forward pass with LoRA
(y = W x + alpha/r * B A x on q, k, v, o, gate, up, down; no dropout), its mean
next-token cross-entropy over a micro-batch of two sequences (the second with a masked
prompt), the gradient of that loss with respect to every LoRA parameter, and ten
AdamW steps (torch.optim.AdamW's update, clipping by global norm 1.0 as
torch.nn.utils.clip_grad_norm_, warmup 2 then cosine as transformers'
get_cosine_schedule_with_warmup).

The gradients are central finite differences of that float64 loss (step 1e-6; error
about 1e-9), which keeps it independent of Keel's hand-derived backward passes and of
any autograd. make_lora_torch_fixtures.py computes the same with PyTorch (autograd,
transformers' Llama, PEFT, torch.optim.AdamW) in its own environment, and checks that
the two agree.

The model is the one tests/train/tiny_model.h writes: every weight is a pure function
of (tensor name, element index) through splitmix64 and FNV-1a (pseudo_uniform below),
computed with float32 rounding exactly as the C++ does, so neither side reads the
other's files. Deterministic: running it again gives the same bytes.

Run: python3 tests/reference/make_lora_fixtures.py   (needs numpy)
"""
import json
import math
import os

import numpy as np

MASK = (1 << 64) - 1

# The model (TinyModelSpec's defaults) and the LoRA configuration.
VOCAB, DIM, FFN, LAYERS, HEADS, KV_HEADS = 48, 32, 64, 2, 4, 2
HEAD_DIM = DIM // HEADS
WEIGHT_SCALE = np.float32(0.3)
EPS = 1e-5
ROPE_BASE = 10000.0
RANK, ALPHA = 2, 4.0
MODULES = [("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output"),
           ("gate", "ffn_gate"), ("up", "ffn_up"), ("down", "ffn_down")]
A_SCALE, B_SCALE = np.float32(0.25), np.float32(0.2)

# Two sequences; the second's first three tokens are a prompt (no loss).
SEQUENCES = [
    {"tokens": [3, 17, 42, 8, 8, 23, 5, 31, 12], "loss_mask": [1] * 9},
    {"tokens": [7, 1, 44, 19, 36, 2], "loss_mask": [0, 0, 0, 1, 1, 1]},
]

# AdamW and the schedule.
ADAM = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01, "max_grad_norm": 1.0,
        "warmup_steps": 2, "total_steps": 10}


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def name_hash(name):
    h = 0xCBF29CE484222325
    for c in name.encode():
        h = ((h ^ c) * 0x100000001B3) & MASK
    return h


def pseudo_uniform(name, count):
    """float32 values in [-1, 1), as tiny_model.h's pseudo_uniform."""
    base = name_hash(name)
    out = np.empty(count, dtype=np.float32)
    for i in range(count):
        h = splitmix64(base ^ splitmix64(i))
        out[i] = np.float32(float(h >> 11) * 2.0 ** -53 * 2.0 - 1.0)
    return out


def tensor(name, shape, norm=False):
    """A weight as tiny_model.h writes it (float32 arithmetic), widened to float64."""
    u = pseudo_uniform(name, int(np.prod(shape)))
    v = (np.float32(1.0) + np.float32(0.2) * u) if norm else (WEIGHT_SCALE * u)
    return v.astype(np.float32).astype(np.float64).reshape(shape)


def make_model():
    kv = KV_HEADS * HEAD_DIM
    m = {"token_embd": tensor("token_embd.weight", (VOCAB, DIM)),
         "output_norm": tensor("output_norm.weight", (DIM,), norm=True)}
    shapes = {"attn_q": (DIM, DIM), "attn_k": (kv, DIM), "attn_v": (kv, DIM), "attn_output": (DIM, DIM),
              "ffn_gate": (FFN, DIM), "ffn_up": (FFN, DIM), "ffn_down": (DIM, FFN)}
    for l in range(LAYERS):
        p = f"blk.{l}."
        m[p + "attn_norm"] = tensor(p + "attn_norm.weight", (DIM,), norm=True)
        m[p + "ffn_norm"] = tensor(p + "ffn_norm.weight", (DIM,), norm=True)
        for stem, shape in shapes.items():
            m[p + stem] = tensor(p + stem + ".weight", shape)
    return m, shapes


def make_lora(shapes):
    """Parameter name -> float64 array, in LoraWeights::parameters() order."""
    params = {}
    for l in range(LAYERS):
        for _, stem in MODULES:
            rows, cols = shapes[stem]
            name = f"blk.{l}.{stem}"
            a = (A_SCALE * pseudo_uniform(name + ".lora_a", RANK * cols)).astype(np.float32)
            b = (B_SCALE * pseudo_uniform(name + ".lora_b", rows * RANK)).astype(np.float32)
            params[name + ".lora_a"] = a.astype(np.float64).reshape(RANK, cols)
            params[name + ".lora_b"] = b.astype(np.float64).reshape(rows, RANK)
    return params


def rms_norm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * w


def rope(x, heads):
    """llama's normal RoPE: pairs (2i, 2i+1) of each head rotate by pos * base^(-2i/d)."""
    n = x.shape[0]
    x = x.reshape(n, heads, HEAD_DIM).copy()
    half = HEAD_DIM // 2
    pos = np.arange(n, dtype=np.float64)[:, None]
    theta = pos * ROPE_BASE ** (-2.0 * np.arange(half, dtype=np.float64) / HEAD_DIM)[None, :]
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    x0, x1 = x[:, :, 0::2].copy(), x[:, :, 1::2].copy()
    x[:, :, 0::2] = x0 * c - x1 * s
    x[:, :, 1::2] = x0 * s + x1 * c
    return x.reshape(n, heads * HEAD_DIM)


def linear(x, w, params, name):
    y = x @ w.T
    a, b = params[name + ".lora_a"], params[name + ".lora_b"]
    return y + (ALPHA / RANK) * (x @ a.T) @ b.T


def sequence_loss_sum(model, params, tokens, targets):
    n = len(tokens)
    x = model["token_embd"][tokens]
    group = HEADS // KV_HEADS
    causal = np.tril(np.ones((n, n), dtype=bool))
    for l in range(LAYERS):
        p = f"blk.{l}."
        xn = rms_norm(x, model[p + "attn_norm"])
        q = rope(linear(xn, model[p + "attn_q"], params, p + "attn_q"), HEADS)
        k = rope(linear(xn, model[p + "attn_k"], params, p + "attn_k"), KV_HEADS)
        v = linear(xn, model[p + "attn_v"], params, p + "attn_v")
        att = np.empty_like(q)
        for h in range(HEADS):
            g = h // group
            qh = q[:, h * HEAD_DIM:(h + 1) * HEAD_DIM]
            kh = k[:, g * HEAD_DIM:(g + 1) * HEAD_DIM]
            vh = v[:, g * HEAD_DIM:(g + 1) * HEAD_DIM]
            s = np.where(causal, qh @ kh.T / math.sqrt(HEAD_DIM), -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            att[:, h * HEAD_DIM:(h + 1) * HEAD_DIM] = (s / s.sum(axis=1, keepdims=True)) @ vh
        x = x + linear(att, model[p + "attn_output"], params, p + "attn_output")
        xn = rms_norm(x, model[p + "ffn_norm"])
        gate = linear(xn, model[p + "ffn_gate"], params, p + "ffn_gate")
        up = linear(xn, model[p + "ffn_up"], params, p + "ffn_up")
        x = x + linear(gate / (1.0 + np.exp(-gate)) * up, model[p + "ffn_down"], params, p + "ffn_down")
    logits = rms_norm(x, model["output_norm"]) @ model["token_embd"].T  # tied output
    total = 0.0
    for t, target in enumerate(targets):
        if target < 0:
            continue
        z = logits[t]
        m = z.max()
        total += m + math.log(np.exp(z - m).sum()) - z[target]
    return total


def targets_of(seq):
    tokens, mask = seq["tokens"], seq["loss_mask"]
    return [tokens[t + 1] if mask[t + 1] else -1 for t in range(len(tokens) - 1)] + [-1]


def batch_loss(model, params):
    total, count = 0.0, 0
    for seq in SEQUENCES:
        targets = targets_of(seq)
        total += sequence_loss_sum(model, params, seq["tokens"], targets)
        count += sum(1 for t in targets if t >= 0)
    return total / count


def gradients(model, params, step=1e-6):
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        flat, gflat = value.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + step
            up = batch_loss(model, params)
            flat[i] = old - step
            down = batch_loss(model, params)
            flat[i] = old
            gflat[i] = (up - down) / (2 * step)
        grads[name] = g
    return grads


def lr_at(step):
    warmup, total = ADAM["warmup_steps"], ADAM["total_steps"]
    if step < warmup:
        return ADAM["lr"] * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return ADAM["lr"] * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def main():
    model, shapes = make_model()
    params = make_lora(shapes)
    loss = batch_loss(model, params)
    grads = gradients(model, params)
    first = {"loss": loss, "gradients": {k: v.reshape(-1).tolist() for k, v in grads.items()}}

    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    b1, b2 = ADAM["beta1"], ADAM["beta2"]
    steps = []
    for step in range(ADAM["total_steps"]):
        loss = batch_loss(model, params)
        g = grads if step == 0 else gradients(model, params)
        norm = math.sqrt(sum(float((x * x).sum()) for x in g.values()))
        clip = ADAM["max_grad_norm"] / (norm + 1e-6) if norm > ADAM["max_grad_norm"] else 1.0
        lr = lr_at(step)
        t = step + 1
        for k in params:
            gk = g[k] * clip
            params[k] *= 1 - lr * ADAM["weight_decay"]
            m[k] = b1 * m[k] + (1 - b1) * gk
            v2[k] = b2 * v2[k] + (1 - b2) * gk * gk
            denom = np.sqrt(v2[k]) / math.sqrt(1 - b2 ** t) + ADAM["eps"]
            params[k] -= (lr / (1 - b1 ** t)) * m[k] / denom
        steps.append({"loss": loss, "grad_norm": norm, "lr": lr})
        print(f"step {step}: loss {loss:.6f} grad norm {norm:.6f} lr {lr:.6f}")
    final_loss = batch_loss(model, params)
    print(f"final loss {final_loss:.6f}")

    out = {
        "model": {"vocab": VOCAB, "embedding": DIM, "feed_forward": FFN, "layers": LAYERS, "heads": HEADS,
                  "kv_heads": KV_HEADS, "weight_scale": float(WEIGHT_SCALE), "tied_output": True},
        "lora": {"rank": RANK, "alpha": ALPHA, "a_scale": float(A_SCALE), "b_scale": float(B_SCALE),
                 "modules": [short for short, _ in MODULES]},
        "sequences": SEQUENCES,
        "adamw": ADAM,
        "initial": first,
        "steps": steps,
        "final": {"loss": final_loss, "parameters": {k: v.reshape(-1).tolist() for k, v in params.items()}},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train", "lora_reference.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
