"""Driver for bench/tracking_vs_mlflow (see there).
Usage: tracking_vs_mlflow.py KEEL_URL MLFLOW_URL [KEEL_LABEL]

Each phase is timed around the client calls only. Both servers get the same workload
in the same process, Keel first. The results are compared: the searches must find the
same runs in the same order, and every history must have all its points.
"""
import http.client
import json
import logging
import os
import urllib.parse
import sys
import time
import uuid

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.WARNING)

RUNS = int(os.environ.get("RUNS", "100"))
METRICS = int(os.environ.get("METRICS", "100000"))
BATCH = int(os.environ.get("BATCH", "1000"))
SEARCHES = int(os.environ.get("SEARCHES", "100"))
HISTORIES = int(os.environ.get("HISTORIES", "100"))
KEYS = ["loss", "acc", "lr", "grad_norm", "val_loss", "val_acc", "tokens_per_s", "mem_gb", "ppl", "bleu"]
GROUPS = 10


def workload(url):
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    eid = client.create_experiment(f"bench-{uuid.uuid4().hex[:10]}")
    times, out = {}, {}

    t0 = time.perf_counter()
    runs = [client.create_run(eid, run_name=f"run-{i:03d}", tags={"group": f"g{i % GROUPS}"}).info.run_id
            for i in range(RUNS)]
    times["create runs"] = time.perf_counter() - t0

    # METRICS points as METRICS/BATCH log_batch calls of BATCH points, spread over the runs
    # round-robin; each point is (key, step) so every history is complete and ordered.
    batches = METRICS // BATCH
    per_key_steps = {}
    payloads = []
    ts0 = 1_700_000_000_000
    for b in range(batches):
        rid_idx = b % RUNS
        ms = []
        for j in range(BATCH):
            key = KEYS[j % len(KEYS)]
            k = (rid_idx, key)
            step = per_key_steps.get(k, 0)
            per_key_steps[k] = step + 1
            # loss falls with the step and differs per run, so the search filter is selective
            value = (1.0 + rid_idx % 17) / (1.0 + step) if key == "loss" else float(step) + rid_idx / 1000.0
            ms.append(Metric(key, value, ts0 + step, step))
        payloads.append((runs[rid_idx], ms))
    t0 = time.perf_counter()
    for rid, ms in payloads:
        client.log_batch(rid, metrics=ms)
    times[f"log {METRICS:,} metrics"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    found = []
    for i in range(SEARCHES):
        flt = f"metrics.loss < {0.05 + (i % 10) * 0.02:.2f} and tags.group = 'g{i % GROUPS}'"
        res = client.search_runs([eid], filter_string=flt, order_by=["metrics.loss ASC", "attributes.run_name ASC"],
                                 max_results=1000)
        found.append([r.info.run_name for r in res])
    times[f"{SEARCHES} search_runs"] = time.perf_counter() - t0
    out["search"] = found

    t0 = time.perf_counter()
    lengths = []
    for i in range(HISTORIES):
        h = client.get_metric_history(runs[i % RUNS], KEYS[i % len(KEYS)])
        lengths.append(len(h))
    times[f"{HISTORIES} get_metric_history"] = time.perf_counter() - t0
    want = [per_key_steps.get((i % RUNS, KEYS[i % len(KEYS)]), 0) for i in range(HISTORIES)]
    out["history_ok"] = lengths == want
    out["points"] = sum(lengths)
    return times, out


def wire_workload(url):
    """The same requests, serialised before the clock starts and sent over one keep-alive
    connection: the servers' own time, without the Python client's (about 0.1 s of
    JSON encoding per 1,000-metric log_batch on this machine)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)

    def call(method, path, body=None):
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}: {data[:200]!r}")
        return json.loads(data) if data else {}

    api = "/api/2.0/mlflow"
    eid = call("POST", f"{api}/experiments/create", json.dumps({"name": f"wire-{uuid.uuid4().hex[:10]}"}))["experiment_id"]
    times = {}
    bodies = [json.dumps({"experiment_id": eid, "run_name": f"run-{i:03d}", "start_time": 1_700_000_000_000 + i,
                          "tags": [{"key": "group", "value": f"g{i % GROUPS}"}]}) for i in range(RUNS)]
    t0 = time.perf_counter()
    runs = [call("POST", f"{api}/runs/create", b)["run"]["info"]["run_id"] for b in bodies]
    times["create runs"] = time.perf_counter() - t0
    per_key_steps, payloads = {}, []
    for b in range(METRICS // BATCH):
        rid_idx = b % RUNS
        ms = []
        for j in range(BATCH):
            key = KEYS[j % len(KEYS)]
            step = per_key_steps.get((rid_idx, key), 0)
            per_key_steps[(rid_idx, key)] = step + 1
            value = (1.0 + rid_idx % 17) / (1.0 + step) if key == "loss" else float(step) + rid_idx / 1000.0
            ms.append({"key": key, "value": value, "timestamp": 1_700_000_000_000 + step, "step": step})
        payloads.append(json.dumps({"run_id": runs[rid_idx], "metrics": ms}))
    t0 = time.perf_counter()
    for body in payloads:
        call("POST", f"{api}/runs/log-batch", body)
    times[f"log {METRICS:,} metrics"] = time.perf_counter() - t0
    searches = [json.dumps({"experiment_ids": [eid], "max_results": 1000, "run_view_type": "ACTIVE_ONLY",
                            "filter": f"metrics.loss < {0.05 + (i % 10) * 0.02:.2f} and tags.group = 'g{i % GROUPS}'",
                            "order_by": ["metrics.loss ASC", "attributes.run_name ASC"]}) for i in range(SEARCHES)]
    t0 = time.perf_counter()
    found = [[r["info"]["run_name"] for r in call("POST", f"{api}/runs/search", body).get("runs", [])]
             for body in searches]
    times[f"{SEARCHES} search_runs"] = time.perf_counter() - t0
    paths = [f"{api}/metrics/get-history?run_id={runs[i % RUNS]}&metric_key={KEYS[i % len(KEYS)]}&max_results=25000"
             for i in range(HISTORIES)]
    t0 = time.perf_counter()
    lengths = [len(call("GET", p).get("metrics", [])) for p in paths]
    times[f"{HISTORIES} get_metric_history"] = time.perf_counter() - t0
    conn.close()
    want = [per_key_steps.get((i % RUNS, KEYS[i % len(KEYS)]), 0) for i in range(HISTORIES)]
    return times, {"search": found, "history_ok": lengths == want}


def print_table(title, kt, mt):
    print(title)
    print(f"{'phase':28} {'keel s':>9} {'mlflow s':>9} {'mlflow/keel':>12}")
    for phase in kt:
        print(f"{phase:28} {kt[phase]:9.3f} {mt[phase]:9.3f} {mt[phase] / kt[phase]:11.2f}x")
    ktot, mtot = sum(kt.values()), sum(mt.values())
    print(f"{'total':28} {ktot:9.3f} {mtot:9.3f} {mtot / ktot:11.2f}x")


def main():
    keel_url, mlflow_url = sys.argv[1], sys.argv[2]
    keel_label = sys.argv[3] if len(sys.argv) > 3 else keel_url
    kt, ko = workload(keel_url)
    mt, mo = workload(mlflow_url)
    kw, kwo = wire_workload(keel_url)
    mw, mwo = wire_workload(mlflow_url)
    print(f"MLflow client {mlflow.__version__} workload, one request at a time on loopback: "
          f"{RUNS} runs, {METRICS:,} metrics by log_batch of {BATCH:,}, {SEARCHES} filtered searches, "
          f"{HISTORIES} metric histories")
    print(f"  keel:   {keel_label}")
    print(f"  mlflow: mlflow server {mlflow.__version__} (SQLite, 4 uvicorn workers) at {mlflow_url}")
    print_table("through the stock MlflowClient (client time included):", kt, mt)
    print_table("server only (the same requests serialised in advance, raw HTTP keep-alive):", kw, mw)
    problems = []
    if kwo["search"] != mwo["search"] or not kwo["history_ok"] or not mwo["history_ok"]:
        problems.append("raw-HTTP phase: results differ")
    if ko["search"] != mo["search"]:
        diff = next(i for i, (a, b) in enumerate(zip(ko["search"], mo["search"])) if a != b)
        problems.append(f"search {diff} differs: keel {ko['search'][diff][:5]} vs mlflow {mo['search'][diff][:5]}")
    if not ko["history_ok"]:
        problems.append("keel's metric histories are incomplete")
    if not mo["history_ok"]:
        problems.append("mlflow's metric histories are incomplete")
    hits = sum(len(f) for f in mo["search"])
    print(f"check: searches returned {hits} runs in all, histories {mo['points']:,} points: "
          + ("same results from both" if not problems else "MISMATCH: " + "; ".join(problems)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
