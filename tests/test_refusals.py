"""Every refusal: the documented exit code, one 'modelreg: error:' line, no traceback, nothing changed."""

from __future__ import annotations

import pytest
from conftest import log_lines, snapshot

MODEL = "faq-bot"


@pytest.fixture
def populated(cli, make_artifact, project):
    """faq-bot 1.0.0 (in production) and 2.0.0; stage staging empty."""
    make_artifact("m.bin", b"x")
    assert cli("register", MODEL, "1.0.0", "-a", "checkpoint=m.bin")[0] == 0
    assert cli("register", MODEL, "2.0.0")[0] == 0
    assert cli("promote", f"{MODEL}@1.0.0", "production", "--expect", "none")[0] == 0
    return project


def check_refusal(cli, project, args, code):
    before = snapshot(project / ".modelreg")
    got, out, err = cli(*args)
    assert got == code, (args, got, err)
    assert out == ""
    assert err.startswith("modelreg: error:"), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert snapshot(project / ".modelreg") == before
    return err


LONG = "a" * 300

BAD_MODELS = ["../x", "a/b", "CON", "con", "con.txt", "", LONG, "x.lock", "UPPER", "modèle", "-x", "a..b", "x."]
BAD_VERSIONS = ["latest", "LATEST", "production", "staging", "../x", "a/b", "", "v" * 300, "1.0.lock", "1.0é", "nul"]


@pytest.mark.parametrize("name", BAD_MODELS, ids=repr)
def test_register_bad_model_name(cli, populated, name):
    check_refusal(cli, populated, ("register", name, "1.0.0"), 2)


@pytest.mark.parametrize("version", BAD_VERSIONS, ids=repr)
def test_register_bad_version_name(cli, populated, version):
    check_refusal(cli, populated, ("register", MODEL, version), 2)


@pytest.mark.parametrize("name", [n for n in BAD_MODELS if n], ids=repr)
def test_bad_model_name_in_references(cli, populated, name):
    check_refusal(cli, populated, ("resolve", f"{name}@1.0.0"), 2)
    check_refusal(cli, populated, ("rollback", name, "production"), 2)


@pytest.mark.parametrize(
    "ref",
    [
        "", "faq-bot", "faq-bot@", "@1.0.0", "faq-bot@../x", "faq-bot@a/b",
        "sha256:", "sha256:XYZ1234", "sha256:ABCDEF01", "sha256:" + "a" * 65,
        "faq-bot@sha256:zzzzzzz", "faq-bot@1.0.0@2",
    ],
    ids=repr,
)
def test_bad_references(cli, populated, ref):
    check_refusal(cli, populated, ("resolve", ref), 2)
    check_refusal(cli, populated, ("promote", ref, "staging"), 2)


@pytest.mark.parametrize("prefix_len", [0, 1, 6])
def test_digest_prefix_too_short(cli, populated, prefix_len):
    digest = cli("resolve", f"{MODEL}@1.0.0", "--digest")[1].strip()
    short = digest[: 7 + prefix_len]
    err = check_refusal(cli, populated, ("resolve", short), 2)
    assert ("at least 7" if prefix_len else "lower-case hex") in err
    check_refusal(cli, populated, ("resolve", f"{MODEL}@{short}"), 2)


@pytest.mark.parametrize(
    "args",
    [
        ("resolve", f"{MODEL}@9.9.9"),
        ("resolve", f"{MODEL}@staging"),  # empty stage
        ("resolve", "nosuch@1.0.0"),
        ("resolve", "nosuch@latest"),
        ("resolve", "sha256:0000000"),
        ("show", f"{MODEL}@9.9.9"),
        ("show", "nosuch@production"),
        ("promote", f"{MODEL}@9.9.9", "staging"),
        ("promote", "nosuch@1.0.0", "staging"),
        ("promote", f"{MODEL}@2.0.0", "production", "--expect", "9.9.9"),
        ("archive", f"{MODEL}@9.9.9"),
        ("diff", f"{MODEL}@1.0.0", f"{MODEL}@9.9.9"),
        ("ls", "nosuch"),
        ("log", "nosuch"),
        ("rollback", "nosuch", "production"),
        ("rollback", MODEL, "staging"),  # empty stage: nothing to roll back
        ("rollback", MODEL, "production"),  # no earlier value in the log
        ("rollback", MODEL, "production", "--to", "9.9.9"),
        ("register", MODEL, "3.0.0", "-a", "checkpoint=missing.bin"),
    ],
    ids=lambda a: " ".join(a),
)
def test_not_found(cli, populated, args):
    check_refusal(cli, populated, args, 3)


