"""The ``modelreg`` command line: parse, call the library, render. No logic lives here.

Data goes to stdout (human text, or JSON with ``--json``); messages and errors go to
stderr as one line. Exit codes are those of :mod:`modelreg.errors`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from .errors import ModelregError, UsageError

app = typer.Typer(
    name="modelreg",
    help="A Git-style model registry that lives in a .modelreg/ directory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who makes the change (default: MODELREG_ACTOR, CI user, git email).")
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why: recorded in the event log.")]

_state: dict[str, Any] = {"registry": None}

F = TypeVar("F", bound=Callable[..., Any])


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """Register a command whose ModelregErrors become one line on stderr and the documented exit code."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except ModelregError as exc:
                fail(exc)
            except OSError as exc:  # disk full, EIO, permission denied...: one line, not a traceback
                fail(ModelregError(os_message(exc)))

        app.command(*args, **kwargs)(wrapper)
        return fn

    return decorate


def fail(exc: ModelregError) -> None:
    """Print a one-line error (details only with MODELREG_TRACEBACK) and exit with its code."""
    typer.echo(f"modelreg: error: {exc.message}", err=True)
    if os.environ.get("MODELREG_TRACEBACK"):
        for line in exc.details:
            typer.echo(f"  {line}", err=True)
    raise typer.Exit(exc.exit_code)


def os_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed and on which file."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{what}: {where}" if where else what


def note(message: str) -> None:
    """A message for the person at the terminal (stderr)."""
    typer.echo(message, err=True)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False))


@app.callback()
def _main(
    registry: Annotated[
        str | None,
        typer.Option("--registry", "-R", help="Registry directory (default: MODELREG_DIR, or .modelreg/ found upwards).",
                     envvar=None),
    ] = None,
) -> None:
    _state["registry"] = registry


def open_registry() -> Any:
    from .registry import Registry

    return Registry.open(_state["registry"])


