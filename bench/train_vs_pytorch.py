"""Driver for bench/train_vs_pytorch.

    train_vs_pytorch.py --keel KEEL [--threads 2] [--batch 2] [--max-len 256] [--steps 4]
                        [--repetitions 1] [--work DIR] MODEL.gguf

LoRA fine-tuning speed and memory on CPU: `keel train sft` (rank 8, alpha 16, dropout
0.05 on q, k, v, o, gate, up, down; AdamW, clipping at 1.0, cosine schedule) on a
generated prompt/completion dataset whose every example is longer than --max-len, so
each is cut to exactly --max-len tokens, against the same training in PyTorch + PEFT:
transformers' LlamaForCausalLM from the same GGUF dequantized to F32 (the engine keeps
it quantized), PEFT's LoRA with the same settings, torch.optim.AdamW, clip_grad_norm_,
get_cosine_schedule_with_warmup, the same batch of --batch sequences of --max-len tokens
(the same texts, through the model's own tokenizer), the same number of steps and
threads (torch.set_num_threads, OMP_NUM_THREADS). Each side runs in its own process.
PyTorch's OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE unless set): on a
machine shared with other work, spinning threads that lose their core made its steps
about 2.5x slower (measured at 2 threads, load average 5); set ACTIVE on a quiet one.
Keel's products run on OpenBLAS's kernels for the CPU, unless OPENBLAS_CORETYPE pins
others (some hosts pin Haswell's AVX2 kernels on AVX-512 machines); the driver says which.
tokens/s counts every input token of a step over that step's time (forward, backward,
clipping, AdamW; Keel's per-step tokens_per_second metric, read from the run's store):
the median over the steps after the first (the first carries one-time warm-up, which is
large in PyTorch), and also the whole training's tokens over its time, first step
included, loading excluded. Peak RSS is each process's maximum (wait4), the model load
included; the PyTorch line also says its RSS once loaded. The two sides see the
examples in different orders (Keel shuffles), so their losses are printed but not
compared. Prints a table and the ratios (Keel / PyTorch)."""
import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

def openblas_core(keel):
    """The kernels OpenBLAS runs Keel's products with ("Haswell", "SkylakeX", ...): it says so
    when it loads, with OPENBLAS_VERBOSE=2."""
    p = subprocess.run([keel, "version"], capture_output=True, text=True, env={**os.environ, "OPENBLAS_VERBOSE": "2"})
    for line in p.stderr.splitlines():
        if line.startswith("Core: "):
            return line[len("Core: "):].strip()
    return "(unknown)"


MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA, DROPOUT, LR, MAX_GRAD_NORM = 8, 16.0, 0.05, 2e-4, 1.0
WORDS = ("river valley mill farmer wheat bank water spring flood village home child summer visitor inn stone "
         "bridge baker bread honey cake apple morning evening market road hill forest lake boat net sun rain "
         "wind cloud garden flower tree bird song teacher school letter window kitchen doctor engine train "
         "station ticket city street museum painting library story history music dance").split()


def make_dataset(path, examples, words):
    rng = random.Random(7)
    with open(path, "w") as f:
        for i in range(examples):
            text = " ".join(rng.choice(WORDS) for _ in range(words))
            f.write(json.dumps({"prompt": f"Tell story {i}.", "completion": text.capitalize() + "."}) + "\n")


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def torch_child(args):
    """Runs in its own process: the PyTorch + PEFT training, as JSON on stdout."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder, name = os.path.split(args.model)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=DROPOUT, bias="none",
                                             target_modules=MODULES))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]

    # The dataset's first batch * steps records as Keel encodes them: BOS, prompt,
    # completion, EOS, cut to max-len; the prompt is not a target.
    sequences = []
    with open(args.data) as f:
        for line in f:
            r = json.loads(line)
            prompt = tokenizer(r["prompt"], add_special_tokens=True).input_ids
            completion = tokenizer(r["completion"], add_special_tokens=False).input_ids
            ids = (prompt + completion + [tokenizer.eos_token_id])[:args.max_len]
            labels = [-100] * len(prompt) + ids[len(prompt):]
            assert len(ids) == args.max_len, "an example is shorter than --max-len"
            sequences.append((ids, labels[:args.max_len]))
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, 0, args.steps)
    loaded_rss = rss_mib()
    losses, step_rates, tokens = [], [], 0
    start = time.perf_counter()
    for step in range(args.steps):
        step_start = time.perf_counter()
        chunk = [sequences[(step * args.batch + i) % len(sequences)] for i in range(args.batch)]
        ids = torch.tensor([c[0] for c in chunk])
        labels = torch.tensor([c[1] for c in chunk])
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        tokens += ids.numel()
        step_rates.append(ids.numel() / (time.perf_counter() - step_start))
        print(f"  pytorch step {step + 1}/{args.steps}: loss {losses[-1]:.4f}, {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    seconds = time.perf_counter() - start
    print(json.dumps({"tokens": tokens, "seconds": seconds, "step_tokens_per_s": step_rates, "first_loss": losses[0], "last_loss": losses[-1],
                      "loaded_rss_mib": loaded_rss,
                      "lora_parameters": sum(p.numel() for p in trainable),
                      "versions": f"torch {torch.__version__.split('+')[0]}, peft "
                                  f"{__import__('peft').__version__}, transformers "
                                  f"{__import__('transformers').__version__}"}))


def run_measured(argv, env=None):
    """Runs argv to completion; returns (stdout, peak RSS MiB of that process)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode})")
    return out, usage.ru_maxrss / 1024.0


