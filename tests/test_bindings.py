"""Provider bindings with a status and observed figures: bind, update without rebinding, list, search."""

from __future__ import annotations

import json

import pytest
from conftest import log_lines, snapshot

from modelreg.errors import NotFound, UsageError

MODEL = "chat"


@pytest.fixture
def served(cli, project):
    for v in ("1.0.0", "1.1.0"):
        assert cli("register", MODEL, v)[0] == 0
    assert cli("promote", f"{MODEL}@1.1.0", "production")[0] == 0
    code, _, err = cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--id", "gpt-4-0125",
                       "--endpoint", "https://api.openai.com/v1", "-p", "temperature=0.2")
    assert code == 0 and "(active)" in err, err
    assert cli("bind", f"{MODEL}@1.0.0", "--provider", "openai", "--id", "gpt-4-0613", "--status", "deprecated")[0] == 0
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "azure", "--id", "gpt4-eu", "--status", "inactive")[0] == 0
    return project


def binding(cli, version, provider):
    return json.loads(cli("show", f"{MODEL}@{version}", "--json")[1])["bindings"][provider]


def test_bind_records_status_and_a_new_binding_is_active(cli, served):
    b = binding(cli, "1.1.0", "openai")
    assert (b["id"], b["status"], b["endpoint"], b["params"]) == (
        "gpt-4-0125", "active", "https://api.openai.com/v1", {"temperature": 0.2})
    assert b["latency_ms"] is None and b["success_rate"] is None and b["last_used"] is None
    assert binding(cli, "1.0.0", "openai")["status"] == "deprecated"
    ev = [e for e in log_lines(served, MODEL) if e["action"] == "bind"][0]
    assert ev["data"]["status"] == "active"


def test_observed_figures_update_the_binding_without_replacing_it(cli, served):
    code, out, err = cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--latency-ms", "120",
                         "--success-rate", "0.995", "--last-used", "2026-05-01T12:00:00Z", "--json")
    assert code == 0, err
    ev = json.loads(out)
    assert ev["action"] == "bind-update" and ev["data"] == {
        "provider": "openai", "latency_ms": 120, "success_rate": 0.995, "last_used": "2026-05-01T12:00:00.000000Z"}
    b = binding(cli, "1.1.0", "openai")
    assert b["id"] == "gpt-4-0125" and b["params"] == {"temperature": 0.2} and b["status"] == "active"
    assert b["latency_ms"] == 120 and b["success_rate"] == 0.995 and b["last_used"] == "2026-05-01T12:00:00.000000Z"
    assert b["updated_at"] == ev["time"] and b["time"] < ev["time"]  # bound earlier, updated now
    # another report replaces only what it carries
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--latency-ms", "95.5", "--last-used", "now")[0] == 0
    b = binding(cli, "1.1.0", "openai")
    assert b["latency_ms"] == 95.5 and b["success_rate"] == 0.995 and b["last_used"] > "2026-05-01T12:00:00Z"
    # the status changes the same way, e.g. when a provider retires the model
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--status", "deprecated")[0] == 0
    assert binding(cli, "1.1.0", "openai")["status"] == "deprecated"
    # binding again (with --id) replaces the whole binding: figures start over
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--id", "gpt-4o")[0] == 0
    b = binding(cli, "1.1.0", "openai")
    assert b["id"] == "gpt-4o" and b["status"] == "active" and b["latency_ms"] is None


def test_bindings_lists_and_filters(cli, served):
    rows = json.loads(cli("bindings", "--json")[1])
    assert [(r["version"], r["provider"], r["status"]) for r in rows] == [
        ("1.0.0", "openai", "deprecated"), ("1.1.0", "azure", "inactive"), ("1.1.0", "openai", "active")]
    assert rows[2]["stages"] == ["production"] and rows[2]["id"] == "gpt-4-0125"
    assert rows[2]["name"] == MODEL and rows[2]["digest"].startswith("sha256:")
    rows = json.loads(cli("bindings", MODEL, "--provider", "openai", "--status", "active", "--json")[1])
    assert [(r["version"], r["id"]) for r in rows] == [("1.1.0", "gpt-4-0125")]
    assert json.loads(cli("bindings", "--status", "inactive", "--json")[1])[0]["provider"] == "azure"
    assert json.loads(cli("bindings", "--provider", "nobody", "--json")[1]) == []
    code, out, _ = cli("bindings")
    assert code == 0 and out.splitlines()[0].split()[:5] == ["MODEL", "VERSION", "PROVIDER", "ID", "STATUS"]
    assert "gpt-4-0613" in out and "deprecated" in out


