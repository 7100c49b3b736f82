"""The client workload whose wire transcript is digested in the MLflow compatibility
notes: every call the compatibility test makes, run once through
tests/compat/wire_proxy.py with each call named by a marker. Errors are printed and
marked, not raised. Usage:

    MLFLOW_TRACKING_URI=http://127.0.0.1:5056 python tests/compat/wire_capture.py
"""
import os
import tempfile
import urllib.parse
import urllib.request
import uuid

import mlflow
from mlflow import MlflowClient

URI = os.environ["MLFLOW_TRACKING_URI"]
SUF = os.environ.get("SUF", uuid.uuid4().hex[:6])
print("mlflow", mlflow.__version__, "suffix", SUF)


def mark(t):
    urllib.request.urlopen(URI + "/__mark__?" + urllib.parse.quote(t)).read()


def step(name, fn):
    mark(name)
    try:
        r = fn()
        print("OK ", name, "->", repr(r)[:300])
        return r
    except Exception as e:
        print("ERR", name, "->", type(e).__name__, str(e)[:400])
        mark(f"{name} RAISED {type(e).__name__}: {str(e)[:300]}")
        return None


c = MlflowClient()
tmp = tempfile.mkdtemp()
f1 = os.path.join(tmp, "file1.txt"); open(f1, "w").write("hello file1\n")
d = os.path.join(tmp, "folder"); os.makedirs(os.path.join(d, "sub"))
open(os.path.join(d, "a.txt"), "w").write("aaa")
open(os.path.join(d, "sub", "b.json"), "w").write('{"b": 1}')

exp_name = "exp1"
step("mlflow.set_experiment('exp1')", lambda: mlflow.set_experiment(exp_name))
step("mlflow.set_experiment('exp1') again (exists)", lambda: mlflow.set_experiment(exp_name))

mark("mlflow.start_run(run_name='parent')")
run = mlflow.start_run(run_name="parent")
rid = run.info.run_id
print("run", rid, run.info.artifact_uri)
step("mlflow.log_param('p','x')", lambda: mlflow.log_param("p", "x"))
step("mlflow.log_params({'lr':0.01,'layers':3})", lambda: mlflow.log_params({"lr": 0.01, "layers": 3}))
for s, v in enumerate([0.1, 0.4, 0.7]):
    step(f"mlflow.log_metric('m',{v},step={s})", lambda s=s, v=v: mlflow.log_metric("m", v, step=s))
step("mlflow.log_metrics({'acc':0.9,'loss':0.2}, step=5)", lambda: mlflow.log_metrics({"acc": 0.9, "loss": 0.2}, step=5))
step("mlflow.log_metric('nanm', NaN)", lambda: mlflow.log_metric("nanm", float("nan")))
step("mlflow.log_metric('infm', +inf)", lambda: mlflow.log_metric("infm", float("inf")))
step("mlflow.log_metric('ninfm', -inf)", lambda: mlflow.log_metric("ninfm", float("-inf")))
step("mlflow.set_tag('t','v')", lambda: mlflow.set_tag("t", "v"))
step("mlflow.set_tags({'t2':'v2','t3':3})", lambda: mlflow.set_tags({"t2": "v2", "t3": 3}))
step("mlflow.log_text('hello text','notes/hello.txt')", lambda: mlflow.log_text("hello text", "notes/hello.txt"))
step("mlflow.log_dict({'k':[1,2]},'cfg/d.json')", lambda: mlflow.log_dict({"k": [1, 2]}, "cfg/d.json"))
step("mlflow.log_artifact(file1.txt)", lambda: mlflow.log_artifact(f1))
step("mlflow.log_artifact(file1.txt, artifact_path='sub/dir')", lambda: mlflow.log_artifact(f1, artifact_path="sub/dir"))
step("mlflow.log_artifacts(folder, artifact_path='folder')", lambda: mlflow.log_artifacts(d, artifact_path="folder"))


def do_input():
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    ds = MetaDataset(source=HTTPDatasetSource("https://example.com/data.csv"), name="ds1", digest="abc123")
    mlflow.log_input(ds, context="training", tags={"x": "y"})


step("mlflow.log_input(MetaDataset http source)", do_input)


def do_input_np():
    import numpy as np
    ds = mlflow.data.from_numpy(np.arange(6).reshape(3, 2), source="https://example.com/np.npy", name="npds")
    mlflow.log_input(ds, context="eval")


step("mlflow.log_input(from_numpy)", do_input_np)


def do_nested():
    with mlflow.start_run(run_name="child", nested=True) as ch:
        mlflow.log_param("cp", "1")
        return ch.info.run_id


