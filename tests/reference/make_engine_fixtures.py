#!/usr/bin/env python3
"""Writes tests/fixtures/engine/llamacpp/<model>.json: what llama.cpp (through
llama-cpp-python, see requirements-engine.txt) computes for a model, so that
tests/engine/llamacpp_agreement_test.cpp can hold Keel's forward pass to it.

    .cache/venv-reference/bin/python tests/reference/make_engine_fixtures.py [MODEL.gguf ...]

Without arguments: the default model, its Q8_0 copy (tests/reference/make_q8_0_model.py)
and any Gemma GGUF in ~/.cache/keel/models/, each when present.

Per model it records, for each prompt of PROMPTS:
  tokens        llama.cpp's tokenization (tokenize(text, add_bos=True, special=True):
                BOS where the vocabulary adds one, special-token text parsed)
  top_ids, top_logprobs
                the TOP_K largest log-probabilities (log-softmax of llama.cpp's float32
                logits, computed in float64) at every position, ids and values
  greedy        the first GREEDY_TOKENS greedy tokens (argmax, lowest id on ties; EOS
                does not stop it), prompt evaluated as one batch, then one token per step
  greedy_margin llama.cpp's log-probability margin between its top two at each greedy step
and the perplexity of ppl_text.txt at each of PPL_CONTEXTS with exactly the chunking of
llama.cpp's tools/perplexity/perplexity.cpp (default mode): the file minus one trailing
newline, tokenized with BOS and without parsing special tokens; n_chunk = tokens / ctx
chunks, each evaluated alone (cache cleared) with its first token replaced by BOS (when the
vocabulary adds one); the logits at positions ctx/2 .. ctx-2 score the next token; NLL as
the tool computes it (max and exp in float32, sum in float64). The tool runs 2048/ctx chunks
side by side as separate sequences; one chunk per decode computes the same numbers.

Every run uses llama-cpp-python's defaults (F16 KV cache, no flash attention) with one
thread (n_threads = n_threads_batch = 1), so the fixture does not depend on the machine's
thread count, and without llama.cpp's extra weight buffer types (use_extra_bufts = false:
no AMX or repacked weights), so it does not depend on the CPU either: llama.cpp's plain CPU
kernels, which quantize activations to the weight type's vec_dot_type as Keel does. (The
AMX path also faults where the kernel does not grant AMX tile state.)
"""
import argparse
import glob
import hashlib
import json
import os
import sys

import numpy as np
import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "engine", "llamacpp")
MODELS = os.path.expanduser("~/.cache/keel/models")
DEFAULT_MODEL = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf")
Q8_0_MODEL = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q8_0.gguf")
PPL_TEXT = os.path.join(OUT_DIR, "ppl_text.txt")

TOP_K = 10
GREEDY_TOKENS = 32
PPL_CONTEXTS = [128, 256]
PROMPT_CONTEXT = 512  # every prompt plus GREEDY_TOKENS fits

LONG_PARAGRAPH = (
    "The old railway station at the edge of town had been closed for almost thirty years when a group of "
    "volunteers decided to bring it back to life. At first they had no money, no plan and no permission, only "
    "a shared conviction that a building which had welcomed travellers for a century deserved better than "
    "broken windows and a roof full of pigeons. They began by clearing the platform of weeds and rubbish, "
    "working on Saturday mornings with borrowed tools. Within a year they had persuaded the council to lease "
    "them the building for a nominal rent, and a local bank had agreed to lend them enough to repair the roof. "
    "The booking hall became a cafe, the waiting room a small museum of the line's history, with photographs, "
    "tickets, timetables and a brass bell that had once announced every departure. The stationmaster's office "
    "was turned into a workshop where retired engineers taught teenagers to repair bicycles, clocks and radios. "
    "None of the volunteers expected trains to return, but in the fifth year the regional railway company, "
    "noticing the crowds that gathered on summer weekends, announced a trial service on the old branch line. "
    "The first train in three decades arrived on a wet Sunday in October, twelve minutes late, and was met by "
    "nearly the whole town, standing under umbrellas and cheering as if it were the first train ever built."
)

