"""MLflow client compatibility test: drives a tracking server with the stock `mlflow`
Python client (the version pinned in tests/compat/requirements.txt) and reads every
value back.

    KEEL_TRACKING_URI=http://127.0.0.1:8080 "$(scripts/python-test-env)" tests/compat/mlflow_client_test.py

It runs unchanged against `mlflow server`, which is how it was validated. Names get a
random suffix, so it can run again and again against the same server. Options:
`-k SUBSTRING` runs only the checks whose name contains SUBSTRING (checks that depend on
earlier ones then fail), `-v` prints tracebacks. The last line is "N passed, N failed";
the exit status is 1 when any check failed.
"""
import http.client
import json
import logging
import math
import os
import sys
import tempfile
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

URI = os.environ.get("KEEL_TRACKING_URI")
if not URI:
    sys.exit("mlflow_client_test: set KEEL_TRACKING_URI to the server's URL, e.g. http://127.0.0.1:8080")
URI = URI.rstrip("/")
os.environ["MLFLOW_TRACKING_URI"] = URI
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

import mlflow  # noqa: E402

logging.getLogger("mlflow").setLevel(logging.WARNING)
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

DBL_MAX = 1.7976931348623157e308
UID = uuid.uuid4().hex[:10]
EXP = f"compat-{UID}"
PREFIX = f"cm{UID}"          # registered model names: PREFIX_a, PREFIX_b, ...
MODEL_A, MODEL_B, MODEL_C, MODEL_NONE = (f"{PREFIX}_a", f"{PREFIX}_b", f"{PREFIX}_c", f"{PREFIX}_none")
PROMPT = f"cp{UID}"

client = MlflowClient(tracking_uri=URI, registry_uri=URI)
S = {}                       # state shared by the checks, in order
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def expect_error(code, fn, *args, **kwargs):
    """Calls fn and requires an MlflowException whose error_code is `code`."""
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        assert e.error_code == code, f"expected {code}, got {e.error_code}: {e.message[:200]}"
        return e
    raise AssertionError(f"expected {code}, but the call succeeded")


def is_pos_inf(v):
    # The reference server clamps +inf to DBL_MAX in its SQL store; true +inf is also fine.
    return v == math.inf or v == DBL_MAX


def is_neg_inf(v):
    return v == -math.inf or v == -DBL_MAX


def raw_request(method, path, body=None):
    """One HTTP request with the path sent byte for byte (no dot-segment clean-up)."""
    u = urllib.parse.urlsplit(URI)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    try:
        headers = {}
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
        conn.request(method, u.path.rstrip("/") + path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        j = json.loads(data) if data else None
    except ValueError:
        j = None
    return resp.status, j


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- experiments

@check
def experiment_set_and_get():
    exp = mlflow.set_experiment(EXP)
    assert exp.name == EXP and exp.lifecycle_stage == "active"
    assert isinstance(exp.experiment_id, str) and exp.experiment_id
    again = mlflow.set_experiment(EXP)
    assert again.experiment_id == exp.experiment_id, "set_experiment on an existing name made a new one"
    by_name = client.get_experiment_by_name(EXP)
    assert by_name.experiment_id == exp.experiment_id
    assert client.get_experiment(exp.experiment_id).name == EXP
    assert exp.artifact_location, "experiment has no artifact_location"
    S["eid"] = exp.experiment_id


@check
def experiment_errors():
    assert client.get_experiment_by_name(f"no-such-{UID}") is None
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_experiment, "987654321")
    expect_error("RESOURCE_ALREADY_EXISTS", client.create_experiment, EXP)


# ---------------------------------------------------------------- the parent run

@check
def run_start():
    run = mlflow.start_run(run_name="parent")
    S["rid"] = rid = run.info.run_id
    assert run.info.run_name == "parent" and run.info.status == "RUNNING"
    assert run.info.experiment_id == S["eid"]
    assert run.info.start_time and run.info.end_time is None
    uri = run.info.artifact_uri
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith(f"/{rid}/artifacts"), uri
    assert run.data.tags.get("mlflow.runName") == "parent"


