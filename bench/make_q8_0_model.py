"""Writes the Q8_0 copy of the default model that bench/engine_vs_llamacpp measures
beside the Q4_1 original. Usage: make_q8_0_model.py SRC.gguf DST.gguf

Every 2-D tensor whose rows are whole Q8_0 blocks is dequantized by gguf-py and
requantized to Q8_0 by gguf-py (gguf.quants: llama.cpp's reference rounding); 1-D tensors
(the norms) stay float32, as llama.cpp's quantizer keeps them. The metadata is copied
except general.file_type. Deterministic: the same input gives the same bytes. The file
appears atomically (written beside DST, then renamed)."""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, quants

MOSTLY_Q8_0 = 7  # llama_ftype LLAMA_FTYPE_MOSTLY_Q8_0


def main():
    src, dst = sys.argv[1], sys.argv[2]
    reader = GGUFReader(src)
    tmp = dst + f".part.{os.getpid()}"
    writer = GGUFWriter(tmp, arch=reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            writer.add_file_type(MOSTLY_Q8_0)
        elif field.types[0] == GGUFValueType.ARRAY:
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
