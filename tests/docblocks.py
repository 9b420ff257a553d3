"""Run the fenced code blocks of a Markdown page as a user would paste them (see CONTRIBUTING.md, "Writing docs").

A page's blocks run in order in one throw-away project directory: a git repository (branch
``main``, a commit identity) holding a fresh registry (``modelreg init``), with ``HOME`` and
the XDG directories inside the temp dir and ``modelreg`` / ``python`` on ``PATH`` running
this checkout. Each block runs in a fresh process (variables and ``cd`` do not carry over;
files do).

What runs:

* ``sh``, ``bash``, ``shell``: the block as a bash script with ``set -e -o pipefail``: every
  command must succeed, except a command whose trailing comment starts with ``exit N``
  (``modelreg check faq-bot@1.1.0 production   # exit 5: ...``), which must exit exactly N.
  A block starting with ``#!`` is a script file: it runs as is, by its interpreter, with
  the ``args`` directive as its arguments, and must exit 0 (or the ``exit`` directive).
* ``console``: every ``$ `` line is a command (``\\`` continues it); the lines after it are
  its output and are not compared. A command must exit 0 unless it carries ``# exit N``
  or is followed by ``$ echo $?`` whose output line is N.
* ``python``, ``py``: the block as a script, exit 0.
* ``yaml``, ``yml``: parsed; a mapping with a ``format`` key is also checked as a
  ``config.yaml`` (stages, policy, storage settings). ``json``: parsed.
* anything else (no language, ``text``, ``console`` output...): not run.

A block is not run when its info string has ``norun`` after the language
(```` ```sh norun ````); the HTML comment just above it must say why.

Directives are HTML comments (invisible on GitHub) just above a block, one per comment,
several comments may stack:

* ``<!-- doctest: setup`` + shell lines + ``-->``: run before the block (must exit 0);
  for files, remotes or state the block assumes but does not show.
* ``<!-- doctest: exit N -->``: the whole block must exit N.
* ``<!-- doctest: args A B -->``: arguments of a ``#!`` script block.
* ``<!-- doctest: write PATH -->``: write the block's text to PATH (project-relative) instead
  of only parsing it, e.g. a ``config.yaml`` the next blocks use.
* ``<!-- doctest: requires TOOL -->``: skip the block when TOOL is not on PATH (or, for a
  path with ``/``, does not exist in the checkout).
* ``<!-- doctest: cwd repo -->``: run in the checkout instead of the project directory.
* ``<!-- doctest: needs s3 -->`` / ``needs http``: start the moto S3 server / the local HTTP
  server (tests/servers.py); the block sees ``AWS_*`` credentials, ``MODELREG_S3_ENDPOINT_URL``
  and ``DOC_S3_BUCKET``, or ``DOC_HTTP_URL`` and ``DOC_HTTP_ROOT`` (a directory it serves), and
  ``MODELREG_ALLOW_PRIVATE_NETWORK=1`` (the servers stand in for remote stores on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ("sh", "bash", "shell")
RUN_PY = ("python", "py")
PARSE = ("yaml", "yml", "json")
BLOCK_TIMEOUT = 60

_FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_EXIT_COMMENT_RE = re.compile(r"#\s*exit\s+(\d+)\b")
_DIRECTIVE_RE = re.compile(r"^doctest:\s*(\w[\w-]*)\s*(.*)$", re.S)


class DocError(AssertionError):
    """A documented block that does not run as written."""


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    flags: list[str]
    text: str
    comments: list[str] = field(default_factory=list)  # HTML comments just above, in page order

    @property
    def where(self) -> str:
        try:
            rel = self.page.relative_to(ROOT)
        except ValueError:
            rel = self.page
        return f"{rel}:{self.line}"

    @property
    def norun(self) -> bool:
        return "norun" in self.flags

    def directives(self) -> list[tuple[str, str]]:
        out = []
        for c in self.comments:
            m = _DIRECTIVE_RE.match(c.strip())
            if m:
                out.append((m.group(1), m.group(2)))
        return out

    def directive(self, name: str) -> str | None:
        values = [v for k, v in self.directives() if k == name]
        return values[-1].strip() if values else None


def parse(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with the HTML comments directly above it."""
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    comments: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("<!--"):
            j, buf = i, [line]
            while "-->" not in lines[j] and j + 1 < len(lines):
                j += 1
                buf.append(lines[j])
            text = "\n".join(buf).strip()
            comments.append(text[4:text.rindex("-->")].strip() if "-->" in text else text[4:])
            i = j + 1
            continue
        m = _FENCE_RE.match(line)
        if m:
            fence, info = m.group("fence"), m.group("info").split()
            body: list[str] = []
            j = i + 1
            while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                          and set(lines[j].strip()) == {fence[0]}):
                body.append(lines[j][len(m.group("indent")):] if lines[j].startswith(m.group("indent")) else lines[j])
                j += 1
            lang = info[0].lower() if info else ""
            blocks.append(Block(page, i + 1, lang, [f.lower() for f in info[1:]], "\n".join(body) + "\n", comments))
            comments = []
            i = j + 1
            continue
        if stripped:
            comments = []
        i += 1
    return blocks


