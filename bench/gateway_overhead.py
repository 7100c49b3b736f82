"""What the gateway adds: requests straight to a `keel serve` (the upstream) against
the same requests through a second `keel serve` whose model is a remote version of the
first. Three measures, all per request:

- client-side: latency direct vs through the gateway, p50/p99 (includes the noise of
  the model's own time, which varies from request to request);
- server-side: the gateway's traced latency minus the upstream's traced latency for the
  same request id (the gateway passes its id upstream) - the time the gateway itself
  added: parsing, checks, the upstream connection, rewriting the answer, the trace,
  and, on a machine this small, the wake-ups of three processes sharing two cores;
- the gateway's own time: its traced latency minus its traced upstream time (from
  handing the request to the upstream connection to the end of the answer), which is
  what it reports as keel_gateway_overhead_seconds.

Requests: embeddings of a short text (fast, so the gateway's share is visible) and
streamed chat completions of 8 tokens. Standard library only.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keel(binary, home, *args):
    subprocess.run([binary, *args], check=True, env={**os.environ, "KEEL_HOME": home}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def start(binary, home, port, threads):
    log = open(home + ".log", "w")
    p = subprocess.Popen([binary, "serve", "--port", str(port), "--auth", "off", "--threads", str(threads),
                          "--parallel", "4", "--ctx", "1024"],
                         env={**os.environ, "KEEL_HOME": home, "KEEL_LOG_LEVEL": "warn"}, stdout=log, stderr=log)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"keel serve on {port} did not start; see {home}.log")


class Client:
    """One kept-alive connection, as an application's client holds it."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path, body):
        started = time.perf_counter()
        self.conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        elapsed = time.perf_counter() - started
        if r.status != 200:
            raise SystemExit(f"{path}: HTTP {r.status}: {data[:300]!r}")
        return elapsed, r.getheader("x-request-id")

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        return r.status, json.loads(r.read() or b"null")


def trace(client, request_id):
    for _ in range(100):
        status, t = client.get("/api/traces/" + request_id)
        if status == 200:
            return t
        time.sleep(0.05)
    raise SystemExit(f"no trace for {request_id}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keel", required=True)
    ap.add_argument("--model", required=True, help="the GGUF file the upstream serves")
    ap.add_argument("--requests", type=int, default=300, help="per kind and path")
    ap.add_argument("--upstream-threads", type=int, default=1,
                    help="the upstream's compute threads (1 leaves a core of a 2-core machine to the gateway and the "
                         "client, as when the upstream runs elsewhere)")
    args = ap.parse_args()
    work = tempfile.mkdtemp()
    up_home, gw_home = os.path.join(work, "up"), os.path.join(work, "gw")
    up_port, gw_port = free_port(), free_port()
    keel(args.keel, up_home, "models", "import", args.model, "--name", "smol")
    keel(args.keel, gw_home, "models", "add-remote", "smol", "--url", f"http://127.0.0.1:{up_port}/v1",
         "--upstream-model", "smol")
    servers = [start(args.keel, up_home, up_port, args.upstream_threads), start(args.keel, gw_home, gw_port, 1)]
    try:
        direct, via = Client(up_port), Client(gw_port)
        kinds = {
            "embeddings": ("/v1/embeddings", {"model": "smol", "input": "a short text to embed"}),
            "chat, 8 tokens streamed": ("/v1/chat/completions",
                                        {"model": "smol", "messages": [{"role": "user", "content": "Say hello."}],
                                         "max_tokens": 8, "temperature": 0, "stream": True}),
        }
        print(f"gateway overhead: {args.requests} requests per kind and path, one client, kept-alive connections, "
              f"upstream on {args.upstream_threads} thread(s)")
        print(f"{'request':26} {'direct p50/p99 ms':>19} {'via gateway p50/p99 ms':>24} "
              f"{'added (traces) p50/p99 ms':>27} {'gateway own p50/p99 ms':>24}")
        for name, (path, body) in kinds.items():
            for _ in range(10):  # warm both paths (model load, connections)
                direct.post(path, body)
                via.post(path, body)
            d, v, ids = [], [], []
            for _ in range(args.requests):  # interleaved, so both see the same machine
                d.append(direct.post(path, body)[0] * 1000)
                elapsed, request_id = via.post(path, body)
                v.append(elapsed * 1000)
                ids.append(request_id)
            added, own = [], []
            for i in ids:
                gateway, upstream = trace(via, i), trace(direct, i)
                added.append(gateway["latency_ms"] - upstream["latency_ms"])
                own.append(gateway["latency_ms"] - gateway["upstream_ms"])
            print(f"{name:26} {percentile(d, 50):8.2f} / {percentile(d, 99):7.2f} "
                  f"{percentile(v, 50):12.2f} / {percentile(v, 99):8.2f} "
                  f"{percentile(added, 50):14.3f} / {percentile(added, 99):8.3f} "
                  f"{percentile(own, 50):13.3f} / {percentile(own, 99):8.3f}   "
                  f"(mean added {statistics.mean(added):.3f}, own {statistics.mean(own):.3f})")
    finally:
        for s in servers:
            s.terminate()
            s.wait()


if __name__ == "__main__":
    sys.exit(main())