child = step("mlflow.start_run(nested=True) + log_param + end", do_nested)
step("error: mlflow.log_param('p','y') re-log different value", lambda: mlflow.log_param("p", "y"))
step("mlflow.log_param('p','x') re-log same value", lambda: mlflow.log_param("p", "x"))
step("mlflow.end_run()", lambda: mlflow.end_run())

exp = mlflow.get_experiment_by_name(exp_name)
eid = exp.experiment_id
step("mlflow.search_runs(filter+order) [pandas]", lambda: mlflow.search_runs(experiment_ids=[eid],
     filter_string="metrics.m > 0.5 and params.p = 'x'", order_by=["metrics.m DESC"]).shape)
step("mlflow.search_runs(no experiment ids, default exp from set_experiment)", lambda: len(mlflow.search_runs()))
step("MlflowClient.search_runs(filter+order)", lambda: [r.info.run_id for r in c.search_runs([eid],
     filter_string="metrics.m > 0.5 and params.p = 'x'", order_by=["metrics.m DESC"])])
step("MlflowClient.search_runs(max_results=1) paging", lambda: c.search_runs([eid], max_results=1).token)
step("MlflowClient.get_run(rid)", lambda: c.get_run(rid).data.metrics)
step("MlflowClient.get_metric_history(rid,'m')", lambda: [(m.step, m.value) for m in c.get_metric_history(rid, "m")])
step("MlflowClient.get_metric_history(rid,'nanm')", lambda: [(m.step, m.value) for m in c.get_metric_history(rid, "nanm")])
step("MlflowClient.list_artifacts(rid)", lambda: [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(rid)])
step("MlflowClient.list_artifacts(rid,'folder')", lambda: [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(rid, "folder")])
step("mlflow.artifacts.list_artifacts(run_id, artifact_path='folder/sub')",
     lambda: [(f.path, f.is_dir) for f in mlflow.artifacts.list_artifacts(run_id=rid, artifact_path="folder/sub")])
dl = tempfile.mkdtemp()
step("MlflowClient.download_artifacts(rid,'file1.txt')", lambda: open(c.download_artifacts(rid, "file1.txt", dl)).read())
step("mlflow.artifacts.download_artifacts(run_id, artifact_path='folder')",
     lambda: mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="folder", dst_path=tempfile.mkdtemp()))
