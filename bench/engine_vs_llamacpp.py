"""Driver for bench/engine_vs_llamacpp.

    engine_vs_llamacpp.py --keel KEEL [--repetitions R] [-p 512] [-n 128] [--threads 1,2] MODEL...

For each model, thread count and repetition, runs `keel bench --json` and then llama.cpp
(this script again, as a child process with --llama-child) on the same token ids, and
prints per row the medians over the repetitions: prompt and generation tokens/s of each,
the ratio Keel / llama.cpp, and each process's peak RSS. llama.cpp runs inside a Python
interpreter: its RSS is reported net of that interpreter's own peak with llama_cpp and
numpy imported and no model loaded (measured once per run)."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def prompt_ids(n, vocab):
    # The ids `keel bench` uses.
    return [(17 + 7919 * i) % vocab for i in range(n)]


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def llama_child(model, threads, p, n, extra_buffers):
    """Runs in its own process: llama.cpp's prompt and generation speed, as keel bench."""
    import numpy as np
    import llama_cpp
    import llama_cpp.llama_cpp as low_level
    from llama_cpp import Llama

    if not extra_buffers:
        # Without llama.cpp's extra weight buffers (AMX, repacked weights): on a CPU where
        # they crash (its AMX product did, SIGSEGV in ggml_backend_amx_mul_mat, on an Intel
        # machine), see main().
        default_params = low_level.llama_model_default_params

        def params_without_extra_buffers():
            params = default_params()
            params.use_extra_bufts = False
            return params

        low_level.llama_model_default_params = params_without_extra_buffers

    if model is None:  # the interpreter's own footprint
        print(json.dumps({"peak_rss_mib": peak_rss_mib()}))
        return
    llm = Llama(model_path=model, n_ctx=p + n, n_batch=p, n_ubatch=p, n_threads=threads,
                n_threads_batch=threads, logits_all=False, verbose=False)
    vocab = llm.n_vocab()
    ids = prompt_ids(p, vocab)
    llm.eval(ids[:1])  # warm-up, as keel bench
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    for _ in range(n):
        last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        nxt = int(np.argmax(np.ctypeslib.as_array(last, shape=(vocab,))))
        llm.eval([nxt])
    t2 = time.perf_counter()
    print(json.dumps({"prompt_tokens_per_s": p / (t1 - t0), "generated_tokens_per_s": n / (t2 - t1) if n else 0.0,
                      "peak_rss_mib": peak_rss_mib()}))


def run_json(argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def keel_run(keel, model, threads, p, n):
    j = run_json([keel, "bench", "-m", model, "-p", str(p), "-n", str(n), "-t", str(threads), "--json"])
    return j["prompt_tokens_per_s"], j["generated_tokens_per_s"], j["peak_rss_mib"], j.get("type", "?")


# llama.cpp runs as it does by default, with its extra weight buffers (repacked weights,
# AMX where the CPU has it); if that crashes, every later run goes without them.
EXTRA_BUFFERS = {"on": True, "why_off": ""}


def llama_run(model, threads, p, n):
    argv = [sys.executable, __file__, "--llama-child", model, "--threads", str(threads), "-p", str(p), "-n", str(n)]
    if EXTRA_BUFFERS["on"]:
        child = subprocess.run(argv, capture_output=True, text=True)
        if child.returncode == 0:
            j = json.loads(child.stdout)
            return j["prompt_tokens_per_s"], j["generated_tokens_per_s"], j["peak_rss_mib"]
        EXTRA_BUFFERS["on"] = False
        EXTRA_BUFFERS["why_off"] = f"exit status {child.returncode} with them on"
        print(f"  llama.cpp failed with its extra weight buffers ({EXTRA_BUFFERS['why_off']}); "
              "running without them from here on", file=sys.stderr)
    j = run_json(argv + ["--no-extra-buffers"])
    return j["prompt_tokens_per_s"], j["generated_tokens_per_s"], j["peak_rss_mib"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--keel")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--llama-child", nargs="?", const="", default=None)
    ap.add_argument("--no-extra-buffers", action="store_true")
    args = ap.parse_args()
    if args.llama_child is not None:
        llama_child(args.llama_child or None, int(args.threads.split(",")[0]), args.p, args.n,
                    not args.no_extra_buffers)
        return

    threads_list = [int(t) for t in args.threads.split(",")]
    base = run_json([sys.executable, __file__, "--llama-child"])["peak_rss_mib"]
    rows = {}  # (model, threads) -> lists
    for rep in range(args.repetitions):
        for model in args.models:
            for threads in threads_list:
                r = rows.setdefault((model, threads), {"k": [], "l": [], "type": "?"})
                # Alternate the order so that a noisy neighbour does not always hit the same engine.
                if rep % 2 == 0:
                    k = keel_run(args.keel, model, threads, args.p, args.n)
                    l = llama_run(model, threads, args.p, args.n)
                else:
                    l = llama_run(model, threads, args.p, args.n)
                    k = keel_run(args.keel, model, threads, args.p, args.n)
                r["k"].append(k[:3])
                r["l"].append(l)
                r["type"] = k[3]
                print(f"  rep {rep + 1} {os.path.basename(model)} t={threads}: keel pp {k[0]:.1f} tg {k[1]:.1f} | "
                      f"llama.cpp pp {l[0]:.1f} tg {l[1]:.1f}", file=sys.stderr)

    load = os.getloadavg()[0]
    print(f"engine vs llama.cpp: pp{args.p} = prompt of {args.p} tokens, tg{args.n} = {args.n} generated tokens; "
          f"tokens/s, medians of {args.repetitions}; ratio = keel / llama.cpp; load average {load:.1f}")
    print("llama.cpp's RSS is net of its Python interpreter "
          f"({base:.0f} MiB with llama_cpp and numpy imported); its extra weight buffers (repacking, AMX): "
          + ("on, as by default" if EXTRA_BUFFERS["on"] else f"off ({EXTRA_BUFFERS['why_off']})"))
    print(f"| model | threads | test | keel | llama.cpp | ratio | keel RSS MiB | llama.cpp RSS MiB |")
    print(f"| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for (model, threads), r in rows.items():
        med = lambda xs, i: statistics.median(x[i] for x in xs)
        k_rss, l_rss = med(r["k"], 2), med(r["l"], 2) - base
        for i, test in ((0, f"pp{args.p}"), (1, f"tg{args.n}")):
            k, l = med(r["k"], i), med(r["l"], i)
            print(f"| {r['type']} | {threads} | {test} | {k:.1f} | {l:.1f} | {k / l:.2f} | {k_rss:.0f} | {l_rss:.0f} |")


if __name__ == "__main__":
    main()
