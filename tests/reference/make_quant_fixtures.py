#!/usr/bin/env python3
"""Writes the quantization fixtures that Keel's kernel tests check (tests/fixtures/engine/quant/).

Reference: gguf-py (the `gguf` package, 0.19.0), the numpy (de)quantizers that ship with
llama.cpp. Deterministic (seeded): running it again gives the same bytes.

Each case is a few rows of one type, all of the same length, in three files:
  NAME.q        the rows' raw bytes, as a GGUF file stores them
  NAME.f32      float32 little-endian: gguf-py's dequantization of NAME.q
  NAME.src.f32  float32: the rows gguf-py quantized to get NAME.q (only for cases made
                from floats; absent for random blocks and model rows)
and index.json lists the cases (name, type, type id, row length, row count, origin).

Origins:
  gguf-py-quantize  seeded float rows (gaussian, outliers, zeros, tiny and huge values,
                    exact rounding ties) quantized by gguf-py: F32 F16 BF16 Q4_0 Q4_1
                    Q5_0 Q5_1 Q8_0 (gguf-py's algorithms are ggml's *_ref quantizers)
  random-blocks     seeded random block bytes with sane fp16 scales, for the K-quants,
                    which gguf-py can dequantize but not quantize
  model             rows of the default model (SmolLM2-135M-Instruct Q4_1 GGUF): Q8_0
                    token embeddings, Q4_1 attention / FFN weights, an F32 norm

Usage: make_quant_fixtures.py [--model PATH]   (default: ~/.cache/keel/models/...)
Run with the reference venv: .cache/venv-reference/bin/python tests/reference/make_quant_fixtures.py
"""
import argparse
import importlib.metadata
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "engine", "quant")
DEFAULT_MODEL = os.path.expanduser("~/.cache/keel/models/SmolLM2-135M-Instruct.Q4_1.gguf")


