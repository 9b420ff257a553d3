"""The console entry point: the hot read commands run without the CLI framework.

Scripts call ``resolve``, ``show``, ``ls`` and ``log`` in loops, and typer + click cost more
to import than these commands cost to run (docs/bench.md). :func:`main` recognises them with
a minimal parser and runs them through the library, printing exactly what the typer app
prints. Whatever it does not recognise exactly goes to the typer app
(:func:`modelreg.cli.main`), which parses the arguments from scratch: help, completion,
``--version``, a misspelt or repeated option, an option value that looks like an option,
``--``, ``log --follow``, ``ls``/``search`` filters and every other command. Nothing has been
printed at that point, so the user cannot tell the two paths apart; tests/test_fastpath.py
runs a corpus of argument vectors (good and bad) through both and compares stdout, stderr
and the exit code byte for byte.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .errors import ModelregError

_GLOBAL_VALUE = ("--registry", "-R")
_GLOBAL_FLAGS = ("--quiet", "-q")
_FILTER_FLAGS = ("--staged", "--archived", "--no-archived")
_FILTER_VALUES = ("--name", "--stage", "--tag", "--where", "-w", "--sort", "--limit", "-n", "--offset")
# command -> (positional arguments (min, max), flags, options that take one value)
_COMMANDS: dict[str, tuple[tuple[int, int], tuple[str, ...], tuple[str, ...]]] = {
    "resolve": ((1, 1), ("--digest", "--json"), ("--artifact",)),
    "show": ((1, 1), ("--json",), ()),
    "ls": ((0, 1), ("--json", *_FILTER_FLAGS), _FILTER_VALUES),
    "search": ((0, 0), ("--json", *_FILTER_FLAGS), _FILTER_VALUES),
    "log": ((0, 1), ("--json",), ("--stage", "--limit", "-n", "--since")),
}
_ALIASES = {"-n": "--limit", "-w": "--where", "--no-archived": "--archived"}
_MULTIPLE = ("--where",)  # repeatable: every value kept, in order


class _HandOff(Exception):
    """The arguments are not for the short path: the typer app takes them."""


def main(argv: list[str] | None = None) -> None:
    """Run ``modelreg`` (``argv`` defaults to ``sys.argv[1:]``) and exit with its code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        parsed = parse(args)
    except _HandOff:
        parsed = None
    if parsed is None or os.environ.get("_MODELREG_COMPLETE"):
        from .cli import main as full

        full(argv)
        return
    sys.exit(run(args, *parsed))


def parse(args: list[str]) -> tuple[str | None, str, list[str], dict[str, Any]] | None:
    """``(registry, command, positional arguments, options)`` for an argument vector the short
    path runs exactly as the typer app would; None (or _HandOff) for anything else."""
    registry: str | None = None
    i, n = 0, len(args)
    seen: set[str] = set()
    while i < n:  # global options, before the command
        word = args[i]
        if word in _GLOBAL_VALUE or word.startswith("--registry="):
            if "registry" in seen:
                raise _HandOff
            seen.add("registry")
            if word.startswith("--registry="):
                value = word[len("--registry="):]
                i += 1
            else:
                if i + 1 >= n:
                    raise _HandOff
                value = args[i + 1]
                i += 2
            if not value or value.startswith("-"):
                raise _HandOff
            registry = value
        elif word in _GLOBAL_FLAGS:
            i += 1
        else:
            break
    if i >= n or args[i] not in _COMMANDS:
        return None
    command = args[i]
    (least, most), flags, valued = _COMMANDS[command]
    positional: list[str] = []
    options: dict[str, Any] = {}
    i += 1
    while i < n:
        word = args[i]
        if word.startswith("-") and word != "-":
            given, eq, value = word.partition("=")
            name = _ALIASES.get(given, given)
            if name in options and name not in _MULTIPLE:
                raise _HandOff  # click keeps the last one; not worth mirroring
            if given in flags and not eq:
                options[name] = given != "--no-archived"
                i += 1
                continue
            if given in valued and given.startswith("--") and eq:
                got = _value(value)
                i += 1
            elif word in valued and i + 1 < n:
                got = _value(args[i + 1])
                i += 2
            else:
                raise _HandOff  # unknown option, --help, --, a flag given a value, -n5 ...
            if name in _MULTIPLE:
                options.setdefault(name, []).append(got)
            else:
                options[name] = got
        elif word == "-":
            raise _HandOff
        else:
            positional.append(word)
            i += 1
    if not least <= len(positional) <= most:
        raise _HandOff
    for key in ("--limit", "--offset"):
        if key in options:
            text = options[key]
            if not text.isascii() or not text.isdigit():
                raise _HandOff  # click's own message for a bad integer
            options[key] = int(text)
    for a in args:
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            raise _HandOff from None
    return registry, command, positional, options


def _value(text: str) -> str:
    if text.startswith("-") or not text:
        raise _HandOff
    return text