# ------------------------------------------------------------------ turning blocks into scripts
def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """(first, last) physical line index and joined text of each logical line (``\\`` continues)."""
    out: list[tuple[int, int, str]] = []
    phys = text.split("\n")
    i = 0
    while i < len(phys):
        start, parts = i, [phys[i]]
        while parts[-1].endswith("\\") and i + 1 < len(phys):
            i += 1
            parts.append(phys[i])
        out.append((start, i, "\n".join(parts)))
        i += 1
    return out


def _trailing_comment(line: str) -> str | None:
    """The ``# ...`` comment ending a shell line, ignoring ``#`` inside quotes or words."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[k:]
    return None


def expected_exit(command: str) -> int | None:
    """N when the command's trailing comment starts with ``exit N``."""
    comment = _trailing_comment(command.split("\n")[-1])
    if comment is None:
        return None
    m = re.match(r"#\s*exit\s+(\d+)\b", comment)
    return int(m.group(1)) if m else None


_CHECK = """__doc_rc=$?; [ -n "$__doc_e" ] && set -e
if [ "$__doc_rc" -ne {want} ]; then echo "doctest: {where}: expected exit {want}, got $__doc_rc" >&2; exit 97; fi
"""


def _wrapped(command: str, want: int, where: str) -> str:
    return ('case $- in *e*) __doc_e=1;; *) __doc_e=;; esac; set +e\n' + command + "\n"
            + _CHECK.format(want=want, where=where.replace('"', "'")))


def shell_script(block: Block) -> str:
    """A ``sh`` block as a bash script: errexit, and ``# exit N`` commands checked for exactly N."""
    out = ["set -e -o pipefail"]
    for first, _last, text in logical_lines(block.text):
        want = expected_exit(text)
        if want is None:
            out.append(text)
        else:
            out.append(_wrapped(text, want, f"{block.where}+{first + 1}: {text.splitlines()[0][:60]}"))
    return "\n".join(out) + "\n"


