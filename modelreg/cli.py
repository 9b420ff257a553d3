"""The ``modelreg`` command line: parse, call the library, render. No logic lives here.

Data goes to stdout (human text, or JSON with ``--json``); messages and errors go to
stderr as one line. Exit codes are those of :mod:`modelreg.errors`. Every error, wherever it
is raised (argument parsing, the environment, a command body), goes through one funnel
(:func:`fail`): with ``--json`` it also prints ``{"error": {"code", "message", ...}}`` on
stdout, so a command given ``--json`` prints exactly one JSON object on every outcome.
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
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print no messages on success (data, warnings and errors still print).")
]
SignOpt = Annotated[
    bool,
    typer.Option("--sign", help="Sign the event with your SSH key (MODELREG_SIGNING_KEY or git's user.signingkey)."),
]
RecordNoopOpt = Annotated[
    bool,
    typer.Option("--record-noop", help="When the stage already holds the result, record a 'noop' event (else nothing "
                                       "is written)."),
]

_state: dict[str, Any] = {"registry": None, "json": False, "quiet": False}

F = TypeVar("F", bound=Callable[..., Any])


metrics_app = typer.Typer(name="metrics", help="Record and show evaluation metrics by suite.", no_args_is_help=True)
policy_app = typer.Typer(name="policy", help="Inspect the promotion policy of config.yaml.", no_args_is_help=True)
model_app = typer.Typer(name="model", help="Fields of a model itself: description, task, subject, owner...",
                        no_args_is_help=True)
import_app = typer.Typer(
    name="import", help="Bring another registry's versions and history into modelreg (GTO, MLflow).",
    no_args_is_help=True,
)
site_app = typer.Typer(name="site", help="Build and preview the team's static registry site.", no_args_is_help=True)
app.add_typer(metrics_app)
app.add_typer(policy_app)
app.add_typer(model_app)
app.add_typer(import_app)
app.add_typer(site_app)


def command(*args: Any, group: typer.Typer | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register a command (on ``group``, default the top level) whose ModelregErrors become one line on
    stderr and the documented exit code."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            if kw.get("as_json"):
                _state["json"] = True
            if kw.get("quiet"):
                _state["quiet"] = True
            try:
                return fn(*a, **kw)
            except ModelregError as exc:
                fail(exc)
            except OSError as exc:  # disk full, EIO, permission denied...: one line, not a traceback
                if isinstance(exc, BrokenPipeError):
                    stdout_gone()
                fail(ModelregError(os_message(exc)))

        (group or app).command(*args, **kwargs)(wrapper)
        return fn

    return decorate


def fail(exc: ModelregError) -> None:
    """The error funnel: a one-line error on stderr (details only with MODELREG_TRACEBACK), the
    JSON error object on stdout in ``--json`` mode, and exit with the error's code."""
    report(exc)
    raise typer.Exit(exc.exit_code)


def report(exc: ModelregError) -> None:
    """Print an error the documented way (see :func:`fail`) without exiting; registry bytes in the
    message are shown escaped (modelreg.printable), never sent to the terminal raw."""
    from .printable import line as safe

    typer.echo(f"modelreg: error: {safe(exc.message)}", err=True)
    if _traceback_wanted():
        for line in exc.details:
            typer.echo(f"  {safe(line)}", err=True)
    if _state["json"]:
        emit_json(error_object(exc))


def error_object(exc: ModelregError) -> dict[str, Any]:
    """``{"error": {"code", "message", **exc.info}}``; a gate refusal also carries its report's fields."""
    out: dict[str, Any] = {}
    gate_report = getattr(exc, "report", None)
    if gate_report is not None:
        out.update(gate_report.to_dict())
    partial = getattr(exc, "result", None)  # sync: status, conflict or contention, the commit kept locally
    if isinstance(partial, dict):
        out.update(partial)
    out["error"] = {"code": exc.exit_code, "message": exc.message, **exc.info}
    return out


def _traceback_wanted() -> bool:
    from .settings import traceback_enabled

    try:
        return traceback_enabled()
    except ModelregError:
        return False


from .errors import os_message, stdout_gone  # noqa: E402 - one wording for both entry points (modelreg.fastpath)


def note(message: str) -> None:
    """A message for the person at the terminal (stderr), control characters escaped; silenced by ``--quiet``."""
    from .printable import line

    if not _state["quiet"]:
        typer.echo(line(message), err=True)


def warn(message: str) -> None:
    """A warning (stderr), control characters escaped: printed even with ``--quiet``."""
    from .printable import line

    typer.echo(f"modelreg: warning: {line(message)}", err=True)


def use_colour(stream: Any = None) -> bool:
    """Colour only on a terminal, never when NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def echo_styled(text: str, colour: str | None) -> None:
    """A line on stdout, in ``colour`` when :func:`use_colour` allows it."""
    typer.secho(text, fg=colour, color=use_colour(sys.stdout))


def emit_json(data: Any) -> None:
    from .printable import json_dumps, json_text

    typer.echo(json_text(json_dumps(data)))  # json.dumps(data, indent=2, ensure_ascii=False), faster


def version_text() -> str:
    from . import __version__
    from .config import FORMAT

    return f"modelreg {__version__} (registry format {FORMAT})"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


def with_error(data: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    """A report printed on a non-zero exit (check, fsck, verify...): its fields plus the ``error``
    object every failure carries in --json mode."""
    return data if code == 0 else {**data, "error": {"code": code, "message": message}}


@app.callback()
def _main(
    registry: Annotated[
        str | None,
        typer.Option("--registry", "-R", help="Registry directory (default: MODELREG_DIR, or .modelreg/ found upwards).",
                     envvar=None),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print no messages on success (as the command option -q).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the modelreg and registry format versions.",
                           callback=_version_callback, is_eager=True)
    ] = False,
    install_completion: Annotated[
        str | None, typer.Option("--install-completion", metavar="[SHELL]",
                                 help="Install shell completion (bash, zsh, fish; default: your shell).")
    ] = None,
    show_completion: Annotated[
        str | None, typer.Option("--show-completion", metavar="[SHELL]",
                                 help="Print the shell completion script (bash, zsh, fish; default: your shell).")
    ] = None,
) -> None:
    _state["registry"] = registry
    _state["quiet"] = _state["quiet"] or quiet
    if install_completion is not None or show_completion is not None:  # normally handled in main()
        _completion_option("--install-completion" if install_completion is not None else "--show-completion",
                           install_completion or show_completion or None)


def open_registry(allow_git: tuple[str, ...] = ()) -> Any:
    from .registry import Registry

    return Registry.open(_state["registry"], allow_git=allow_git)


def _progress_factory() -> Any:
    """A progress callback factory for large files when stderr is a terminal."""
    if _state["quiet"] or not sys.stderr.isatty():
        return None

    def factory(label: str, total: int) -> Callable[[int], None] | None:
        if total < (64 << 20):
            return None
        from .render import progress_bar

        return progress_bar(label, total)

    return factory


def in_range(lo: float | None = None, hi: float | None = None) -> Callable[[Any], Any]:
    """An option callback that refuses a number outside ``[lo, hi]`` in click's words, whatever typer's
    version (typer 0.29+ validates ``min``/``max`` through pydantic, whose message drops the value)."""
    bounds = f"{lo}<=x<={hi}" if lo is not None and hi is not None else f"x>={lo}" if lo is not None else f"x<={hi}"

    def check(value: Any) -> Any:
        if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            raise typer.BadParameter(f"{value} is not in the range {bounds}.")
        return value

    return check


def parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``K=V`` pairs typed by the one rule of :mod:`modelreg.values`."""
    from .values import parse_pairs as parse

    return parse(pairs, what)


# ------------------------------------------------------------- completion
# Shell completion callbacks (see modelreg.completion): the registry is read only when a shell asks.
def _completion_registry(ctx: typer.Context) -> str | None:
    return ctx.find_root().params.get("registry")


