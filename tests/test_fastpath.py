"""The console entry point's short path (modelreg.fastpath) and the typer app agree byte for byte.

Every argument vector of the corpus runs through ``modelreg.fastpath.main`` (what the
``modelreg`` script and ``python -m modelreg`` run) and through ``modelreg.cli.main`` (the
typer app); stdout, stderr and the exit code must be identical. The corpus covers every
option of the hot commands, the global options, environment variables, ``--json`` errors,
and vectors the short path must hand over (help, typos, repeated options, bad values).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import ACTOR, relax_policy, subprocess_env

from modelreg import cli, fastpath
from modelreg.registry import Registry


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A project with two models, stages set, an emptied stage, annotations and a second registry."""
    root = tmp_path_factory.mktemp("fast")
    proj = root / "proj"
    proj.mkdir()
    reg = Registry.init(proj)
    relax_policy(proj)
    reg = Registry(reg.path)
    (proj / "w.bin").write_bytes(b"weights")
    reg.register("m", "1.0.0", artifacts=[f"checkpoint={proj}/w.bin"], params={"lr": 0.1}, actor=ACTOR)
    reg.register("m", "1.1.0", artifacts=[f"checkpoint={proj}/w.bin"], params={"lr": 0.2}, tags=["nlp"], actor=ACTOR)
    reg.register("other", "2", actor=ACTOR, new_model=True)
    reg.promote("m@1.0.0", "staging", actor=ACTOR)
    reg.promote("m@1.0.0", "production", actor=ACTOR, reason="launch")
    reg.promote("m@1.1.0", "staging", actor=ACTOR)
    reg.promote("other@2", "staging", actor=ACTOR)
    reg.clear("other", "staging", reason="freeze", actor=ACTOR)
    reg.set_metrics("m@1.1.0", "core", {"score": 0.9}, actor=ACTOR)
    first = reg.events("m")[0].id
    digest = reg.resolve("m@1.0.0").digest
    bad = root / "bad"
    bad.mkdir()
    Registry.init(bad)
    cfg = bad / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "stagse: [a]\n")
    return {"proj": str(proj), "root": str(root), "first": first, "digest": digest, "bad": str(bad)}


