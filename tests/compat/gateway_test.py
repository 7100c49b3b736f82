"""The gateway: a `keel serve` whose models are remote, with a second `keel serve` as
their upstream (run-gateway-test starts both), used through the stock openai client.

The gateway's answers must be the upstream's answers (same greedy text, same
embeddings), in OpenAI's shapes with the gateway's ids and names; its keys, traces,
feedback and deployments apply to remote models as to local ones; upstream failures
are OpenAI-shaped errors that say so; a client that leaves cancels the upstream call.
"""

import concurrent.futures
import http.client
import json
import os
import time
import urllib.parse

import openai

import test_runner

GATEWAY = os.environ["KEEL_GATEWAY_URL"]
UPSTREAM = os.environ["KEEL_UPSTREAM_URL"]
GATEWAY_KEY = os.environ["KEEL_GATEWAY_KEY"]
UPSTREAM_KEY = os.environ["KEEL_UPSTREAM_KEY"]
LOCAL = "smollm2-135m-instruct"  # the upstream's name for its model
REMOTE = "remote-smol"           # the gateway's name for it
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]

gateway = openai.OpenAI(base_url=GATEWAY + "/v1", api_key=GATEWAY_KEY, max_retries=0, timeout=120)
upstream = openai.OpenAI(base_url=UPSTREAM + "/v1", api_key=UPSTREAM_KEY, max_retries=0, timeout=120)


def api(base, key, method, path, body=None):
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body),
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def trace(base, key, request_id):
    for _ in range(100):  # the trace writer flushes within 200 ms
        status, t = api(base, key, "GET", "/api/traces/" + request_id)
        if status == 200:
            return t
        time.sleep(0.05)
    raise AssertionError(f"no trace {request_id} at {base}")


def metric_lines(base, name):
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        key = GATEWAY_KEY if base == GATEWAY else UPSTREAM_KEY
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        assert response.status == 200, response.status
        return [line for line in response.read().decode().splitlines() if line.startswith(name + "{")]
    finally:
        connection.close()


def test_chat_is_the_upstreams_answer_with_the_gateways_names():
    raw = gateway.chat.completions.with_raw_response.create(model=REMOTE, messages=QUESTION, temperature=0,
                                                            max_tokens=12)
    r = raw.parse()
    direct = upstream.chat.completions.create(model=LOCAL, messages=QUESTION, temperature=0, max_tokens=12)
    assert r.choices[0].message.content == direct.choices[0].message.content, (r, direct)
    assert "Paris" in r.choices[0].message.content
    assert r.id == "chatcmpl-" + raw.headers["x-request-id"] and r.model == REMOTE, r
    assert r.system_fingerprint == f"keel-{REMOTE}@1", r.system_fingerprint
    assert r.usage.prompt_tokens == direct.usage.prompt_tokens and r.usage.completion_tokens >= 1
    # One id across both: the upstream traced the same request.
    request_id = raw.headers["x-request-id"]
    assert raw.headers["x-upstream-request-id"] == request_id
    mine, theirs = trace(GATEWAY, GATEWAY_KEY, request_id), trace(UPSTREAM, UPSTREAM_KEY, request_id)
    assert mine["model"] == REMOTE and mine["version"] == 1 and mine["status"] == 200, mine
    assert mine["response"] == r.choices[0].message.content and "capital of France" in mine["prompt"], mine
    assert mine["prompt_tokens"] == r.usage.prompt_tokens and mine["completion_tokens"] == r.usage.completion_tokens
    assert theirs["model"] == LOCAL and theirs["response"] == mine["response"], theirs
    assert mine["latency_ms"] >= theirs["latency_ms"], (mine["latency_ms"], theirs["latency_ms"])
    # The gateway's own share: its latency less its upstream time, which holds the upstream's.
    assert theirs["upstream_ms"] is None, theirs
    assert theirs["latency_ms"] <= mine["upstream_ms"] <= mine["latency_ms"], mine
    overhead = metric_lines(GATEWAY, "keel_gateway_overhead_seconds_count")
    assert any(f'model="{REMOTE}"' in line and float(line.split()[-1]) >= 1 for line in overhead), overhead
    assert not metric_lines(UPSTREAM, "keel_gateway_overhead_seconds_count"), "a local model has no gateway overhead"
    status, fb = api(GATEWAY, GATEWAY_KEY, "POST", "/api/feedback", {"trace_id": request_id, "score": 1})
    assert status in (200, 201), fb


