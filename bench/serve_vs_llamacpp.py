"""Driver for bench/serve_vs_llamacpp: Keel's OpenAI-compatible server against llama.cpp's.

    serve_vs_llamacpp.py --keel KEEL --model GGUF (--llama-server BIN | --llama-cpp-python PY)
                         [--threads 2] [--parallel 16] [--ctx 1024] [--concurrency 1,4,16]
                         [--requests 16] [--per-client 4] [--max-tokens 64] [--repetitions 1]

Each server runs alone (one after the other, never both at once) with the same thread
count and the same number of parallel slots (one rule for every level: --parallel, 16 by
default, the most clients of any level). Level by level, each server is started, warmed
up with one request, measured and stopped, the two in turns (which goes first
alternates), so that both meet the shared machine in about the same state. At
concurrency C, C client threads start together and each sends max(per_client,
requests / C) streaming chat completions (temperature 0, max_tokens,
stream_options.include_usage) one after the other on a kept-alive connection (a
connection the server closed after its previous answer is opened again, and counted).
Every request of a level has its own prompt, so that no prompt cache answers one.

Per level it reports the generated tokens (usage.completion_tokens of each stream) per
second of wall time from the first request sent to the last stream closed, and the time
to first token (request sent to the first chunk with non-empty content), p50 and p99 by
nearest rank over every request of every repetition. Token rates are medians over the
repetitions. The CPU time that other processes took during each measurement is
reported beside it (in cores): llama.cpp's throughput falls far more than Keel's when
another process takes a core. Each stream's shape is checked (status, content type,
chunk objects, one id, one assistant role, one finish_reason, the usage chunk with empty
choices, the closing [DONE]); any deviation is an error, printed with the request that
caused it, and makes the exit status 1. The standard library only: the driver runs
under any python3."""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

MODEL_NAME = "smollm2-135m-instruct"

TOPICS = ["a lighthouse keeper", "volcanoes", "honeybees", "the moon landing", "a lost umbrella",
          "the history of bread", "octopuses", "a robot learning to paint", "winter in a mountain village",
          "the first bicycle", "a dragon who is afraid of heights", "coral reefs", "a train journey at night",
          "how rainbows form", "a city under the sea", "the invention of paper", "a clockmaker's apprentice",
          "desert foxes", "the printing press", "a garden on a rooftop", "glaciers", "a cat who runs a bakery",
          "the Silk Road", "thunderstorms", "a library that never closes", "penguins", "the first telescope",
          "a pirate who hates the sea", "rivers and deltas", "a snowman in spring", "the human heart",
          "a market at dawn"]
TASKS = ["Write a short story about {}.", "Explain {} to a ten-year-old, in detail.",
         "List ten interesting facts about {}, one per line.", "Write a long poem about {}."]


