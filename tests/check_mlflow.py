#!/usr/bin/env python3
"""Reads lenet5 runs back from a real MLflow server with MLflow's own client and compares them with the run
directories (tests/mlflow.rs runs it). Usage: check_mlflow.py URI EXPERIMENT GROUP|- RUN_DIR...

For each run (its mlflow.json names the MLflow run): the experiment's name; the params equal the run's
config.yaml flattened to key.path; each epoch metric's history equals metrics.csv's column, step = epoch;
test_accuracy and test_loss equal test.json's; the tags carry the commit of provenance.json, the seed and
(GROUP not `-`) the sweep group; the status is FINISHED; every uploaded artifact is byte-equal to the run's
file. Exits 1 naming the first mismatch."""
import csv, json, math, os, sys, tempfile

import yaml
from mlflow.tracking import MlflowClient

uri, experiment, group, run_dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
client = MlflowClient(tracking_uri=uri)


def fail(msg):
    sys.exit(f"check_mlflow: {msg}")


def flatten(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from flatten(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], node


def as_param(v):
    """A YAML scalar as lenet5 writes it into a param (YAML's own spelling)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


for run_dir in run_dirs:
    record = json.load(open(os.path.join(run_dir, "mlflow.json")))
    run = client.get_run(record["run_id"])
    name = client.get_experiment(run.info.experiment_id).name
    if name != experiment:
        fail(f"{run_dir}: experiment {name!r}, expected {experiment!r}")
    if run.info.status != "FINISHED":
        fail(f"{run_dir}: status {run.info.status}")
    config = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))
    params = run.data.params
    for key, value in flatten(config):
        got = params.get(key)
        if got is None:
            fail(f"{run_dir}: param {key} missing")
        if isinstance(value, list):
            same = json.loads(got) == value
        elif isinstance(value, float):
            same = math.isclose(float(got), value)
        else:
            same = got == as_param(value)
        if not same:
            fail(f"{run_dir}: param {key} = {got!r}, config.yaml has {value!r}")
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    for column, key in [("loss", "loss"), ("accuracy", "accuracy"), ("val_loss", "val_loss"),
                        ("val_accuracy", "val_accuracy"), ("lr", "lr"), ("seconds", "epoch_seconds")]:
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        expected = [(int(r["epoch"]), float(r[column])) for r in rows]
        if len(history) != len(expected) or any(
            s != es or not math.isclose(v, ev, rel_tol=1e-12) for (s, v), (es, ev) in zip(history, expected)
        ):
            fail(f"{run_dir}: metric {key} history {history}, metrics.csv has {expected}")
    test = json.load(open(os.path.join(run_dir, "test.json")))
    for key in ["accuracy", "loss"]:
        if not math.isclose(run.data.metrics[f"test_{key}"], test[key], rel_tol=1e-12):
            fail(f"{run_dir}: test_{key} {run.data.metrics[f'test_{key}']}, test.json has {test[key]}")
    tags = run.data.tags
    provenance = json.load(open(os.path.join(run_dir, "provenance.json")))
    if tags.get("lenet5.commit") != provenance[-1]["commit"]:
        fail(f"{run_dir}: commit tag {tags.get('lenet5.commit')}, provenance.json has {provenance[-1]['commit']}")
    if tags.get("lenet5.seed") != str(config["trainer"]["seed"]):
        fail(f"{run_dir}: seed tag {tags.get('lenet5.seed')}")
    if group != "-" and tags.get("lenet5.group") != group:
        fail(f"{run_dir}: group tag {tags.get('lenet5.group')}, expected {group}")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    wanted = {"config.yaml", "metrics.csv", "state.json", "test.json", "provenance.json", "best.safetensors"}
    if artifacts != wanted:
        fail(f"{run_dir}: artifacts {sorted(artifacts)}, expected {sorted(wanted)}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            path = client.download_artifacts(run.info.run_id, name, tmp)
            if open(path, "rb").read() != open(os.path.join(run_dir, name), "rb").read():
                fail(f"{run_dir}: artifact {name} differs from the run's file")
print(f"checked {len(run_dirs)} runs")