def _complete_refs(ctx: typer.Context, incomplete: str) -> list[str]:
    from .completion import refs

    return refs(incomplete, _completion_registry(ctx))


def _complete_models(ctx: typer.Context, incomplete: str) -> list[str]:
    from .completion import models

    return models(incomplete, _completion_registry(ctx))


def _complete_stages(ctx: typer.Context, incomplete: str) -> list[str]:
    from .completion import stages

    return stages(incomplete, _completion_registry(ctx))


def _complete_tag_op(incomplete: str) -> list[str]:
    return [w for w in ("add", "rm") if w.startswith(incomplete)]


def _complete_shells(incomplete: str) -> list[str]:
    return [w for w in ("bash", "zsh", "fish") if w.startswith(incomplete)]


# ----------------------------------------------------------------- commands
@command("init")
def init_cmd(
    path: Annotated[
        str | None,
        typer.Argument(help="Project directory to create .modelreg/ in (default: --registry, MODELREG_DIR, or .)."),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Create a registry (.modelreg/) in PATH."""
    from .registry import Registry

    given = _state["registry"] or os.environ.get("MODELREG_DIR") or None
    if path is not None and given is not None:
        raise UsageError("give the registry location once: PATH or --registry/MODELREG_DIR")
    path = path or given or "."
    existed = os.path.isfile(os.path.join(path, "config.yaml")) or os.path.isfile(
        os.path.join(path, ".modelreg", "config.yaml")
    )
    reg = Registry.init(path)
    if as_json:
        emit_json({"path": str(reg.path), "created": not existed})
        return
    note(f"{'Reinitialized existing' if existed else 'Initialized empty'} modelreg registry in {reg.path}")


@command("register")
def register_cmd(
    name: Annotated[str | None, typer.Argument(help="Model name.")] = None,
    version: Annotated[str | None, typer.Argument(help="Version name (e.g. 1.2.0).")] = None,
    artifact: Annotated[list[str] | None, typer.Option("--artifact", "-a", help="[ROLE=]URI, repeatable.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="Training parameter K=V (0.90, 3e-4: numbers; true/false/null; else text).")] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", "-m", help="Metadata K=V, typed like --param.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Initial tag.")] = None,
    parent: Annotated[list[str] | None, typer.Option("--parent", help="Parent version reference.")] = None,
    lineage: Annotated[str | None, typer.Option("--lineage", help="How the parents relate (fine_tune, ...).")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    license: Annotated[str | None, typer.Option("--license", help="SPDX license identifier.")] = None,
    from_file: Annotated[str | None, typer.Option("--from-file", help="Register a manifest YAML file.")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse (exit 4) if another version has the same params.")
    ] = False,
    new_model: Annotated[
        bool, typer.Option("--new-model", help="Create the model even if its name looks like an existing one.")
    ] = False,
    allow_unknown_license: Annotated[
        bool, typer.Option("--allow-unknown-license", help="Accept a license id modelreg does not know.")
    ] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Record remote artifact URIs as given, without contacting the store.")
    ] = False,
    hash_: Annotated[bool, typer.Option("--hash", help="Stream remote artifacts through SHA-256 too.")] = False,
    upload: Annotated[
        bool, typer.Option("--upload", help="Copy local artifacts into config.yaml's artifact_store; record its URIs.")
    ] = False,
    next_: Annotated[
        str | None, typer.Option("--next", help="patch, minor or major: the next semantic version after the highest "
                                                "(instead of VERSION); printed.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Register a model version (idempotent for identical content)."""
    reg = open_registry()
    checks = {
        "check": not no_check, "compute_hash": hash_, "upload": upload,
        "strict": strict, "new_model": new_model, "allow_unknown_license": allow_unknown_license, "next": next_,
    }
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
        from .values import load_manifest

        raw = load_manifest(data, from_file)
        if not isinstance(raw, dict):
            raise UsageError(f"{from_file}: a manifest must be a mapping")
        result = reg.register_manifest(raw, actor=actor, progress=_progress_factory(), **checks)
    else:
        if not name or (not version and not next_):
            raise UsageError("register needs NAME and VERSION, NAME --next patch|minor|major, or --from-file")
        if version and next_:
            raise UsageError("give VERSION or --next, not both")
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
            **checks,
        )
    for d in result.duplicates:
        warn(f"same params fingerprint as {d.name}@{d.version} ({d.digest[:19]})")
    if result.more_duplicates:
        warn("more versions have the same params fingerprint (of each model the five most recently registered are named)")
    for same in result.same_artifacts:
        warn(same.message())
    if as_json:
        emit_json(result.to_dict())
        return
    v = result.version
    note(f"Registered {v.name}@{v.version}" if result.created
         else f"Already registered {v.name}@{v.version} with this content; nothing changed")
    for ev in result.pruned_events:
        if ev.action == "archive":
            note(f"Archived {ev.model}@{ev.version} ({ev.reason})")
    typer.echo(v.version if next_ else v.digest)


ExpectOpt = Annotated[
    str | None, typer.Option("--expect", help="Only if the stage now holds VERSION, sha256:..., or none (empty).")
]


@command("promote")
def promote_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs,
                                       help="Version to promote: NAME@VERSION, NAME@latest, NAME@sha256:...")],
    stage: Annotated[str, typer.Argument(autocompletion=_complete_stages,
                                         help="Target stage, or 'archived' to archive the version and clear its stages.")],
    expect: ExpectOpt = None,
    reason: ReasonOpt = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Override policy, or pick this version for a stage left with git conflict "
                                     "markers; recorded in the event."),
    ] = False,
    no_demote: Annotated[
        bool, typer.Option("--no-demote", help="Do not demote the replaced version (policy.demote_to).")
    ] = False,
    replace_staging: Annotated[
        bool, typer.Option("--replace-staging", help="Demote the replaced version even over another staged candidate.")
    ] = False,
    expect_staging: Annotated[
        str | None,
        typer.Option("--expect-staging", help="Demote only if the demotion stage now holds VERSION (or none)."),
    ] = None,
    record_noop: RecordNoopOpt = False,
    actor: ActorOpt = None,
    sign: SignOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Point STAGE of the model at a version (compare-and-swap with --expect), if the policy's gates pass."""
    from .errors import PolicyRefused

    reg = open_registry(allow_git=("merge",) if force else ())  # --force may pick a side of a merge conflict
    try:
        move = reg.promote(ref, stage, expect=expect, reason=reason, actor=actor, force=force, demote=not no_demote,
                           replace_staging=replace_staging, expect_staging=expect_staging, sign=sign,
                           record_noop=record_noop)
    except PolicyRefused as exc:
        if exc.report is not None and not as_json:  # with --json the error object carries the report
            from .render import gate_table

            gate_table(exc.report, stderr=True)
        raise
    if move.stage == "archived" and move.to is not None:
        archived = next((e for e in move.events if e.action == "archive"), None)
        cleared = [e.stage for e in move.events if e.action == "clear"]
        _print_archived(move.to, move.changed, cleared, archived, move.events, as_json, undo=False)
        return
    _print_move(move, as_json, "Promoted")


