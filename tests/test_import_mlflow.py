"""``modelreg import mlflow`` against a real MLflow tracking server on 127.0.0.1, populated through MLflow's client.

The server (sqlite backend in a temp dir) starts once per session (tests/servers.py); each test
uses its own registered-model names and imports only those (``--model``).
"""

from __future__ import annotations

import json
import uuid
import warnings
from pathlib import Path

import pytest

from conftest import log_lines, snapshot
from servers import closed_port

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture
def client(mlflow_server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server)


def _name(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def _run_with_metrics(client, **metrics) -> str:
    exp = client.create_experiment(f"exp-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp)
    for key, values in metrics.items():
        for step, value in enumerate(values if isinstance(values, list) else [values]):
            client.log_metric(run.info.run_id, key, value, step=step)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def _import(cli, url: str, *args: str) -> dict:
    code, out, err = cli("import", "mlflow", "--tracking-uri", url, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_versions_aliases_stages_and_metrics(cli, client, mlflow_server, project: Path):
    name = _name("Churn Model")
    run_id = _run_with_metrics(client, acc=[0.91, 0.93], loss=0.2)
    client.create_registered_model(name, description="churn")
    v1 = client.create_model_version(name, source="s3://bucket/churn/1", run_id=run_id, description="first",
                                     tags={"team": "ds"})
    v2 = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    client.create_model_version(name, source="s3://bucket/churn/3")
    client.create_model_version(name, source="s3://bucket/churn/4")
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "shadow", "4")
    client.transition_model_version_stage(name, "2", "Staging")
    client.transition_model_version_stage(name, "3", "Archived")
    model = _slug(name)

    data = _import(cli, mlflow_server, "--model", name)
    assert data["versions_created"] == 4 and data["stages_added"] == ["shadow"]
    code, out, _ = cli("ls", model, "--json")
    rows = {r["version"]: r for r in json.loads(out)}
    assert {v: r["stages"] for v, r in rows.items()} == {"1": ["production"], "2": ["staging"], "3": [], "4": ["shadow"]}
    assert [v for v, r in rows.items() if r["archived"]] == ["3"]
    assert "shadow" in (project / ".modelreg" / "config.yaml").read_text()

    code, out, _ = cli("show", f"{model}@1", "--json")
    info = json.loads(out)
    m = info["manifest"]
    assert m["artifacts"] == [{"role": "model", "uri": "s3://bucket/churn/1"}]
    assert m["description"] == "first"
    assert m["meta"]["mlflow"] == {"model": name, "version": "1", "run_id": run_id,
                                   "source": "s3://bucket/churn/1", "tags": {"team": "ds"}}
    assert info["metrics"] == {"mlflow": {"acc": 0.93, "loss": 0.2}}
    assert info["registered_at"] == _utc_ms(v1.creation_timestamp)
    assert info["registered_by"] == (v1.user_id or "tester@example.com")
    code, out, _ = cli("resolve", f"{model}@2", "--artifact", "model")
    assert out.strip() == f"runs:/{run_id}/model"

    events = log_lines(project, model)
    assert all(e["data"]["import"]["source"] == "mlflow" and "MLflow" in e["reason"] for e in events)
    staging = [e for e in events if e["stage"] == "staging"]
    assert len(staging) == 1 and staging[0]["version"] == "2"
    assert staging[0]["time"] == _utc_ms(client.get_model_version(name, "2").last_updated_timestamp)
    assert staging[0]["actor"] == "tester@example.com"  # MLflow keeps no history: the import is the event
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    assert v2.version == "2"

    # again: nothing new, nothing changes
    before = snapshot(project / ".modelreg")
    again = _import(cli, mlflow_server, "--model", name)
    assert again["events_written"] == 0 and not again["changed"]
    assert snapshot(project / ".modelreg") == before

    # MLflow moves on: champion -> 2, version 4 deleted (its alias goes with it), a new version 5
    client.set_registered_model_alias(name, "champion", "2")
    client.delete_model_version(name, "4")
    client.create_model_version(name, source="s3://bucket/churn/5")
    later = _import(cli, mlflow_server, "--model", name)
    new = [(e["action"], e["version"], e["stage"]) for m in later["models"] for e in m["events"]]
    assert sorted(new, key=str) == sorted([("register", "5", None), ("promote", "2", "production"),
                                           ("clear", "4", "shadow"), ("archive", "4", None)], key=str)
    code, out, _ = cli("ls", model, "--json")
    rows = {r["version"]: r for r in json.loads(out)}
    assert rows["2"]["stages"] == ["staging", "production"] or sorted(rows["2"]["stages"]) == ["production", "staging"]
    assert rows["4"]["archived"] and rows["4"]["stages"] == []
    assert _import(cli, mlflow_server, "--model", name)["events_written"] == 0
    code, out, err = cli("fsck")
    assert code == 0, out + err


def _utc_ms(ms: int) -> str:
    from modelreg.history import utc

    return utc(ms / 1000)


def test_stage_map_dry_run_and_metrics_suite(cli, client, mlflow_server, project: Path):
    name = _name("fraud")
    run_id = _run_with_metrics(client, auc=0.8)
    client.create_registered_model(name)
    client.create_model_version(name, source="s3://bucket/fraud/1", run_id=run_id)
    client.create_model_version(name, source="s3://bucket/fraud/2")
    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "2", "Staging")
    model = _slug(name)

    before = snapshot(project / ".modelreg")
    code, out, err = cli("import", "mlflow", "--tracking-uri", mlflow_server, "--model", name,
                         "--stage-map", "champion=qa", "--stage-map", "Staging=none", "--dry-run")
    assert code == 0, err
    assert "promote" in out and "would import 2 new version(s)" in err and "would add stage(s) qa" in err
    assert snapshot(project / ".modelreg") == before

    data = _import(cli, mlflow_server, "--model", name, "--stage-map", "@champion=qa,staging=none",
                   "--metrics-suite", "offline-eval")
    assert data["stages_added"] == ["qa"]
    code, out, _ = cli("ls", model, "--json")
    assert {r["version"]: r["stages"] for r in json.loads(out)} == {"1": ["qa"], "2": []}
    code, out, _ = cli("metrics", "show", f"{model}@1", "--json")
    assert json.loads(out) == {"offline-eval": {"auc": 0.8}}


def test_library_call(client, mlflow_server, reg):
    from modelreg.importers import mlflow as mlflow_import

    name = _name("lib")
    client.create_registered_model(name)
    client.create_model_version(name, source="s3://bucket/models/lib-1")
    result = mlflow_import.import_registry(reg, mlflow_server, models=[name])
    assert result.versions_created == 1 and result.models[0].name == _slug(name)
    assert reg.resolve(f"{_slug(name)}@1").version == "1"


def test_errors_are_one_line(cli, mlflow_server, project: Path):
    before = snapshot(project / ".modelreg")
    cases = [
        (["--tracking-uri", f"http://127.0.0.1:{closed_port()}"], 7, "cannot reach"),
        (["--tracking-uri", mlflow_server, "--model", "no such model"], 3, "MLflow"),
        (["--tracking-uri", "sqlite:///mlflow.db"], 2, "REST API"),
        (["--tracking-uri", "http://user:secret@127.0.0.1:1"], 2, "credentials"),
        (["--tracking-uri", mlflow_server, "--stage-map", "champion"], 2, "--stage-map"),
        (["--tracking-uri", mlflow_server, "--metrics-suite", "Bad Suite"], 2, "suite"),
        ([], 2, "--tracking-uri"),
    ]
    for args, code_wanted, text in cases:
        code, out, err = cli("import", "mlflow", *args)
        assert code == code_wanted, (args, code, err)
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and text in lines[0] and "Traceback" not in err, (args, err)
        assert "secret" not in err
    assert snapshot(project / ".modelreg") == before


def test_later_changes_conflicts_and_warnings(cli, client, mlflow_server, project: Path):
    name = _name("ranker")
    run_id = _run_with_metrics(client, ndcg=0.5)
    client.create_registered_model(name)
    for i in range(3):
        client.create_model_version(name, source=f"s3://bucket/ranker/v{i + 1}", run_id=run_id if i == 0 else None)
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Production")  # two in Production: the later one wins
    client.transition_model_version_stage(name, "3", "Archived")
    model = _slug(name)
    code, out, err = cli("import", "mlflow", "--tracking-uri", mlflow_server, "--model", name, "--json")
    assert code == 0, err
    assert "all map to stage production; the most recently updated, 2, takes it" in err
    code, out, _ = cli("ls", model, "--json")
    assert {r["version"]: (r["stages"], r["archived"]) for r in json.loads(out)} == {
        "1": ([], False), "2": (["production"], False), "3": ([], True)}

    # MLflow moves on: a metric is logged again, version 3 leaves Archived
    client.log_metric(run_id, "ndcg", 0.7, step=1)
    client.transition_model_version_stage(name, "3", "None")
    data = _import(cli, mlflow_server, "--model", name)
    got = sorted((e["action"], e["version"]) for m in data["models"] for e in m["events"])
    assert got == [("metrics", "1"), ("unarchive", "3")]
    code, out, _ = cli("metrics", "show", f"{model}@1", "--json")
    assert json.loads(out) == {"mlflow": {"ndcg": 0.7}}

    # two aliases that map to one stage but name different versions: refused, nothing written
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "prod", "3")
    before = snapshot(project / ".modelreg")
    code, out, err = cli("import", "mlflow", "--tracking-uri", mlflow_server, "--model", name,
                         "--stage-map", "prod=production")
    assert code == 2 and "both map to stage production" in err
    assert snapshot(project / ".modelreg") == before
