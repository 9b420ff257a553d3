"""Model records (model set / model show) and ratings: events of the model's log, folded like annotations,
seen by ls, show and search."""

from __future__ import annotations

import json

import pytest
from conftest import log_lines, snapshot

from modelreg.errors import NotFound, UsageError
from modelreg.registry import Registry

MODEL = "faq-bot"


@pytest.fixture
def versions(cli, project):
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert cli("register", MODEL, v)[0] == 0
    assert cli("promote", f"{MODEL}@1.1.0", "production")[0] == 0
    return project


# ------------------------------------------------------------------ model records
def test_model_set_records_an_event_and_show_folds_it(cli, versions):
    code, out, err = cli("model", "set", MODEL, "task=qa", "description=Answers FAQ questions", "subject=support",
                         "owner=ml-team@example.com", "epochs=3", "links.docs=https://example.com/faq",
                         "--reason", "catalogue")
    assert code == 0, err
    assert "Set" in err and out == ""
    ev = log_lines(versions, MODEL)[-1]
    assert ev["action"] == "model" and ev["version"] is None and ev["to"] is None and ev["reason"] == "catalogue"
    assert ev["data"]["fields"]["task"] == "qa" and ev["data"]["fields"]["epochs"] == 3
    doc = json.loads(cli("model", "show", MODEL, "--json")[1])
    assert doc["name"] == MODEL and doc["task"] == "qa" and doc["subject"] == "support"
    assert doc["owner"] == "ml-team@example.com" and doc["description"] == "Answers FAQ questions"
    assert doc["fields"]["epochs"] == 3 and doc["fields"]["links"] == {"docs": "https://example.com/faq"}
    assert doc["versions"] == 3 and doc["archived"] == 0 and doc["stages"] == {"production": "1.1.0"}
    assert doc["latest"] == "1.2.0"
    registered = [e["time"] for e in log_lines(versions, MODEL) if e["action"] == "register"]
    assert doc["first_registered"] == registered[0] and doc["last_registered"] == registered[-1]
    assert doc["updated_at"] == ev["time"] and doc["updated_by"] == ev["actor"]
    code, out, _ = cli("model", "show", MODEL)
    assert code == 0 and "task:" in out and "qa" in out and "production=1.1.0" in out


def test_later_values_win_mappings_merge_and_null_removes(cli, versions):
    assert cli("model", "set", MODEL, "task=qa", "links.docs=d", "links.code=c")[0] == 0
    assert cli("model", "set", MODEL, "task=summarization", "links.code=null", "owner=bob")[0] == 0
    fields = json.loads(cli("model", "show", MODEL, "--json")[1])["fields"]
    assert fields == {"task": "summarization", "links": {"docs": "d"}, "owner": "bob"}
    assert cli("model", "set", MODEL, "owner=null")[0] == 0
    assert json.loads(cli("model", "show", MODEL, "--json")[1])["owner"] is None


def test_setting_the_same_values_again_writes_nothing(cli, versions):
    assert cli("model", "set", MODEL, "task=qa")[0] == 0
    before = snapshot(versions / ".modelreg")
    code, out, err = cli("model", "set", MODEL, "task=qa", "--json")
    assert code == 0 and json.loads(out)["changed"] is False and "nothing changed" not in out
    assert snapshot(versions / ".modelreg") == before


def test_values_are_typed_by_the_one_rule_and_text_fields_stay_text(cli, versions):
    assert cli("model", "set", MODEL, "task=1.10", "owner='007'", "params=12", "score=0.90", "flag=true",
               "note='\"0.90\"'", 'label="x y"')[0] == 0
    fields = json.loads(cli("model", "show", MODEL, "--json")[1])["fields"]
    assert fields["task"] == "1.10" and fields["owner"] == "007"  # text fields keep the text typed
    assert fields["params"] == 12 and fields["score"] == 0.9 and fields["flag"] is True
    assert fields["note"] == '"0.90"' and fields["label"] == "x y"


@pytest.mark.parametrize("args, code, needle", [
    (["model", "set", "nosuch", "task=qa"], 3, "no model named 'nosuch'"),
    (["model", "set", MODEL], 2, "missing argument 'KEY=VALUE...'"),
    (["model", "set", MODEL, "task"], 2, "expected KEY=VALUE"),
    (["model", "set", MODEL, "bad key=1"], 2, "invalid model field name"),
    (["model", "set", MODEL, "Bad!=1"], 2, "invalid model field name"),
    (["model", "show", "nosuch"], 3, "no model named"),
    (["model", "show", "faq-bto"], 3, "did you mean 'faq-bot'"),
])
def test_model_refusals(cli, versions, args, code, needle):
    before = snapshot(versions / ".modelreg")
    got, out, err = cli(*args, "--json")
    assert got == code and needle in err, err
    assert json.loads(out)["error"]["code"] == code
    assert snapshot(versions / ".modelreg") == before