@command("rollback")
def rollback_cmd(
    name: Annotated[str, typer.Argument(autocompletion=_complete_models, help="Model name.")],
    stage: Annotated[str, typer.Argument(autocompletion=_complete_stages, help="Stage to roll back.")],
    to: Annotated[
        str | None, typer.Option("--to", help="Version to roll back to (default: undo the latest move not undone yet).")
    ] = None,
    expect: ExpectOpt = None,
    reason: ReasonOpt = None,
    record_noop: RecordNoopOpt = False,
    actor: ActorOpt = None,
    sign: SignOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Undo the latest move of STAGE not undone yet (again: the one before it), or go back --to VERSION."""
    reg = open_registry()
    move = reg.rollback(name, stage, to=to, expect=expect, reason=reason, actor=actor, sign=sign,
                        record_noop=record_noop)
    _print_move(move, as_json, "Rolled back")


@command("clear")
def clear_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    stage: Annotated[str, typer.Argument(help="Stage to empty.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the stage is emptied (required; recorded).")],
    expect: ExpectOpt = None,
    record_noop: RecordNoopOpt = False,
    actor: ActorOpt = None,
    sign: SignOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Empty STAGE (resolve NAME@STAGE then exits 3); rollback undoes it."""
    move = open_registry().clear(name, stage, reason=reason, expect=expect, actor=actor, sign=sign,
                                 record_noop=record_noop)
    _print_move(move, as_json, "Cleared")


def _print_move(move: Any, as_json: bool, verb: str) -> None:
    """A stage move: one line per stage changed (stderr), the new digest on stdout; or the JSON."""
    if as_json:
        emit_json(move.to_dict())
        return
    label = move.to.version if move.to else "(empty)"
    if not move.changed:
        recorded = " (recorded a noop event)" if move.events else ""
        note(f"{move.name}@{move.stage} already holds {label}; nothing changed{recorded}"
             if move.to else f"{move.name}@{move.stage} is already empty; nothing changed{recorded}")
    else:
        before = move.from_.version if move.from_ else "(empty)"
        note(f"{verb} {move.name}@{move.stage}: {before} -> {label}")
    for ev in move.events[1:]:
        if ev.action == "demote":
            note(f"Demoted {ev.model}@{ev.version} to {ev.stage}"
                 + (f" (replacing {_version_label(ev.from_)})" if ev.from_ and ev.from_ != move.to.digest else ""))
    for line in move.notes:
        note(f"Note: {line}")
    if move.to is not None:
        typer.echo(move.to.digest)


def _version_label(digest: str | None) -> str:
    if digest is None:
        return "(empty)"
    labels = open_registry().version_labels([digest])
    return labels.get(digest, digest[:19])


def _print_archived(
    r: Any, changed: bool, cleared: list[str], event: Any, events: list[Any], as_json: bool, undo: bool
) -> None:
    """An archive (or unarchive): a line per stage it cleared, then the outcome; or the JSON."""
    if as_json:
        emit_json({**r.to_dict(), "changed": changed, "archived": not undo, "cleared": cleared,
                   "event": event and event.to_dict(), "events": [e.to_dict() for e in events]})
        return
    for stage in cleared:
        note(f"Cleared {r.name}@{stage} (held {r.version})")
    if event is not None:
        note(f"{'Unarchived' if undo else 'Archived'} {r.name}@{r.version}")
    else:
        note(f"{r.name}@{r.version} is {'not' if undo else 'already'} archived" + ("" if cleared else "; nothing changed"))


@command("archive")
def archive_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    reason: ReasonOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Archive even if it holds a stage.")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="Unarchive the version.")] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Mark a version archived (it can no longer be promoted); --force also clears the stages it holds."""
    reg = open_registry()
    r = reg.resolve(ref)
    event = reg.archive(ref, reason=reason, actor=actor, force=force, undo=undo)
    cleared = list(event.data.get("cleared") or []) if event is not None else []
    _print_archived(r, event is not None, cleared, event, [event] if event else [], as_json, undo)


@command("resolve")
def resolve_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="NAME@VERSION|STAGE|latest|sha256:HEX")],
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
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version: manifest, stages, registration and archived state."""
    info = open_registry().show(ref)
    if as_json:
        emit_json(info.to_dict())
    else:
        from .render import show_text

        typer.echo(show_text(info), nl=False)


NameRegexOpt = Annotated[str | None, typer.Option("--name", help="Model name matches this regex (search).")]
StageFilterOpt = Annotated[str | None, typer.Option("--stage", autocompletion=_complete_stages, help="Versions that hold this stage.")]
StagedOpt = Annotated[bool, typer.Option("--staged", help="Versions that hold any stage.")]
TagFilterOpt = Annotated[str | None, typer.Option("--tag", help="Versions with this tag.")]
ArchivedOpt = Annotated[
    bool | None, typer.Option("--archived/--no-archived", help="Only archived / only not archived versions.")
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option("--where", "-w", help="FIELD OP VALUE, OP one of == != < <= > >= ~= (regex); repeatable, AND."),
]
SortOpt = Annotated[str | None, typer.Option("--sort", help="Sort by FIELD (-FIELD: descending); ties keep model "
                                                          "name and registration order.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", "-n", callback=in_range(0), help="At most N versions.")]
OffsetOpt = Annotated[int | None, typer.Option("--offset", callback=in_range(0), help="Skip the first N (paging: with --limit).")]


def _search_and_print(name_regex: str | None, stage: str | None, staged: bool, tag: str | None,
                      archived: bool | None, where: list[str] | None, sort: str | None, limit: int | None,
                      as_json: bool, offset: int | None = None) -> None:
    from .query import parse_where

    conditions = [parse_where(w) for w in where or []]
    records = open_registry().search(name_regex=name_regex, stage=stage, staged=staged, tag=tag,
                                     archived=archived, where=conditions, sort=sort, limit=limit,
                                     offset=offset or 0)
    for c in conditions:
        text = c.mismatch_note()
        if text:
            warn(text)
    if as_json:
        emit_json([r.to_dict() for r in records])
    else:
        from .discovery_render import search_table

        search_table(records)


@command("search")
def search_cmd(
    name: NameRegexOpt = None,
    stage: StageFilterOpt = None,
    staged: StagedOpt = False,
    tag: TagFilterOpt = None,
    archived: ArchivedOpt = None,
    where: WhereOpt = None,
    sort: SortOpt = None,
    limit: LimitOpt = None,
    offset: OffsetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find versions across models: filters combine with AND (see docs/discovery.md)."""
    _search_and_print(name, stage, staged, tag, archived, where, sort, limit, as_json, offset)