def test_rollback_no_earlier_value_message(cli, populated):
    err = check_refusal(cli, populated, ("rollback", MODEL, "production"), 3)
    assert "--to" in err


@pytest.mark.parametrize(
    "expect",
    ["none", "2.0.0", "sha256:" + "0" * 64],
    ids=["none", "other-version", "unknown-digest"],
)
def test_stale_expect(cli, populated, expect):
    if expect.startswith("sha256:"):
        # a full digest that names no object: not found rather than a conflict
        check_refusal(cli, populated, ("promote", f"{MODEL}@2.0.0", "production", "--expect", expect), 3)
        return
    err = check_refusal(cli, populated, ("promote", f"{MODEL}@2.0.0", "production", "--expect", expect), 4)
    assert "1.0.0" in err  # names what the stage really holds


def test_stale_expect_by_digest(cli, populated):
    d2 = cli("resolve", f"{MODEL}@2.0.0", "--digest")[1].strip()
    check_refusal(cli, populated, ("promote", f"{MODEL}@2.0.0", "production", "--expect", d2[:20]), 4)


@pytest.mark.parametrize("stage", ["nosuch", "../x", "Production", "a/b", ""], ids=repr)
def test_unknown_or_bad_stage(cli, populated, stage):
    check_refusal(cli, populated, ("promote", f"{MODEL}@2.0.0", stage), 2)
    check_refusal(cli, populated, ("rollback", MODEL, stage), 2)


@pytest.mark.parametrize(
    "args",
    [
        ("register", MODEL),  # no version
        ("register", MODEL, "3.0.0", "-p", "novalue"),
        ("register", MODEL, "3.0.0", "-p", "a=1", "-p", "a=2"),
        ("register", MODEL, "3.0.0", "-a", ""),
        ("register", MODEL, "3.0.0", "-a", "Bad Role=x.bin"),
        ("register", MODEL, "3.0.0", "--lineage", "bogus", "--parent", f"{MODEL}@1.0.0"),
        ("log", "--stage", "production"),
        ("log", MODEL, "--limit", "-1"),
        ("nosuchcommand",),
        ("promote", f"{MODEL}@2.0.0"),  # missing STAGE
        ("resolve", f"{MODEL}@1.0.0", "--bogus-flag"),
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors(cli, populated, args):
    check_refusal(cli, populated, args, 2)


def test_conflicting_register(cli, populated):
    err = check_refusal(cli, populated, ("register", MODEL, "2.0.0", "-d", "changed"), 4)
    assert "description" in err


def test_version_differing_only_by_case_refused(cli, populated):
    assert cli("register", MODEL, "rc1")[0] == 0
    code, out, err = cli("register", MODEL, "RC1")
    assert code == 4 and out == "" and "differs only by case" in err and err.count("\n") == 1
    assert not (populated / ".modelreg" / "versions" / MODEL / "RC1").exists()
    assert [e["version"] for e in log_lines(populated, MODEL) if e["action"] == "register"] == ["1.0.0", "2.0.0", "rc1"]


def test_version_differing_only_by_case_changes_nothing(cli, populated):
    cli("register", MODEL, "rc1")
    check_refusal(cli, populated, ("register", MODEL, "RC1"), 4)


def test_archive_held_version_refused(cli, populated):
    check_refusal(cli, populated, ("archive", f"{MODEL}@1.0.0"), 5)


def test_no_registry(cli, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, out, err = cli("ls")
    assert code == 3 and out == "" and err.startswith("modelreg: error:") and err.count("\n") == 1
    assert not (empty / ".modelreg").exists()