def prompt(k):
    """The k-th prompt of 128 distinct ones (k < 0: the warm-up's)."""
    if k < 0:
        return "Say hello."
    return TASKS[(k // len(TOPICS)) % len(TASKS)].format(TOPICS[k % len(TOPICS)])


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs, p):
    """Nearest rank."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))]


class Server:
    """One server process: started, probed until it answers, stopped (SIGTERM, then SIGKILL)."""

    streams_usage = True  # honours stream_options.include_usage
    has_slots = True  # decodes --parallel requests at once

    def __init__(self, label, workdir):
        self.label = label
        self.workdir = workdir
        self.proc = None
        self.base = None  # "http://127.0.0.1:PORT"
        self.log_path = os.path.join(workdir, label.replace(" ", "_").replace("/", "_") + ".log")

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, path, timeout=180):
        u = urllib.parse.urlsplit(self.base)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} while starting:\n"
                                   f"{self.log_tail()}")
            try:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not answer GET {path} within {timeout} s:\n{self.log_tail()}")

    def peak_rss_mib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log(f"{self.label} did not stop within 15 s of SIGTERM; killing it")
            self.proc.kill()
            self.proc.wait()


class KeelServer(Server):
    def __init__(self, keel, model, args, workdir):
        super().__init__("keel", workdir)
        self.keel, self.model, self.args = keel, model, args
        self.home = os.path.join(workdir, "keel-home")

    def start(self):
        env = dict(os.environ, KEEL_HOME=self.home)
        env.setdefault("KEEL_LOG_LEVEL", "warn")
        if not os.path.isdir(self.home):
            subprocess.run([self.keel, "models", "import", self.model, "--name", MODEL_NAME], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        argv = [self.keel, "serve", "--port", "0", "--json", "--auth", "off", "--threads", str(self.args.threads),
                "--parallel", str(self.args.parallel), "--ctx", str(self.args.ctx)]
        self.argv = argv
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        # keel serve --json prints one JSON object (on one line or several) once it listens.
        announced = [None]

        def read_announcement():
            text = ""
            for line in self.proc.stdout:
                text += line
                try:
                    announced[0] = json.loads(text)
                    return
                except ValueError:
                    continue

        reader = threading.Thread(target=read_announcement, daemon=True)
        reader.start()
        reader.join(120)
        if not isinstance(announced[0], dict) or "url" not in announced[0]:
            self.stop()
            raise RuntimeError(f"keel serve printed no JSON object with a url:\n{self.log_tail()}")
        self.base = announced[0]["url"].rstrip("/")
        self.wait_ready("/v1/models")

    def version(self):
        out = subprocess.run([self.keel, "version"], capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


class LlamaServer(Server):
    def __init__(self, binary, model, args, workdir):
        super().__init__("llama-server", workdir)
        self.binary, self.model, self.args = binary, model, args

    def start(self):
        port = free_port()
        a = self.args
        # -c is the whole KV cache: ctx tokens for each of the parallel slots. --no-repack turns
        # llama.cpp's extra weight buffers (AMX, repacking) off, as bench/engine_vs_llamacpp
        # does: llama-server dies of SIGSEGV while loading the model with them on the
        # benchmark machine's CPU. --llama-server-arg=--repack turns them back on.
        argv = [self.binary, "-m", self.model, "--host", "127.0.0.1", "--port", str(port), "--alias", MODEL_NAME,
                "-t", str(a.threads), "-tb", str(a.threads), "-np", str(a.parallel), "-c", str(a.parallel * a.ctx),
                "--cont-batching", "--no-repack", "--no-webui"] + a.llama_server_arg
        self.argv = argv
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(argv, stdout=err, stderr=err)
        self.base = f"http://127.0.0.1:{port}"
        self.wait_ready("/health")

    def version(self):
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        text = (out.stdout + out.stderr).strip().splitlines()
        return "llama.cpp llama-server " + "; ".join(l.strip() for l in text if l.startswith("version"))


# llama-cpp-python's server, with llama.cpp's extra weight buffers (AMX, repacking) off:
# its AMX matrix product crashes on the benchmark machine's CPU (see engine_vs_llamacpp.py).
LLAMA_CPP_PYTHON_SERVER = """
import runpy, sys
import llama_cpp.llama_cpp as low_level
default_params = low_level.llama_model_default_params
def params_without_extra_buffers():
    params = default_params()
    params.use_extra_bufts = False
    return params
low_level.llama_model_default_params = params_without_extra_buffers
sys.argv = ["llama_cpp.server"] + sys.argv[1:]
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


class LlamaCppPythonServer(Server):
    streams_usage = False  # its token counts are the content chunks
    has_slots = False
    def __init__(self, python, model, args, workdir):
        super().__init__("llama-cpp-python server", workdir)
        self.python, self.model, self.args = python, model, args

    def start(self):
        port = free_port()
        a = self.args
        argv = [self.python, "-c", LLAMA_CPP_PYTHON_SERVER, "--model", self.model, "--model_alias", MODEL_NAME,
                "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(a.ctx), "--n_threads", str(a.threads),
                "--n_threads_batch", str(a.threads), "--verbose", "False",
                # By default a new request cuts the stream being served short.
                "--interrupt_requests", "False"]
        self.argv = argv
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(argv, stdout=err, stderr=err)
        self.base = f"http://127.0.0.1:{port}"
        self.wait_ready("/v1/models")

    def version(self):
        out = subprocess.run([self.python, "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                             capture_output=True, text=True)
        return f"llama-cpp-python {out.stdout.strip()} server (one request at a time: it has no parallel slots)"


class StreamResult:
    def __init__(self):
        self.ok = False
        self.status = None
        self.ttft = None  # seconds
        self.tokens = 0
        self.content_chunks = 0
        self.max_gap = 0.0  # longest pause between two chunks, seconds
        self.reconnects = 0  # kept-alive connections found closed by the server
        self.seconds = None
        self.problems = []  # shape deviations and errors, as text
        self.text = ""


def stream_chat(conn_box, base, k, max_tokens, timeout, want_usage=True):
    """Sends chat completion k (prompt(k)) with stream=true and reads it to [DONE]."""
    res = StreamResult()
    u = urllib.parse.urlsplit(base)
    body = json.dumps({"model": MODEL_NAME, "messages": [{"role": "user", "content": prompt(k)}],
                       "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}})
    what = f"request {k} ({prompt(k)!r})"
    t0 = time.perf_counter()
    try:
        for attempt in range(2):
            reused = conn_box[0] is not None
            if not reused:
                conn_box[0] = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
            conn = conn_box[0]
            try:
                conn.request("POST", "/v1/chat/completions", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection that the server closed after the previous response:
                # send again on a new one, as HTTP clients do.
                conn.close()
                conn_box[0] = None
                if not reused:
                    raise
                res.reconnects += 1
                t0 = time.perf_counter()
        res.status = r.status
        if r.status != 200:
            res.problems.append(f"{what}: HTTP {r.status}: {r.read()[:300]!r}")
            conn.close()
            conn_box[0] = None
            return res
        ctype = r.getheader("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            res.problems.append(f"{what}: Content-Type {ctype!r}, not text/event-stream")
        done = False
        finishes = 0
        roles = 0
        ids = set()
        usage = None
        last = t0
        while True:
            line = r.readline()
            if not line:
                break
            now = time.perf_counter()
            line = line.rstrip(b"\r\n")
            if not line or line.startswith(b":"):
                continue
            if not line.startswith(b"data: "):
                res.problems.append(f"{what}: not an SSE data line: {line[:200]!r}")
                continue
            res.max_gap = max(res.max_gap, now - last)
            last = now
            data = line[6:]
            if data == b"[DONE]":
                done = True
                continue
            if done:
                res.problems.append(f"{what}: data after [DONE]: {data[:200]!r}")
            try:
                chunk = json.loads(data)
            except ValueError:
                res.problems.append(f"{what}: chunk is not JSON: {data[:200]!r}")
                continue
            if "error" in chunk:
                res.problems.append(f"{what}: error chunk: {data[:300]!r}")
                continue
            if chunk.get("object") != "chat.completion.chunk":
                res.problems.append(f"{what}: chunk object {chunk.get('object')!r}")
            ids.add(chunk.get("id"))
            if not isinstance(chunk.get("choices"), list):
                res.problems.append(f"{what}: chunk without a choices list: {data[:200]!r}")
            if chunk.get("usage"):
                usage = chunk["usage"]
                if chunk.get("choices"):  # OpenAI: "the choices field will always be an empty array"
                    res.problems.append(f"{what}: the usage chunk has choices: {data[:200]!r}")
            for choice in chunk.get("choices") or []:
                if choice.get("index") != 0:
                    res.problems.append(f"{what}: choice index {choice.get('index')!r}")
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    res.problems.append(f"{what}: choice without a delta object: {data[:200]!r}")
                    continue
                if delta.get("role") == "assistant":
                    roles += 1
                content = delta.get("content")
                if content:
                    if res.ttft is None:
                        res.ttft = now - t0
                    res.content_chunks += 1
                    res.text += content
                if choice.get("finish_reason") is not None:
                    finishes += 1
        res.seconds = time.perf_counter() - t0
        if not done:
            res.problems.append(f"{what}: stream ended without data: [DONE]")
        if len(ids) != 1:
            res.problems.append(f"{what}: the chunks carry {len(ids)} different ids")
        if roles != 1:
            res.problems.append(f"{what}: {roles} chunks carry delta.role 'assistant' (want 1)")
        if finishes != 1:
            res.problems.append(f"{what}: {finishes} chunks carry a finish_reason (want 1)")
        if usage is None or not isinstance(usage.get("completion_tokens"), int):
            if want_usage:
                res.problems.append(f"{what}: no usage.completion_tokens despite stream_options.include_usage")
            res.tokens = res.content_chunks
        else:
            res.tokens = usage["completion_tokens"]
            if res.tokens > max_tokens:
                res.problems.append(f"{what}: usage.completion_tokens {res.tokens} > max_tokens {max_tokens}")
        if res.ttft is None:
            res.problems.append(f"{what}: no content at all")
        if r.getheader("Connection", "").lower() == "close" or r.will_close:
            conn.close()
            conn_box[0] = None
        res.ok = done and not res.problems
    except (OSError, http.client.HTTPException) as e:
        res.problems.append(f"{what}: {type(e).__name__}: {e} after {time.perf_counter() - t0:.1f} s")
        if conn_box[0] is not None:
            conn_box[0].close()
        conn_box[0] = None
    return res


def run_level(base, concurrency, per_client, max_tokens, timeout, first_prompt, want_usage):
    """C clients, each sending per_client requests in turn; returns (wall seconds, results)."""
    results = [[] for _ in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)

    def client(i):
        box = [None]
        barrier.wait()
        for j in range(per_client):
            results[i].append(stream_chat(box, base, first_prompt + i * per_client + j, max_tokens, timeout,
                                          want_usage))
        if box[0] is not None:
            box[0].close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return wall, [r for rs in results for r in rs]


def cpu_jiffies():
    """Busy CPU time of the whole machine, in clock ticks (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def process_jiffies(pid):
    """CPU time of process `pid` and all its threads, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])  # utime, stime


def bench_level(server, args, c, first_prompt):
    """Starts `server`, warms it up, runs concurrency level `c` on it and stops it."""
    load = os.getloadavg()[0]  # the 1-minute load average as the server starts
    server.start()
    try:
        warm = stream_chat([None], server.base, -1, args.max_tokens, args.timeout, server.streams_usage)
        if warm.problems:
            log(f"  {server.label} warm-up: " + "; ".join(warm.problems))
        per_client = max(args.per_client, -(-args.requests // c))
        tick = os.sysconf("SC_CLK_TCK")
        busy0, server0, client0 = cpu_jiffies(), process_jiffies(server.proc.pid), os.times()
        wall, results = run_level(server.base, c, per_client, args.max_tokens, args.timeout, first_prompt,
                                  server.streams_usage)
        busy1, server1, client1 = cpu_jiffies(), process_jiffies(server.proc.pid), os.times()
        client_ticks = (client1.user + client1.system - client0.user - client0.system) * tick
        # What the rest of the machine took meanwhile, in cores: the noise under this figure.
        other = max(0.0, (busy1 - busy0) - (server1 - server0) - client_ticks) / tick / wall
        tokens = sum(r.tokens for r in results if r.status == 200)
        stats = {"wall": wall, "tokens": tokens, "tok_s": tokens / wall, "requests": len(results),
                 "ttft": [r.ttft for r in results if r.ttft is not None],
                 "errors": sum(1 for r in results if not r.ok),
                 "problems": [p for r in results for p in r.problems],
                 "max_gap": max((r.max_gap for r in results), default=0.0),
                 "reconnects": sum(r.reconnects for r in results),
                 "texts": {r_i: r.text for r_i, r in enumerate(results)},
                 "load": load, "other_cores": other,
                 "server_cores": (server1 - server0) / tick / wall, "rss": server.peak_rss_mib()}
        log(f"  {server.label} C={c}: {len(results)} requests, {tokens} tokens in {wall:.1f} s = "
            f"{stats['tok_s']:.1f} tok/s, TTFT p50 {percentile(stats['ttft'], 50) * 1000:.0f} ms, "
            f"errors {stats['errors']}, longest pause between chunks {stats['max_gap'] * 1000:.0f} ms, "
            f"kept-alive connections found closed {stats['reconnects']}; server {stats['server_cores']:.2f} "
            f"cores, other processes {other:.2f} cores")
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.label} exited with {server.proc.returncode}:\n{server.log_tail()}")
    finally:
        server.stop()
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keel", required=True)
    ap.add_argument("--model", required=True)
    peer = ap.add_mutually_exclusive_group(required=True)
    peer.add_argument("--llama-server", help="llama.cpp's llama-server binary")
    peer.add_argument("--llama-cpp-python", help="python of an environment with llama-cpp-python[server]")
    ap.add_argument("--llama-server-arg", action="append", default=[],
                    help="an extra argument for llama-server (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=1024, help="context tokens per slot")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=16, help="at least this many requests per level")
    ap.add_argument("--per-client", type=int, default=4, help="at least this many requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repetitions", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120, help="seconds a request may stay silent")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    if max(levels) > args.parallel:
        log(f"note: concurrency {max(levels)} exceeds {args.parallel} parallel slots; requests will queue")

    work = tempfile.mkdtemp(prefix="keel-serve-bench-")
    keel = KeelServer(args.keel, args.model, args, work)
    if args.llama_server:
        peer_server = LlamaServer(args.llama_server, args.model, args, work)
    else:
        peer_server = LlamaCppPythonServer(args.llama_cpp_python, args.model, args, work)
    keel_version, peer_version = keel.version(), peer_server.version()
    log(f"peer: {peer_version}")
    runs = {"keel": [], "peer": []}  # per repetition: {concurrency: stats}
    try:
        for rep in range(args.repetitions):
            runs["keel"].append({})
            runs["peer"].append({})
            first_prompt = 0  # each level has prompts of its own
            for li, c in enumerate(levels):
                # Level by level, so that both servers meet the machine in about the same state;
                # the order alternates so that neither always goes first.
                order = [("keel", keel), ("peer", peer_server)]
                if (rep + li) % 2 == 1:
                    order.reverse()
                for name, server in order:
                    log(f"rep {rep + 1}, {c} clients: {server.label}")
                    runs[name][rep][c] = bench_level(server, args, c, first_prompt)
                first_prompt += c * max(args.per_client, -(-args.requests // c))
        log(f"keel: {' '.join(keel.argv)}")
        shown = ["<llama_cpp.server without extra buffers>" if a == LLAMA_CPP_PYTHON_SERVER else a
                 for a in peer_server.argv]
        log(f"peer: {' '.join(shown)}")
    except (RuntimeError, subprocess.CalledProcessError) as e:
        keel.stop()
        peer_server.stop()
        log(f"serve_vs_llamacpp: {e}")
        shutil.rmtree(keel.home, ignore_errors=True)
        log(f"server logs kept in {work}")
        sys.exit(1)

    loads = [r[c]["load"] for n in runs for r in runs[n] for c in levels]
    others = [r[c]["other_cores"] for n in runs for r in runs[n] for c in levels]
    peer_label = "llama.cpp" if args.llama_server else "llama-cpp-python"
    print(f"serving vs {peer_version}")
    print(f"keel: {keel_version}")
    slots = (f"both servers {args.threads} threads and {args.parallel} parallel slots of {args.ctx} tokens"
             if peer_server.has_slots else
             f"{args.threads} threads each, keel {args.parallel} parallel slots of {args.ctx} tokens, {peer_label} "
             f"one request at a time")
    print(f"streaming chat completions, max_tokens {args.max_tokens}, temperature 0; {slots} for every concurrency; "
          f"tok/s = generated tokens / wall time, medians of {args.repetitions}; TTFT p50/p99 over all requests; "
          f"ratio = keel / {peer_label}; load average {min(loads):.1f} to {max(loads):.1f}, other processes "
          f"took {min(others):.2f} to {max(others):.2f} of the {os.cpu_count()} cores")
    print(f"| concurrency | requests | keel tok/s | {peer_label} tok/s | ratio | keel TTFT p50 / p99 ms | "
          f"{peer_label} TTFT p50 / p99 ms | tokens per request keel / {peer_label} | errors keel / {peer_label} | "
          f"other processes, cores |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in levels:
        k = [r[c] for r in runs["keel"]]
        p = [r[c] for r in runs["peer"]]
        kt = statistics.median(x["tok_s"] for x in k)
        pt = statistics.median(x["tok_s"] for x in p)
        kttft = [t for x in k for t in x["ttft"]]
        pttft = [t for x in p for t in x["ttft"]]
        kreq = sum(x["requests"] for x in k)
        preq = sum(x["requests"] for x in p)
        print(f"| {c} | {k[0]['requests']} | {kt:.1f} | {pt:.1f} | {kt / pt if pt else float('nan'):.2f} | "
              f"{percentile(kttft, 50) * 1000:.0f} / {percentile(kttft, 99) * 1000:.0f} | "
              f"{percentile(pttft, 50) * 1000:.0f} / {percentile(pttft, 99) * 1000:.0f} | "
              f"{sum(x['tokens'] for x in k) / kreq:.1f} / {sum(x['tokens'] for x in p) / preq:.1f} | "
              f"{sum(x['errors'] for x in k)} / {sum(x['errors'] for x in p)} | "
              f"{max(x['other_cores'] for x in k + p):.2f} |")
    krss = statistics.median(max(r[c]["rss"] for c in levels) for r in runs["keel"])
    prss = statistics.median(max(r[c]["rss"] for c in levels) for r in runs["peer"])
    if not peer_server.streams_usage:
        print(f"{peer_label} streams no usage: its tokens are counted as its content chunks")
    print(f"peak RSS: keel {krss:.0f} MiB, {peer_label} {prss:.0f} MiB")
    gaps = {n: max(r[c]["max_gap"] for r in runs[n] for c in levels) for n in runs}
    print(f"longest pause between two chunks of a stream: keel {gaps['keel'] * 1000:.0f} ms, "
          f"{peer_label} {gaps['peer'] * 1000:.0f} ms")
    # Greedy decoding of the same prompts: the two servers should mostly write the same text.
    same = total = 0
    for c in levels:
        kt_, pt_ = runs["keel"][0][c]["texts"], runs["peer"][0][c]["texts"]
        for i in kt_:
            total += 1
            same += kt_[i] == pt_.get(i)
    print(f"identical completions (first repetition): {same} of {total}")
    failed = False
    for n, label in (("keel", "keel"), ("peer", peer_label)):
        problems = [p for r in runs[n] for c in levels for p in r[c]["problems"]]
        if problems:
            failed = True
            print(f"{label}: {len(problems)} problems, first ones:")
            for p in problems[:10]:
                print(f"  {p}")
    shutil.rmtree(keel.home, ignore_errors=True)  # a copy of the model
    if failed:
        log(f"server logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
