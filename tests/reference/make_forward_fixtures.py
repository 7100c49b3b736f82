#!/usr/bin/env python3
"""Writes the forward-pass fixtures that Keel's model tests check (tests/fixtures/engine/forward/).

Reference: a plain numpy float64 implementation of llama's forward pass (below), run on
weights dequantized by gguf-py 0.19.0 (gguf.quants.dequantize). RoPE is llama.cpp's
"normal" style for LLM_ARCH_LLAMA: pairs (0,1), (2,3), ... of each head rotate by
pos * freq_base^(-2i/n_rot); GGUF's attn_q / attn_k rows are already permuted for it by
llama.cpp's converter. Deterministic (seeded): running it again gives the same bytes.

qwen2 adds biases to q, k and v and rotates NeoX-style (pairs (i, i + n_rot/2));
gemma3 scales embeddings by sqrt(dim), normalises q and k per head, normalises the
attention and FFN outputs before the residual adds, uses tanh-GELU in the gated FFN,
head dim from attention.key_length, and a sliding window on five layers of six (RoPE
base 10000 there).

Files:
  tiny_tied.gguf, tiny_untied.gguf  random-weight F32 llama models (2 layers, dim 64,
                                    4 heads, 2 kv heads, ffn 128, vocab 256); the tied
                                    one has no output.weight
  tiny_qwen2.gguf                   the same shape as qwen2 (biases, NeoX RoPE, untied)
  tiny_gemma3.gguf                  gemma3, 6 layers, head dim 32 (q dim 128 != dim 64),
                                    sliding window 5, tied
  tiny_*.logits.f32                 float32 [positions][vocab]: the reference logits of
                                    TINY_PROMPT at every position
  smollm2.json                      for the default model (SmolLM2-135M-Instruct Q4_1):
                                    per prompt, the top-5 ids and logits at every
                                    position and the 16-token greedy continuation
  gemma3.json                       the same for Gemma 3 270M Q4_K_M
  index.json                        what is where (prompts, shapes, hyperparameters)

Usage: make_forward_fixtures.py [--model PATH] [--skip-model]
Run with the reference venv: .cache/venv-reference/bin/python tests/reference/make_forward_fixtures.py
"""
import argparse
import importlib.metadata
import json
import os

import numpy as np
import gguf
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "engine", "forward")
DEFAULT_MODEL = os.path.expanduser("~/.cache/keel/models/SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_GEMMA = os.path.expanduser("~/.cache/keel/models/gemma-3-270m-q4_k_m.gguf")
# Gemma prompts as vocabulary pieces (looked up in the model's token list; BOS first).
GEMMA_PROMPTS = [["<bos>", "The", "▁capital", "▁of", "▁France", "▁is"],
                 ["<bos>", "<start_of_turn>", "user", "\n", "Write", "▁a", "▁poem", "▁about", "▁the", "▁sea",
                  "<end_of_turn>", "\n", "<start_of_turn>", "model", "\n"]]

TINY = dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_ff=128, n_vocab=256, n_ctx=128,
            rope_base=10000.0, eps=1e-5)