@check
def run_log_params_metrics_tags():
    mlflow.log_param("p", "x")
    mlflow.log_params({"lr": 0.01, "layers": 3})
    for step, v in enumerate([0.1, 0.4, 0.7]):
        mlflow.log_metric("m", v, step=step)
    mlflow.log_metrics({"acc": 0.9, "loss": 0.2}, step=5)
    mlflow.log_metric("nanm", float("nan"))
    mlflow.log_metric("infm", float("inf"))
    mlflow.log_metric("ninfm", float("-inf"))
    mlflow.set_tag("t", "v")
    mlflow.set_tags({"t2": "v2", "t3": 3})
    mlflow.set_tag("t", "v-updated")          # tags are upserts
    d = client.get_run(S["rid"]).data
    assert d.params == {"p": "x", "lr": "0.01", "layers": "3"}, d.params
    assert d.metrics["m"] == 0.7, d.metrics            # latest = highest step
    assert d.metrics["acc"] == 0.9 and d.metrics["loss"] == 0.2
    assert math.isnan(d.metrics["nanm"])
    assert is_pos_inf(d.metrics["infm"]), d.metrics["infm"]
    assert is_neg_inf(d.metrics["ninfm"]), d.metrics["ninfm"]
    assert d.tags["t"] == "v-updated" and d.tags["t2"] == "v2" and d.tags["t3"] == "3"
    assert d.tags["mlflow.user"] and d.tags["mlflow.source.name"]


@check
def metric_history():
    h = client.get_metric_history(S["rid"], "m")
    assert [(m.step, m.value) for m in h] == [(0, 0.1), (1, 0.4), (2, 0.7)], h
    assert all(m.key == "m" and m.timestamp > 0 for m in h)
    nan = client.get_metric_history(S["rid"], "nanm")
    assert len(nan) == 1 and math.isnan(nan[0].value)
    inf = client.get_metric_history(S["rid"], "infm")
    assert len(inf) == 1 and is_pos_inf(inf[0].value)
    ninf = client.get_metric_history(S["rid"], "ninfm")
    assert len(ninf) == 1 and is_neg_inf(ninf[0].value)
    assert client.get_metric_history(S["rid"], "no-such-metric") == []


@check
def param_relog():
    e = expect_error("INVALID_PARAMETER_VALUE", mlflow.log_param, "p", "y")
    assert "p" in e.message
    mlflow.log_param("p", "x")                # the same value again is fine
    expect_error("INVALID_PARAMETER_VALUE", client.log_batch, S["rid"], params=[Param("p", "z")])
    assert client.get_run(S["rid"]).data.params["p"] == "x"


@check
def artifacts_log():
    tmp = S["tmp"] = tempfile.mkdtemp(prefix="keel-compat-")
    write(f"{tmp}/file1.txt", "hello file1\n")
    write(f"{tmp}/folder/a.txt", "aaa")
    write(f"{tmp}/folder/sub/b.json", '{"b": 1}')
    S["blob"] = os.urandom(300_000) + bytes(range(256))
    write(f"{tmp}/bin/blob.bin", S["blob"])
    mlflow.log_text("hello text", "notes/hello.txt")
    mlflow.log_dict({"k": [1, 2]}, "cfg/d.json")
    mlflow.log_artifact(f"{tmp}/file1.txt")
    mlflow.log_artifact(f"{tmp}/file1.txt", artifact_path="sub/dir")
    mlflow.log_artifacts(f"{tmp}/folder", artifact_path="folder")
    mlflow.log_artifact(f"{tmp}/bin/blob.bin", artifact_path="bin")


@check
def artifacts_list():
    rid = S["rid"]
    root = {(f.path, f.is_dir) for f in client.list_artifacts(rid)}
    assert root == {("bin", True), ("cfg", True), ("file1.txt", False), ("folder", True),
                    ("notes", True), ("sub", True)}, root
    size = {f.path: f.file_size for f in client.list_artifacts(rid)}
    assert size["file1.txt"] == 12
    folder = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid, "folder")]
    assert folder == [("folder/a.txt", False, 3), ("folder/sub", True, None)], folder
    deep = [(f.path, f.is_dir) for f in mlflow.artifacts.list_artifacts(run_id=rid, artifact_path="folder/sub")]
    assert deep == [("folder/sub/b.json", False)], deep
    assert client.list_artifacts(rid, "file1.txt") == []          # a file lists as empty
    assert client.list_artifacts(rid, "no/such/dir") == []