def test_search_sees_bindings(cli, served):
    found = json.loads(cli("search", "--where", "bindings.openai.id == gpt-4-0125", "--json")[1])
    assert [r["version"] for r in found] == ["1.1.0"]
    assert found[0]["bindings"]["openai"]["status"] == "active"
    found = json.loads(cli("search", "--where", "bindings.openai.status == deprecated", "--json")[1])
    assert [r["version"] for r in found] == ["1.0.0"]
    found = json.loads(cli("search", "--where", "bindings.azure.status != null", "--json")[1])
    assert [r["version"] for r in found] == ["1.1.0"]
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--latency-ms", "300")[0] == 0
    found = json.loads(cli("search", "--where", "bindings.openai.latency_ms > 250", "--json")[1])
    assert [r["version"] for r in found] == ["1.1.0"]


@pytest.mark.parametrize("args, code, needle", [
    (["--provider", "openai", "--status", "retired"], 2, "--status must be one of active, inactive, deprecated"),
    (["--provider", "openai", "--success-rate", "1.5"], 2, "1.5"),
    (["--provider", "openai", "--latency-ms", "-3"], 2, "-3"),
    (["--provider", "openai", "--last-used", "yesterday"], 2, "ISO 8601"),
    (["--provider", "openai"], 2, "give --status, --endpoint, --latency-ms"),
    (["--provider", "gcp", "--latency-ms", "5"], 3, "has no binding to gcp"),
    (["--provider", "openai", "-p", "x=1"], 2, "--param needs --id"),
    (["--provider", "openai", "--endpoint", "https://user:secret@api.example.com"], 2, ""),
    (["--provider", "openai", "--id", "x", "--status", "bogus"], 2, "--status"),
])
def test_bind_refusals_change_nothing(cli, served, args, code, needle):
    before = snapshot(served / ".modelreg")
    got, out, err = cli("bind", f"{MODEL}@1.1.0", *args, "--json")
    assert got == code and needle in err, err
    assert json.loads(out)["error"]["code"] == code and err.count("\n") == 1
    assert snapshot(served / ".modelreg") == before


def test_bindings_refusals(cli, served):
    assert cli("bindings", "nosuch")[0] == 3
    assert cli("bindings", "--status", "gone")[0] == 2
    assert cli("bindings", "--provider", "Bad Name")[0] == 2


def test_library(reg):
    reg.register(MODEL, "1")
    reg.bind(f"{MODEL}@1", "hf", "org/chat", status="inactive", latency_ms=10)
    ev = reg.update_binding(f"{MODEL}@1", "hf", success_rate=1, last_used="2026-01-02")
    assert ev.data == {"provider": "hf", "success_rate": 1, "last_used": "2026-01-02T00:00:00.000000Z"}
    [b] = reg.bindings()
    assert (b.status, b.latency_ms, b.success_rate) == ("inactive", 10, 1)
    with pytest.raises(NotFound):
        reg.update_binding(f"{MODEL}@1", "other", status="active")
    with pytest.raises(UsageError):
        reg.bind(f"{MODEL}@1", "hf", "x", success_rate=float("nan"))
    reg.unbind(f"{MODEL}@1", "hf")
    assert reg.bindings() == []


def test_a_binding_recorded_before_statuses_reads_as_active(reg):
    from modelreg import log
    from modelreg.log import Event

    reg.register(MODEL, "1")
    digest = reg.resolve(f"{MODEL}@1").digest
    log.append(reg.logs_dir, Event("bind", MODEL, "old", version="1", to=digest,
                                   data={"provider": "p", "id": "x", "endpoint": None, "params": {}}))
    [b] = reg.bindings(MODEL)
    assert b.status == "active" and b.latency_ms is None


def test_observe_pairs_are_the_same_figures(cli, served):
    code, out, err = cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--observe", "latency_ms=88",
                         "--observe", "success_rate=0.9", "--observe", "last_used=2026-02-03T04:05:06+01:00", "--json")
    assert code == 0, err
    assert json.loads(out)["data"] == {"provider": "openai", "latency_ms": 88, "success_rate": 0.9,
                                       "last_used": "2026-02-03T03:05:06.000000Z"}
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--observe", "qps=3")[0] == 2
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--observe", "latency_ms=1", "--latency-ms", "2")[0] == 2
    assert cli("bind", f"{MODEL}@1.1.0", "--provider", "openai", "--observe", "success_rate=high")[0] == 2