def test_library_checks_the_text_fields(reg):
    reg.register(MODEL, "1")
    with pytest.raises(UsageError, match="'task' is text"):
        reg.set_model(MODEL, {"task": 3})
    with pytest.raises(UsageError, match="at least one"):
        reg.set_model(MODEL, {})
    with pytest.raises(NotFound):
        reg.set_model("other", {"task": "qa"})
    ev = reg.set_model(MODEL, {"task": "qa", "size": {"params": 7e9}})
    assert ev is not None and reg.model_info(MODEL).fields == {"task": "qa", "size": {"params": 7e9}}
    assert reg.set_model(MODEL, {"task": "qa"}) is None


def test_ls_and_search_see_model_fields(cli, versions):
    assert cli("register", "other", "1.0", "--new-model")[0] == 0
    assert cli("model", "set", MODEL, "task=qa", "owner=alice")[0] == 0
    assert cli("model", "set", "other", "task=ner")[0] == 0
    models = {m["name"]: m for m in json.loads(cli("ls", "--json")[1])}
    assert models[MODEL]["task"] == "qa" and models[MODEL]["fields"] == {"task": "qa", "owner": "alice"}
    assert models["other"]["task"] == "ner" and models["other"]["description"] is None
    found = json.loads(cli("search", "--where", "model.task == qa", "--json")[1])
    assert [(r["name"], r["version"]) for r in found] == [(MODEL, "1.0.0"), (MODEL, "1.1.0"), (MODEL, "1.2.0")]
    assert found[0]["model"] == {"task": "qa", "owner": "alice"}
    found = json.loads(cli("search", "--where", "model.task == ner", "--json")[1])
    assert [r["name"] for r in found] == ["other"]
    assert cli("search", "--where", "model.owner ~= ^ali", "--json")[1].count('"version"') == 3
    # a later change is seen at once (the search cache follows the log)
    assert cli("model", "set", MODEL, "task=summarization")[0] == 0
    assert json.loads(cli("search", "--where", "model.task == qa", "--json")[1]) == []


# ------------------------------------------------------------------ ratings
def test_rate_one_rating_per_actor_latest_wins(cli, versions):
    code, out, err = cli("rate", f"{MODEL}@1.1.0", "4", "--comment", "good answers")
    assert code == 0 and "4/5" in err
    assert cli("rate", f"{MODEL}@1.1.0", "5", "--actor", "bob@example.com")[0] == 0
    assert cli("rate", f"{MODEL}@1.1.0", "3", "--actor", "bob@example.com")[0] == 0  # bob changes his mind
    doc = json.loads(cli("show", f"{MODEL}@1.1.0", "--json")[1])
    assert doc["rating"] == {"avg": 3.5, "count": 2}
    assert doc["ratings"]["bob@example.com"]["score"] == 3
    assert doc["ratings"]["tester@example.com"]["comment"] == "good answers"
    assert json.loads(cli("show", f"{MODEL}@1.0.0", "--json")[1])["rating"] == {"avg": None, "count": 0}
    events = [e for e in log_lines(versions, MODEL) if e["action"] == "rate"]
    assert len(events) == 3 and events[0]["data"] == {"score": 4, "comment": "good answers"}
    code, out, _ = cli("rate", f"{MODEL}@1.0.0", "5", "--json")
    assert code == 0 and json.loads(out)["rating"] == {"avg": 5, "count": 1} and json.loads(out)["action"] == "rate"
    code, out, _ = cli("show", f"{MODEL}@1.1.0")
    assert "rating:" in out and "3.50 from 2" in out


def test_search_by_rating(cli, versions):
    assert cli("rate", f"{MODEL}@1.0.0", "5")[0] == 0
    assert cli("rate", f"{MODEL}@1.1.0", "2")[0] == 0
    assert cli("rate", f"{MODEL}@1.1.0", "5", "--actor", "bob")[0] == 0
    found = json.loads(cli("search", "--where", "rating.avg >= 4", "--json")[1])
    assert [r["version"] for r in found] == ["1.0.0"]
    assert found[0]["rating"] == {"avg": 5, "count": 1}
    found = json.loads(cli("search", "--where", "rating.count >= 1", "--sort", "-rating.avg", "--json")[1])
    assert [r["version"] for r in found] == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize("score", ["0", "6", "4.5", "abc", "-1"])
def test_a_rating_is_a_whole_number_from_1_to_5(cli, versions, score):
    before = snapshot(versions / ".modelreg")
    code, out, err = cli("rate", f"{MODEL}@1.0.0", score, "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == 2 and err.count("\n") == 1
    assert snapshot(versions / ".modelreg") == before


def test_rate_library(reg):
    reg.register(MODEL, "1")
    with pytest.raises(UsageError):
        reg.rate(f"{MODEL}@1", True)  # type: ignore[arg-type]
    reg.rate(f"{MODEL}@1", 2, actor="a")
    reg.rate(f"{MODEL}@1", 4, actor="b")
    assert reg.show(f"{MODEL}@1").rating == {"avg": 3.0, "count": 2}
    with pytest.raises(NotFound):
        reg.rate(f"{MODEL}@9", 3)


def test_fsck_accepts_the_new_events(cli, versions):
    assert cli("model", "set", MODEL, "task=qa")[0] == 0
    assert cli("rate", f"{MODEL}@1.0.0", "4")[0] == 0
    code, out, err = cli("fsck")
    assert code == 0 and out == "", out
    Registry.open(versions / ".modelreg")  # and the registry still opens