@check
def artifacts_download():
    rid = S["rid"]
    dst = tempfile.mkdtemp()
    assert read(client.download_artifacts(rid, "file1.txt", dst)) == b"hello file1\n"
    assert read(client.download_artifacts(rid, "sub/dir/file1.txt", dst)) == b"hello file1\n"
    assert read(client.download_artifacts(rid, "bin/blob.bin", dst)) == S["blob"], "binary artifact changed"
    folder = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="folder", dst_path=tempfile.mkdtemp())
    assert read(os.path.join(folder, "a.txt")) == b"aaa"
    assert read(os.path.join(folder, "sub", "b.json")) == b'{"b": 1}'
    whole = mlflow.artifacts.download_artifacts(run_id=rid, dst_path=tempfile.mkdtemp())
    assert read(os.path.join(whole, "notes", "hello.txt")) == b"hello text"
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/hello.txt") == "hello text"
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/d.json") == {"k": [1, 2]}
    try:
        client.download_artifacts(rid, "no-such-file.txt", tempfile.mkdtemp())
    except Exception:
        pass
    else:
        raise AssertionError("downloading a missing artifact succeeded")


@check
def artifacts_path_traversal_client():
    try:
        mlflow.log_artifact(f"{S['tmp']}/file1.txt", artifact_path="../evil")
    except MlflowException:
        pass
    else:
        raise AssertionError("log_artifact with ../ was not refused")
    try:
        client.list_artifacts(S["rid"], "../")
    except Exception as e:               # requests.HTTPError from the artifact repository
        assert "400" in str(e) or "INVALID_PARAMETER_VALUE" in str(e), str(e)[:300]
    else:
        raise AssertionError("list_artifacts('../') was not refused")
    try:
        client.download_artifacts(S["rid"], "../x", tempfile.mkdtemp())
    except Exception:
        pass
    else:
        raise AssertionError("download_artifacts('../x') was not refused")