def _run(entry, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        entry(list(args))
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _corpus(w: dict[str, str]) -> list[tuple[str, list[str], dict[str, str]]]:
    proj, reg_dir, d = w["proj"], w["proj"] + "/.modelreg", w["digest"]
    cases: list[tuple[str, list[str], dict[str, str]]] = []

    def add(*args: str, cwd: str = proj, **env: str) -> None:
        cases.append((cwd, list(args), env))

    for ref in ("m@production", "m@staging", "m@1.0.0", "m@1.1.0", "m@latest", d[:14], f"m@{d[:12]}", d,
                "other@staging", "other@production", "m@9.9.9", "nomodel@1", "BAD@1", "m@", "m", "", "m@@x",
                "other@2", "m@sha256:0000000", "m@prod"):
        add("resolve", ref)
        add("resolve", ref, "--json")
    for extra in (["--digest"], ["--digest", "--json"], ["--artifact", "checkpoint"], ["--artifact=checkpoint"],
                  ["--artifact", "checkpoint", "--json"], ["--artifact", "nope"], ["--artifact", "nope", "--json"],
                  ["--json", "--digest"]):
        add("resolve", "m@production", *extra)
        add("resolve", *extra, "m@production")
    add("-R", reg_dir, "resolve", "m@production")
    add("--registry", proj, "resolve", "m@production", "--json")
    add("--registry=" + reg_dir, "resolve", "m@1.0.0")
    add("-q", "resolve", "m@production")
    add("--quiet", "-R", reg_dir, "show", "m@1.0.0")
    add("-R", w["root"], "resolve", "m@production")  # no registry there
    add("-R", w["root"], "resolve", "m@production", "--json")
    add("resolve", "m@production", cwd=w["root"])
    add("resolve", "m@production", "--json", cwd=w["root"])
    add("resolve", "m@production", cwd=w["root"], MODELREG_DIR=reg_dir)
    add("ls", cwd=w["root"], MODELREG_DIR=proj)
    add("resolve", "m@production", MODELREG_LOCK_TIMEOUT="abc")
    add("resolve", "m@production", "--json", MODELREG_LOCK_TIMEOUT="-1")
    add("resolve", "m@production", MODELREG_LOCK_TIMOUT="3")
    add("resolve", "m@9", MODELREG_TRACEBACK="1")
    add("resolve", "m@production", cwd=w["bad"])
    add("resolve", "m@production", "--json", cwd=w["bad"])
    for ref in ("m@1.0.0", "m@production", "m@latest", "m@nope", "other@staging"):
        add("show", ref)
        add("show", ref, "--json")
    add("show", "--json", "m@1.1.0")
    for args in ([], ["m"], ["other"], ["nomodel"], ["BAD"]):
        add("ls", *args)
        add("ls", *args, "--json")
    for args in ([], ["m"], ["other"], ["nomodel"], ["m", "--stage", "production"], ["m", "--stage", "prod"],
                 ["--stage", "production"], ["m", "--limit", "1"], ["m", "-n", "2"], ["--limit", "3"],
                 ["--limit=2"], ["m", "--limit", "0"], ["m", "--since", w["first"]], ["m", "--since", "bogus"],
                 ["m", "--since", "0123456789abcdef"], ["m", "--stage=staging", "-n", "5"]):
        add("log", *args)
        add("log", *args, "--json")
    for args in ([], ["--where", "params.lr > 0.15"], ["-w", "params.lr >= 0.1", "-w", "tags == nlp"],
                 ["--where=params.lr < 1"], ["--name", "^m$"], ["--name", "("], ["--stage", "production"],
                 ["--stage", "prod"], ["--staged"], ["--tag", "nlp"], ["--archived"], ["--no-archived"],
                 ["--sort", "-params.lr"], ["--sort", "version", "--limit", "1"], ["-n", "0"],
                 ["--where", "params.lr >"], ["--where", "metrics.core.score >= '0.5'"],
                 ["--where", "metrics.core.score >= 0.5"], ["--where", "version == 1.1"], ["--where", "bogus ~= ("],
                 ["--archived", "--no-archived"], ["--where"], ["--sort", ""], ["--limit", "x"],
                 ["--offset", "1"], ["--offset", "1", "--limit", "1"], ["--offset", "-1"], ["--offset", "x"]):
        add("search", *args)
        add("search", *args, "--json")
        add("ls", *args, "--json")
    for args in (["m", "--where", "params.lr > 0.15"], ["m", "--name", "x"], ["nomodel", "--staged"],
                 ["m", "--sort", "-version"], ["other", "--archived"]):
        add("ls", *args)
        add("ls", *args, "--json")
    # handed to the typer app: help, typos, repeated or odd options
    for args in ([], ["--help"], ["resolve"], ["resolve", "--help"], ["resolve", "a@1", "b@1"],
                 ["resolve", "m@1.0.0", "--digest", "--digest"], ["resolve", "m@1.0.0", "--bogus"],
                 ["resolve", "m@1.0.0", "--artifact"], ["resolve", "m@1.0.0", "--json=1"],
                 ["resolve", "m@1.0.0", "--artifact", "--json"], ["resolve", "--", "m@1.0.0"],
                 ["resolve", "-", "m@1.0.0"], ["resolv", "m@1.0.0"], ["show"], ["show", "m@1.0.0", "--jsn"],
                 ["ls", "--where", "version > 1"], ["ls", "m", "--json", "--sort", "version"], ["ls", "a", "b"],
                 ["log", "m", "--limit", "-1"], ["log", "m", "--limit", "abc"], ["log", "m", "--limit", "+1"],
                 ["log", "m", "-n5"], ["log", "m", "--limit", "1", "-n", "2"], ["log", "--stage"],
                 ["-R"], ["-R", "--json", "resolve", "m@1.0.0"], ["--registry="], ["-R", "", "ls"],
                 ["--version"], ["-q", "--version"], ["--bogus", "resolve", "m@1.0.0"],
                 ["resolve", "m@1.0.0", "--json", "-R", reg_dir], ["stats", "--json"]):
        add(*args)
    add("resolve", "m@production", "--json", "--json")
    return cases


def test_both_entry_points_print_the_same(world, capsys, monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", ACTOR)
    mismatches = []
    for cwd, args, env in _corpus(world):
        with monkeypatch.context() as m:
            m.chdir(cwd)
            for k, v in env.items():
                m.setenv(k, v)
            fast = _run(fastpath.main, args, capsys)
            full = _run(cli.main, args, capsys)
        if fast != full:
            mismatches.append((args, env, fast, full))
    assert not mismatches, "\n".join(f"{a} {e}:\n  fast {f!r}\n  full {t!r}" for a, e, f, t in mismatches[:5])


@pytest.mark.parametrize("args, taken", [
    (["resolve", "m@production"], True), (["-R", "X", "resolve", "m@1", "--json"], True),
    (["show", "m@1"], True), (["ls", "--json"], True), (["log", "m", "-n", "3", "--json"], True),
    (["ls", "--where", "a==b"], True), (["search", "-w", "a==b", "-w", "c==d", "--json"], True),
    (["search", "--offset", "2"], True), (["search", "--next"], False), (["log", "--follow"], False), (["resolve", "--help"], False),
    (["register", "m", "1"], False), (["--version"], False), (["resolve", "m@1", "--json=1"], False),
])
def test_which_vectors_take_the_short_path(args, taken):
    try:
        got = fastpath.parse(args) is not None
    except fastpath._HandOff:
        got = False
    assert got is taken


def test_hot_commands_never_import_typer(world):
    """What the console script does for the hot commands: no typer, click, rich or pydantic."""
    probe = (
        "import sys, json\n"
        "from modelreg.fastpath import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = [m for m in ('typer', 'click', 'rich', 'pydantic', 'fsspec', 'filelock') if m in sys.modules]\n"
        "light = [m for m in ('yaml', 'dataclasses', 'typing') if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'heavy': heavy, 'light': light}), file=sys.stderr)\n"
    )
    env = subprocess_env(MODELREG_ACTOR=ACTOR)
    for args in (["resolve", "m@production"], ["resolve", "m@1.0.0", "--json"], ["show", "m@1.0.0", "--json"],
                 ["ls", "--json"], ["ls", "m", "--json"], ["log", "--limit", "5", "--json"], ["log", "m"],
                 ["search", "--where", "params.lr > 0", "--json"], ["ls", "--stage", "production"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=world["proj"], env=env,
                              capture_output=True, text=True, timeout=60)
        report = json.loads(proc.stderr.strip().splitlines()[-1])
        assert report["code"] == 0 and report["heavy"] == [], (args, proc.stderr)
        if args[0] == "resolve":  # the hottest path: not even the YAML parser or dataclasses
            assert report["light"] == [], (args, report)


def test_console_script_and_python_m_use_the_short_path():
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["modelreg"] == "modelreg.fastpath:main"
    main_py = (Path(fastpath.__file__).parent / "__main__.py").read_text()
    assert "fastpath" in main_py
    assert os.path.basename(fastpath.__file__) == "fastpath.py"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_output_is_exactly_json_dumps(value):
    from modelreg.printable import json_dumps

    assert json_dumps(value) == json.dumps(value, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("entry", ["modelreg", "modelreg.cli"])
@pytest.mark.parametrize("args", [["ls", "--json"], ["log", "--json"], ["show", "m@1.0.0", "--json"], ["log"]])
def test_a_reader_that_goes_away_gets_one_line_not_a_traceback(world, entry, args):
    """`modelreg ... --json | head`: the pipe closes before the output is written. Both entry points
    say so in one line on stderr and exit 1; nothing else is written (no JSON error into the dead pipe)."""
    code = f"import runpy, sys; sys.argv = ['modelreg', *{args!r}]; runpy.run_module({entry!r}, run_name='__main__')"
    if entry == "modelreg.cli":
        code = f"import sys; from modelreg.cli import main; main({args!r})"
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=world["proj"], stdout=w, stderr=subprocess.PIPE,
                              env=subprocess_env(MODELREG_ACTOR=ACTOR), text=True, timeout=60)
    finally:
        os.close(w)
    assert proc.returncode == 1 and proc.stderr == "modelreg: error: Broken pipe\n", proc.stderr