@command("ls")
def ls_cmd(
    name: Annotated[str | None, typer.Argument(autocompletion=_complete_models, help="Model to list versions of.")] = None,
    name_regex: NameRegexOpt = None,
    stage: StageFilterOpt = None,
    staged: StagedOpt = False,
    tag: TagFilterOpt = None,
    archived: ArchivedOpt = None,
    where: WhereOpt = None,
    sort: SortOpt = None,
    limit: LimitOpt = None,
    offset: OffsetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List models with their stages, or the versions of one model; with a filter, matching versions."""
    reg = open_registry()
    from . import render

    if any(x is not None for x in (name_regex, stage, tag, archived, where, sort, limit, offset)) or staged:
        if name is not None:
            import re

            reg.versions(name)  # NotFound for an unknown model
            if name_regex is not None:
                raise UsageError("give either a model NAME or --name REGEX, not both")
            name_regex = f"^{re.escape(name)}$"
        _search_and_print(name_regex, stage, staged, tag, archived, where, sort, limit, as_json, offset)
        return
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
    name: Annotated[str | None, typer.Argument(autocompletion=_complete_models, help="Model name (default: every model).")] = None,
    stage: Annotated[str | None, typer.Option("--stage", autocompletion=_complete_stages, help="Only events of this stage.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", callback=in_range(0), help="Only the newest N events.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events after this event id (resume where you left off).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing events as they are appended, oldest first, "
                                                  "until Ctrl-C (with --json: one JSON object per line).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the event log, newest first: who changed what, when, and why; which events are signed and verified."""
    reg = open_registry()
    if follow:
        _follow(reg, name, stage, limit, since, as_json)
        return
    events = reg.events(name, stage=stage, limit=limit, since=since)
    verdicts = reg.signatures(events)
    if as_json:
        out = []
        for e in reversed(events):
            v = verdicts.get(e.id)
            out.append({**e.to_dict(), "verified": bool(v and v.verified), "signature": v and v.to_dict()})
        emit_json(out)
        return
    from .render import event_text, signature_mark

    labels = reg.version_labels(events=events)
    for e in reversed(events):
        typer.echo(event_text(e, labels) + signature_mark(verdicts.get(e.id)))


def _follow(reg: Any, name: str | None, stage: str | None, limit: int | None, since: str | None, as_json: bool) -> None:
    """``log --follow``: stream events as lines (text or JSON Lines); Ctrl-C ends it quietly (exit 0)."""
    from .render import event_text, signature_mark

    try:
        for e in reg.follow(name, stage=stage, since=since, limit=limit):
            verdict = reg.signatures([e]).get(e.id) if e.sig is not None else None
            if as_json:
                line = json.dumps({**e.to_dict(), "verified": bool(verdict and verdict.verified),
                                   "signature": verdict and verdict.to_dict()}, ensure_ascii=False)
            else:
                line = event_text(e, reg.version_labels(events=[e])) + signature_mark(verdict)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return
    except BrokenPipeError:  # | head: the reader is gone
        os._exit(0)


@command("diff")
def diff_cmd(
    a: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Old version reference (with --rev: NAME@STAGE).")],
    b: Annotated[str | None, typer.Argument(autocompletion=_complete_refs, help="New version reference (not with --rev).")] = None,
    rev: Annotated[
        str | None, typer.Option("--rev", help="Compare NAME@STAGE as it was at this git revision with now.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Same as --rev.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show how the manifest of B differs from A, or how a stage changed since a git revision."""
    from . import render

    if rev is not None and since is not None:
        raise UsageError("give --rev or --since, not both")
    rev = rev if rev is not None else since
    if rev is not None:
        if b is not None:
            raise UsageError("with --rev/--since give one NAME@STAGE, not two references")
        from .gitops import stage_diff

        sd = stage_diff(open_registry(), a, rev)
        if as_json:
            emit_json(sd.to_dict())
            return
        for text, colour in render.stage_diff_lines(sd):
            echo_styled(text, colour)
        return
    if b is None:
        raise UsageError("diff needs two references A B (or one NAME@STAGE with --rev REV)")
    result = open_registry().diff(a, b)
    if as_json:
        emit_json(result.to_dict())
        return
    for text, colour in render.diff_lines(result):
        echo_styled(text, colour)


@command("fsck")
def fsck_cmd(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what an interrupted write can leave behind.")] = False,
    as_json: JsonOpt = False,
    artifacts: Annotated[
        bool, typer.Option("--artifacts", help="Also check every artifact exists with its recorded size.")
    ] = False,
    hash_: Annotated[bool, typer.Option("--hash", help="With --artifacts: check remote artifacts by content.")] = False,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Skip re-hashing objects unchanged since they last passed (inode, size, mtime, ctime; "
                        "remembered in your cache directory). For CI; see docs/format.md for what it can miss.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Check every object's hash, every ref and every log line; name each problem."""
    from .fsck import fsck

    if hash_ and not artifacts:
        raise UsageError("--hash needs --artifacts")
    progress = None
    if not _state["quiet"] and sys.stderr.isatty():
        def progress(label: str, total: int) -> Callable[[int], None] | None:
            from .render import count_bar

            return count_bar(label, total) if total >= 1000 else None
    report = fsck(open_registry(), repair=repair, artifacts=artifacts, compute_hash=hash_, quick=quick,
                  progress=progress)
    if as_json:
        code = 6 if not report.ok else 7 if report.counts.get("unreachable") else 0
        emit_json(with_error(report.to_dict(), code, f"{len(report.errors)} error(s)" if code == 6
                             else f"{report.counts.get('unreachable')} artifact(s) unreachable"))
    else:
        from .printable import line

        for p in report.problems:
            typer.echo(line(f"{p.severity}: {p.path}: {p.message}" + (f" [repair: {p.repair}]" if p.repair else "")))
        c = report.counts
        note(
            f"Checked {c['objects']} objects, {c['versions']} versions, {c['refs']} refs, {c['events']} events"
            + (f", {c['artifacts']} artifacts" if "artifacts" in c else "")
            + (f" ({c['purged']} purged by prune --purge)" if c.get("purged") else "") + ": "
            + ("ok" if report.ok else f"{len(report.errors)} error(s)")
            + (f", {len(report.warnings)} warning(s)" if report.warnings else "")
            + (f"; repaired {len(report.repaired)}" if report.repaired else "")
        )
    if not report.ok:
        raise typer.Exit(6)
    if report.counts.get("unreachable"):
        raise typer.Exit(7)


@command("verify")
def verify_cmd(
    ref: Annotated[str | None, typer.Argument(autocompletion=_complete_refs, help="Version reference (or --all).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every version that holds a stage.")] = False,
    stage: Annotated[str | None, typer.Option("--stage", autocompletion=_complete_stages, help="With --all: only versions holding this stage.")] = None,
    hash_: Annotated[bool, typer.Option("--hash", help="Stream remote artifacts through SHA-256 too.")] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Re-check a version's artifacts: exist, same size, and with --hash the same SHA-256."""
    from .artifacts import exit_code

    if (ref is None) == (not all_):
        raise UsageError("verify needs REF or --all (not both)")
    if stage is not None and not all_:
        raise UsageError("--stage goes with --all")
    reg = open_registry()
    if all_:
        reports = reg.verify_all(stage, compute_hash=hash_, progress=_progress_factory())
    else:
        reports = [reg.verify(ref, compute_hash=hash_, progress=_progress_factory())]
    results = [(rep, r) for rep in reports for r in rep.results]
    if as_json:
        data = [rep.to_dict() for rep in reports]
        bad = sum(1 for _, r in results if not r.ok)
        emit_json(data if all_ else with_error(data[0], exit_code(r for _, r in results), f"{bad} artifact(s) failed"))
    else:
        from .render import verify_table

        verify_table(reports)
        for rep, r in results:
            if not r.ok and not getattr(r, "files", None):
                typer.echo(f"modelreg: {r.status}: {rep.ref.name}@{rep.ref.version} artifact {r.role} ({r.uri}): "
                           f"{r.message}", err=True)
            for f in getattr(r, "files", None) or []:  # a directory artifact: each file that differs, by path
                typer.echo(f"modelreg: {f['status']}: {rep.ref.name}@{rep.ref.version} artifact {r.role} file "
                           f"{f['path']}: {f['message']}", err=True)
        bad = sum(1 for _, r in results if not r.ok)
        note(f"Verified {len(results)} artifact(s) of {len(reports)} version(s): " + (f"{bad} failed" if bad else "ok"))
    code = exit_code(r for _, r in results)
    if code:
        raise typer.Exit(code)


@command("fetch")
def fetch_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    dest: Annotated[str, typer.Argument(help="Directory to write the artifacts into (created if missing).")],
    allow_unverified: Annotated[
        bool, typer.Option("--allow-unverified", help="Also fetch artifacts with no recorded sha256 (size check only).")
    ] = False,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Only the artifact with this role (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download a version's artifacts into DEST, each checked against its recorded SHA-256.

    A file goes to DEST/ROLE plus its original extension; a directory artifact to DEST/ROLE/<path>.
    """
    report = open_registry().fetch(ref, dest, progress=_progress_factory(), allow_unverified=allow_unverified,
                                   roles=role)
    if as_json:
        emit_json(report.to_dict())
    else:
        from .printable import line
        from .render import fetch_lines

        for text in fetch_lines(report):
            typer.echo(line(text))
    unverified: dict[str, list[Any]] = {}
    for f in report.unverified:
        unverified.setdefault(f.role, []).append(f)
    for r, fs in unverified.items():
        what = f"{len(fs)} files of {r} have" if len(fs) > 1 else f"{r} has"
        warn(f"{what} no recorded sha256; fetched with "
             + ("a size check only" if all(f.size is not None for f in fs) else "no check at all"))


@command("url")
def url_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    role: Annotated[str | None, typer.Option("--role", help="Artifact role (needed when there are several).")] = None,
    expires: Annotated[
        int, typer.Option("--expires", help="Seconds the link stays valid (1 to 604800).")
    ] = 3600,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Print a time-limited HTTPS link to an artifact (S3/GCS presigned URL) that needs no credentials.

    A directory artifact gets one link per file (PATH<TAB>URL lines). Local paths and stores that cannot sign exit 2.
    """
    link = open_registry().url(ref, role=role, expires=expires)
    if as_json:
        emit_json(link.to_dict())
        return
    if link.files is None:
        typer.echo(link.url)
    else:
        for f in link.files:
            typer.echo(f"{f['path']}\t{f['url']}")
    note(f"link(s) to {link.ref.name}@{link.ref.version} {link.role} valid until {link.expires_at}")


# ------------------------------------------------------- policy and annotations
def _read_json_object(path: str, what: str) -> dict[str, Any]:
    from . import fileio

    try:
        data = json.loads(fileio.read_file(path, 1 << 20))
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{what} {path}: not a JSON file ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path}: must hold a JSON object")
    return data


@command("set", group=metrics_app)
def metrics_set_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    suite: Annotated[str, typer.Option("--suite", "-s", help="Evaluation suite name (e.g. core-v1).")],
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE: 0.90 or 3e-4 is a number, true/false/null JSON's, anything else or quoted ('\"0.90\"') text.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="JSON object of values (KEY=VALUE pairs win).")] = None,
    actor: ActorOpt = None,
    sign: SignOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Merge metrics into a suite of a version (later values win per key; other suites untouched)."""
    values = _read_json_object(file, "--file") if file else {}
    values.update(parse_pairs(pairs or [], "metric"))
    reg = open_registry()
    ev = reg.set_metrics(ref, suite, values, actor=actor, sign=sign)
    if as_json:
        emit_json(ev.to_dict())
    else:
        note(f"Recorded {len(values)} metric(s) of suite {suite} for {ev.model}@{ev.version}")


@command("show", group=metrics_app)
def metrics_show_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    suite: Annotated[str | None, typer.Option("--suite", "-s", help="Only this suite.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the current metrics of a version."""
    values = open_registry().metrics(ref, suite)
    if as_json:
        emit_json(values)
        return
    from .render import metrics_lines

    for line in metrics_lines(values if suite is None else {suite: values}):
        typer.echo(line)


@command("show", group=policy_app)
def policy_show_cmd(as_json: JsonOpt = False) -> None:
    """Print the whole effective config.yaml: every key, with defaults filled in."""
    from .config import TOP_LEVEL_KEYS

    data = open_registry().effective_config()
    if as_json:
        emit_json(data)
    else:
        from . import canonical

        typer.echo(canonical.dump(data, ordered=TOP_LEVEL_KEYS).decode(), nl=False)


@command("tag")
def tag_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    op: Annotated[str, typer.Argument(autocompletion=_complete_tag_op, help="add or rm.")],
    tags: Annotated[list[str], typer.Argument(help="Tags.")],
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Add or remove tags of a version (the manifest's tags stay; changes are events)."""
    if op not in ("add", "rm"):
        raise UsageError(f"tag: expected 'add' or 'rm', not {op!r}")
    reg = open_registry()
    r = reg.resolve(ref)
    ev = reg.tag(ref, add=tags if op == "add" else [], remove=tags if op == "rm" else [], actor=actor)
    if as_json:
        emit_json({**r.to_dict(), "changed": ev is not None, "tags": reg.show(f"{r.name}@{r.version}").tags, "event": ev and ev.to_dict()})
    else:
        sign = "+" if op == "add" else "-"
        if ev:
            note(f"Tagged {ev.model}@{ev.version} " + " ".join(f"{sign}{t}" for t in sorted(set(tags))))
        else:
            r = reg.resolve(ref)
            have = "already has" if op == "add" else "has none of"
            note(f"{r.name}@{r.version} {have} the tags {', '.join(sorted(set(tags)))}; nothing changed")


@command("approve")
def approve_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    stage: Annotated[str, typer.Option("--stage", autocompletion=_complete_stages, help="Stage the approval is for.")] = "production",
    comment: Annotated[str | None, typer.Option("--comment", help="Review comment.")] = None,
    actor: ActorOpt = None,
    sign: SignOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Approve a version for a stage (one approval per actor; approving again replaces it)."""
    ev = open_registry().approve(ref, stage, comment, actor=actor, sign=sign)
    if as_json:
        emit_json(ev.to_dict())
    else:
        note(f"Approved {ev.model}@{ev.version} for {stage} (as {ev.actor})")


@command("bind")
def bind_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    provider: Annotated[str, typer.Option("--provider", help="Serving provider name.")],
    id: Annotated[str | None, typer.Option(
        "--id", help="The provider's model id (binds; without it, only the fields given change).")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Endpoint URL.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="active, inactive or deprecated (a new binding is active).")] = None,
    latency_ms: Annotated[float | None, typer.Option(
        "--latency-ms", callback=in_range(0), help="Observed latency in milliseconds (a serving job reports it).")] = None,
    success_rate: Annotated[float | None, typer.Option(
        "--success-rate", callback=in_range(0, 1), help="Observed share of successful requests, 0 to 1.")] = None,
    last_used: Annotated[str | None, typer.Option(
        "--last-used", help="When it last served: 'now' or an ISO 8601 time.")] = None,
    observe: Annotated[list[str] | None, typer.Option(
        "--observe", help="The same figures as KEY=VALUE: latency_ms=120, success_rate=0.99, last_used=now.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Provider parameter K=V, typed like register -p.")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Record where a version is served (--id: one binding per provider; binding again replaces it), or,
    without --id, update only the given fields of its binding (--status, --endpoint, --latency-ms,
    --success-rate, --last-used)."""
    reg = open_registry()
    figures = {"latency_ms": _whole(latency_ms), "success_rate": _whole(success_rate), "last_used": last_used}
    for key, value in parse_pairs(observe or [], "--observe").items():
        if key not in figures:
            raise UsageError(f"--observe {key}: expected one of {', '.join(figures)}")
        if figures[key] is not None:
            raise UsageError(f"{key} is given twice (--{key.replace('_', '-')} and --observe)")
        figures[key] = value
    if id is None:
        if param:
            raise UsageError("--param needs --id: parameters are part of the binding (bind again to change them)")
        ev = reg.update_binding(ref, provider, status=status, endpoint=endpoint, actor=actor, **figures)
    else:
        ev = reg.bind(ref, provider, id, endpoint, parse_pairs(param or [], "--param"), actor=actor,
                      status=status or "active", **figures)
    if as_json:
        emit_json(ev.to_dict())
    elif ev.action == "bind":
        note(f"Bound {ev.model}@{ev.version} to {provider} {id} ({ev.data['status']})")
    else:
        from .values import display

        changed = ", ".join(f"{k}={display(v)}" for k, v in ev.data.items() if k != "provider")
        note(f"Updated the {provider} binding of {ev.model}@{ev.version}: {changed}")


def _whole(value: float | None) -> float | int | None:
    """A number typed on the command line as it was meant: 120 stays the integer 120."""
    return int(value) if value is not None and value.is_integer() else value


@command("bindings")
def bindings_cmd(
    name: Annotated[str | None, typer.Argument(autocompletion=_complete_models, help="Model (default: every model).")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only bindings to this provider.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only bindings with this status.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List where versions are served: provider, id, status, endpoint and observed figures."""
    rows = open_registry().bindings(name, provider=provider, status=status)
    if as_json:
        emit_json([b.to_dict() for b in rows])
        return
    from .render import bindings_table

    bindings_table(rows)


@command("rate")
def rate_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    score: Annotated[int, typer.Argument(callback=in_range(1, 5), help="1 (worst) to 5 (best).")],
    comment: Annotated[str | None, typer.Option("--comment", help="Why (recorded with the rating).")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rate a version from 1 to 5 (one rating per actor: rating again replaces yours)."""
    reg = open_registry()
    ev = reg.rate(ref, score, comment, actor=actor)
    rating = reg.show(f"{ev.model}@{ev.version}").rating
    if as_json:
        emit_json({**ev.to_dict(), "rating": rating})
    else:
        note(f"Rated {ev.model}@{ev.version} {score}/5 (as {ev.actor}); average {rating['avg']:.2f} "
             f"from {rating['count']} rating(s)")


@command("set", group=model_app)
def model_set_cmd(
    name: Annotated[str, typer.Argument(autocompletion=_complete_models, help="Model name.")],
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help=(
        "description, task, subject, owner (text) or any key (typed like -p); KEY=null removes it."))],
    reason: ReasonOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Set fields of a model itself (recorded as an event of the model)."""
    from .records import parse_pairs as model_pairs

    reg = open_registry()
    ev = reg.set_model(name, model_pairs(pairs), reason=reason, actor=actor)
    info = reg.model_info(name)
    if as_json:
        emit_json({**info.to_dict(), "changed": ev is not None, "event": ev and ev.to_dict()})
    elif ev is None:
        note(f"{name} already has these fields; nothing changed")
    else:
        note(f"Set {', '.join(sorted(ev.data['fields']))} of {name}")


@command("show", group=model_app)
def model_show_cmd(
    name: Annotated[str, typer.Argument(autocompletion=_complete_models, help="Model name.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a model: its fields, version count, stages, first and last registration."""
    info = open_registry().model_info(name)
    if as_json:
        emit_json(info.to_dict())
        return
    typer.echo(info.name)
    for label, text in info.lines():
        typer.echo(f"{label + ':':<12} {text}")


@command("unbind")
def unbind_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    provider: Annotated[str, typer.Option("--provider", help="Serving provider name.")],
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Remove a version's binding to a provider."""
    reg = open_registry()
    r = reg.resolve(ref)
    ev = reg.unbind(ref, provider, actor=actor)
    if as_json:
        emit_json({**r.to_dict(), "changed": ev is not None, "event": ev and ev.to_dict()})
    elif ev:
        note(f"Unbound {ev.model}@{ev.version} from {provider}")
    else:
        note(f"{r.name}@{r.version} has no binding to {provider}; nothing changed")


@command("check")
def check_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Candidate version reference.")],
    stage: Annotated[str, typer.Argument(autocompletion=_complete_stages, help="Target stage.")],
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the promotion rules and gates for STAGE without moving anything (exit 5 if any fails)."""
    report = open_registry().check(ref, stage)
    if as_json:
        emit_json(with_error(report.to_dict(), 0 if report.passed else 5, report.summary()))
    else:
        from .render import gate_table

        gate_table(report)
    if not report.passed:
        if not as_json:
            typer.echo(f"modelreg: error: {report.summary()}", err=True)
        raise typer.Exit(5)


@command("prune")
def prune_cmd(
    name: Annotated[str | None, typer.Argument(autocompletion=_complete_models,
                                               help="Model name (default: every model).")] = None,
    keep: Annotated[int | None, typer.Option(
        "--keep", callback=in_range(0), help="Keep the newest N unarchived versions (default: policy.retention.keep).")] = None,
    purge: Annotated[bool, typer.Option(
        "--purge", help="Instead: delete from the artifact store the content of versions archived longer than "
                        "policy.retention.purge_after_days that no kept version shares.")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Do it (default: dry run).")] = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Archive all but the newest N versions, never one that holds a stage; or --purge archived content (dry run unless --apply)."""
    reg = open_registry()
    if purge:
        if keep is not None:
            raise UsageError("--purge deletes archived content; --keep archives versions: give one of them")
        report = reg.purge(name, apply, actor=actor)
        if as_json:
            emit_json(report.to_dict())
            return
        for v in report.versions:
            for a in v.artifacts:
                typer.echo(f"{v.name}@{v.version}  {a['role']}  {a['uri']}  {a.get('size') or 0} bytes")
        verb = "deleted" if apply else "would delete"
        note(f"{verb.capitalize()} {report.objects} object(s), {report.bytes} bytes, of {len(report.versions)} "
             f"version(s) archived at least {report.purge_after_days:g} day(s)"
             + ("" if apply or not report.versions else "; run with --apply to do it"))
        return
    chosen = reg.prune(name, keep, apply, actor=actor)
    if keep is None:
        from .retention.rules import from_config

        keep = from_config(reg.config.raw).keep
    if as_json:
        emit_json({"name": name, "keep": keep, "applied": apply, "archived": [r.to_dict() for r in chosen]})
        return
    for r in chosen:
        typer.echo(r.version if name is not None else f"{r.name}@{r.version}")
    verb = "archived" if apply else "would archive"
    note(f"{name or 'every model'}: {verb} {len(chosen)} version(s)"
         + ("" if apply or not chosen else "; run with --apply to do it"))


@command("stats")
def stats_cmd(
    name: Annotated[str | None, typer.Argument(autocompletion=_complete_models,
                                               help="Model (default: every model and the totals).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Versions, archived, purged, stage holders, artifact bytes and what retention would archive next."""
    data = open_registry().stats(name)
    if as_json:
        emit_json(data)
        return
    from .render import stats_lines

    for line in stats_lines(data):
        typer.echo(line)


@command("sync")
def sync_cmd(
    push: Annotated[bool, typer.Option("--push", help="Push; on rejection fetch, rebase and retry until --timeout.")] = False,
    remote: Annotated[str, typer.Option("--remote", help="Remote to push to.")] = "origin",
    branch: Annotated[str | None, typer.Option("--branch", help="Remote branch (default: the current one).")] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", callback=in_range(0), help="Seconds to keep retrying while other clones push first "
                                                     "(then exit 9).")
    ] = 300.0,
    attempts: Annotated[
        int | None, typer.Option("--attempts", callback=in_range(1), help="Deprecated (use --timeout): also stop after N pushes.")
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Commit the changes under .modelreg/ (only there); with --push, push with fetch-rebase-retry.

    Without --push nothing touches the network. Exit 4: a stage (or version) moved both here
    and on the remote, nothing pushed. Exit 9: the remote kept moving until --timeout ran out,
    nothing in conflict, the commit is kept locally. Exit 8: a rebase/merge is in progress or
    a stale git lock blocks the work tree.
    """
    from .gitops import sync

    if attempts is not None:
        note("modelreg: warning: --attempts is deprecated: sync --push now retries until --timeout "
             "(default 300 s); --attempts still caps the number of pushes")
    result = sync(open_registry(allow_git=("merge", "sync")), push=push, remote=remote, branch=branch,
                  timeout=timeout, attempts=attempts, message=message)
    if as_json:
        emit_json(result.to_dict())
        return
    if result.resumed:
        note("Finished moving the work tree for an interrupted sync")
    if result.committed:
        note(f"Committed {result.committed[:12]}: {result.message}")
    else:
        note("Nothing to commit in the registry")
    if result.pushed:
        extra = f" after {result.rebases} rebase(s)" if result.rebases else ""
        note(f"Pushed {result.pushed_commit[:12]} to {result.remote}/{result.branch}{extra}")


@command("git-setup")
def git_setup_cmd(
    command_: Annotated[
        str, typer.Option("--command", help="How git should run modelreg (e.g. 'python -m modelreg').")
    ] = "modelreg",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Make git diff show NAME@VERSION for stage refs and version entries (textconv driver)."""
    from .gitops import setup

    result = setup(open_registry(), command=command_)
    if as_json:
        emit_json(result.to_dict())
        return
    note(f"git diff driver modelreg-ref: {'installed' if result.config_set else 'already installed'} in .git/config")
    if result.attributes_added:
        note(f"added to {result.attributes_file}: {', '.join(result.attributes_added)} (commit it)")


@command("git-textconv", hidden=True)
def git_textconv_cmd(
    path: Annotated[str, typer.Argument(help="File git asks to convert (often a temp file).")],
) -> None:
    """Print a ref file as NAME@VERSION (sha256:...); used by git diff (see git-setup). Other files pass through."""
    from .gitops import textconv_file

    sys.stdout.flush()
    try:
        textconv_file(path, sys.stdout.buffer)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    sys.stdout.buffer.flush()


@command("audit")
def audit_cmd(
    base: Annotated[str, typer.Option("--base", help="Git revision to compare with (the pull request's base).")],
    max_skew: Annotated[
        float, typer.Option("--max-skew", callback=in_range(0), help="Seconds of clock difference tolerated in event times.")
    ] = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Pull-request CI: fail (exit 6) if history since git revision BASE was edited, not only added to.

    Findings: edited or removed log lines, changed or removed version entries and objects, stages at unregistered manifests, added events out of order with their commits (docs/security.md).
    """
    report = open_registry().audit(base, max_skew)
    if as_json:
        emit_json(with_error(report.to_dict(), 0 if report.ok else 6, f"{len(report.findings)} finding(s)"))
    else:
        for f in report.findings:
            typer.echo(f"{f.kind}: {f.message}")
        for n in report.notes:
            note(f"modelreg: note: {n}")
        note(f"Audited {report.registry} against {base} ({report.base_commit[:12]}): {report.added_events} added "
             f"event(s), " + ("ok" if report.ok else f"{len(report.findings)} finding(s)"))
    if not report.ok:
        raise typer.Exit(6)


@command("trust")
def trust_cmd(
    show: Annotated[bool, typer.Option("--show", help="Only show the settings and whether they are approved.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Forget this machine's approval.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve config.yaml's network settings (endpoints, headers, a remote artifact_store) on this machine.

    Like 'direnv allow': the exact values are recorded by hash in your user config directory, and any change to them needs approving again. Review them first with --show.
    """
    if show and revoke:
        raise UsageError("give --show or --revoke, not both")
    reg = open_registry()
    st = reg.trust_status() if show else reg.trust(revoke=revoke)
    if as_json:
        emit_json(st.to_dict())
        return
    from .render import trust_lines

    for line in trust_lines(st):
        typer.echo(line)
    if not st.settings:
        note("config.yaml has no network settings: nothing needs approving")
    elif revoke:
        note(f"Forgot the approval of {st.config}" if st.changed else f"{st.config} was not approved here")
    elif not show:
        note(f"Approved these settings of {st.config} for this machine ({st.digest[:19]}); "
             "any change to them needs approving again" if st.changed else "Already approved on this machine")


@command("reindex")
def reindex_cmd(as_json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Rebuild the query index (SQLite in your cache directory, never in .modelreg/) from the objects, refs and logs."""
    counts = open_registry().reindex()
    if as_json:
        emit_json({"models": len(counts), "versions": sum(counts.values())})
    else:
        note(f"Reindexed {len(counts)} model(s), {sum(counts.values())} version(s)")


@command("lineage")
def lineage_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    ancestors: Annotated[bool, typer.Option("--ancestors", help="Parents, their parents, ... (default).")] = False,
    descendants: Annotated[bool, typer.Option("--descendants", help="Versions derived from REF.")] = False,
    depth: Annotated[int | None, typer.Option("--depth", callback=in_range(0), help="At most N generations.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show where a version came from (--ancestors) or what was derived from it (--descendants)."""
    if ancestors and descendants:
        raise UsageError("give --ancestors or --descendants, not both")
    tree = open_registry().lineage(ref, "descendants" if descendants else "ancestors", depth)
    if as_json:
        emit_json(tree.to_dict())
    else:
        from .discovery_render import lineage_tree

        lineage_tree(tree)


@command("license-check")
def license_check_cmd(
    ref: Annotated[str, typer.Argument(autocompletion=_complete_refs, help="Version reference.")],
    project_license: Annotated[
        str | None, typer.Option("--project-license", help=(
            "Also check use in a project under this license: an identifier, or a LICENSE file, a directory "
            "holding one, or a pyproject.toml (detected offline)."))
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a version's license against its ancestors and a project (exit 5 if any is incompatible)."""
    report = open_registry().license_check(ref, project_license)
    if as_json:
        emit_json(with_error(report.to_dict(), 0 if report.ok else 5, "a license is incompatible"))
    else:
        from .discovery_render import license_lines

        for line in license_lines(report):
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(5)


@command("licenses")
def licenses_cmd(as_json: JsonOpt = False) -> None:
    """List the license identifiers modelreg knows, with their category."""
    from .licenses import LICENSES

    if as_json:
        emit_json([{"id": lic.id, "name": lic.name, "category": lic.category} for lic in LICENSES.values()])
        return
    for lic in LICENSES.values():
        typer.echo(f"{lic.id:<22} {lic.category:<16} {lic.name}")


SiteOutOpt = Annotated[str, typer.Option("--out", "-o", help="Directory the site is written to.")]


@command("build", group=site_app)
def site_build_cmd(
    out: SiteOutOpt = "site",
    title: Annotated[str | None, typer.Option("--title", help="Site title (default: Model registry).")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Public URL of the site, for canonical links (https://...).")
    ] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", callback=in_range(1), help="Worker processes (default: by size).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a static site (pages + JSON API) of the registry; only files whose bytes changed are rewritten."""
    report = open_registry().build_site(out, title=title, base_url=base_url, jobs=jobs)
    _site_warnings(report.problems)
    if as_json:
        emit_json(report.to_dict())
        return
    note(f"Built {report.out}: {report.files} files, {report.written} written, {report.removed} removed "
         f"({report.models} models, {report.versions} versions) in {report.seconds:.1f} s")


def _site_warnings(problems: list[str]) -> None:
    for p in problems[:10]:
        warn(p)
    if len(problems) > 10:
        warn(f"... and {len(problems) - 10} more (run 'modelreg fsck')")


@command("serve", group=site_app)
def site_serve_cmd(
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0 picks a free one).")] = 8000,
    out: SiteOutOpt = "site",
    no_build: Annotated[bool, typer.Option("--no-build", help="Serve DIR as it is, without building first.")] = False,
    title: Annotated[str | None, typer.Option("--title", help="Site title when building.")] = None,
) -> None:
    """Build the site (unless --no-build) and serve it on 127.0.0.1 for a preview; Ctrl-C stops."""
    from .site.serve import serve

    if not no_build:
        report = open_registry().build_site(out, title=title)
        _site_warnings(report.problems)
        note(f"Built {report.out}: {report.files} files, {report.written} written")
    serve(out, port, ready=lambda url: note(f"Serving {out} at {url} (Ctrl-C to stop)"))


@command("version")
def version_cmd(as_json: JsonOpt = False) -> None:
    """Print the modelreg version and the registry format version it reads and writes."""
    from . import __version__
    from .config import FORMAT

    if as_json:
        emit_json({"version": __version__, "format": FORMAT})
    else:
        typer.echo(version_text())


@command("completion")
def completion_cmd(
    shell: Annotated[str | None, typer.Argument(autocompletion=_complete_shells, help="bash, zsh or fish (default: your shell).")] = None,
    install: Annotated[
        bool, typer.Option("--install", help="Write it where the shell loads it (in $HOME) instead of printing it.")
    ] = False,
) -> None:
    """Print (or --install) the shell completion script: commands, options, models, NAME@ versions, stages.

    bash: eval "$(modelreg completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc;
    fish: modelreg completion fish > ~/.config/fish/completions/modelreg.fish
    """
    _completion_option("--install-completion" if install else "--show-completion", shell)


def _completion_option(option: str, shell: str | None) -> None:
    from . import completion

    if option == "--install-completion":
        chosen, path = completion.install(shell)
        note(f"Installed {chosen} completion in {path}; it takes effect in a new shell")
    else:
        typer.echo(completion.script(shell))
    raise typer.Exit(0)


def _early_option(argv: list[str]) -> tuple[str, str | None] | None:
    """``--version``, ``--show-completion [SHELL]`` or ``--install-completion [SHELL]`` before any
    command: handled before the app is built (fast, and SHELL is optional, which click cannot say)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("--registry", "-R"):
            i += 2
            continue
        name, eq, value = word.partition("=")
        if name in ("--show-completion", "--install-completion"):
            if eq:
                return name, value or None
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            return name, nxt if nxt is not None and not nxt.startswith("-") else None
        if word == "--version":
            return word, None
        if not word.startswith("-"):
            return None
        i += 1
    return None


# ------------------------------------------------------------------ importers
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be imported; write nothing.")]
StageMapOpt = Annotated[
    list[str] | None,
    typer.Option("--stage-map", help="SOURCE=STAGE: map a source stage or alias to a modelreg stage "
                                     "(or 'archived', or 'none' to skip it); repeatable or comma-separated."),
]


def _count_progress() -> Any:
    """A progress bar factory for long imports (many steps) when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def factory(label: str, total: int) -> Callable[[int], None] | None:
        if total < 50:
            return None
        from .render import count_bar

        return count_bar(label, total)

    return factory


def _print_import(result: Any, as_json: bool) -> None:
    for w in result.warnings:
        note(f"modelreg: warning: {w}")
    if as_json:
        emit_json(result.to_dict())
        return
    from .render import event_text

    if result.dry_run:
        for m in result.models:
            for e in m.events:
                typer.echo(event_text(e, m.labels))
    verb = "would import" if result.dry_run else "imported"
    for m in result.models:
        if m.events:
            note(f"{m.name}: {verb} {len(m.versions)} new version(s), {len(m.events)} event(s)"
                 + (f" (from {m.source_name})" if m.source_name != m.name else ""))
    if result.stages_added:
        note(f"config.yaml: {'would add' if result.dry_run else 'added'} stage(s) {', '.join(result.stages_added)}")
    if not result.changed:
        note(f"nothing new to import from {result.source}")


@command("gto", group=import_app)
def import_gto_cmd(
    repo: Annotated[str, typer.Option("--repo", help="The git repository GTO keeps its registry in.")] = ".",
    dry_run: DryRunOpt = False,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Record remote artifact URIs as given, without contacting the store.")
    ] = False,
    stage_map: StageMapOpt = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import GTO's artifacts, versions and stage history (git tags, artifacts.yaml) from a git repository."""
    from .importers import gto

    result = gto.import_repo(open_registry(), repo, check=not no_check, dry_run=dry_run, stage_map=stage_map,
                             actor=actor, progress=_count_progress())
    _print_import(result, as_json)


@command("mlflow", group=import_app)
def import_mlflow_cmd(
    tracking_uri: Annotated[
        str | None, typer.Option("--tracking-uri", help="MLflow tracking server URL (default: MLFLOW_TRACKING_URI).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Registered model to import (repeatable; default: all).")
    ] = None,
    stage_map: StageMapOpt = None,
    metrics_suite: Annotated[
        str, typer.Option("--metrics-suite", help="Suite that receives the source run's metrics.")
    ] = "mlflow",
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import registered models, versions, aliases, stages and run metrics from an MLflow tracking server."""
    from .importers import mlflow

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if not uri:
        raise UsageError("give --tracking-uri URL (or set MLFLOW_TRACKING_URI)")
    result = mlflow.import_registry(open_registry(), uri, models=model or None, stage_map=stage_map,
                                    metrics_suite=metrics_suite, dry_run=dry_run, actor=actor,
                                    progress=_count_progress())
    _print_import(result, as_json)


def _command_name(argv: list[str]) -> str | None:
    """The subcommand word in ``argv`` (after the global options), or None."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in ("--registry", "-R"):
            i += 2
        elif word.startswith("-"):  # --registry=X, -RX, --help ...
            i += 1
        else:
            return word
    return None


def _only(full: typer.Typer, name: str | None) -> typer.Typer:
    """``full`` reduced to the one command being run: typer builds every command's parser
    on each start, which costs more than the work of a read command. Help and unknown
    words get the full app."""
    commands = [c for c in full.registered_commands if c.name == name]
    groups = [g for g in full.registered_groups if g.typer_instance.info.name == name]
    if not (commands or groups):
        return full
    one = typer.Typer(**{k: getattr(full.info, k) for k in ("name", "help", "no_args_is_help")},
                      add_completion=False, pretty_exceptions_enable=False)
    one.registered_callback = full.registered_callback
    one.registered_commands = commands
    one.registered_groups = groups
    return one


def _json_requested(args: list[str]) -> bool:
    """``--json`` among the arguments (before a ``--``): errors are then printed as JSON too."""
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _check_arguments(args: list[str]) -> None:
    """UsageError for an argument that is not valid UTF-8 (the shell passed raw bytes)."""
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise UsageError(f"argument '{shown}' is not valid UTF-8", info={"argument": shown}) from None


def _plain_help(cmd: Any) -> None:
    """Help as plain text (click's formatter, no rich styling): NO_COLOR means no escape codes at all."""
    cmd.rich_markup_mode = None
    for sub in getattr(cmd, "commands", {}).values():
        _plain_help(sub)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and turn every error into one line and an exit code."""
    from . import hooks

    hooks.defer()  # events are delivered to hooks after the command printed its result
    try:
        _run(argv)
    finally:
        try:
            hooks.flush()
        except KeyboardInterrupt:  # Ctrl-C while a hook runs: the command's own outcome stands
            pass


def _run(argv: list[str] | None) -> None:
    from typer._click import exceptions as click_exc

    _state.update(registry=None, quiet=False)
    args = sys.argv[1:] if argv is None else list(argv)
    _state["json"] = _json_requested(args)
    early = _early_option(args)
    instruction = os.environ.get("_MODELREG_COMPLETE")
    if instruction:  # a shell asks for completions (see modelreg.completion)
        from .completion import prepare

        shell, _, what = instruction.partition("_")
        if shell in ("bash", "zsh", "fish") and what in ("complete", "source"):  # click's order: bash_complete
            os.environ["_MODELREG_COMPLETE"] = f"{what}_{shell}"
        prepare()
        early = None
    try:
        _check_arguments(args)
        from .settings import check_environment

        for warning in check_environment():
            warn(warning)
    except ModelregError as exc:
        report(exc)
        sys.exit(exc.exit_code)
    try:
        if early is not None:
            if early[0] == "--version":
                typer.echo(version_text())
                sys.exit(0)
            _completion_option(*early)
        cmd = typer.main.get_command(_only(app, _command_name(args)))
        if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
            _plain_help(cmd)
        rv = cmd.main(args=args, prog_name="modelreg", standalone_mode=False)
    except click_exc.NoArgsIsHelpError:
        sys.exit(2)  # help was printed
    except click_exc.ClickException as exc:
        from .suggest import usage_message

        code = 2 if exc.exit_code in (1, 2) else exc.exit_code
        message = usage_message(exc)
        typer.echo(f"modelreg: error: {message}", err=True)
        if _state["json"]:
            emit_json({"error": {"code": code, "message": message}})
        sys.exit(code)
    except typer.Abort:
        report(ModelregError("aborted"))
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if _state["json"]:
            emit_json({"error": {"code": 130, "message": "interrupted"}})
        sys.exit(130)
    except ModelregError as exc:  # raised outside a command body (e.g. callback)
        report(exc)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            stdout_gone()
        report(ModelregError(os_message(exc)))
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