@check
def artifacts_path_traversal_raw():
    eid, rid = S["eid"], S["rid"]
    base = "/api/2.0/mlflow-artifacts/artifacts"
    run_root = f"{base}/{eid}/{rid}/artifacts"
    attempts = [
        ("PUT", f"{run_root}/../../../evil-{UID}.txt"),
        ("PUT", f"{run_root}/%2e%2e/%2e%2e/%2e%2e/evil-{UID}.txt"),
        ("PUT", f"{run_root}/..%2F..%2F..%2Fevil-{UID}.txt"),
        ("PUT", f"{run_root}/sub/..%2f..%2f..%2f..%2fevil-{UID}.txt"),
        ("GET", f"{run_root}/../../../../../../etc/passwd"),
        ("GET", f"{run_root}/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
        ("GET", f"{base}?path=" + urllib.parse.quote(f"{eid}/{rid}/artifacts/../", safe="")),
        ("GET", f"{base}?path=" + urllib.parse.quote("../../../etc", safe="")),
        ("GET", f"{base}?path=" + urllib.parse.quote("/etc", safe="")),
    ]
    bad = []
    for method, path in attempts:
        status, body = raw_request(method, path, b"evil" if method == "PUT" else None)
        code = body.get("error_code") if isinstance(body, dict) else None
        if status != 400 or code != "INVALID_PARAMETER_VALUE":
            bad.append(f"{method} {path} -> {status} {code}")
    assert not bad, "not refused with 400 INVALID_PARAMETER_VALUE: " + "; ".join(bad)
    # and nothing was written: the run's listing is unchanged
    assert not any("evil" in f.path for f in client.list_artifacts(rid))


@check
def artifacts_missing_file_raw():
    status, body = raw_request("GET", f"/api/2.0/mlflow-artifacts/artifacts/{S['eid']}/{S['rid']}/artifacts/nope-{UID}")
    assert status == 404 and body and body.get("error_code") == "RESOURCE_DOES_NOT_EXIST", (status, body)


@check
def dataset_inputs():
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    ds = MetaDataset(source=HTTPDatasetSource("https://example.com/data.csv"), name="ds1", digest="abc123")
    mlflow.log_input(ds, context="training", tags={"x": "y"})
    import numpy as np
    npds = mlflow.data.from_numpy(np.arange(6).reshape(3, 2), source="https://example.com/np.npy", name="npds")
    mlflow.log_input(npds, context="eval")
    inputs = client.get_run(S["rid"]).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert set(by_name) == {"ds1", "npds"}, set(by_name)
    d1 = by_name["ds1"]
    assert d1.dataset.digest == "abc123" and d1.dataset.source_type == "http"
    assert json.loads(d1.dataset.source) == {"url": "https://example.com/data.csv"}
    assert {t.key: t.value for t in d1.tags} == {"x": "y", "mlflow.data.context": "training"}
    d2 = by_name["npds"]
    assert d2.dataset.digest == npds.digest
    assert json.loads(d2.dataset.profile)["features_shape"] == [3, 2]
    assert "mlflow_tensorspec" in json.loads(d2.dataset.schema)
    assert {t.key: t.value for t in d2.tags} == {"mlflow.data.context": "eval"}


@check
def nested_run():
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_param("cp", "1")
        S["child"] = child.info.run_id
    c = client.get_run(S["child"])
    assert c.data.tags.get("mlflow.parentRunId") == S["rid"], c.data.tags
    assert c.info.status == "FINISHED" and c.info.end_time
    assert c.data.params == {"cp": "1"}
    assert mlflow.active_run().info.run_id == S["rid"], "nested end_run ended the parent"
    found = client.search_runs([S["eid"]], filter_string=f"tags.mlflow.parentRunId = '{S['rid']}'")
    assert [r.info.run_id for r in found] == [S["child"]]


@check
def run_end():
    mlflow.end_run()
    info = client.get_run(S["rid"]).info
    assert info.status == "FINISHED" and info.end_time >= info.start_time
    assert mlflow.active_run() is None


# ---------------------------------------------------------------- search

@check
def search_runs_filter_and_order():
    eid = S["eid"]
    made = {}
    for name, m, p in [("ra", 0.9, "x"), ("rb", 0.6, "x"), ("rc", 0.95, "y"), ("rd", 0.3, "x")]:
        r = client.create_run(eid, run_name=name)
        client.log_batch(r.info.run_id, metrics=[Metric("m", m, 1_700_000_000_000, 0)], params=[Param("p", p)])
        client.set_terminated(r.info.run_id)
        made[name] = r.info.run_id
    S["search_runs"] = made
    want = [made["ra"], S["rid"], made["rb"]]          # m = 0.9, 0.7, 0.6 with p = 'x'
    flt = "metrics.m > 0.5 and params.p = 'x'"
    got = [r.info.run_id for r in client.search_runs([eid], filter_string=flt, order_by=["metrics.m DESC"])]
    assert got == want, (got, want)
    asc = [r.info.run_id for r in client.search_runs([eid], filter_string=flt, order_by=["metrics.m ASC"])]
    assert asc == want[::-1], asc
    df = mlflow.search_runs(experiment_ids=[eid], filter_string=flt, order_by=["metrics.m DESC"])
    assert list(df["run_id"]) == want, list(df["run_id"])
    assert list(df["metrics.m"]) == [0.9, 0.7, 0.6] and set(df["params.p"]) == {"x"}
    lst = mlflow.search_runs(experiment_ids=[eid], filter_string=flt, order_by=["metrics.m DESC"], output_format="list")
    assert [r.info.run_id for r in lst] == want
    by_name = client.search_runs([eid], filter_string="attributes.run_name = 'rc'")
    assert [r.info.run_id for r in by_name] == [made["rc"]]
    like = client.search_runs([eid], filter_string="params.p LIKE 'y%'")
    assert [r.info.run_id for r in like] == [made["rc"]]
    assert client.search_runs([eid], filter_string="params.p = 'nope'") == []
    expect_error("INVALID_PARAMETER_VALUE", client.search_runs, [eid], filter_string="bogus syntax")


@check
def search_runs_paging_and_default_order():
    eid = S["eid"]
    every = client.search_runs([eid], max_results=1000)
    ids = [r.info.run_id for r in every]
    assert len(ids) == 6, len(ids)                       # parent, child, ra..rd
    starts = [r.info.start_time for r in every]
    assert starts == sorted(starts, reverse=True), "default order is not start_time DESC"
    seen, token = [], None
    while True:
        page = client.search_runs([eid], max_results=2, page_token=token)
        assert len(page) <= 2
        seen += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert seen == ids, (seen, ids)


@check
def run_delete_and_terminate():
    eid, made = S["eid"], S["search_runs"]
    client.delete_run(made["rd"])
    assert client.get_run(made["rd"]).info.lifecycle_stage == "deleted"
    active = {r.info.run_id for r in client.search_runs([eid])}
    assert made["rd"] not in active
    deleted = {r.info.run_id for r in client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)}
    assert deleted == {made["rd"]}, deleted
    r = client.create_run(eid, run_name="to-fail")
    client.set_terminated(r.info.run_id, "FAILED")
    info = client.get_run(r.info.run_id).info
    assert info.status == "FAILED" and info.end_time
    client.delete_run(r.info.run_id)