TINY_PROMPT = [1, 17, 200, 3, 45, 45, 99, 255, 0, 128, 7, 64]
SMOL_PROMPTS = [
    [1, 9690, 198, 2683, 314, 253, 5356, 7059, 30, 2],
    [1, 4093, 28, 957, 1838, 314, 34519, 30, 378, 15036, 1510, 198],
]
GREEDY_TOKENS = 16
TOP_K = 5


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, n_rot, base, neox=False):
    """x: [T, heads, head_dim]; rotates pairs (2i, 2i+1) (normal) or (i, i + n_rot/2)
    (NeoX) for i < n_rot/2 by positions * base^(-2i/n_rot)."""
    x = x.copy()
    i = np.arange(n_rot // 2)
    theta = positions[:, None] * base ** (-2.0 * i / n_rot)  # [T, n_rot/2]
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    a = slice(0, n_rot // 2) if neox else slice(0, n_rot, 2)
    b = slice(n_rot // 2, n_rot) if neox else slice(1, n_rot, 2)
    x0, x1 = x[..., a].copy(), x[..., b].copy()
    x[..., a] = x0 * c - x1 * s
    x[..., b] = x0 * s + x1 * c
    return x


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * x * (1.0 + 0.044715 * x * x)))


def forward(w, cfg, tokens):
    """Logits [T, vocab] for every position of tokens (float64, causal)."""
    T = len(tokens)
    arch = cfg.get("arch", "llama")
    gemma = arch == "gemma3"
    d, nh, nkv = cfg["n_embd"], cfg["n_head"], cfg["n_head_kv"]
    hd = cfg.get("head_dim", d // nh)
    n_rot = cfg.get("n_rot", hd)
    pos = np.arange(T, dtype=np.float64)
    x = w["token_embd.weight"][tokens].astype(np.float64)
    if gemma:
        x = x * np.float32(np.sqrt(np.float32(d)))
    causal = np.triu(np.full((T, T), -np.inf), 1)
    # Sliding window: query t sees keys j with t - j < window.
    windowed = causal + np.tril(np.full((T, T), -np.inf), -cfg.get("window", T + 1))
    for l in range(cfg["n_layer"]):
        p = f"blk.{l}."
        swa = gemma and l % 6 != 5
        base = 10000.0 if swa else cfg["rope_base"]
        mask = windowed if swa else causal
        xn = rms_norm(x, w[p + "attn_norm.weight"], cfg["eps"])
        q = xn @ w[p + "attn_q.weight"].T + w.get(p + "attn_q.bias", 0)
        k = xn @ w[p + "attn_k.weight"].T + w.get(p + "attn_k.bias", 0)
        v = xn @ w[p + "attn_v.weight"].T + w.get(p + "attn_v.bias", 0)
        q, k, v = q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)
        if gemma:
            q = rms_norm(q, w[p + "attn_q_norm.weight"], cfg["eps"])
            k = rms_norm(k, w[p + "attn_k_norm.weight"], cfg["eps"])
        neox = arch in ("qwen2", "gemma3")
        q = rope(q, pos, n_rot, base, neox)
        k = rope(k, pos, n_rot, base, neox)
        group = nh // nkv
        out = np.empty((T, nh, hd))
        for h in range(nh):
            kh, vh = k[:, h // group, :], v[:, h // group, :]
            s = q[:, h, :] @ kh.T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, h, :] = s @ vh
        a = out.reshape(T, nh * hd) @ w[p + "attn_output.weight"].T
        if gemma:
            a = rms_norm(a, w[p + "post_attention_norm.weight"], cfg["eps"])
        x = x + a
        xn = rms_norm(x, w[p + "ffn_norm.weight"], cfg["eps"])
        g = xn @ w[p + "ffn_gate.weight"].T
        u = xn @ w[p + "ffn_up.weight"].T
        f = ((gelu_tanh(g) if gemma else g / (1.0 + np.exp(-g))) * u) @ w[p + "ffn_down.weight"].T
        if gemma:
            f = rms_norm(f, w[p + "post_ffw_norm.weight"], cfg["eps"])
        x = x + f
    x = rms_norm(x, w["output_norm.weight"], cfg["eps"])
    out_w = w.get("output.weight", w["token_embd.weight"])
    return x @ out_w.T


def make_tiny(tied, arch="llama", name=None, seed=None, **overrides):
    rng = np.random.default_rng(seed if seed is not None else 20261127 + (0 if tied else 1))
    c = dict(TINY, arch=arch, **overrides)
    d = c["n_embd"]
    hd = c.get("head_dim", d // c["n_head"])
    qd, kvd = hd * c["n_head"], hd * c["n_head_kv"]
    w = {"token_embd.weight": rng.normal(0, 1.0, (c["n_vocab"], d))}
    for l in range(c["n_layer"]):
        p = f"blk.{l}."
        w[p + "attn_norm.weight"] = 1.0 + 0.1 * rng.normal(size=d)
        w[p + "attn_q.weight"] = rng.normal(0, d ** -0.5, (qd, d))
        w[p + "attn_k.weight"] = rng.normal(0, d ** -0.5, (kvd, d))
        w[p + "attn_v.weight"] = rng.normal(0, d ** -0.5, (kvd, d))
        w[p + "attn_output.weight"] = rng.normal(0, qd ** -0.5, (d, qd))
        if arch == "qwen2":
            w[p + "attn_q.bias"] = 0.5 * rng.normal(size=qd)
            w[p + "attn_k.bias"] = 0.5 * rng.normal(size=kvd)
            w[p + "attn_v.bias"] = 0.5 * rng.normal(size=kvd)
        if arch == "gemma3":
            w[p + "attn_q_norm.weight"] = 1.0 + 0.1 * rng.normal(size=hd)
            w[p + "attn_k_norm.weight"] = 1.0 + 0.1 * rng.normal(size=hd)
            w[p + "post_attention_norm.weight"] = 1.0 + 0.1 * rng.normal(size=d)
            w[p + "post_ffw_norm.weight"] = 1.0 + 0.1 * rng.normal(size=d)
        w[p + "ffn_norm.weight"] = 1.0 + 0.1 * rng.normal(size=d)
        w[p + "ffn_gate.weight"] = rng.normal(0, d ** -0.5, (c["n_ff"], d))
        w[p + "ffn_up.weight"] = rng.normal(0, d ** -0.5, (c["n_ff"], d))
        w[p + "ffn_down.weight"] = rng.normal(0, c["n_ff"] ** -0.5, (d, c["n_ff"]))
    w["output_norm.weight"] = 1.0 + 0.1 * rng.normal(size=d)
    if not tied:
        w["output.weight"] = rng.normal(0, d ** -0.5, (c["n_vocab"], d))
    # The model holds float32 weights; the reference computes in float64 from exactly those.
    w = {k: v.astype(np.float32) for k, v in w.items()}
    name = name or ("tiny_tied" if tied else "tiny_untied")
    writer = gguf.GGUFWriter(os.path.join(OUT, name + ".gguf"), arch)
    writer.add_name(name)
    writer.add_context_length(c["n_ctx"])
    writer.add_embedding_length(d)
    writer.add_block_count(c["n_layer"])
    writer.add_feed_forward_length(c["n_ff"])
    writer.add_head_count(c["n_head"])
    writer.add_head_count_kv(c["n_head_kv"])
    writer.add_rope_freq_base(c["rope_base"])
    writer.add_layer_norm_rms_eps(c["eps"])
    writer.add_rope_dimension_count(hd)
    writer.add_vocab_size(c["n_vocab"])
    if "head_dim" in c:
        writer.add_key_length(hd)
        writer.add_value_length(hd)
    if "window" in c:
        writer.add_sliding_window(c["window"])
    for k, v in w.items():
        writer.add_tensor(k, v)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    cfg = dict(c)
    logits = forward({k: v.astype(np.float64) for k, v in w.items()}, cfg, TINY_PROMPT)
    logits.astype("<f4").tofile(os.path.join(OUT, name + ".logits.f32"))
    return {"gguf": name + ".gguf", "logits": name + ".logits.f32", "tied": tied, "architecture": arch,
            "positions": len(TINY_PROMPT), "vocab": c["n_vocab"]}


def load_model(path):
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    f = lambda k: r.fields[arch + "." + k].contents()
    cfg = dict(arch=arch, n_layer=f("block_count"), n_embd=f("embedding_length"),
               n_head=f("attention.head_count"), n_head_kv=f("attention.head_count_kv"),
               n_ff=f("feed_forward_length"), rope_base=float(f("rope.freq_base")),
               eps=float(f("attention.layer_norm_rms_epsilon")))
    if arch + ".rope.dimension_count" in r.fields:
        cfg["n_rot"] = f("rope.dimension_count")
    if arch + ".attention.key_length" in r.fields:
        cfg["head_dim"] = f("attention.key_length")
    if arch + ".attention.sliding_window" in r.fields:
        cfg["window"] = f("attention.sliding_window")
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    w = {}
    for t in r.tensors:
        w[t.name] = quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(
            [int(x) for x in reversed(t.shape)])
    return cfg, w, tokens


def smollm2_case(cfg, w, prompt):
    logits = forward(w, cfg, prompt)
    top_ids = np.argsort(-logits, axis=1, kind="stable")[:, :TOP_K]
    top_logits = np.take_along_axis(logits, top_ids, axis=1)
    seq = list(prompt)
    greedy = []
    for _ in range(GREEDY_TOKENS):
        nxt = int(np.argmax(forward(w, cfg, seq)[-1]))
        greedy.append(nxt)
        seq.append(nxt)
    margin = np.sort(logits, axis=1)[:, -1] - np.sort(logits, axis=1)[:, -2]
    return {"prompt": prompt, "top_ids": top_ids.tolist(),
            "top_logits": [[round(float(v), 6) for v in row] for row in top_logits],
            "top1_margin": [round(float(v), 6) for v in margin], "greedy": greedy}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--gemma", default=DEFAULT_GEMMA, help="Gemma 3 270M GGUF ('' to skip)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    index = {"generator": "tests/reference/make_forward_fixtures.py",
             "gguf_py": importlib.metadata.version("gguf"), "tiny_prompt": TINY_PROMPT,
             "tiny": [make_tiny(True), make_tiny(False),
                      make_tiny(False, "qwen2", "tiny_qwen2", seed=20261201, rope_base=1000000.0),
                      make_tiny(True, "gemma3", "tiny_gemma3", seed=20261202, n_layer=6, head_dim=32,
                                window=5, rope_base=1000000.0, eps=1e-6)]}
    if not args.skip_model:
        cfg, w, _ = load_model(args.model)
        cases = [smollm2_case(cfg, w, p) for p in SMOL_PROMPTS]
        with open(os.path.join(OUT, "smollm2.json"), "w") as fh:
            json.dump({"model": os.path.basename(args.model), "greedy_tokens": GREEDY_TOKENS,
                       "cases": cases}, fh, indent=1)
        index["smollm2"] = "smollm2.json"
    elif os.path.exists(os.path.join(OUT, "smollm2.json")):
        index["smollm2"] = "smollm2.json"  # kept from an earlier run with the model
    if args.gemma and os.path.exists(args.gemma):
        cfg, w, vocab = load_model(args.gemma)
        ids = {t: i for i, t in enumerate(vocab)}
        cases = [smollm2_case(cfg, w, [ids[p] for p in prompt]) for prompt in GEMMA_PROMPTS]
        with open(os.path.join(OUT, "gemma3.json"), "w") as fh:
            json.dump({"model": os.path.basename(args.gemma), "greedy_tokens": GREEDY_TOKENS,
                       "cases": cases}, fh, indent=1)
        index["gemma3"] = "gemma3.json"
    elif os.path.exists(os.path.join(OUT, "gemma3.json")):
        index["gemma3"] = "gemma3.json"
    with open(os.path.join(OUT, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)


if __name__ == "__main__":
    main()
