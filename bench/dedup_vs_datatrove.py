"""Driver for bench/dedup_vs_datatrove (see there).

Usage: dedup_vs_datatrove.py KEEL CORPUS [--datatrove-docs N] [--seeds N]
       dedup_vs_datatrove.py --run-datatrove SHARDS_DIR WORK_DIR WORKERS SEED   (internal: one timed datatrove run)

MinHash is a random draw: one seed's recall differs from another's by a few tenths of a
percent. --seeds N (3) runs both tools with seeds 1..N on the same documents and prints
each seed's precision and recall and their means; the timings are seed 1's.
"""
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

NGRAM, BUCKETS, ROWS = 5, 14, 8  # datatrove's MinhashConfig defaults, and keel's "datatrove" preset


def run_datatrove(shards, work, workers, seed):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(hash_config=HashConfig(precision=64), n_grams=NGRAM, num_buckets=BUCKETS, hashes_per_bucket=ROWS,
                           seed=seed)
    tasks = len(glob.glob(os.path.join(shards, "*.jsonl")))
    common = dict(logging_dir=os.path.join(work, "logs"), skip_completed=False)
    stages = [
        LocalPipelineExecutor(pipeline=[JsonlReader(shards), MinhashDedupSignature(output_folder=f"{work}/sigs", config=config)],
                              tasks=tasks, workers=workers, **{**common, "logging_dir": f"{work}/logs/1"}),
        LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=config)],
                              tasks=BUCKETS, workers=workers, **{**common, "logging_dir": f"{work}/logs/2"}),
        LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove", config=config)],
                              tasks=1, workers=1, **{**common, "logging_dir": f"{work}/logs/3"}),
        LocalPipelineExecutor(pipeline=[JsonlReader(shards), MinhashDedupFilter(input_folder=f"{work}/remove"),
                                        JsonlWriter(f"{work}/out")],
                              tasks=tasks, workers=workers, **{**common, "logging_dir": f"{work}/logs/4"}),
    ]
    for stage in stages:
        stage.run()


def max_rss_mib(time_stderr):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_stderr)
    return int(m.group(1)) / 1024 if m else float("nan")