@check
def log_batch_large():
    r = client.create_run(S["eid"], run_name="batch")
    rid = r.info.run_id
    n = 2500                                 # the client splits this into 1000-metric requests
    metrics = [Metric("big", float(i), 1_700_000_000_000 + i, i) for i in range(n)]
    params = [Param(f"bp{i}", str(i)) for i in range(150)]
    tags = [RunTag(f"bt{i}", str(i)) for i in range(120)]
    client.log_batch(rid, metrics=metrics, params=params, tags=tags)
    h = client.get_metric_history(rid, "big")
    assert len(h) == n and sorted(m.step for m in h) == list(range(n))
    assert {m.step: m.value for m in h} == {i: float(i) for i in range(n)}
    d = client.get_run(rid).data
    assert d.metrics["big"] == float(n - 1)
    assert len(d.params) == 150 and d.params["bp149"] == "149"
    assert sum(1 for k in d.tags if k.startswith("bt")) == 120
    client.delete_run(rid)


@check
def run_errors():
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_run, "doesnotexist")
    expect_error("RESOURCE_DOES_NOT_EXIST", client.log_param, "doesnotexist", "a", "b")


# ---------------------------------------------------------------- model registry

@check
def registry_create():
    rm = client.create_registered_model(MODEL_A, tags={"team": "a"}, description="d1")
    assert rm.name == MODEL_A and rm.description == "d1" and rm.tags == {"team": "a"}
    assert rm.creation_timestamp > 0
    expect_error("RESOURCE_ALREADY_EXISTS", client.create_registered_model, MODEL_A)
    rid = S["rid"]
    src = f"{client.get_run(rid).info.artifact_uri}/model"
    v1 = client.create_model_version(MODEL_A, source=src, run_id=rid, tags={"k": "v"}, description="v1")
    assert (v1.name, v1.version, v1.status, v1.source, v1.run_id) == (MODEL_A, "1", "READY", src, rid), vars(v1)
    assert v1.tags == {"k": "v"} and v1.description == "v1"
    v2 = client.create_model_version(MODEL_A, source=f"runs:/{rid}/model", run_id=rid)
    assert v2.version == "2" and v2.source == f"runs:/{rid}/model"
    got = client.get_model_version(MODEL_A, "1")
    assert got.source == src and got.tags == {"k": "v"} and got.run_id == rid
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_model_version, MODEL_A, "99")
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, f"{PREFIX}_missing")
    assert client.get_model_version_download_uri(MODEL_A, "1") == src


@check
def registry_register_model_from_run():
    rid = S["rid"]
    client.log_text(rid, "artifact_path: model\nflavors: {}\n", "model/MLmodel")
    mv = mlflow.register_model(f"runs:/{rid}/model", MODEL_B)
    assert (mv.name, mv.version, mv.run_id) == (MODEL_B, "1", rid)
    assert mv.source == f"{client.get_run(rid).info.artifact_uri}/model", mv.source
    again = mlflow.register_model(f"runs:/{rid}/model", MODEL_A)     # registered model exists already
    assert again.version == "3"
    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL_B}/1", dst_path=tempfile.mkdtemp())
    assert read(os.path.join(local, "MLmodel")) == b"artifact_path: model\nflavors: {}\n"
    try:
        mlflow.register_model(f"runs:/{rid}/nomodel", MODEL_NONE)
    except MlflowException as e:
        assert "nomodel" in e.message
    else:
        raise AssertionError("register_model of a path with no model succeeded")


