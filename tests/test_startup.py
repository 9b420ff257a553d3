"""Start-up cost and the real entry points: what `import modelreg.cli` and read commands pull in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env

HEAVY = ("fsspec", "rich", "filelock", "yaml")


def run_py(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=60)


def test_import_cli_is_light(tmp_path):
    proc = run_py(
        "import sys, json, modelreg.cli\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        "print(modelreg.cli.__file__)\n",
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    loaded, where = proc.stdout.splitlines()
    assert json.loads(loaded) == []
    assert Path(where).resolve().is_relative_to(Path(__file__).resolve().parent.parent)  # the worktree's code


@pytest.fixture
def populated_dir(tmp_path):
    env = subprocess_env(MODELREG_ACTOR="startup")
    (tmp_path / "w.bin").write_bytes(b"w")
    for args in (["init"], ["register", "m", "1", "-a", "checkpoint=w.bin"], ["promote", "m@1", "staging"],
                 ["promote", "m@1", "production"]):
        proc = subprocess.run([sys.executable, "-m", "modelreg", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    return tmp_path


@pytest.mark.parametrize(
    "argv, expect_out, may_load",
    [
        (["resolve", "m@production"], "1\n", ()),
        (["resolve", "m@1", "--digest"], "sha256:", ()),
        (["resolve", "m@1", "--artifact", "checkpoint"], "w.bin\n", ("yaml",)),  # reads the manifest
        (["show", "m@1"], "m@1\n", ("yaml", "filelock")),
        (["show", "m@1", "--json"], '"name": "m"', ("yaml", "filelock")),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_read_commands_do_not_import_fsspec(populated_dir, argv, expect_out, may_load):
    proc = run_py(
        "import sys, json, runpy\n"
        f"sys.argv = ['modelreg', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('modelreg', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"print(json.dumps({{'code': code, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}), file=sys.stderr)\n",
        populated_dir,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    assert expect_out in proc.stdout
    assert "fsspec" not in report["loaded"]
    assert set(report["loaded"]) <= set(may_load), report["loaded"]


def test_completion_does_not_slow_resolve(populated_dir):
    """Shell completion, --version and suggestions are wired without a cost on the read path:
    resolve imports exactly what it imports with completion switched off (typer's add_completion
    would build extra parameters and import its completion classes on every start)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['modelreg', 'resolve', 'm@production']\n"
        "try:\n"
        "    runpy.run_module('modelreg', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if 'complet' in m or m.startswith('modelreg.')), file=sys.stderr)\n"
    )
    proc = run_py(probe, populated_dir)
    assert proc.stdout == "1\n", proc.stderr
    loaded = proc.stderr.strip().splitlines()[-1]
    for name in ("modelreg.suggest", "modelreg.values", "modelreg.completion"):
        assert f"'{name}'" not in loaded, loaded


def test_python_dash_m_modelreg(tmp_path):
    env = subprocess_env(MODELREG_ACTOR="cli-user")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "modelreg", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    assert run("init").returncode == 0
    assert run("register", "m", "1").returncode == 0
    bad = run("promote", "m@9", "production")
    assert bad.returncode == 3 and bad.stderr.startswith("modelreg: error:") and "Traceback" not in bad.stderr
    usage = run("register", "BAD", "1")
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    noargs = run()
    assert noargs.returncode == 2 and "Usage" in noargs.stdout + noargs.stderr


def test_installed_console_script(tmp_path):
    script = shutil.which("modelreg", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip(f"no modelreg console script next to {sys.executable}")
    env = subprocess_env(MODELREG_ACTOR="script-user")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    helped = run("--help")
    assert helped.returncode == 0
    for word in ("register", "promote", "rollback", "resolve", "fsck"):
        assert word in helped.stdout
    (tmp_path / "model.bin").write_bytes(b"weights")
    assert run("init").returncode == 0
    assert (tmp_path / ".modelreg" / "config.yaml").is_file()
    reg = run("register", "faq-bot", "1.0.0", "-a", "checkpoint=model.bin")
    assert reg.returncode == 0, reg.stderr
    digest = reg.stdout.strip()
    assert digest.startswith("sha256:")
    assert run("promote", "faq-bot@1.0.0", "staging").returncode == 0
    prom = run("promote", "faq-bot@1.0.0", "production", "--expect", "none")
    assert prom.returncode == 0, prom.stderr
    res = run("resolve", "faq-bot@production")
    assert (res.returncode, res.stdout) == (0, "1.0.0\n")
    assert run("resolve", "faq-bot@production", "--digest").stdout == f"{digest}\n"
    assert (tmp_path / ".modelreg" / "refs" / "faq-bot" / "production").read_text() == f"{digest}\n"
    missing = run("resolve", "faq-bot@9.9.9")
    assert missing.returncode == 3 and missing.stderr.startswith("modelreg: error:")


FIRST_IMPORTER = """
import importlib.abc, json, os, runpy, sys
importers = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "importlib.metadata":
            f = sys._getframe(1)
            while f and f.f_code.co_filename.startswith("<frozen"):
                f = f.f_back
            importers.append(f.f_code.co_filename if f else "?")
        return None
sys.meta_path.insert(0, Watch())
sys.argv = ["modelreg", *ARGV]
code = None
try:
    runpy.run_module("modelreg", run_name="__main__")
except SystemExit as exc:
    code = exc.code
pkg = os.path.dirname(sys.modules["modelreg"].__file__) + os.sep
print(json.dumps({"code": code, "by_modelreg": [f for f in importers if f.startswith(pkg)]}), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["resolve", "m@production"], ["register", "m", "2"]], ids=" ".join)
def test_no_hook_configured_means_no_entry_point_lookup(populated_dir, argv):
    """Hooks cost nothing when none is configured: resolve never looks for them, a write scans
    entry_points.txt files only: modelreg itself never imports importlib.metadata (100+ ms) for them.
    (typer 0.29+ imports it through pydantic on commands it parses; that is typer's cost, not ours.)"""
    proc = run_py(FIRST_IMPORTER.replace("ARGV", repr(argv)), populated_dir)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "by_modelreg": []}, proc.stderr


def test_a_hook_lookup_is_seen_by_the_import_watch(populated_dir):
    """The watch above can fail: modelreg's own entry-point lookup is reported as modelreg's import."""
    code = FIRST_IMPORTER.replace("ARGV", "[]").replace(
        'runpy.run_module("modelreg", run_name="__main__")',
        'import modelreg.hooks as h; sys.modules.pop("importlib.metadata", None); '
        'h._entry_point_files = lambda: True; h.configured()')
    proc = run_py(code, populated_dir)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["by_modelreg"] and report["by_modelreg"][0].endswith("hooks.py"), proc.stderr


def test_every_module_compiles():
    """Modules no test imports (the benchmark, importers' helpers) still parse: a syntax error is caught here."""
    pkg = Path(__file__).resolve().parent.parent / "modelreg"
    bad = []
    for src in sorted(pkg.rglob("*.py")):
        try:
            compile(src.read_bytes(), str(src), "exec")
        except SyntaxError as exc:
            bad.append(f"{src.relative_to(pkg)}:{exc.lineno}: {exc.msg}")
    assert bad == []


def test_bench_help_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "modelreg.bench", "--help"], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--sizes" in proc.stdout, proc.stderr
