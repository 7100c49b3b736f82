"""Driver for bench/filters_vs_datatrove (see there).

Usage: filters_vs_datatrove.py KEEL CORPUS WORK_DIR
       filters_vs_datatrove.py --run-datatrove PRESET CORPUS KEPT_IDS   (internal: one timed datatrove run)
"""
import json
import os
import subprocess
import sys
import time


def run_datatrove(preset, corpus, kept_path):
    from datatrove.data import Document
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter

    filters = [GopherQualityFilter(), GopherRepetitionFilter()] if preset == "gopher" else [C4QualityFilter()]
    with open(corpus, encoding="utf-8") as f, open(kept_path, "w") as out:
        for line in f:
            record = json.loads(line)
            doc = Document(text=record["text"], id=str(record["id"]))
            if all(flt.filter(doc) is True for flt in filters):
                out.write(doc.id + "\n")


def timed(args):
    t0 = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0, p.stdout


def main():
    if sys.argv[1] == "--run-datatrove":
        run_datatrove(*sys.argv[2:5])
        return
    keel, corpus, work = sys.argv[1:4]
    size_mb = os.path.getsize(corpus) / 1e6
    with open(corpus, encoding="utf-8") as f:
        docs = sum(1 for _ in f)
    print(f"corpus: {docs} documents, {size_mb:.1f} MB ({corpus})")
    for preset in ("gopher", "c4"):
        out = os.path.join(work, f"keel-{preset}.jsonl")
        keel_s, _ = timed([keel, "data", "filter", "--preset", preset, "--in", corpus, "--out", out, "--json"])
        with open(out, encoding="utf-8") as f:
            keel_kept = {str(json.loads(line)["id"]) for line in f}
        kept_path = os.path.join(work, f"datatrove-{preset}.ids")
        dt_s, _ = timed([sys.executable, os.path.abspath(__file__), "--run-datatrove", preset, corpus, kept_path])
        with open(kept_path) as f:
            dt_kept = {line.strip() for line in f}
        agree = docs - len(keel_kept ^ dt_kept)
        print(f"{preset:6s}: keel {keel_s:6.2f} s ({docs / keel_s:7.0f} docs/s, {size_mb / keel_s:5.2f} MB/s), "
              f"datatrove 0.10.1 {dt_s:7.2f} s ({docs / dt_s:6.0f} docs/s): {dt_s / keel_s:5.1f}x; "
              f"kept {len(keel_kept)} / {len(dt_kept)}, decisions agree on {agree} of {docs}")


if __name__ == "__main__":
    main()