@check
def registry_aliases_and_tags():
    client.set_registered_model_alias(MODEL_A, "champion", "1")
    mv = client.get_model_version_by_alias(MODEL_A, "champion")
    assert mv.version == "1" and "champion" in mv.aliases
    rm = client.get_registered_model(MODEL_A)
    assert rm.aliases == {"champion": "1"}, rm.aliases
    assert [v.version for v in rm.latest_versions] == ["3"]
    client.set_registered_model_alias(MODEL_A, "champion", "2")          # move it
    assert client.get_model_version_by_alias(MODEL_A, "champion").version == "2"
    client.set_model_version_tag(MODEL_A, "1", "stage", "prod")
    assert client.get_model_version(MODEL_A, "1").tags == {"k": "v", "stage": "prod"}
    client.set_registered_model_tag(MODEL_A, "owner", "me")
    assert client.get_registered_model(MODEL_A).tags == {"team": "a", "owner": "me"}
    client.delete_registered_model_alias(MODEL_A, "champion")
    expect_error("INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, MODEL_A, "champion")
    assert client.get_registered_model(MODEL_A).aliases == {}


@check
def registry_search():
    names = [m.name for m in client.search_registered_models(filter_string=f"name LIKE '{PREFIX}%'")]
    # MODEL_NONE exists too: register_model creates the registered model before it fails
    want = sorted([MODEL_A, MODEL_B, MODEL_NONE])
    assert names == want, (names, want)
    exact = [m.name for m in client.search_registered_models(filter_string=f"name = '{MODEL_B}'")]
    assert exact == [MODEL_B]
    vs = [(v.name, v.version) for v in client.search_model_versions(filter_string=f"name='{MODEL_A}'")]
    assert sorted(vs) == [(MODEL_A, "1"), (MODEL_A, "2"), (MODEL_A, "3")], vs
    by_run = client.search_model_versions(filter_string=f"run_id = '{S['rid']}'")
    assert {(v.name, v.version) for v in by_run} >= {(MODEL_A, "1"), (MODEL_B, "1")}
    assert client.search_registered_models(filter_string=f"name = '{PREFIX}_zzz'") == []


# ---------------------------------------------------------------- logged models (MLflow 3)

@check
def logged_models():
    eid = S["eid"]
    lm1 = mlflow.initialize_logged_model(name="lm1", experiment_id=eid)
    assert lm1.model_id.startswith("m-") and lm1.name == "lm1" and lm1.experiment_id == eid
    assert lm1.status == LoggedModelStatus.PENDING, lm1.status
    assert lm1.artifact_location.startswith("mlflow-artifacts:/")
    lm2 = client.create_logged_model(eid, name="lm2", params={"a": "1"}, tags={"b": "2"}, model_type="agent")
    got = client.get_logged_model(lm2.model_id)
    assert (got.name, got.model_type, got.params, got.tags.get("b")) == ("lm2", "agent", {"a": "1"}, "2"), vars(got)
    fin = client.finalize_logged_model(lm2.model_id, "READY")
    assert fin.status == LoggedModelStatus.READY, fin.status
    client.set_logged_model_tags(lm2.model_id, {"c": "3"})
    client.log_model_params(lm2.model_id, {"p2": "v2"})
    got = client.get_logged_model(lm2.model_id)
    assert got.tags.get("c") == "3" and got.params == {"a": "1", "p2": "v2"} and got.status == LoggedModelStatus.READY
    found = {m.model_id for m in client.search_logged_models([eid])}
    assert {lm1.model_id, lm2.model_id} <= found
    named = client.search_logged_models([eid], filter_string="name = 'lm2'")
    assert [m.model_id for m in named] == [lm2.model_id]
    lst = mlflow.search_logged_models(experiment_ids=[eid], output_format="list")
    assert {lm1.model_id, lm2.model_id} <= {m.model_id for m in lst}
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_logged_model, f"m-{UID}missing")


@check
def logged_model_in_run_and_register():
    eid = S["eid"]
    with mlflow.start_run(run_name="lm-run") as r:
        lm = mlflow.initialize_logged_model(name="lm3")
        mlflow.log_metric("lmm", 1.5, model_id=lm.model_id)
    assert lm.source_run_id == r.info.run_id
    assert client.get_run(r.info.run_id).data.metrics["lmm"] == 1.5
    lmodel = client.create_logged_model(eid, name="lmodel", source_run_id=S["rid"])
    mv = mlflow.register_model(f"runs:/{S['rid']}/lmodel", MODEL_C)
    assert mv.source == f"models:/{lmodel.model_id}", mv.source
    assert mv.run_id == S["rid"] and mv.version == "1"


