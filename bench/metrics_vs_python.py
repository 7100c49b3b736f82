"""Driver for bench/metrics_vs_python (see there). Usage: metrics_vs_python.py KEEL CORPORA_DIR"""
import json
import os
import subprocess
import sys
import tempfile
import time

import sacrebleu
from rouge_score import rouge_scorer

PAIRS = int(os.environ.get("PAIRS", "100000"))


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read().split("\n")[:-1]


def main():
    keel, corpora = sys.argv[1], sys.argv[2]
    hyp0 = read_lines(os.path.join(corpora, "en.hyp"))
    ref0 = read_lines(os.path.join(corpora, "en.ref0"))
    reps = PAIRS // len(hyp0) + 1
    hyps = (hyp0 * reps)[:PAIRS]
    refs = (ref0 * reps)[:PAIRS]
    tmp = tempfile.mkdtemp()
    hyp_path, ref_path = os.path.join(tmp, "hyp.txt"), os.path.join(tmp, "ref.txt")
    with open(hyp_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(hyps) + "\n")
    with open(ref_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(refs) + "\n")

    def keel_score(metric, *extra, threads=1):
        args = [keel, "eval", "score", "--metric", metric, "--pred", hyp_path, "--ref", ref_path,
                "--threads", str(threads), "--json", *extra]
        t0 = time.perf_counter()
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return time.perf_counter() - t0, json.loads(out)

    rows = []
    t0 = time.perf_counter()
    bleu = sacrebleu.corpus_bleu(hyps, [refs])
    rows.append(("corpus BLEU", bleu.score, time.perf_counter() - t0, "bleu", (), lambda j: j["score"]))
    t0 = time.perf_counter()
    chrf = sacrebleu.corpus_chrf(hyps, [refs])
    rows.append(("corpus chrF", chrf.score, time.perf_counter() - t0, "chrf", (), lambda j: j["score"]))
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    t0 = time.perf_counter()
    total = 0.0
    for h, r in zip(hyps, refs):
        total += scorer.score(r, h)["rougeL"].fmeasure
    rows.append(("ROUGE-L F (mean)", total / len(hyps), time.perf_counter() - t0, "rouge", ("--rouge-types", "rougeL"),
                 lambda j: j["rougeL"]["fmeasure"]))

    print(f"metrics over {len(hyps):,} sentence pairs (Python timed around the metric call; Keel as a whole process)")
    print(f"{'metric':18} {'python score':>16} {'keel score':>16} {'python s':>9} {'keel 1t s':>9} {'keel 2t s':>9} {'speed-up 1t':>11} {'2t':>6}")
    for name, ref_score, py_time, metric, extra, pick in rows:
        k1, j1 = keel_score(metric, *extra, threads=1)
        k2, j2 = keel_score(metric, *extra, threads=2)
        ks = pick(j1)
        assert abs(pick(j2) - ks) <= 1e-12 * max(1.0, abs(ks)), "thread count changed the score"
        flag = "" if abs(ks - ref_score) <= 1e-9 * max(1.0, abs(ref_score)) else "  MISMATCH"
        print(f"{name:18} {ref_score:16.10f} {ks:16.10f} {py_time:9.3f} {k1:9.3f} {k2:9.3f} {py_time / k1:10.1f}x {py_time / k2:5.1f}x{flag}")


if __name__ == "__main__":
    main()
