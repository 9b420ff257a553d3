"""Checks at registration: params fingerprints, look-alike names, licenses; and license-check outcomes."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import run_cli

from modelreg import canonical
from modelreg.discovery import fingerprint
from modelreg.errors import Conflict, UsageError
from modelreg.registry import Registry


run = run_cli  # run(capsys, *args) -> (exit code, stdout, stderr)


@pytest.fixture
def project(bare_project):
    return bare_project


@pytest.fixture
def reg(project):
    return Registry.init(project)


def log_lines(reg: Registry, model: str) -> int:
    p = reg.path / "logs" / f"{model}.jsonl"
    return len(p.read_bytes().splitlines()) if p.exists() else 0


# ------------------------------------------------------------- fingerprints
def test_fingerprint_is_sha256_of_canonical_params():
    params = {"lr": 0.001, "optimizer": {"name": "adamw", "betas": [0.9, 0.99]}}
    assert fingerprint(params) == "sha256:" + hashlib.sha256(canonical.dump({"params": params})).hexdigest()
    assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})
    assert fingerprint({"lr": 0.001}) != fingerprint({"lr": 0.002})


def test_same_params_warns_naming_the_version(reg, capsys):
    assert run(capsys, "register", "bot", "1.0", "-p", "lr=0.001", "-p", "epochs=3")[0] == 0
    code, out, err = run(capsys, "register", "other", "2.0", "-p", "epochs=3", "-p", "lr=0.001")
    assert code == 0
    assert "warning: same params fingerprint as bot@1.0" in err
    code, out, _ = run(capsys, "register", "bot", "1.1", "-p", "epochs=3", "-p", "lr=0.001", "--json")
    dups = json.loads(out)["duplicates"]
    assert [f"{d['name']}@{d['version']}" for d in dups] == ["bot@1.0", "other@2.0"]


def test_library_result_carries_duplicates(reg):
    first = reg.register("bot", "1.0", params={"lr": 0.1})
    assert first.duplicates == []
    second = reg.register("bot", "1.1", params={"lr": 0.1})
    assert second.duplicates == [first.version]
    assert reg.register("bot", "1.2", params={"lr": 0.2}).duplicates == []


def test_no_warning_for_empty_params_or_an_identical_reregistration(reg, capsys):
    run(capsys, "register", "bot", "1.0")
    code, _, err = run(capsys, "register", "bot", "1.1")
    assert code == 0 and "warning" not in err
    run(capsys, "register", "bot", "2.0", "-p", "lr=1")
    code, _, err = run(capsys, "register", "bot", "2.0", "-p", "lr=1")
    assert code == 0 and "warning" not in err and "Already registered" in err


def test_strict_refuses_and_writes_nothing(reg, capsys):
    run(capsys, "register", "bot", "1.0", "-p", "lr=0.001")
    before = (sorted(p.name for p in (reg.path / "objects").rglob("*") if p.is_file()), log_lines(reg, "bot"))
    code, out, err = run(capsys, "register", "bot", "1.1", "-p", "lr=0.001", "--strict")
    assert code == 4 and out == "" and "bot@1.0" in err and "--strict" in err
    after = (sorted(p.name for p in (reg.path / "objects").rglob("*") if p.is_file()), log_lines(reg, "bot"))
    assert before == after and reg.refs.version_names("bot") == ["1.0"]
    with pytest.raises(Conflict):
        reg.register("bot", "1.1", params={"lr": 0.001}, strict=True)
    assert run(capsys, "register", "bot", "1.1", "-p", "lr=0.002", "--strict")[0] == 0


def test_duplicate_check_sees_versions_registered_since_the_last_query(reg):
    reg.search()
    reg.register("a-model", "1", params={"x": 1})
    assert [d.name for d in reg.register("b-model", "1", params={"x": 1}, new_model=True).duplicates] == ["a-model"]


# --------------------------------------------------------------- look-alikes
@pytest.mark.parametrize("name", ["faq_bot", "faqbot", "faq.bot", "faq-b0t", "faq-bots", "fqa-bot", "faq-bo"])
def test_lookalike_new_model_is_refused(reg, capsys, name):
    run(capsys, "register", "faq-bot", "1.0")
    code, out, err = run(capsys, "register", name, "1.0")
    assert code == 4 and out == ""
    assert f"model name '{name}' looks like existing 'faq-bot'; use --new-model" in err
    assert reg.refs.version_names(name) == []
    code, _, err = run(capsys, "register", name, "1.0", "--new-model")
    assert code == 0 and reg.refs.version_names(name) == ["1.0"]


@pytest.mark.parametrize("name", ["bert-large", "faq-robot", "vision"])
def test_different_names_are_not_lookalikes(reg, capsys, name):
    run(capsys, "register", "bert-base", "1.0")
    run(capsys, "register", "faq-bot", "1.0")
    assert run(capsys, "register", name, "1.0")[0] == 0


def test_new_version_of_existing_model_is_not_checked(reg, capsys):
    run(capsys, "register", "faq-bot", "1.0")
    run(capsys, "register", "faq_bot", "1.0", "--new-model")
    assert run(capsys, "register", "faq_bot", "1.1")[0] == 0
    with pytest.raises(Conflict, match="looks like"):
        reg.register("faqbot", "1")
    assert reg.register("faqbot", "1", new_model=True).created


def test_from_file_gets_the_same_checks(reg, project, capsys):
    run(capsys, "register", "faq-bot", "1.0")
    (project / "m.yaml").write_text("name: faq_bot\nversion: '1.0'\nlicense: apache-2.0\n")
    assert run(capsys, "register", "--from-file", "m.yaml")[0] == 4
    assert run(capsys, "register", "--from-file", "m.yaml", "--new-model")[0] == 0
    assert reg.show("faq_bot@1.0").manifest["license"] == "Apache-2.0"


# ------------------------------------------------------------------ licenses
def test_license_is_normalised_and_unknown_refused(reg, capsys):
    assert run(capsys, "register", "a-model", "1", "--license", "mit")[0] == 0
    assert reg.show("a-model@1").manifest["license"] == "MIT"
    run(capsys, "register", "a-model", "2", "--license", "GPL-3.0")
    assert reg.show("a-model@2").manifest["license"] == "GPL-3.0-only"
    code, _, err = run(capsys, "register", "a-model", "3", "--license", "MTI")
    assert code == 2 and "unknown license identifier 'MTI'" in err and "--allow-unknown-license" in err
    assert reg.refs.version_names("a-model") == ["1", "2"]
    assert run(capsys, "register", "a-model", "3", "--license", "Acme-EULA", "--allow-unknown-license")[0] == 0
    assert reg.show("a-model@3").manifest["license"] == "Acme-EULA"
    with pytest.raises(UsageError):
        reg.register("a-model", "4", license="nope")


def chain(capsys, licenses: list[str | None]) -> str:
    """Register a chain root -> ... -> last with these licenses; the last one's ref."""
    prev = None
    for i, lic in enumerate(licenses):
        args = ["register", f"gen{i}", "1", "--new-model"]
        if lic:
            args += ["--license", lic]
        if prev:
            args += ["--parent", prev, "--lineage", "fine_tune"]
        code, _, err = run(capsys, *args)
        assert code == 0, err
        prev = f"gen{i}@1"
    return prev