def float_rows(rng, n, kinds):
    """One float32 row of length n per kind."""
    rows = []
    for kind in kinds:
        if kind == "gaussian":
            r = rng.standard_normal(n)
        elif kind == "outliers":  # a few values 50x the rest, as in real activations
            r = rng.standard_normal(n) * 0.1
            idx = rng.choice(n, size=max(2, n // 64), replace=False)
            r[idx] = rng.standard_normal(idx.size) * 5.0
        elif kind == "zeros":  # a whole zero block, scattered zeros, a constant block
            r = rng.standard_normal(n)
            r[:32] = 0.0
            r[rng.choice(n, size=n // 8, replace=False)] = 0.0
            r[64:96] = 0.75
        elif kind == "uniform":
            r = rng.uniform(-1.0, 1.0, n)
        elif kind == "positive":  # offset away from zero: the min of Q4_1 / Q5_1 matters
            r = rng.uniform(2.0, 3.0, n)
        elif kind == "tiny":  # scales that fall into fp16's subnormal range
            r = rng.standard_normal(n) * 1e-6
        elif kind == "ties":  # x / d lands exactly on k + 0.5 for Q8_0 / Q8_1 (d = 0.25)
            c = 0.25
            r = (rng.integers(-126, 126, n) + 0.5) * c
            r[::32] = 127 * c * np.where(rng.random(n // 32) < 0.5, -1.0, 1.0)
        elif kind == "wide":  # for the 16-bit floats: subnormals, overflow, exact halfway values
            r = rng.standard_normal(n) * np.exp2(rng.integers(-30, 18, n))
            r[:8] = [65504.0, 65519.0, 65520.0, 70000.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26, -(2.0**-14)]
            r[8:12] = [1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1.0 + 2.0**-8, 1.0 + 2.0**-7 + 2.0**-8]  # bf16 ties
        else:
            raise ValueError(kind)
        rows.append(r.astype(np.float32))
    return np.stack(rows)


def random_k_blocks(rng, qtype, n_blocks):
    """Random but well-formed K-quant blocks: random quants and packed scales, fp16 scales of sane size."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    d = (rng.uniform(1e-4, 1e-2, n_blocks) * np.where(rng.random(n_blocks) < 0.5, -1, 1)).astype(np.float16)
    dmin = rng.uniform(1e-4, 1e-2, n_blocks).astype(np.float16)
    if qtype in (Q.Q4_K, Q.Q5_K):
        raw[:, 0:2] = d.view(np.uint8).reshape(n_blocks, 2)
        raw[:, 2:4] = dmin.view(np.uint8).reshape(n_blocks, 2)
        if n_blocks > 1:
            raw[1, 4:16] = 0xFF  # every 6-bit scale and min at 63
    elif qtype == Q.Q6_K:
        raw[:, 208:210] = d.view(np.uint8).reshape(n_blocks, 2)
        if n_blocks > 1:
            raw[1, 192:208] = np.array([-128, 127] * 8, dtype=np.int8).view(np.uint8)  # extreme scales
    else:
        raise ValueError(qtype)
    return raw


class Writer:
    def __init__(self):
        os.makedirs(OUT, exist_ok=True)
        for f in os.listdir(OUT):
            os.remove(os.path.join(OUT, f))
        self.cases = []

    def add(self, name, qtype, raw, deq, src, origin, note):
        raw = np.ascontiguousarray(raw, dtype=np.uint8)
        deq = np.ascontiguousarray(deq, dtype=np.float32)
        rows, n = deq.shape
        assert raw.shape[0] == rows
        files = {"quantized": name + ".q", "dequantized": name + ".f32"}
        raw.tofile(os.path.join(OUT, files["quantized"]))
        deq.astype("<f4").tofile(os.path.join(OUT, files["dequantized"]))
        if src is not None:
            files["source"] = name + ".src.f32"
            np.ascontiguousarray(src, dtype="<f4").tofile(os.path.join(OUT, files["source"]))
        self.cases.append({
            "name": name, "type": qtype.name, "type_id": int(qtype), "row_elements": int(n), "rows": int(rows),
            "row_bytes": int(raw.shape[1]), "origin": origin, "note": note, "files": files,
        })

    def finish(self, model_note):
        index = {
            "generator": "tests/reference/make_quant_fixtures.py",
            "gguf_version": importlib.metadata.version("gguf"),
            "numpy_version": np.__version__,
            "model": model_note,
            "cases": self.cases,
        }
        with open(os.path.join(OUT, "index.json"), "w") as f:
            json.dump(index, f, indent=1)
            f.write("\n")


def as_bytes(q):
    """gguf-py returns uint8 blocks for quants and float16/float32/uint8 arrays for floats."""
    q = np.ascontiguousarray(q)
    return q.view(np.uint8).reshape(q.shape[0], -1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    args = ap.parse_args()
    rng = np.random.default_rng(20240531)
    w = Writer()

    from_floats = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
    for qtype in from_floats:
        name = qtype.name.lower()
        sets = [("a", 256, ["gaussian", "outliers", "zeros", "tiny"]), ("b", 512, ["uniform", "positive", "ties"])]
        if qtype in (Q.F16, Q.BF16):
            sets.append(("wide", 256, ["wide", "wide"]))
        for tag, n, kinds in sets:
            src = float_rows(rng, n, kinds)
            with np.errstate(over="ignore"):  # the "wide" rows overflow fp16 on purpose
                q = quants.quantize(src, qtype)
            raw = as_bytes(q)
            deq = quants.dequantize(raw, qtype).reshape(src.shape)
            w.add(f"{name}_{tag}_{n}", qtype, raw, deq, src, "gguf-py-quantize", "rows: " + ", ".join(kinds))

    for qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
        name = qtype.name.lower()
        for tag, n, rows in (("a", 256, 3), ("b", 512, 2)):
            blocks = random_k_blocks(rng, qtype, rows * n // 256)
            raw = blocks.reshape(rows, -1)
            deq = quants.dequantize(raw, qtype).reshape(rows, n)
            w.add(f"{name}_{tag}_{n}", qtype, raw, deq, None, "random-blocks",
                  "random quants and scales, fp16 d/dmin in +-[1e-4, 1e-2]; block 1: extreme scales")

    model_note = None
    if os.path.exists(args.model):
        reader = gguf.GGUFReader(args.model)
        tensors = {t.name: t for t in reader.tensors}
        picks = [
            ("model_token_embd_q8_0", "token_embd.weight", [0, 1, 1000, 49151]),
            ("model_attn_q_q4_1", "blk.0.attn_q.weight", [0, 7, 575]),
            ("model_ffn_down_q4_1", "blk.5.ffn_down.weight", [3, 400]),
            ("model_attn_norm_f32", "blk.0.attn_norm.weight", None),
        ]
        for case, tensor_name, rows in picks:
            t = tensors[tensor_name]
            data = np.asarray(t.data)
            if data.ndim == 1:
                data = data.reshape(1, -1)
            if rows is not None:
                data = data[rows]
            raw = as_bytes(data)
            deq = quants.dequantize(raw, t.tensor_type).reshape(raw.shape[0], -1)
            w.add(case, t.tensor_type, raw, deq, None, "model", f"{tensor_name} rows {rows if rows else 'all'}")
        model_note = os.path.basename(args.model)
    else:
        print(f"warning: {args.model} not found; no model rows written")
    w.finish(model_note)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(w.cases)} cases, {total} bytes in {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