# ---------------------------------------------------------------- prompt registry

@check
def prompts():
    genai = getattr(mlflow, "genai", None)
    register = getattr(genai, "register_prompt", None) or mlflow.register_prompt
    load = getattr(genai, "load_prompt", None) or mlflow.load_prompt
    p1 = register(name=PROMPT, template="Hello {{name}}", commit_message="c1", tags={"t": "1"})
    assert p1.version == 1 and p1.template == "Hello {{name}}"
    p2 = register(name=PROMPT, template="Hi {{name}}!")
    assert p2.version == 2
    a = load(f"prompts:/{PROMPT}/1")
    assert a.template == "Hello {{name}}" and a.format(name="x") == "Hello x"
    b = load(PROMPT, version=2)
    assert b.template == "Hi {{name}}!" and b.format(name="y") == "Hi y!"
    # prompts are hidden from model search
    names = [m.name for m in client.search_registered_models(filter_string=f"name = '{PROMPT}'")]
    assert names == [], names


# The two checks below use Keel's own REST API (/api/prompts) beside the mlflow client,
# so they pass only against Keel: a prompt made on either side is the same object.

def keel_api(method, path, body=None):
    """A JSON request to Keel's REST API; returns (HTTP status, parsed body)."""
    headers = {"Content-Type": "application/json"}
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
    req = urllib.request.Request(URI + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@check
def prompt_from_keel_api_loads_in_mlflow():
    name = f"{PROMPT}_k"
    template = "Summarize {{ text }} in {{n}} words."
    status, made = keel_api("POST", f"/api/prompts/{name}/versions",
                            {"template": template, "commit_message": "from keel",
                             "model_parameters": {"temperature": 0.2}})
    assert status == 201, (status, made)
    assert made["version"] == 1 and made["variables"] == ["text", "n"], made
    p = mlflow.genai.load_prompt(f"prompts:/{name}/1")
    assert p.template == template, p.template
    assert p.commit_message == "from keel", p.commit_message
    assert p.model_config == {"temperature": 0.2}, p.model_config
    assert p.format(text="x", n=3) == "Summarize x in 3 words."
    messages = [{"role": "system", "content": "Be {{tone}}."}, {"role": "user", "content": "{{q}}"}]
    status, made = keel_api("POST", f"/api/prompts/{name}_chat/versions", {"messages": messages})
    assert status == 201, (status, made)
    chat = mlflow.genai.load_prompt(f"prompts:/{name}_chat/1")
    assert chat.template == messages, chat.template


@check
def prompt_from_mlflow_renders_through_keel_api():
    name = f"{PROMPT}_m"
    mlflow.genai.register_prompt(name=name, template="Hello {{ name }}, welcome to {{place}}.",
                                 commit_message="from mlflow")
    status, shown = keel_api("GET", f"/api/prompts/{name}/versions/1")
    assert status == 200 and shown["commit_message"] == "from mlflow", (status, shown)
    assert shown["variables"] == ["name", "place"], shown
    status, out = keel_api("POST", f"/api/prompts/{name}/render",
                           {"version": 1, "variables": {"name": "Ada", "place": "Keel"}})
    assert status == 200, (status, out)
    assert out["text"] == "Hello Ada, welcome to Keel.", out
    status, err = keel_api("POST", f"/api/prompts/{name}/render", {"variables": {"name": "Ada"}})
    assert status == 400 and "place" in err["error"]["message"], (status, err)


def main(argv):
    only = argv[argv.index("-k") + 1] if "-k" in argv else None
    verbose = "-v" in argv
    print(f"mlflow {mlflow.__version__} against {URI} (names suffixed {UID})")
    passed = failed = 0
    for fn in CHECKS:
        if only and only not in fn.__name__:
            continue
        try:
            fn()
        except Exception as e:
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {str(e)[:500]} (line {where.lineno})")
            if verbose:
                traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
    if mlflow.active_run():
        mlflow.end_run()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