def _progress_factory() -> Any:
    """A progress callback factory for large files when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def factory(label: str, total: int) -> Callable[[int], None] | None:
        if total < (64 << 20):
            return None
        from .render import progress_bar

        return progress_bar(label, total)

    return factory


def parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``K=V`` pairs into a nested mapping; V keeps its JSON type only if it round-trips exactly."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} {pair!r}: expected KEY=VALUE")
        value: Any = raw
        try:
            parsed = json.loads(raw)
            if json.dumps(parsed) == raw and not isinstance(parsed, (dict, list)):
                value = parsed
        except ValueError:
            pass
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise UsageError(f"{what} {pair!r}: {part!r} is already a value")
            node = nxt
        if parts[-1] in node:
            raise UsageError(f"{what} {pair!r}: key given twice")
        node[parts[-1]] = value
    return out


# ----------------------------------------------------------------- commands
@command("init")
def init_cmd(
    path: Annotated[str, typer.Argument(help="Project directory to create .modelreg/ in.")] = ".",
) -> None:
    """Create a registry (.modelreg/) in PATH."""
    from .registry import Registry

    existed = os.path.isfile(os.path.join(path, ".modelreg", "config.yaml"))
    reg = Registry.init(path)
    note(f"{'Reinitialized existing' if existed else 'Initialized empty'} modelreg registry in {reg.path}")


@command("register")
def register_cmd(
    name: Annotated[str | None, typer.Argument(help="Model name.")] = None,
    version: Annotated[str | None, typer.Argument(help="Version name (e.g. 1.2.0).")] = None,
    artifact: Annotated[list[str] | None, typer.Option("--artifact", "-a", help="[ROLE=]URI, repeatable.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Training parameter K=V.")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", help="Metadata K=V.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Initial tag.")] = None,
    parent: Annotated[list[str] | None, typer.Option("--parent", help="Parent version reference.")] = None,
    lineage: Annotated[str | None, typer.Option("--lineage", help="How the parents relate (fine_tune, ...).")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    license: Annotated[str | None, typer.Option("--license", help="SPDX license identifier.")] = None,
    from_file: Annotated[str | None, typer.Option("--from-file", help="Register a manifest YAML file.")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model version (idempotent for identical content)."""
    reg = open_registry()
    if from_file:
        if any([name, version, artifact, param, meta, tag, parent, description, license]):
            raise UsageError("--from-file takes the whole manifest; give no NAME, VERSION or other fields")
        from . import canonical

        # The user's own file: plain open (a symlink is fine here, unlike inside .modelreg/).
        try:
            with open(from_file, "rb") as f:
                data = f.read(canonical.MAX_BYTES + 1)
        except FileNotFoundError:
            raise UsageError(f"--from-file {from_file}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"--from-file {from_file}: is a directory") from None
        if len(data) > canonical.MAX_BYTES:
            raise UsageError(f"--from-file {from_file} is larger than {canonical.MAX_BYTES} bytes (a manifest is metadata)")
        raw = canonical.load(data, what=from_file)
        if not isinstance(raw, dict):
            raise UsageError(f"{from_file}: a manifest must be a mapping")
        result = reg.register_manifest(raw, actor=actor, progress=_progress_factory())
    else:
        if not name or not version:
            raise UsageError("register needs NAME and VERSION (or --from-file)")
        result = reg.register(
            name, version,
            artifacts=artifact or [],
            params=parse_pairs(param or [], "--param"),
            meta=parse_pairs(meta or [], "--meta"),
            tags=tag or [],
            parents=parent or [],
            relation=lineage,
            description=description,
            license=license,
            actor=actor,
            progress=_progress_factory(),
        )
    if as_json:
        emit_json(result.to_dict())
        return
    v = result.version
    verb = "Registered" if result.created else "Already registered (identical)"
    note(f"{verb} {v.name}@{v.version}")
    typer.echo(v.digest)


@command("promote")
def promote_cmd(
    ref: Annotated[str, typer.Argument(help="Version to promote: NAME@VERSION, NAME@latest, NAME@sha256:...")],
    stage: Annotated[str, typer.Argument(help="Target stage.")],
    expect: Annotated[
        str | None, typer.Option("--expect", help="Only if the stage now holds VERSION, sha256:..., or none.")
    ] = None,
    reason: ReasonOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Override policy; recorded in the event.")] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point STAGE of the model at a version (compare-and-swap with --expect)."""
    reg = open_registry()
    move = reg.promote(ref, stage, expect=expect, reason=reason, actor=actor, force=force)
    _print_move(move, as_json, "Promoted")


@command("rollback")
def rollback_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    stage: Annotated[str, typer.Argument(help="Stage to roll back.")],
    to: Annotated[str | None, typer.Option("--to", help="Version to roll back to (default: the previous one).")] = None,
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move STAGE back to the version it held before its latest change."""
    reg = open_registry()
    move = reg.rollback(name, stage, to=to, reason=reason, actor=actor)
    _print_move(move, as_json, "Rolled back")


def _print_move(move: Any, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(move.to_dict())
        return
    if not move.changed:
        note(f"{move.name}@{move.stage} already holds {move.to.version}; nothing changed")
    else:
        before = move.from_.version if move.from_ else "(empty)"
        note(f"{verb} {move.name}@{move.stage}: {before} -> {move.to.version}")
    typer.echo(move.to.digest)


@command("archive")
def archive_cmd(
    ref: Annotated[str, typer.Argument(help="Version reference.")],
    reason: ReasonOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Archive even if it holds a stage.")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="Unarchive the version.")] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a version archived (it can no longer be promoted)."""
    reg = open_registry()
    event = reg.archive(ref, reason=reason, actor=actor, force=force, undo=undo)
    if as_json:
        emit_json({"changed": event is not None, "event": event and event.to_dict()})
        return
    what = "unarchived" if undo else "archived"
    note(f"{ref}: {what}" if event else f"{ref} was already {what}; nothing changed")


@command("resolve")
def resolve_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION|STAGE|latest|sha256:HEX")],
    digest: Annotated[bool, typer.Option("--digest", help="Print the manifest digest.")] = False,
    artifact: Annotated[str | None, typer.Option("--artifact", help="Print the URI of the artifact ROLE.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the version a reference names (or its digest, or an artifact URI)."""
    reg = open_registry()
    r = reg.resolve(ref)
    uri = None
    if artifact is not None:
        arts = {a["role"]: a for a in reg.manifest(r.digest).get("artifacts", [])}
        if artifact not in arts:
            from .errors import NotFound

            raise NotFound(f"{r.name}@{r.version} has no artifact with role {artifact!r} (has: {', '.join(arts) or 'none'})")
        uri = arts[artifact]["uri"]
    if as_json:
        emit_json({**r.to_dict(), **({"artifact": arts[artifact]} if artifact is not None else {})})
    elif uri is not None:
        typer.echo(uri)
    else:
        typer.echo(r.digest if digest else r.version)


@command("show")
def show_cmd(
    ref: Annotated[str, typer.Argument(help="Version reference.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version: manifest, stages, registration and archived state."""
    info = open_registry().show(ref)
    if as_json:
        emit_json(info.to_dict())
    else:
        from .render import show_text

        typer.echo(show_text(info), nl=False)


@command("ls")
def ls_cmd(
    name: Annotated[str | None, typer.Argument(help="Model to list versions of.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List models with their stages, or the versions of one model."""
    reg = open_registry()
    from . import render

    if name is None:
        models = reg.models()
        if as_json:
            emit_json([m.to_dict() for m in models])
        else:
            render.models_table(models)
    else:
        versions = reg.versions(name)
        if as_json:
            emit_json([v.to_dict() for v in versions])
        else:
            render.versions_table(name, versions)


@command("log")
def log_cmd(
    name: Annotated[str | None, typer.Argument(help="Model name (default: every model).")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="Only events of this stage.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Only the newest N events.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the event log, newest first: who changed what, when, and why."""
    events = open_registry().events(name, stage=stage, limit=limit)
    if as_json:
        emit_json([e.to_dict() for e in reversed(events)])
        return
    from .render import event_text

    for e in reversed(events):
        typer.echo(event_text(e))


@command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(help="Old version reference.")],
    b: Annotated[str, typer.Argument(help="New version reference.")],
    as_json: JsonOpt = False,
) -> None:
    """Show how the manifest of B differs from A."""
    result = open_registry().diff(a, b)
    if as_json:
        emit_json(result.to_dict())
        return
    from .render import diff_lines

    for text, colour in diff_lines(result):
        typer.secho(text, fg=colour)


@command("fsck")
def fsck_cmd(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what an interrupted write can leave behind.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every object's hash, every ref and every log line; name each problem."""
    from .fsck import fsck

    report = fsck(open_registry(), repair=repair)
    if as_json:
        emit_json(report.to_dict())
    else:
        for p in report.problems:
            typer.echo(f"{p.severity}: {p.path}: {p.message}")
        c = report.counts
        note(
            f"checked {c['objects']} objects, {c['versions']} versions, {c['refs']} refs, {c['events']} events: "
            + ("ok" if report.ok else f"{len(report.errors)} error(s)")
            + (f", {len(report.warnings)} warning(s)" if report.warnings else "")
            + (f"; repaired {len(report.repaired)}" if report.repaired else "")
        )
    if not report.ok:
        raise typer.Exit(6)


def _app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command ``argv`` names, when it names one.

    Building the click command of every subcommand (signatures, type hints, parameter
    objects) costs more than running ``resolve``; a plain ``modelreg CMD ...`` only needs
    CMD. Help, completion and unknown commands get the whole app.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-R", "--registry"):
            i += 2
            continue
        if arg.startswith("--registry=") or (arg.startswith("-R") and len(arg) > 2):
            i += 1
            continue
        if arg.startswith("-"):
            return app
        matches = [c for c in app.registered_commands if c.name == arg]
        if len(matches) != 1:
            return app
        import copy

        sub = copy.copy(app)
        sub.registered_commands = matches
        return sub
    return app


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn every error into one line and an exit code."""
    from typer._click import exceptions as click_exc

    cmd = typer.main.get_command(_app_for(sys.argv[1:] if argv is None else list(argv)))
    try:
        rv = cmd.main(args=argv, prog_name="modelreg", standalone_mode=False)
    except click_exc.NoArgsIsHelpError:
        sys.exit(2)  # help was printed
    except click_exc.ClickException as exc:
        typer.echo(f"modelreg: error: {exc.format_message()} (see 'modelreg --help')", err=True)
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except typer.Abort:
        typer.echo("modelreg: aborted", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except ModelregError as exc:  # raised outside a command body (e.g. callback)
        typer.echo(f"modelreg: error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        typer.echo(f"modelreg: error: {os_message(exc)}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