PROMPTS = [
    ("english", "The history of the printing press begins in the fifteenth century, when a goldsmith in Mainz"),
    ("code", "def merge_sorted(a, b):\n    \"\"\"Merge two sorted lists into one sorted list.\"\"\"\n"
             "    result = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n"),
    ("chat", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
             "What is the capital of France, and why is it famous?<|im_end|>\n<|im_start|>assistant\n"),
    ("numbers", "In 2023 the price rose 3.75%, from $1,249.99 to $1,296.86; 17 x 23 = 391, 2^10 = 1024, "
                "and pi is about 3.14159265. The next numbers in 1, 1, 2, 3, 5, 8, 13 are"),
    ("non_english", "La ville de Paris est la capitale de la France. Berlin ist die Hauptstadt Deutschlands. "
                    "Москва — столица России. 東京は日本の首都です。北京是中国的首都。"),
    ("long", LONG_PARAGRAPH),
]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def plain_cpu_model_params():
    params = DEFAULT_MODEL_PARAMS()
    params.use_extra_bufts = False
    return params


# Llama() takes its model parameters from this function and has no argument for the field.
DEFAULT_MODEL_PARAMS = llama_cpp.llama_cpp.llama_model_default_params
llama_cpp.llama_cpp.llama_model_default_params = plain_cpu_model_params


def open_model(path, n_ctx, **variant):
    return llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=1,
                           n_threads_batch=1, logits_all=True, verbose=False, **variant)


# llama.cpp against itself: the same prompts under other settings of its own. The
# differences show how far two correct implementations drift apart on this model (a
# rounding difference anywhere flips Q8 activation roundings downstream), the floor
# against which the agreement test judges Keel.
VARIANTS = {
    "f32_kv_cache": dict(type_k=0, type_v=0),  # GGML_TYPE_F32 instead of the default F16
    "flash_attn": dict(flash_attn=True),      # what llama-perplexity uses on CPUs by default
}


def log_softmax(logits):
    """Log-softmax of one row of float32 logits, in float64."""
    x = logits.astype(np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def top_k(logprobs, k):
    """The k largest values of a row, largest first, lower id first on ties."""
    ids = np.argpartition(-logprobs, k)[:k]
    ids = ids[np.lexsort((ids, -logprobs[ids]))]
    return ids, logprobs[ids]


def eval_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[:len(tokens)], dtype=np.float32)