step("mlflow.artifacts.load_text(runs:/rid/notes/hello.txt)", lambda: mlflow.artifacts.load_text(f"runs:/{rid}/notes/hello.txt"))
step("mlflow.artifacts.load_dict(runs:/rid/cfg/d.json)", lambda: mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/d.json"))
step("error: get_run('doesnotexist')", lambda: c.get_run("doesnotexist"))
step("error: get_metric_history unknown run", lambda: c.get_metric_history("doesnotexist", "m"))
step("error: get_experiment('999999')", lambda: c.get_experiment("999999"))

# registry
m1 = "m1"
step("MlflowClient.create_registered_model('m1')", lambda: c.create_registered_model(m1, tags={"team": "a"}, description="d1"))
step("error: create_registered_model('m1') duplicate", lambda: c.create_registered_model(m1))
step("MlflowClient.create_model_version(m1, source=artifact_uri/model, run_id)",
     lambda: c.create_model_version(m1, source=f"{run.info.artifact_uri}/model", run_id=rid, tags={"k": "v"}, description="v1").version)
step("MlflowClient.create_model_version(m1, source=runs:/rid/model, run_id)",
     lambda: c.create_model_version(m1, source=f"runs:/{rid}/model", run_id=rid).version)
step("error path: mlflow.register_model('runs:/rid/nomodel','m0') (no MLmodel, no logged model)", lambda: mlflow.register_model(f"runs:/{rid}/nomodel", "m0").version)
step("setup: MlflowClient.log_text(rid, MLmodel, 'model/MLmodel')", lambda: c.log_text(rid, "artifact_path: model\nflavors: {}\n", "model/MLmodel"))
step("mlflow.register_model('runs:/rid/model','m2') [MLmodel file present]", lambda: vars(mlflow.register_model(f"runs:/{rid}/model", "m2")))
step("mlflow.register_model('runs:/rid/model','m1') (existing registered model)", lambda: mlflow.register_model(f"runs:/{rid}/model", m1).version)
step("setup: MlflowClient.create_logged_model(eid, name='lmodel', source_run_id=rid)", lambda: c.create_logged_model(eid, name="lmodel", source_run_id=rid).model_id)
step("mlflow.register_model('runs:/rid/lmodel','m3') [logged model, no artifacts]", lambda: vars(mlflow.register_model(f"runs:/{rid}/lmodel", "m3")))
step("MlflowClient.set_registered_model_alias(m1,'champion','1')", lambda: c.set_registered_model_alias(m1, "champion", "1"))
step("MlflowClient.get_model_version_by_alias(m1,'champion')", lambda: vars(c.get_model_version_by_alias(m1, "champion")))
step("MlflowClient.get_registered_model(m1)", lambda: vars(c.get_registered_model(m1)))
step("MlflowClient.get_model_version(m1,'1')", lambda: vars(c.get_model_version(m1, "1")))
step("MlflowClient.get_latest_versions(m1)", lambda: [v.version for v in c.get_latest_versions(m1)])
step("MlflowClient.search_registered_models(name LIKE 'm%')", lambda: [m.name for m in c.search_registered_models(filter_string="name LIKE 'm%'")])
step("MlflowClient.search_model_versions(name='m1')", lambda: [(v.name, v.version) for v in c.search_model_versions(filter_string="name='m1'")])
step("MlflowClient.set_model_version_tag(m1,'1','stage','prod')", lambda: c.set_model_version_tag(m1, "1", "stage", "prod"))
step("MlflowClient.set_registered_model_tag(m1,'owner','me')", lambda: c.set_registered_model_tag(m1, "owner", "me"))
step("MlflowClient.delete_registered_model_alias(m1,'champion')", lambda: c.delete_registered_model_alias(m1, "champion"))
step("error: get_model_version_by_alias(m1,'champion') after delete", lambda: c.get_model_version_by_alias(m1, "champion"))
step("MlflowClient.download_artifacts('models:/m1/1') (nothing there)", lambda: mlflow.artifacts.download_artifacts("models:/m1/1", dst_path=tempfile.mkdtemp()))

# logged models
step("mlflow.initialize_logged_model(name='lm1')", lambda: vars(mlflow.initialize_logged_model(name="lm1", experiment_id=eid)))
lm = step("MlflowClient.create_logged_model(eid, name='lm2', params, tags)",
          lambda: c.create_logged_model(eid, name="lm2", params={"a": "1"}, tags={"b": "2"}, model_type="agent"))
if lm is not None:
    step("MlflowClient.get_logged_model", lambda: vars(c.get_logged_model(lm.model_id)))
    step("MlflowClient.finalize_logged_model READY", lambda: c.finalize_logged_model(lm.model_id, "READY").status)
    step("MlflowClient.set_logged_model_tags", lambda: c.set_logged_model_tags(lm.model_id, {"c": "3"}))
    step("MlflowClient.log_model_params", lambda: c.log_model_params(lm.model_id, {"p2": "v2"}) if hasattr(c, "log_model_params") else "n/a")
step("MlflowClient.search_logged_models([eid])", lambda: [m.name for m in c.search_logged_models([eid])])
step("mlflow.search_logged_models(output_format='list')", lambda: [m.name for m in mlflow.search_logged_models(experiment_ids=[eid], output_format="list")])


def do_logged_model_in_run():
    with mlflow.start_run(run_name="lm-run") as r2:
        m = mlflow.initialize_logged_model(name="lm3")
        mlflow.log_metric("lmm", 1.0, model_id=m.model_id)
        return m.model_id


step("run + initialize_logged_model + log_metric(model_id)", do_logged_model_in_run)

# prompts
genai = getattr(mlflow, "genai", None)
rp = getattr(genai, "register_prompt", None) or getattr(mlflow, "register_prompt", None)
lp = getattr(genai, "load_prompt", None) or getattr(mlflow, "load_prompt", None)
if rp:
    step("mlflow.genai.register_prompt('p1')", lambda: vars(rp(name="p1", template="Hello {{name}}", commit_message="c1", tags={"t": "1"})))
    step("mlflow.genai.register_prompt('p1') v2", lambda: rp(name="p1", template="Hi {{name}}!").version)
if lp:
    step("mlflow.genai.load_prompt('prompts:/p1/1')", lambda: lp("prompts:/p1/1").template)
    step("mlflow.genai.load_prompt('p1', version=2)", lambda: lp("p1", version=2).format(name="x"))

step("MlflowClient.delete_run(child)", lambda: c.delete_run(child) if child else None)
step("MlflowClient.set_terminated(rid,'FAILED')", lambda: c.set_terminated(rid, "FAILED"))
step("MlflowClient.log_batch(rid, metrics, params, tags)", lambda: c.log_batch(rid, metrics=[mlflow.entities.Metric("b", 1.5, 1700000000000, 0)],
     params=[mlflow.entities.Param("bp", "1")], tags=[mlflow.entities.RunTag("bt", "1")]))
step("path traversal: log_artifact(file1, artifact_path='../evil')", lambda: c.log_artifact(rid, f1, artifact_path="../evil"))
step("path traversal: list_artifacts(rid, '../')", lambda: c.list_artifacts(rid, "../"))
step("path traversal: download_artifacts(rid,'../x')", lambda: c.download_artifacts(rid, "../x", tempfile.mkdtemp()))
print("done")