def keel_run(args, home):
    argv = [args.keel, "--home", home, "--json", "train", "sft", "-m", args.model, "-d", args.data,
            "-o", os.path.join(home, "adapter.gguf"), "--rank", str(RANK), "--alpha", str(ALPHA),
            "--dropout", str(DROPOUT), "--modules", "all", "--lr", str(LR), "--schedule", "cosine",
            "--batch", str(args.batch), "--max-len", str(args.max_len), "--max-steps", str(args.steps),
            "--max-grad-norm", str(MAX_GRAD_NORM), "-t", str(args.threads),
            "--checkpoint-every", str(10 * args.steps)]
    out, peak = run_measured(argv)
    j = json.loads(out)
    assert j["tokens"] == args.steps * args.batch * args.max_len, j["tokens"]
    with sqlite3.connect(os.path.join(home, "keel.db")) as db:
        rates = [v for (v,) in db.execute("SELECT value FROM run_metrics WHERE run_id = ? AND key = "
                                          "'tokens_per_second' ORDER BY step", (j["run_id"],))]
    assert len(rates) == args.steps, rates
    return {"steady_tokens_per_s": statistics.median(rates[1:] or rates), "tokens_per_s": j["tokens"] / j["seconds"],
            "peak_rss_mib": peak, "first_loss": j["first_loss"], "last_loss": j["last_loss"],
            "lora_parameters": j["lora_parameters"]}


def torch_run(args):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = [sys.executable, __file__, "--torch-child", "--threads", str(args.threads), "--batch", str(args.batch),
            "--max-len", str(args.max_len), "--steps", str(args.steps), "--data", args.data, args.model]
    out, peak = run_measured(argv, env)
    j = json.loads(out.strip().splitlines()[-1])
    assert j["tokens"] == args.steps * args.batch * args.max_len, j["tokens"]
    rates = j["step_tokens_per_s"]
    j.update(steady_tokens_per_s=statistics.median(rates[1:] or rates), tokens_per_s=j["tokens"] / j["seconds"],
             peak_rss_mib=peak)
    return j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--keel")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repetitions", type=int, default=1)
    ap.add_argument("--work")
    ap.add_argument("--data")
    ap.add_argument("--torch-child", action="store_true")
    args = ap.parse_args()
    if args.torch_child:
        torch_child(args)
        return

    work = args.work or tempfile.mkdtemp(prefix="train-vs-pytorch-")
    os.makedirs(work, exist_ok=True)
    args.data = os.path.join(work, "data.jsonl")
    # Enough examples for every step's batch, each at least a token a word: longer than
    # max-len tokens (both sides check that every sequence has exactly max-len).
    make_dataset(args.data, args.batch * args.steps, args.max_len + 16)
    keel_rows, torch_rows = [], []
    for rep in range(args.repetitions):
        order = ("keel", "torch") if rep % 2 == 0 else ("torch", "keel")
        for side in order:
            if side == "keel":
                home = os.path.join(work, f"keel-home-{rep}")
                keel_rows.append(keel_run(args, home))
                r = keel_rows[-1]
            else:
                torch_rows.append(torch_run(args))
                r = torch_rows[-1]
            print(f"  rep {rep + 1} {side}: {r['steady_tokens_per_s']:.1f} tokens/s after the first step, "
                  f"{r['tokens_per_s']:.1f} over all, peak RSS {r['peak_rss_mib']:.0f} MiB, "
                  f"loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}", file=sys.stderr)

    med = lambda rows, key: statistics.median(r[key] for r in rows)
    k, t = {}, {}
    for key in ("steady_tokens_per_s", "tokens_per_s", "peak_rss_mib"):
        k[key], t[key] = med(keel_rows, key), med(torch_rows, key)
    load = os.getloadavg()[0]
    print(f"LoRA training, {os.path.basename(args.model)}: rank {RANK} on q,k,v,o,gate,up,down "
          f"({keel_rows[0]['lora_parameters']} parameters; PEFT {torch_rows[0]['lora_parameters']}), "
          f"batch {args.batch} x {args.max_len} tokens, {args.steps} steps, {args.threads} threads, "
          f"medians of {args.repetitions}; load average {load:.1f}")
    print(f"Keel side: OpenBLAS's {openblas_core(args.keel)} kernels"
          + (f" (pinned by OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}; unset it to let OpenBLAS choose for this CPU)"
             if os.environ.get("OPENBLAS_CORETYPE") else " (its own choice for this CPU)"))
    print(f"PyTorch side: {torch_rows[0]['versions']}, the model dequantized to F32, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}; its RSS once loaded {med(torch_rows, 'loaded_rss_mib'):.0f} MiB")
    print(f"| trainer | weights | tokens/s (steps 2-{args.steps}) | tokens/s (all steps) | peak RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: |")
    print(f"| keel train sft | Q4_1, as the file | {k['steady_tokens_per_s']:.1f} | {k['tokens_per_s']:.1f} | "
          f"{k['peak_rss_mib']:.0f} |")
    print(f"| PyTorch + PEFT | F32, dequantized | {t['steady_tokens_per_s']:.1f} | {t['tokens_per_s']:.1f} | "
          f"{t['peak_rss_mib']:.0f} |")
    print(f"ratio keel / pytorch: tokens/s {k['steady_tokens_per_s'] / t['steady_tokens_per_s']:.2f} "
          f"(all steps {k['tokens_per_s'] / t['tokens_per_s']:.2f}), peak RSS {k['peak_rss_mib'] / t['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