def greedy_tokens(llm, tokens):
    """The greedy continuation after tokens were evaluated, and the top-2 margin at each step."""
    last = log_softmax(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
    greedy, margins = [], []
    for step in range(GREEDY_TOKENS):
        best2, _ = top_k(last, 2)
        greedy.append(int(best2[0]))
        margins.append(round(float(last[best2[0]] - last[best2[1]]), 6))
        if step + 1 < GREEDY_TOKENS:
            llm.eval([greedy[-1]])
            last = log_softmax(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
    return greedy, margins


def record_prompt(llm, name, text):
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    top_ids, top_values = [], []
    logits = eval_logits(llm, tokens)
    for row in logits:
        ids, values = top_k(log_softmax(row), TOP_K)
        top_ids.append([int(i) for i in ids])
        top_values.append([round(float(v), 6) for v in values])
    greedy, margins = greedy_tokens(llm, tokens)
    return {
        "name": name,
        "text": text,
        "tokens": tokens,
        "top_ids": top_ids,
        "top_logprobs": top_values,
        "greedy": greedy,
        "greedy_margin": margins,
    }


def self_agreement(path, cases):
    """How each VARIANT of llama.cpp agrees with its default run: the numbers the agreement
    test reports for Keel (top-1 rate, |log-prob difference| on the default's top-k, greedy)."""
    out = {}
    for name, settings in VARIANTS.items():
        llm = open_model(path, PROMPT_CONTEXT, **settings)
        agree = positions = compared = identical = 0
        total = worst = 0.0
        for case in cases:
            logits = eval_logits(llm, case["tokens"])
            greedy, _ = greedy_tokens(llm, case["tokens"])
            identical += greedy == case["greedy"]
            for row, ids, values in zip(logits, case["top_ids"], case["top_logprobs"]):
                lp = log_softmax(row)
                agree += int(top_k(lp, 1)[0][0]) == ids[0]
                positions += 1
                d = np.abs(lp[ids] - np.array(values))
                total += d.sum()
                compared += d.size
                worst = max(worst, float(d.max()))
        del llm
        out[name] = {"settings": {k: v for k, v in settings.items()}, "top1_rate": agree / positions,
                     "mean_abs_logprob_diff": total / compared, "max_abs_logprob_diff": worst,
                     "greedy_identical": identical}
        print(f"llama.cpp {name} vs default: top-1 {agree}/{positions}, |logprob diff| mean {total / compared:.4f} "
              f"max {worst:.4f}, greedy identical on {identical}/{len(cases)}", file=sys.stderr)
    return out


def token_nll(row, target):
    """llama.cpp perplexity.cpp's log_softmax: max and exp in float32, the sum in float64."""
    m = row.max()
    sum_exp = np.exp(row - m).astype(np.float64).sum()
    return -(float(np.float32(row[target] - m)) - np.log(sum_exp))


def perplexity(path, tokens, ctx, bos):
    llm = open_model(path, ctx)
    n_chunk = len(tokens) // ctx
    first = ctx // 2
    nll = nll2 = 0.0
    count = 0
    running = []
    for i in range(n_chunk):
        chunk = list(tokens[i * ctx:(i + 1) * ctx])
        if bos is not None:
            chunk[0] = bos
        logits = eval_logits(llm, chunk)
        for j in range(first, ctx - 1):
            v = token_nll(logits[j], chunk[j + 1])
            nll += v
            nll2 += v * v
            count += 1
        running.append(round(float(np.exp(nll / count)), 6))
        print(f"[{i + 1}]{np.exp(nll / count):.4f},", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    mean = nll / count
    ppl = float(np.exp(mean))
    var = nll2 / count - mean * mean
    unc = float(np.sqrt(var / (count - 1)) * ppl) if var > 0 else 0.0
    print(f"ctx {ctx}: Final estimate: PPL = {ppl:.4f} +/- {unc:.5f}", file=sys.stderr)
    del llm
    return {"ctx": ctx, "chunks": n_chunk, "scored_tokens": count, "perplexity": ppl, "uncertainty": unc,
            "nll": mean, "running_perplexity": running}


def record_model(path):
    llm = open_model(path, PROMPT_CONTEXT)
    add_bos = llama_cpp.llama_vocab_get_add_bos(llm._model.vocab)
    bos = llm.token_bos() if add_bos else None
    cases = [record_prompt(llm, name, text) for name, text in PROMPTS]
    with open(PPL_TEXT, "rb") as f:
        text = f.read()
    if text.endswith(b"\n"):
        text = text[:-1]  # llama.cpp's -f drops one trailing newline
    ppl_tokens = llm.tokenize(text, add_bos=True, special=False)
    n_ctx_train = llm._model.n_ctx_train()
    del llm
    agreement = self_agreement(path, cases)
    runs = []
    for ctx in PPL_CONTEXTS:
        if len(ppl_tokens) < 2 * ctx:
            sys.exit(f"{PPL_TEXT} tokenizes to {len(ppl_tokens)} tokens; ctx {ctx} needs {2 * ctx}")
        runs.append(perplexity(path, ppl_tokens, ctx, bos))
    name = os.path.basename(path)
    out = {
        "generator": "tests/reference/make_engine_fixtures.py",
        "llama_cpp_python": llama_cpp.__version__,
        "settings": {"n_threads": 1, "n_threads_batch": 1, "kv_cache": "f16", "flash_attn": False,
                     "use_extra_bufts": False, "prompt_n_ctx": PROMPT_CONTEXT},
        "model": name,
        "model_sha256": sha256_of(path),
        "n_ctx_train": n_ctx_train,
        "add_bos": bool(add_bos),
        "bos": bos,
        "top_k": TOP_K,
        "greedy_tokens": GREEDY_TOKENS,
        "cases": cases,
        "llama_cpp_self_agreement": agreement,
        "perplexity": {"text": "ppl_text.txt", "text_sha256": hashlib.sha256(open(PPL_TEXT, "rb").read()).hexdigest(),
                       "tokens": ppl_tokens, "runs": runs},
    }
    out_path = os.path.join(OUT_DIR, name[:-len(".gguf")] + ".json")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_path}: {sum(len(c['tokens']) for c in cases)} prompt tokens, "
          f"{len(ppl_tokens)} perplexity tokens, PPL " +
          ", ".join(f"{r['perplexity']:.4f} (ctx {r['ctx']})" for r in runs), file=sys.stderr)


def default_models():
    found = [p for p in (DEFAULT_MODEL, Q8_0_MODEL) if os.path.exists(p)]
    found += sorted(p for p in glob.glob(os.path.join(MODELS, "*.gguf")) if "gemma" in os.path.basename(p).lower())
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="GGUF files (default: the models found in ~/.cache/keel/models)")
    args = ap.parse_args()
    models = args.models or default_models()
    if not models:
        sys.exit(f"no model given and none found in {MODELS} (run scripts/fetch-default-model)")
    os.makedirs(OUT_DIR, exist_ok=True)
    for path in models:
        record_model(path)


if __name__ == "__main__":
    main()