# ------------------------------------------------------------------ output
# The same bytes as modelreg.cli's funnel (typer.echo: the text, a newline, a flush).
def _out(text: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _emit_json(data: Any) -> None:
    from .printable import json_dumps, json_text

    _out(json_text(json_dumps(data)))


def _report(exc: ModelregError, as_json: bool) -> None:
    from .printable import line as safe

    _out(f"modelreg: error: {safe(exc.message)}", err=True)
    if _traceback_wanted():
        for detail in exc.details:
            _out(f"  {safe(detail)}", err=True)
    if as_json:
        out: dict[str, Any] = {}
        gate_report = getattr(exc, "report", None)
        if gate_report is not None:
            out.update(gate_report.to_dict())
        out["error"] = {"code": exc.exit_code, "message": exc.message, **exc.info}
        _emit_json(out)


def _traceback_wanted() -> bool:
    from .errors import ModelregError
    from .settings import traceback_enabled

    try:
        return traceback_enabled()
    except ModelregError:
        return False


# ------------------------------------------------------------------ commands
def run(args: list[str], registry: str | None, command: str, positional: list[str], options: dict[str, Any]) -> int:
    """Run one parsed hot command; the exit code (errors reported the documented way)."""
    from .errors import ModelregError

    as_json = "--json" in args
    try:
        from .settings import check_environment

        for warning in check_environment():
            from .printable import line

            _out(f"modelreg: warning: {line(warning)}", err=True)
    except ModelregError as exc:
        _report(exc, as_json)
        return exc.exit_code
    try:
        if command == "resolve":
            _resolve(registry, positional[0], options)
        elif command == "show":
            _show(registry, positional[0], options)
        elif command == "ls":
            _ls(registry, positional[0] if positional else None, options)
        elif command == "search":
            _search(_open(registry), None, options)
        else:
            _log(registry, positional[0] if positional else None, options)
    except ModelregError as exc:
        _report(exc, as_json)
        return exc.exit_code
    except OSError as exc:
        from .errors import os_message, stdout_gone

        if isinstance(exc, BrokenPipeError):
            stdout_gone()
        _report(ModelregError(os_message(exc)), as_json)
        return 1
    except KeyboardInterrupt:
        if as_json:
            _emit_json({"error": {"code": 130, "message": "interrupted"}})
        return 130
    return 0


def _open(registry: str | None) -> Any:
    from .registry import Registry

    return Registry.open(registry)


def _resolve(registry: str | None, ref: str, options: dict[str, Any]) -> None:
    artifact = options.get("--artifact")
    found = None
    if artifact is None:
        from .lookup import resolve

        found = resolve(registry, ref)
    if found is not None:
        name, version, digest = found
        if "--json" in options:
            _emit_json({"name": name, "version": version, "digest": digest})
        else:
            _out(digest if "--digest" in options else version)
        return
    reg = _open(registry)
    r = reg.resolve(ref)
    if artifact is not None:
        arts = {a["role"]: a for a in reg.manifest(r.digest).get("artifacts", [])}
        if artifact not in arts:
            from .errors import NotFound

            raise NotFound(f"{r.name}@{r.version} has no artifact with role {artifact!r} (has: {', '.join(arts) or 'none'})")
        if "--json" in options:
            _emit_json({**r.to_dict(), "artifact": arts[artifact]})
        else:
            _out(arts[artifact]["uri"])
    elif "--json" in options:
        _emit_json(r.to_dict())
    else:
        _out(r.digest if "--digest" in options else r.version)


def _show(registry: str | None, ref: str, options: dict[str, Any]) -> None:
    info = _open(registry).show(ref)
    if "--json" in options:
        _emit_json(info.to_dict())
    else:
        from .render import show_text

        sys.stdout.write(show_text(info))
        sys.stdout.flush()


_FILTERS = ("--name", "--stage", "--tag", "--archived", "--where", "--sort", "--limit", "--offset")


def _search(reg: Any, name_regex: str | None, options: dict[str, Any]) -> None:
    """``search`` and ``ls`` with filters: modelreg.cli._search_and_print, without typer."""
    from .query import parse_where

    conditions = [parse_where(w) for w in options.get("--where") or []]
    records = reg.search(name_regex=name_regex if name_regex is not None else options.get("--name"),
                         stage=options.get("--stage"), staged=bool(options.get("--staged")), tag=options.get("--tag"),
                         archived=options.get("--archived"), where=conditions, sort=options.get("--sort"),
                         limit=options.get("--limit"), offset=options.get("--offset") or 0)
    for c in conditions:
        text = c.mismatch_note()
        if text:
            from .printable import line

            _out(f"modelreg: warning: {line(text)}", err=True)
    if "--json" in options:
        _emit_json([r.to_dict() for r in records])
    else:
        from .discovery_render import search_table

        search_table(records)


def _ls(registry: str | None, name: str | None, options: dict[str, Any]) -> None:
    from . import render

    reg = _open(registry)
    if any(k in options for k in _FILTERS) or options.get("--staged"):
        name_regex = None
        if name is not None:
            import re

            from .errors import UsageError

            reg.versions(name)  # NotFound for an unknown model
            if "--name" in options:
                raise UsageError("give either a model NAME or --name REGEX, not both")
            name_regex = f"^{re.escape(name)}$"
        _search(reg, name_regex, options)
        return
    if name is None:
        models = reg.models()
        if "--json" in options:
            _emit_json([m.to_dict() for m in models])
        else:
            render.models_table(models)
    else:
        versions = reg.versions(name)
        if "--json" in options:
            _emit_json([v.to_dict() for v in versions])
        else:
            render.versions_table(name, versions)


def _log(registry: str | None, name: str | None, options: dict[str, Any]) -> None:
    reg = _open(registry)
    events = reg.events(name, stage=options.get("--stage"), limit=options.get("--limit"), since=options.get("--since"))
    verdicts = reg.signatures(events)
    if "--json" in options:
        out = []
        for e in reversed(events):
            v = verdicts.get(e.id)
            out.append({**e.to_dict(), "verified": bool(v and v.verified), "signature": v and v.to_dict()})
        _emit_json(out)
        return
    from .render import event_text, signature_mark

    labels = reg.version_labels(events=events)
    for e in reversed(events):
        _out(event_text(e, labels) + signature_mark(verdicts.get(e.id)))
