#!/usr/bin/env python3
"""Fixtures for Keel's SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"):
llama.cpp's own token ids and detokenized text (through llama-cpp-python, vocab_only)
for hard strings, on

  * a tiny synthetic vocabulary: a SentencePiece BPE model (byte_fallback) trained
    here on text this script generates, written to spm_tiny.gguf (add_bos_token,
    add_space_prefix) and spm_tiny_no_prefix.gguf (no space prefix, add_eos_token);
    both GGUF files are committed, so the C++ tests need neither Python nor a model;
  * Gemma 3 270M (the second reference model, scripts/fetch-models), when present.

    .cache/venv-reference/bin/python tests/reference/make_spm_tokenizer_fixtures.py [--retrain] [GEMMA.gguf]

The tiny model is trained only when spm_tiny.gguf is missing or --retrain is given
(the id fixtures belong to the committed vocabulary). Every case records
tokenize(text, add_bos, special) for the four flag combinations, the pieces of the
bos_special ids (llama_token_to_piece, special rendered and not), and
llama_detokenize of them with remove_special and unparse_special each on and off.
Texts and outputs that are not valid UTF-8 are stored as {"hex": "..."}.
"""
import ctypes
import io
import json
import os
import random
import subprocess
import sys

import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "engine", "tokenizer")
TINY = os.path.join(OUT_DIR, "spm_tiny.gguf")
TINY_NO_PREFIX = os.path.join(OUT_DIR, "spm_tiny_no_prefix.gguf")

sys.path.insert(0, HERE)
from make_tokenizer_fixtures import ENGLISH, STRINGS as BPE_STRINGS  # noqa: E402

# Symbols the tiny model keeps whole: user-defined ones are always recognised in
# text, control ones only when special tokens are parsed.
TINY_USER_DEFINED = ["<sep>", "<|tool|>"]
TINY_CONTROL = ["<ctl>", "<start_of_turn>", "<end_of_turn>"]

SPM_STRINGS = [
    "\u2581",
    "\u2581already\u2581escaped",
    " \u2581 mixed \u2581",
    "<0x41>",
    "<0xFF><0x00>",
    "<unk>",
    "<s>",
    "</s>",
    "<s>Hello</s>",
    "<sep>",
    "a<sep>b",
    " <sep> ",
    "<|tool|>call<|tool|>",
    "<ctl>",
    "x<ctl> y",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<mask>",
    "<unused0>",
    "<unused6241> and <unused99>",
    "[multimodal]",
    "<start_of_image>",
    "<table><tr><td>cell</td></tr></table>",
    "<h1>Title</h1>\n<p>para</p>",
    "  double space  ",
    "a  b   c    d",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    "\t\t\t\t",
    "\x00",
    "bell\x07 escape\x1b[0m del\x7f",
    "\ufffd",
    "a\u0301 e\u0300",
    "\U0010ffff",
    "\U0001f600" * 5,
    "x\u200dy",
    "Thequickbrownfox",
    "the the the the the the",
    "12 345 6789",
]

# Byte strings that are not UTF-8 (llama.cpp takes any bytes).
INVALID = [
    b"abc\xff",
    b"\xff",
    b"\xc3",
    b"\xc3(",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xff\xfe\xfd",
    b"\xe4\xbd",
    b"hello \x80 world",
    b"\xf0\x9f\x98",
    b"\xf0\x9f\x98 \xf0",
    b"caf\xe9",
]


def training_sentences():
    """License-clean text made up here: plain English-like sentences, some accents,
    digits, code, CJK and whitespace runs."""
    rng = random.Random(20240531)
    nouns = ("fox dog cat bird tree river stone house garden window table model token word line "
             "number city road light water book paper music system data test value").split()
    verbs = "jumps runs sees finds keeps makes takes gives reads writes sings builds counts moves".split()
    adjectives = "quick brown lazy small large bright dark quiet happy careful simple strange old new".split()
    others = ("café naïve résumé über Straße façade déjà crème Ångström ñandú "
              "你好 世界 日本語 テキスト 한국어 Привет мир Γειά").split()
    code = [
        "def f(x):\n    return x + 1\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
        "if x == 1 and y != 2:\n    print(x, y)\n",
        "let value = items.map(|v| v * 2).sum();\n",
    ]
    out = []
    for _ in range(3000):
        words = []
        for _ in range(rng.randint(4, 14)):
            pick = rng.random()
            if pick < 0.45:
                words.append(rng.choice(nouns))
            elif pick < 0.7:
                words.append(rng.choice(verbs))
            elif pick < 0.85:
                words.append(rng.choice(adjectives))
            elif pick < 0.93:
                words.append(str(rng.randint(0, 99999)))
            else:
                words.append(rng.choice(others))
        sentence = " ".join(words)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", ",", ";", ":"])
        if rng.random() < 0.1:
            sentence = "  " + sentence + "   "
        out.append(sentence)
        if rng.random() < 0.08:
            out.append(rng.choice(code))
    out.append(ENGLISH)
    return out


