#!/usr/bin/env python3
"""Writes a Q8_0 copy of the default model, ~/.cache/keel/models/SmolLM2-135M-Instruct.Q8_0.gguf,
so that the llama.cpp agreement fixtures (make_engine_fixtures.py) cover a second weight
type. Every 2-D tensor whose rows are whole Q8_0 blocks is dequantized to float32 by gguf-py
and quantized to Q8_0 by gguf-py (gguf.quants, the same rounding as llama.cpp's reference
quantize_row_q8_0); 1-D tensors (norms) stay float32, as llama.cpp's quantizer keeps them.
The metadata is copied unchanged except general.file_type. Deterministic: the same input
gives the same bytes (the fixture records the file's sha256).

    .cache/venv-reference/bin/python tests/reference/make_q8_0_model.py [SRC.gguf [DST.gguf]]
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, quants

MODELS = os.path.expanduser("~/.cache/keel/models")
SRC = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf")
DST = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q8_0.gguf")
MOSTLY_Q8_0 = 7  # llama_ftype LLAMA_FTYPE_MOSTLY_Q8_0


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else SRC
    dst = sys.argv[2] if len(sys.argv) > 2 else DST
    reader = GGUFReader(src)
    tmp = dst + ".part"
    writer = GGUFWriter(tmp, arch=reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            writer.add_file_type(MOSTLY_Q8_0)
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), field.types[0])
    block = gguf.GGML_QUANT_SIZES[GGMLQuantizationType.Q8_0][0]
    for t in reader.tensors:
        shape = [int(x) for x in reversed(t.shape)]  # numpy order: rows, cols
        data = quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if len(shape) == 2 and shape[-1] % block == 0:
            writer.add_tensor(t.name, quants.quantize(data, GGMLQuantizationType.Q8_0),
                              raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(t.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, dst)
    print(dst)


if __name__ == "__main__":
    main()