C, I, U = "compatible", "incompatible", "unknown"


@pytest.mark.parametrize(
    "parent, child, project_license, outcomes, exit_code",
    [
        ("MIT", "proprietary", None, [C], 0),
        ("Apache-2.0", "GPL-3.0-only", "GPL-3.0-only", [C, C, C], 0),
        ("CC-BY-NC-4.0", "MIT", None, [I], 5),
        ("CC-BY-NC-4.0", "CC-BY-NC-4.0", None, [C], 0),
        ("CC-BY-NC-4.0", "CC-BY-NC-4.0", "proprietary", [C, I, I], 5),
        ("CC-BY-SA-4.0", "CC-BY-SA-4.0", None, [C], 0),
        ("CC-BY-SA-4.0", "CC-BY-4.0", None, [I], 5),
        ("GPL-3.0-only", "MIT", None, [I], 5),
        ("GPL-2.0-or-later", "GPL-3.0-only", None, [C], 0),
        ("llama3", "llama3", None, [C], 0),
        ("llama3", "llama3", "MIT", [C, U, U], 0),
        ("llama3", "Apache-2.0", None, [I], 5),
        ("proprietary", "proprietary", None, [U], 0),
        (None, "MIT", None, [U], 0),
        ("MIT", None, "Apache-2.0", [U, U, C], 0),
    ],
)
def test_license_check_table(reg, capsys, parent, child, project_license, outcomes, exit_code):
    ref = chain(capsys, [parent, child])
    args = ["license-check", ref, "--json"] + (["--project-license", project_license] if project_license else [])
    code, out, err = run(capsys, *args)
    assert code == exit_code, err
    report = json.loads(out)
    assert [f["outcome"] for f in report["findings"]] == outcomes
    assert report["ok"] is (exit_code == 0)
    assert all(f["reason"] for f in report["findings"])
    code, text, _ = run(capsys, *args[:2], *args[3:])  # the same without --json
    assert code == exit_code
    assert len(text.splitlines()) == 1 + len(outcomes)


def test_license_check_walks_all_ancestors(reg, capsys):
    ref = chain(capsys, ["CC-BY-NC-4.0", "CC-BY-NC-4.0", "MIT"])
    code, out, _ = run(capsys, "license-check", ref)
    assert code == 5
    lines = out.splitlines()
    assert lines[0] == "gen2@1: license MIT"
    assert "INCOMPATIBLE" in lines[1] and "gen1@1 (fine_tune, generation 1)" in lines[1]
    assert "INCOMPATIBLE" in lines[2] and "gen0@1 (fine_tune, generation 2)" in lines[2]
    assert "forbids commercial use" in lines[2]


def test_license_check_without_ancestors_or_project(reg, capsys):
    run(capsys, "register", "solo", "1", "--license", "MIT")
    code, out, _ = run(capsys, "license-check", "solo@1")
    assert code == 0 and "nothing to check" in out
    code, _, err = run(capsys, "license-check", "solo@1", "--project-license", "MTI")
    assert code == 2 and "unknown license identifier" in err
    assert run(capsys, "license-check", "nobody@1")[0] == 3


def test_library_license_report(reg):
    reg.register("base", "1", license="CC-BY-SA-4.0")
    reg.register("derived", "1", license="GPL-3.0-only", parents=["base@1"], relation="fine_tune")
    report = reg.license_check("derived@1", project_license="gpl-3.0")
    assert report.ok and report.project_license == "GPL-3.0-only"
    assert [(f.kind, f.outcome) for f in report.findings] == [
        ("derivative", "compatible"), ("project", "compatible"), ("project", "compatible")]


def test_licenses_command_lists_the_table(reg, capsys):
    code, out, _ = run(capsys, "licenses", "--json")
    ids = {d["id"] for d in json.loads(out)}
    assert code == 0 and {"MIT", "Apache-2.0", "CC-BY-NC-4.0", "llama3", "proprietary"} <= ids