def train_tiny():
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_sentences()),
        model_writer=model,
        model_type="bpe",
        vocab_size=900,
        byte_fallback=True,
        character_coverage=1.0,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        user_defined_symbols=TINY_USER_DEFINED,
        control_symbols=TINY_CONTROL,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        tokens.append(piece)
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_byte(i):
            types.append(6)
        elif sp.is_unused(i):
            types.append(5)
        elif piece in TINY_USER_DEFINED:
            types.append(4)
        else:
            types.append(1)
    return tokens, scores, types


def write_gguf(path, tokens, scores, types, add_bos, add_eos, add_space_prefix):
    from gguf import GGUFWriter

    w = GGUFWriter(path, arch="llama")
    w.add_name("keel-spm-tiny")
    # The hyperparameters llama.cpp reads before the vocabulary (no tensors follow).
    w.add_context_length(128)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(32)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(add_eos)
    w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def encoded(data):
    """A fixture value: the text when it is UTF-8, else its bytes in hex."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": data.hex()}


def piece(vocab, token, special):
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, llama_cpp.llama_token(token), buf, size, 0, special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def detokenize(vocab, ids, remove_special, unparse_special):
    array = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 8 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, array, len(ids), buf, size, remove_special, unparse_special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def record(model, name, texts, out_path):
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    cases = []
    for data in texts:
        ids = {}
        for flags, add_bos, special in (("plain", False, False), ("bos", True, False),
                                        ("special", False, True), ("bos_special", True, True)):
            ids[flags] = llm.tokenize(data, add_bos=add_bos, special=special)
        full = ids["bos_special"]
        cases.append({
            "text": encoded(data),
            "ids": ids,
            "pieces": [piece(vocab, t, True).hex() for t in full],
            "pieces_plain": [piece(vocab, t, False).hex() for t in full],
            "decoded": encoded(detokenize(vocab, ids["plain"], False, False)),
            "decoded_special": encoded(detokenize(vocab, ids["special"], False, True)),
            "detokenized": {
                "keep": encoded(detokenize(vocab, full, False, False)),
                "keep_render": encoded(detokenize(vocab, full, False, True)),
                "remove": encoded(detokenize(vocab, full, True, False)),
                "remove_render": encoded(detokenize(vocab, full, True, True)),
            },
        })
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({
            "generator": "tests/reference/make_spm_tokenizer_fixtures.py",
            "llama_cpp_python": llama_cpp.__version__,
            "model": name,
            "english_paragraphs": ENGLISH,
            "cases": cases,
        }, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out_path}")


def gemma_model():
    out = subprocess.run([os.path.join(ROOT, "scripts", "fetch-models")], check=True,
                         capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.endswith("gemma-3-270m-q4_k_m.gguf")][-1]


def main():
    args = [a for a in sys.argv[1:] if a != "--retrain"]
    os.makedirs(OUT_DIR, exist_ok=True)
    if "--retrain" in sys.argv or not os.path.exists(TINY):
        tokens, scores, types = train_tiny()
        write_gguf(TINY, tokens, scores, types, add_bos=True, add_eos=False, add_space_prefix=True)
        write_gguf(TINY_NO_PREFIX, tokens, scores, types, add_bos=False, add_eos=True, add_space_prefix=False)
        print(f"trained a {len(tokens)}-token vocabulary into {TINY} and {TINY_NO_PREFIX}")

    texts = [s.encode("utf-8") for s in BPE_STRINGS + SPM_STRINGS] + INVALID
    record(TINY, "spm_tiny.gguf", texts, os.path.join(OUT_DIR, "spm_tiny.json"))
    record(TINY_NO_PREFIX, "spm_tiny_no_prefix.gguf", texts, os.path.join(OUT_DIR, "spm_tiny_no_prefix.json"))
    gemma = args[0] if args else gemma_model()
    record(gemma, os.path.basename(gemma), texts, os.path.join(OUT_DIR, "gemma3.json"))


if __name__ == "__main__":
    main()
