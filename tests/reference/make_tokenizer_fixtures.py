#!/usr/bin/env python3
"""Writes tests/fixtures/engine/tokenizer/smollm2.json: llama.cpp's own token ids
(through llama-cpp-python, see requirements-engine.txt) for hard strings, tokenized
with the default model's vocabulary (SmolLM2-135M-Instruct, tokenizer.ggml.pre =
"smollm"). tests/engine/tokenizer_test.cpp checks Keel's tokenizer against it.

    .cache/venv-reference/bin/python tests/reference/make_tokenizer_fixtures.py [MODEL.gguf]

Without a model argument the path printed by scripts/fetch-default-model is used.
For every string it records tokenize(text, add_bos, special) for the four flag
combinations, and llama_token_to_piece() of the ids, concatenated (special tokens rendered and not).
"""
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "engine", "tokenizer")
OTHER_PRE = ["gpt-2", "llama-bpe", "qwen2", "default"]

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. It wasn't the first time, and it won't be the last: "
    "foxes (as everyone knows) are creatures of habit.\n\n"
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong's words -- \"one small step for man\" -- were heard "
    "by roughly 650 million people. They'd waited years for it, and they're still talking about it today.\n\n"
    "Machine learning models are trained on large corpora of text. Tokenizers split that text into pieces, "
    "and a byte-level BPE tokenizer never fails: every byte has a token of its own, so any input, however "
    "strange, can be represented. We'll see whether ours agrees with the reference on every one of them."
)

STRINGS = [
    "",
    " ",
    "  ",
    "   ",
    "    ",
    "        ",
    " " * 17,
    "\t",
    "\t\t\tindented with tabs",
    "\n",
    "\n\n\n",
    "\r\n",
    "line one\r\nline two\r\n",
    " leading space",
    "trailing space ",
    "  two leading and two trailing  ",
    "Hello",
    "Hello world",
    "Hello, world!",
    "hello world\n",
    "I'm sure you've seen it; they'll say we'd DON'T it's",
    "0",
    "42",
    "3.14159",
    "1234567890123456789012345678901234567890",
    "Call 555-0199 or +1 (800) 123-4567 before 2025-12-31.",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "if x == 1 and y != 2:\n    print(f\"{x=} {y!r}\")  # comment\n",
    "café naïve résumé über Straße",
    "Ångström ñandú œuvre",
    "你好，世界",
    "日本語のテキストとカタカナ",
    "한국어 텍스트",
    "Emoji: 😀🎉🚀",
    "Family: 👨‍👩‍👧‍👦 and flag 🇫🇷 and skin tone 👍🏽",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|im_end|>more",
    "<|im_start|><|im_start|>",
    "<|im_start",
    "<|endoftext|><|im_start|>system\nYou are helpful.<|im_end|>",
    "!!!!!!!!!!",
    "???!!!...",
    "----------------------------------------",
    "=== *** ### @@@ $$$",
    "...,,,;;;:::",
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosisantidisestablishmentarianism",
    "a" * 300,
    "ab" * 150,
    "https://example.com/path?query=1&other=two#frag",
    "user@example.com",
    "\u00a0non-breaking\u00a0space",
    "zero\u200bwidth",
    "mixed 中文 and English 123 😀",
    ENGLISH,
]


def default_model():
    out = subprocess.run([os.path.join(ROOT, "scripts", "fetch-default-model")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def detokenize(llm, ids, special):
    """llama.cpp's llama_token_to_piece for each id, concatenated. (Llama.detokenize
    cannot be used: its 32-byte buffer drops longer tokens, such as the 40 dashes.)"""
    vocab = llm._model.vocab
    out = b""
    for token in ids:
        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(vocab, llama_cpp.llama_token(token), buf, size, 0, special)
            if n >= 0:
                out += buf.raw[:n]
                break
            size = -n
    return out


def with_pre(src, dst, pre):
    """Copies src's metadata (no tensors) to dst with tokenizer.ggml.pre = pre."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    reader = GGUFReader(src)
    writer = GGUFWriter(dst, arch=reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = pre if key == "tokenizer.ggml.pre" else field.contents()
        if field.types[0] == GGUFValueType.ARRAY:
            writer.add_key_value(key, value, field.types[0], sub_type=field.types[-1])
        else:
            writer.add_key_value(key, value, field.types[0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def record(model, pre, out_path):
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    cases = []
    for text in STRINGS:
        data = text.encode("utf-8")
        ids = {}
        for name, add_bos, special in (("plain", False, False), ("bos", True, False),
                                       ("special", False, True), ("bos_special", True, True)):
            ids[name] = llm.tokenize(data, add_bos=add_bos, special=special)
        cases.append({
            "text": text,
            "ids": ids,
            # Whole strings decode to valid UTF-8.
            "decoded": detokenize(llm, ids["plain"], False).decode("utf-8"),
            "decoded_special": detokenize(llm, ids["special"], True).decode("utf-8"),
        })
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({
            "generator": "tests/reference/make_tokenizer_fixtures.py",
            "llama_cpp_python": llama_cpp.__version__,
            "model": os.path.basename(model),
            "pre": pre,
            "english_paragraphs": ENGLISH,
            "cases": cases,
        }, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out_path}")


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else default_model()
    os.makedirs(OUT_DIR, exist_ok=True)
    record(model, "smollm", os.path.join(OUT_DIR, "smollm2.json"))
    with tempfile.TemporaryDirectory() as tmp:
        for pre in OTHER_PRE:
            copy = os.path.join(tmp, f"vocab-{pre}.gguf")
            with_pre(model, copy, pre)
            record(copy, pre, os.path.join(OUT_DIR, f"smollm2_pre_{pre}.json"))


if __name__ == "__main__":
    main()