def console_script(block: Block) -> str:
    """A ``console`` block's ``$`` commands as a bash script, each checked for its documented exit."""
    lines = block.text.split("\n")
    commands: list[tuple[int, str, list[str]]] = []  # (line index, command, output lines)
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            start, parts = i, [lines[i][2:]]
            while parts[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                parts.append(lines[i].removeprefix("> "))
            commands.append((start, "\n".join(parts), []))
        elif commands:
            commands[-1][2].append(lines[i])
        i += 1
    out: list[str] = []
    k = 0
    while k < len(commands):
        start, cmd, _output = commands[k]
        want = expected_exit(cmd)
        if k + 1 < len(commands) and commands[k + 1][1].strip() == "echo $?":
            shown = [o.strip() for o in commands[k + 1][2] if o.strip()]
            if shown and shown[0].isdigit():
                want = int(shown[0])
            k += 1  # the echo is how the page shows the exit code: checked here instead
        out.append(_wrapped(cmd, 0 if want is None else want, f"{block.where}+{start + 1}: {cmd.splitlines()[0][:60]}"))
        k += 1
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ the environment
@dataclass
class Project:
    """The throw-away project a page runs in."""

    root: Path  # temp dir: project/, home/, bin/
    env: dict[str, str]

    @property
    def dir(self) -> Path:
        return self.root / "project"


def make_project(tmp: Path, server: str | None = None) -> Project:
    """The throw-away project; with ``server`` (a docserver socket) ``modelreg`` starts in milliseconds."""
    bin_dir, home, project = tmp / "bin", tmp / "home", tmp / "project"
    for d in (bin_dir, home, project, tmp / "xdg-config", tmp / "xdg-cache"):
        d.mkdir(parents=True, exist_ok=True)
    cli = f'-S "{ROOT / "tests" / "docserver.py"}" --client "{server}" "$@"' if server else '-m modelreg "$@"'
    for name, args in (("modelreg", cli), ("python", '"$@"'), ("python3", '"$@"')):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args}\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODELREG_", "GIT_", "AWS_", "DOC_")) and k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(tmp / "xdg-config"), "XDG_CACHE_HOME": str(tmp / "xdg-cache"),
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C.UTF-8", "COLUMNS": "100",
    })
    p = Project(tmp, env)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "config", "user.name", "Docs Reader"],
                ["git", "config", "user.email", "reader@example.com"], ["git", "config", "commit.gpgsign", "false"],
                [str(bin_dir / "modelreg"), "init"]):
        proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr}")
    return p


def start_server() -> tuple[subprocess.Popen[str], str]:
    """A docserver process and its socket path (short: Unix socket paths are limited to ~100 bytes)."""
    import tempfile

    path = os.path.join(tempfile.mkdtemp(prefix="mrdoc-"), "s")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "GIT_", "AWS_"))}
    env.update(PYTHONPATH=str(ROOT), LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "docserver.py"), path], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, path


