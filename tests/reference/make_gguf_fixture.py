#!/usr/bin/env python3
"""Writes the GGUF files that Keel's writer tests compare against (tests/fixtures/engine/gguf/).

Reference: gguf-py (the `gguf` package, 0.19.0), llama.cpp's Python GGUF writer.
Deterministic: running it again gives the same bytes. The content and order of each
file is mirrored by tests/engine/gguf_writer_test.cpp, which checks that GgufFile reads
these files as written and that GgufWriter, given the same content, writes the same bytes.

  every_type.gguf  default alignment (32): one key of every value type, arrays of
                   strings / int32 / float32 / bool / nested arrays, and three tensors
                   (F32 4x3, F16 8, Q8_0 64x2) whose sizes are not multiples of 32
  aligned64.gguf   general.alignment = 64, one I8 tensor of 5 bytes

It also writes the fuzzer's seed corpus (fuzz/corpus/gguf/): the two files above and
  metadata_only.gguf  no tensors, a few keys
  quant_types.gguf    one small tensor of each of F32, F16, Q4_0, Q4_1, Q8_0, Q6_K

Usage: .cache/venv-reference/bin/python tests/reference/make_gguf_fixture.py
"""
import importlib.metadata
import os

import numpy as np
from gguf import GGUFValueType as T
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "engine", "gguf")


def pattern(n, seed):
    """Deterministic bytes: (i * 37 + seed) mod 251."""
    return np.array([(i * 37 + seed) % 251 for i in range(n)], dtype=np.uint8)


def write_every_type(path):
    w = GGUFWriter(path, "llama")  # adds general.architecture = "llama" first
    w.add_uint8("t.uint8", 200)
    w.add_int8("t.int8", -100)
    w.add_uint16("t.uint16", 60000)
    w.add_int16("t.int16", -30000)
    w.add_uint32("t.uint32", 4000000000)
    w.add_int32("t.int32", -2000000000)
    w.add_float32("t.float32", 0.15625)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "h\u00e9llo \u6a21\u578b")
    w.add_uint64("t.uint64", 18000000000000000000)
    w.add_int64("t.int64", -9000000000000000000)
    w.add_float64("t.float64", -2.5e-300)
    w.add_key_value("t.strings", ["a", "", "\u00fc\u00df"], T.ARRAY, sub_type=T.STRING)
    w.add_key_value("t.int32s", [1, -2, 2147483647], T.ARRAY, sub_type=T.INT32)
    w.add_key_value("t.float32s", [0.5, -1.0, 3.25], T.ARRAY, sub_type=T.FLOAT32)
    w.add_key_value("t.bools", [True, False], T.ARRAY, sub_type=T.BOOL)
    w.add_key_value("t.uint8s", [0, 255], T.ARRAY, sub_type=T.UINT8)
    w.add_key_value("t.nested", [[1, 2], [3]], T.ARRAY, sub_type=T.ARRAY)
    # dims in ggml order are (3, 4): numpy shape is reversed.
    w.add_tensor("tok_embd.weight", np.arange(12, dtype=np.float32).reshape(4, 3) * 0.5)
    w.add_tensor("norm.weight", np.linspace(-1, 1, 8).astype(np.float16))
    w.add_tensor("blk.0.attn_q.weight", pattern(2 * 68, 7).reshape(2, 68), raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_aligned64(path):
    w = GGUFWriter(path, "test")
    w.add_custom_alignment(64)
    w.add_tensor("bytes", np.array([1, -2, 3, -4, 5], dtype=np.int8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_metadata_only(path):
    w = GGUFWriter(path, "llama")
    w.add_uint32("llama.context_length", 2048)
    w.add_key_value("tokenizer.ggml.tokens", ["<s>", "</s>", "a"], T.ARRAY, sub_type=T.STRING)
    w.add_key_value("tokenizer.ggml.scores", [0.0, -1.5, 2.0], T.ARRAY, sub_type=T.FLOAT32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_quant_types(path):
    w = GGUFWriter(path, "llama")
    w.add_tensor("f32", np.array([1.0, -2.0], dtype=np.float32))
    w.add_tensor("f16", np.array([0.5, 4.0], dtype=np.float16))
    # One block each (raw bytes): Q4_0 32 el / 18 B, Q4_1 32 / 20, Q8_0 32 / 34, Q6_K 256 / 210.
    for name, qtype, nbytes in (("q4_0", Q.Q4_0, 18), ("q4_1", Q.Q4_1, 20), ("q8_0", Q.Q8_0, 34), ("q6_k", Q.Q6_K, 210)):
        w.add_tensor(name, pattern(nbytes, nbytes).reshape(1, nbytes), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    write_every_type(os.path.join(OUT, "every_type.gguf"))
    write_aligned64(os.path.join(OUT, "aligned64.gguf"))
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fuzz", "corpus", "gguf")
    os.makedirs(corpus, exist_ok=True)
    write_every_type(os.path.join(corpus, "every_type.gguf"))
    write_aligned64(os.path.join(corpus, "aligned64.gguf"))
    write_metadata_only(os.path.join(corpus, "metadata_only.gguf"))
    write_quant_types(os.path.join(corpus, "quant_types.gguf"))
    print("gguf", importlib.metadata.version("gguf"), "->", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
