"""Driver for bench/engine_vs_llamacpp. Usage: engine_vs_llamacpp.py KEEL MODEL"""
import json
import subprocess
import sys
import time

import numpy as np
import llama_cpp
from llama_cpp import Llama

GEN = 128
PARAGRAPH = ("Large language models are trained on large amounts of text and learn to predict the next token. "
             "Evaluating them needs careful metrics, clean data and reproducible pipelines. ")


def llama_cpp_run(model, prompt, threads):
    llm = Llama(model_path=model, n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads,
                logits_all=False, verbose=False)
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    t0 = time.perf_counter()
    llm.eval(tokens)
    t1 = time.perf_counter()
    generated = 0
    for _ in range(GEN):
        last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)  # the last evaluated token's logits
        nxt = int(np.argmax(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),))))
        if nxt == llm.token_eos():
            break
        llm.eval([nxt])
        generated += 1
    t2 = time.perf_counter()
    return len(tokens), len(tokens) / (t1 - t0), generated / (t2 - t1)


def keel_run(keel, model, prompt, threads):
    out = subprocess.run([keel, "generate", "-m", model, "-p", prompt, "-n", str(GEN), "-t", str(threads), "--json"],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["prompt_tokens"], j["timings"]["prompt_tokens_per_s"], j["timings"]["generated_tokens_per_s"]


def main():
    keel, model = sys.argv[1], sys.argv[2]
    prompt = PARAGRAPH * 16
    print(f"engine: {model.split('/')[-1]}, greedy, {GEN} generated tokens (tokens/s; ratio = keel / llama.cpp)")
    print(f"{'threads':>7} {'prompt tok':>10} {'keel pp':>9} {'llama.cpp pp':>12} {'ratio':>6} {'keel tg':>8} {'llama.cpp tg':>12} {'ratio':>6}")
    for threads in (1, 2):
        n, kpp, ktg = keel_run(keel, model, prompt, threads)
        _, lpp, ltg = llama_cpp_run(model, prompt, threads)
        print(f"{threads:>7} {n:>10} {kpp:>9.1f} {lpp:>12.1f} {kpp / lpp:>6.2f} {ktg:>8.1f} {ltg:>12.1f} {ktg / ltg:>6.2f}")


if __name__ == "__main__":
    main()