def _run(project: Project, argv: list[str], block: Block, what: str, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import signal

    proc = subprocess.Popen(argv, cwd=cwd or project.dir, env=env or project.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the block and everything it started
        proc.communicate()
        raise DocError(f"{block.where}: {what} did not finish in {BLOCK_TIMEOUT} s") from None
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _fail(block: Block, what: str, proc: subprocess.CompletedProcess[str], want: int) -> DocError:
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
    return DocError(f"{block.where}: {what} exited {proc.returncode}, documented {want}\n{tail}")


def check_yaml(block: Block, text: str) -> None:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocError(f"{block.where}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and "format" in data:  # a config.yaml: check it as fsck checks a registry's
        import tempfile

        from modelreg.errors import ModelregError
        from modelreg.fsck import fsck
        from modelreg.registry import Registry

        with tempfile.TemporaryDirectory() as d:
            reg = Registry.init(d)
            (reg.path / "config.yaml").write_text(text)
            try:
                errors = [p.message for p in fsck(Registry(reg.path)).errors if p.path.startswith("config.yaml")]
            except ModelregError as exc:
                errors = [exc.message]
            if errors:
                raise DocError(f"{block.where}: not a valid config.yaml: {'; '.join(errors)}")


def run_block(block: Block, project: Project, services: Any = None) -> str:
    """Run (or parse) one block; return what was done ("ran", "parsed", "skipped: why", "not code")."""
    if block.norun:
        return "skipped: norun"
    for key, value in block.directives():
        if key == "requires":
            for tool in value.split():
                found = (ROOT / tool).exists() if "/" in tool else shutil.which(tool, path=project.env["PATH"])
                if not found:
                    return f"skipped: requires {tool}"
    env = dict(project.env)
    for key, value in block.directives():
        if key == "needs":
            if services is None:
                raise DocError(f"{block.where}: needs {value} but no services were given")
            env.update(services(value.strip(), project))
    for key, value in block.directives():
        if key == "setup":
            proc = _run(project, ["bash", "-e", "-o", "pipefail", "-c", value], block, "setup", env=env)
            if proc.returncode != 0:
                raise _fail(block, "its doctest: setup", proc, 0)
    cwd = ROOT if block.directive("cwd") == "repo" else project.dir
    want = int(block.directive("exit") or 0)
    if block.directive("write"):
        target = project.dir / block.directive("write")  # type: ignore[operator]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text)
    if block.lang in ("yaml", "yml"):
        check_yaml(block, block.text)
        return "parsed"
    if block.lang == "json":
        try:
            json.loads(block.text)
        except ValueError as exc:
            raise DocError(f"{block.where}: not valid JSON: {exc}") from None
        return "parsed"
    if block.lang in RUN_PY:
        script = project.root / f"block-{block.line}.py"
        script.write_text(block.text)
        proc = _run(project, [sys.executable, str(script)], block, "python block", cwd, env)
        if proc.returncode != want:
            raise _fail(block, "python block", proc, want)
        return "ran"
    if block.lang in RUN_SH or block.lang == "console":
        if block.lang != "console" and block.text.startswith("#!"):
            script = project.root / f"block-{block.line}.sh"
            script.write_text(block.text)
            interpreter = block.text.split("\n", 1)[0][2:].split()
            args = (block.directive("args") or "").split()
            proc = _run(project, [*interpreter, str(script), *args], block, "script block", cwd, env)
        else:
            text = console_script(block) if block.lang == "console" else shell_script(block)
            proc = _run(project, ["bash", "-c", text], block, f"{block.lang} block", cwd, env)
        if proc.returncode != want:
            raise _fail(block, f"{block.lang} block", proc, want)
        return "ran"
    return "not code"


def check_only(block: Block) -> str:
    """Parse a YAML or JSON block without a project (pages that have nothing to run)."""
    if block.norun:
        return "skipped: norun"
    if block.lang in ("yaml", "yml"):
        check_yaml(block, block.text)
        return "parsed"
    if block.lang == "json":
        try:
            json.loads(block.text)
        except ValueError as exc:
            raise DocError(f"{block.where}: not valid JSON: {exc}") from None
        return "parsed"
    return "not code"


def lint(block: Block) -> list[str]:
    """Convention problems of a block (independent of running it)."""
    problems = []
    runnable = block.lang in RUN_SH + RUN_PY + PARSE + ("console",)
    if block.norun:
        if not runnable:
            problems.append(f"{block.where}: 'norun' on a '{block.lang or 'plain'}' block, which never runs")
        if not any(not _DIRECTIVE_RE.match(c.strip()) for c in block.comments):
            problems.append(f"{block.where}: a norun block needs an HTML comment above it saying why")
    known = {"setup", "exit", "args", "write", "requires", "cwd", "needs"}
    for key, _ in block.directives():
        if key not in known:
            problems.append(f"{block.where}: unknown directive 'doctest: {key}' (known: {', '.join(sorted(known))})")
    if block.lang in ("console",) and not block.norun and not any(ln.startswith("$ ") for ln in block.text.split("\n")):
        problems.append(f"{block.where}: a console block without '$ ' commands: fence it as text")
    return problems


def pages() -> list[Path]:
    """README.md and every docs/*.md (and CONTRIBUTING.md), in a stable order."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    if (ROOT / "CONTRIBUTING.md").exists():
        found.append(ROOT / "CONTRIBUTING.md")
    return [p for p in found if p.exists()]
