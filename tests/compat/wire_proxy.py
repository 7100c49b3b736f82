"""Logging reverse proxy used to capture the MLflow wire protocol.

    python3 tests/compat/wire_proxy.py LISTEN_PORT UPSTREAM_PORT LOG_FILE

It forwards every request to 127.0.0.1:UPSTREAM_PORT and appends to LOG_FILE the
method, path and query, the interesting request headers, the request body, the status
and the response body. Bodies over 2 KB are truncated. A GET /__mark__?TEXT writes a
section marker and is not forwarded; tests/compat/wire_capture.py uses it to name each
client call. Standard library only.
"""
import http.client
import http.server
import json
import socketserver
import sys
import threading
import urllib.parse

UP_HOST = "127.0.0.1"
UP_PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 5055
LOG = open(sys.argv[3] if len(sys.argv) > 3 else "wire.txt", "a", buffering=1)
LOCK = threading.Lock()
N = [0]
LIMIT = 2048


def show(body):
    if not body:
        return "<empty>"
    if len(body) > LIMIT:
        head = body[:LIMIT]
        suffix = f"... <truncated, {len(body)} bytes total>"
    else:
        head, suffix = body, ""
    try:
        return head.decode("utf-8") + suffix
    except UnicodeDecodeError:
        return repr(head[:200]) + f" <binary, {len(body)} bytes>"


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        if self.path.startswith("/__mark__"):
            mark(urllib.parse.unquote(self.path.split("?", 1)[1]))
            self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
            return
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "transfer-encoding", "connection", "content-length")}
        hdrs["Host"] = f"{UP_HOST}:{UP_PORT}"
        conn = http.client.HTTPConnection(UP_HOST, UP_PORT, timeout=120)
        conn.request(self.command, self.path, body=body if (body or self.command in ("POST", "PUT", "PATCH")) else None, headers=hdrs)
        resp = conn.getresponse()
        rbody = resp.read()
        with LOCK:
            N[0] += 1
            ireq = {k: v for k, v in self.headers.items()
                    if k.lower() in ("content-type", "accept", "content-encoding", "authorization", "user-agent", "transfer-encoding")}
            LOG.write(f"### {N[0]} {self.command} {self.path}\n")
            LOG.write(f"REQ-HEADERS: {json.dumps(ireq)}\n")
            LOG.write(f"REQ-BODY ({len(body)} bytes): {show(body)}\n")
            LOG.write(f"STATUS: {resp.status} {resp.reason}\n")
            LOG.write(f"RESP-CONTENT-TYPE: {resp.getheader('Content-Type')}\n")
            LOG.write(f"RESP-BODY ({len(rbody)} bytes): {show(rbody)}\n\n")
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(rbody)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(rbody)
        conn.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def mark(text):
    with LOCK:
        LOG.write(f"\n======== {text} ========\n\n")


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5056
    S(("127.0.0.1", port), H).serve_forever()