def timed(args):
    """Runs args under /usr/bin/time -v: (seconds, stdout, peak RSS MiB of the largest process)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stderr[-3000:]}")
    return seconds, p.stdout, max_rss_mib(p.stderr)


def score(truth, kept_ids):
    removed = [i for i in truth if i not in kept_ids]
    tp = sum(1 for i in removed if truth[i] >= 0)
    planted = sum(1 for v in truth.values() if v >= 0)
    precision = tp / len(removed) if removed else 0.0
    recall = tp / planted if planted else 0.0
    return precision, recall, len(removed)


def read_truth(path, limit):
    truth, lines = {}, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if limit and n >= limit:
                break
            r = json.loads(line)
            truth[r["id"]] = r["dup_of"]
            lines.append(line)
    return truth, lines


def keel_near(keel, path, threads, seed=1):
    out = path + f".keel-near-{threads}t.jsonl"
    seconds, stdout, rss = timed([keel, "data", "dedup", "--near", "--preset", "datatrove", "--threads", str(threads),
                                  "--seed", str(seed), "--json", "--in", path, "--out", out])
    summary = json.loads(stdout)
    with open(out, encoding="utf-8") as f:
        kept = {json.loads(line)["id"] for line in f}
    os.remove(out)
    return seconds, rss, kept, summary


def main():
    if sys.argv[1] == "--run-datatrove":
        run_datatrove(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    keel, corpus = sys.argv[1], sys.argv[2]
    dt_docs = int(sys.argv[sys.argv.index("--datatrove-docs") + 1]) if "--datatrove-docs" in sys.argv else 0
    seeds = int(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else 3
    cores = os.cpu_count() or 1
    truth_all, _ = read_truth(corpus, 0)
    size_mb = os.path.getsize(corpus) / 1e6
    print(f"corpus: {len(truth_all):,} web-like documents, {size_mb:.0f} MB JSONL, "
          f"{sum(1 for v in truth_all.values() if v >= 0):,} planted duplicates (bench/make_dedup_corpus.py); {cores} cores")
    print(f"MinHash settings for both: word {NGRAM}-grams, {BUCKETS} bands x {ROWS} rows = {BUCKETS * ROWS} permutations\n")

    rows = []
    for threads in (1, cores):
        sec, rss, kept, _ = keel_near(keel, corpus, threads)
        p, r, removed = score(truth_all, kept)
        rows.append((f"keel near-dedup, {threads} thread{'s' if threads > 1 else ''}", len(truth_all), threads, sec, p, r, rss))

    # datatrove on the same documents (or a prefix of them when asked, to bound its time).
    truth, lines = read_truth(corpus, dt_docs)
    work = tempfile.mkdtemp(prefix="keel-dt-")
    shards = os.path.join(work, "shards")
    os.makedirs(shards)
    per = (len(lines) + cores - 1) // cores
    for k in range(cores):
        with open(os.path.join(shards, f"part-{k:03d}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(lines[k * per:(k + 1) * per])
    same_docs = corpus
    if len(lines) < len(truth_all):
        same_docs = os.path.join(work, "subset.jsonl")
        with open(same_docs, "w", encoding="utf-8") as f:
            f.writelines(lines)
        sec, rss, kept, _ = keel_near(keel, same_docs, cores)
        p, r, _ = score(truth, kept)
        rows.append((f"keel near-dedup, {cores} threads (subset)", len(truth), cores, sec, p, r, rss))
    keel_seeds = [rows[-1][4:6]]  # seed 1: the run just above
    dt_seeds = []
    for seed in range(1, seeds + 1):
        if seed > 1:
            _, _, kept, _ = keel_near(keel, same_docs, cores, seed)
            keel_seeds.append(score(truth, kept)[:2])
        dt_work = os.path.join(work, f"dt-{seed}")
        sec, _, rss = timed([sys.executable, os.path.abspath(__file__), "--run-datatrove", shards, dt_work, str(cores),
                             str(seed)])
        kept = set()
        for path in glob.glob(os.path.join(dt_work, "out", "*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                kept.update(json.loads(line)["id"] for line in f)
        p, r, _ = score(truth, kept)
        dt_seeds.append((p, r))
        if seed == 1:
            rows.append((f"datatrove 0.10.1 MinHash, {cores} workers", len(truth), cores, sec, p, r, rss))

    print(f"{'near-duplicate removal':42} {'docs':>9} {'seconds':>8} {'docs/s':>9} {'docs/s/core':>11} {'precision':>9} {'recall':>7} {'peak RSS':>9}")
    for name, docs, used, sec, p, r, rss in rows:
        print(f"{name:42} {docs:>9,} {sec:>8.2f} {docs / sec:>9,.0f} {docs / sec / used:>11,.0f} {p:>9.4f} {r:>7.4f} {rss:>7.0f} MiB")
    keel_same = [row for row in rows if row[2] == cores and row[1] == rows[-1][1] and row[0].startswith("keel")][-1]
    dt = rows[-1]
    print(f"\nkeel vs datatrove on the same {dt[1]:,} documents and {cores} cores: "
          f"{(keel_same[1] / keel_same[3]) / (dt[1] / dt[3]):.1f}x the documents per second, "
          f"{dt[6] / keel_same[6]:.1f}x less peak memory (largest process)")
    if dt_docs:
        print(f"(datatrove ran on the first {dt[1]:,} documents only, to bound its time on this machine)")

    print(f"\nprecision / recall on the same {dt[1]:,} documents, seeds 1..{seeds}:")
    for name, scores in (("keel", keel_seeds), ("datatrove", dt_seeds)):
        each = "  ".join(f"{p:.4f} / {r:.4f}" for p, r in scores)
        mean_p = sum(p for p, _ in scores) / len(scores)
        mean_r = sum(r for _, r in scores) / len(scores)
        print(f"  {name:10} {each}   mean {mean_p:.4f} / {mean_r:.4f}")

    # Exact dedup and PII throughput (single-threaded streaming passes).
    out = corpus + ".keel-exact.jsonl"
    sec, stdout, rss = timed([keel, "data", "dedup", "--json", "--in", corpus, "--out", out])
    s = json.loads(stdout)
    os.remove(out)
    print(f"\nkeel exact dedup: {len(truth_all):,} docs in {sec:.2f} s = {size_mb / sec:.0f} MB/s of JSONL, "
          f"removed {s['removed']:,}, peak RSS {rss:.0f} MiB")
    out = corpus + ".keel-pii.jsonl"
    sec, stdout, rss = timed([keel, "data", "pii", "--json", "--in", corpus, "--out", out])
    s = json.loads(stdout)
    os.remove(out)
    found = ", ".join(f"{k} {v:,}" for k, v in s["counts"].items() if v)
    print(f"keel pii redact:  {len(truth_all):,} docs in {sec:.2f} s = {size_mb / sec:.0f} MB/s of JSONL "
          f"({s['text_bytes'] / 1e6 / sec:.0f} MB/s of text), {s['findings']:,} findings ({found}), peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
