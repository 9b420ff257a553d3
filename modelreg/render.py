"""Human renderings for the CLI: tables, event lines, diffs, progress bars. Imported only when used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import canonical


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _short(digest: str | None) -> str:
    return digest[:19] if digest else "-"


def show_text(info: Any) -> str:
    """A version as text: identity, state, then the stored manifest as YAML."""
    lines = [
        f"{info.name}@{info.version}",
        f"digest:      {info.digest}",
        f"stages:      {', '.join(info.stages) or '-'}",
        f"archived:    {'yes' + (f' ({info.archived_reason})' if info.archived_reason else '') if info.archived else 'no'}",
        f"registered:  {info.registered_at or '?'} by {info.registered_by or '?'}",
    ]
    for key, value in getattr(info, "extra_lines", lambda: [])():
        lines.append(f"{key + ':':<12} {value}")
    body = canonical.dump(info.manifest or {}, ordered=("name", "version")).decode()
    return "\n".join(lines) + "\n---\n" + body


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print aligned columns, two spaces apart, like ``git branch -v``.

    Plain text on purpose: rich's Table measured and rendered every cell and took 4.6 s
    for a model with 10,000 versions; this is linear and a few milliseconds.
    """
    import sys

    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    last = len(headers) - 1
    out = []
    for row in (headers, *rows):
        out.append("  ".join(c if i == last else c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() + "\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


def models_table(models: list[Any]) -> None:
    """Print models with their stages and latest version."""
    _table(
        ("MODEL", "VERSIONS", "LATEST", "STAGES"),
        [(m.name, str(m.versions), m.latest or "-", "  ".join(f"{s}={v}" for s, v in m.stages.items()) or "-")
         for m in models],
    )


def versions_table(name: str, versions: list[Any]) -> None:
    """Print the versions of one model, newest last."""
    _table(
        ("VERSION", "DIGEST", "STAGES", "ARCHIVED", "REGISTERED"),
        [(v.version, _short(v.digest), ", ".join(v.stages) or "-", "yes" if v.archived else "",
          (v.registered_at or "?")[:19].replace("T", " ")) for v in versions],
    )


def event_text(e: Any) -> str:
    """One event as a line, like ``git log --oneline`` with who and why."""
    when = e.time[:19].replace("T", " ") + "Z"
    what = f"{e.model}@{e.version}" if e.version else e.model
    if e.stage:
        what += f" -> {e.stage}"
    move = ""
    if e.action in ("promote", "rollback", "demote", "reconcile", "clear"):
        move = f" ({_short(e.from_)} -> {_short(e.to)})"
    forced = " [forced]" if e.data.get("forced") else ""
    reason = f"  # {e.reason}" if e.reason else ""
    return f"{when}  {e.action:<9} {what}{move}{_annotation(e)}{forced}  by {e.actor}{reason}"


def signature_mark(verdict: Any) -> str:
    """`` [verified: PRINCIPAL]`` for a good signature, `` [signature BAD]``..., or nothing for an unsigned event."""
    if verdict is None:
        return ""
    if verdict.verified:
        from .trust.settings import shown

        return f"  [verified: {shown(verdict.principal, 100)}]"
    label = {"bad": "signature BAD", "unknown-key": "signed by an unknown key", "malformed": "signature unreadable",
             "unchecked": "signed, not checked: no allowed signers file"}.get(verdict.status, verdict.status)
    return f"  [{label}]"


def _annotation(e: Any) -> str:
    d = e.data
    if e.action == "metrics":
        values = " ".join(f"{k}={_fmt(v)}" for k, v in (d.get("values") or {}).items())
        return f" [{d.get('suite')}] {values}"
    if e.action == "tag":
        return "".join(f" +{t}" for t in d.get("add") or []) + "".join(f" -{t}" for t in d.get("remove") or [])
    if e.action == "approve":
        return f" for {d.get('stage')}" + (f": {d['comment']}" if d.get("comment") else "")
    if e.action in ("bind", "unbind"):
        return f" {d.get('provider')}" + (f" {d['id']}" if d.get("id") else "")
    return ""


def trust_lines(st: Any) -> Iterator[str]:
    """The committed network settings, one ``key = value`` line each (values as JSON), and their state."""
    import json

    if not st.settings:
        return
    state = {"record": "approved on this machine", "env": "approved by MODELREG_TRUSTED_SETTINGS"}.get(
        st.approved or "", "NOT approved on this machine")
    yield f"{st.config}: {state} ({st.digest})"
    from .trust.settings import shown

    for key, value in st.settings.items():
        yield f"  {shown(key)} = {json.dumps(value, ensure_ascii=True)}"


def diff_lines(result: Any) -> Iterator[tuple[str, str | None]]:
    """Lines of a manifest diff with a colour name for each (None: default)."""
    yield f"--- {result.a.name}@{result.a.version} ({_short(result.a.digest)})", None
    yield f"+++ {result.b.name}@{result.b.version} ({_short(result.b.digest)})", None
    yield from _change_lines(result.changes)
    annotations = getattr(result, "annotations", [])
    if annotations:
        yield "# metrics and tags", None
        yield from _change_lines(annotations)


def _change_lines(changes: list[Any]) -> Iterator[tuple[str, str | None]]:
    if not changes:
        yield "(manifests are identical)", None
    for c in changes:
        if c.old is not None:
            yield f"- {c.path}: {_fmt(c.old)}", "red"
        if c.new is not None:
            yield f"+ {c.path}: {_fmt(c.new)}", "green"


def stage_diff_lines(sd: Any) -> Iterator[tuple[str, str | None]]:
    """A stage compared across git revisions: who held it then and now, then the manifest diff."""

    def label(r: Any) -> str:
        return f"{r.version} ({_short(r.digest)})" if r else "(empty)"

    if sd.then == sd.now:
        yield f"{sd.name}@{sd.stage} is unchanged since {sd.rev}: {label(sd.now)}", None
        return
    yield f"{sd.name}@{sd.stage} goes from {label(sd.then)} at {sd.rev} to {label(sd.now)} now", None
    yield f"--- {sd.then.name}@{sd.then.version} ({_short(sd.then.digest)})" if sd.then else "--- (empty)", None
    yield f"+++ {sd.now.name}@{sd.now.version} ({_short(sd.now.digest)})" if sd.now else "+++ (empty)", None
    yield from _change_lines(sd.changes)


def gate_table(report: Any, stderr: bool = False) -> None:
    """Print each rule and gate of a GateReport: what was expected, the value found, pass or FAIL."""
    from rich.console import Console
    from rich.table import Table

    current = f" (now: {report.current})" if report.current else " (now: empty)"
    table = Table(box=None, pad_edge=False, title=f"{report.name}@{report.version} -> {report.stage}{current}",
                  title_justify="left")
    for col in ("GATE", "SUBJECT", "EXPECTED", "ACTUAL", "RESULT", "DETAIL"):
        table.add_column(col, no_wrap=col in ("GATE", "SUBJECT", "RESULT"))
    for r in report.results:
        actual = "-" if r.actual is None else _fmt(r.actual)
        mark = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
        table.add_row(r.gate, r.subject, _fmt(r.expected), actual, mark, r.message)
    Console(highlight=False, soft_wrap=False, stderr=stderr).print(table)


def metrics_lines(metrics: dict[str, dict[str, Any]]) -> Iterator[str]:
    """``suite  key  value`` lines, suites and keys sorted, values as JSON."""
    if not metrics:
        yield "(no metrics recorded)"
    for suite in sorted(metrics):
        for key in sorted(metrics[suite]):
            yield f"{suite}\t{key}\t{_fmt(metrics[suite][key])}"


def stats_lines(stats: dict[str, Any]) -> Iterator[str]:
    """The registry statistics as ``name: value`` lines."""
    yield f"models:    {stats['models']}"
    yield f"versions:  {stats['versions']} ({stats['archived']} archived)"
    for stage, n in stats["stages"].items():
        yield f"  {stage}: {n}"
    yield f"size:      {stats['size_bytes']} bytes in {stats['files']} files"


def _fmt(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def progress_bar(label: str, total: int) -> Callable[[int], None]:
    """A rich progress bar on stderr; returns the per-chunk callback (closes itself at total)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=Console(stderr=True), transient=True,
    )
    task = progress.add_task(label[-40:], total=total)
    progress.start()
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        progress.update(task, advance=n)
        if done[0] >= total:
            progress.stop()

    advance.close = progress.stop  # type: ignore[attr-defined]  # for a transfer cut short
    return advance


def verify_table(reports: list[Any]) -> None:
    """Print one row per artifact of each verified version: role, status, size and hash checked."""
    from rich.markup import escape
    from rich.table import Table

    colours = {"ok": "green", "unreachable": "yellow"}
    table = Table(box=None, pad_edge=False)
    for col in ("VERSION", "ROLE", "STATUS", "SIZE", "SHA256", "DETAIL"):
        table.add_column(col)
    for rep in reports:
        label = f"{rep.ref.name}@{rep.ref.version}"
        if not rep.results:
            table.add_row(label, "-", "ok", "-", "-", "no artifacts")
        for r in rep.results:
            size = r.actual_size if r.actual_size is not None else r.expected_size
            table.add_row(
                escape(label), escape(r.role), f"[{colours.get(r.status, 'red')}]{r.status}[/]",
                "-" if size is None else str(size), (r.expected_sha256 or "-")[:12], escape(r.message),
            )
    _console().print(table)