def test_streams_pass_through_event_by_event():
    whole = gateway.chat.completions.create(model=REMOTE, messages=QUESTION, temperature=0, max_tokens=12)
    chunks = list(gateway.chat.completions.create(model=REMOTE, messages=QUESTION, temperature=0, max_tokens=12,
                                                  stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content, (text, whole)
    assert all(c.model == REMOTE and c.id.startswith("chatcmpl-") for c in chunks)
    assert all(c.usage is None for c in chunks), "usage was not asked for"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    with_usage = list(gateway.chat.completions.create(model=REMOTE, messages=QUESTION, temperature=0, max_tokens=12,
                                                      stream=True, stream_options={"include_usage": True}))
    assert with_usage[-1].usage is not None and with_usage[-1].usage.completion_tokens >= 1, with_usage[-1]
    # Text completions, whole and streamed.
    c = gateway.completions.create(model=REMOTE, prompt="The capital of France is", max_tokens=6, temperature=0)
    d = upstream.completions.create(model=LOCAL, prompt="The capital of France is", max_tokens=6, temperature=0)
    assert c.choices[0].text == d.choices[0].text and c.model == REMOTE and c.id.startswith("cmpl-")
    streamed = "".join(x.choices[0].text for x in gateway.completions.create(
        model=REMOTE, prompt="The capital of France is", max_tokens=6, temperature=0, stream=True) if x.choices)
    assert streamed == c.choices[0].text, (streamed, c.choices[0].text)


def test_embeddings_are_the_upstreams():
    mine = gateway.embeddings.create(model=REMOTE, input=["a cat", "a dog"])
    theirs = upstream.embeddings.create(model=LOCAL, input=["a cat", "a dog"])
    assert mine.model == REMOTE and len(mine.data) == 2
    for a, b in zip(mine.data, theirs.data):
        assert a.embedding == b.embedding


def test_upstream_failures_are_openai_errors_that_say_so():
    cases = [("remote-wrong-key", 502, "upstream_auth_failed"), ("remote-down", 502, "upstream_error"),
             ("remote-no-model", 502, "upstream_model_not_found")]
    for name, status, code in cases:
        try:
            gateway.chat.completions.create(model=name, messages=QUESTION, max_tokens=2)
            raise AssertionError(f"{name} answered")
        except openai.APIStatusError as e:
            assert e.status_code == status and e.code == code, (name, e.status_code, e.code, e.message)
            assert "upstream" in e.message, e.message
    # The client's own mistake, as the upstream judges it, passes through.
    try:
        gateway.chat.completions.create(model=REMOTE, messages=QUESTION, max_tokens=100000)
        raise AssertionError("an oversized max_tokens was accepted")
    except openai.BadRequestError as e:
        assert e.code == "context_length_exceeded", e
    # Keys are the gateway's: a bad one never reaches the upstream.
    bad = openai.OpenAI(base_url=GATEWAY + "/v1", api_key="keel_wrong", max_retries=0)
    try:
        bad.chat.completions.create(model=REMOTE, messages=QUESTION, max_tokens=2)
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError:
        pass
    gateway.models.retrieve(REMOTE)


def test_a_client_leaving_cancels_the_upstream_call():
    raw = gateway.chat.completions.with_raw_response.create(
        model=REMOTE, messages=[{"role": "user", "content": "Tell a very long story."}], max_tokens=400, stream=True)
    request_id = raw.headers["x-request-id"]
    stream = raw.parse()
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    started = time.time()
    t = trace(UPSTREAM, UPSTREAM_KEY, request_id)  # written when the upstream's request ended
    assert t["status"] == 499 and t["completion_tokens"] < 100, t
    assert trace(GATEWAY, GATEWAY_KEY, request_id)["status"] == 499
    print(f"     the upstream ended the abandoned request {time.time() - started:.2f} s after the client left")


def test_a_canary_between_a_local_and_a_remote_version():
    # run-gateway-test deployed "mixed": 50/50 over hybrid@1 (local) and hybrid@2 (remote).
    def one(i):
        r = gateway.chat.completions.create(model="mixed", messages=QUESTION, max_tokens=6, temperature=0)
        return r.system_fingerprint, r.choices[0].message.content
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(40)))
    seen = {fingerprint for fingerprint, _ in answers}
    assert seen == {"keel-hybrid@1", "keel-hybrid@2"}, seen
    # Local and remote run the same weights greedily: the same answer either way.
    assert len({text for _, text in answers}) == 1, answers
    remote_share = sum(f == "keel-hybrid@2" for f, _ in answers) / len(answers)
    print(f"     50/50 local/remote canary: the remote version answered {remote_share:.0%} of 40")


def main():
    tests = [test_chat_is_the_upstreams_answer_with_the_gateways_names, test_streams_pass_through_event_by_event,
             test_embeddings_are_the_upstreams, test_upstream_failures_are_openai_errors_that_say_so,
             test_a_client_leaving_cancels_the_upstream_call, test_a_canary_between_a_local_and_a_remote_version]
    test_runner.run(tests, f"openai {openai.__version__}")


if __name__ == "__main__":
    main()
