"""Human renderings for the CLI: tables, event lines, diffs, progress bars. Imported only when used."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import canonical


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
    return f"{when}  {e.action:<9} {what}{move}{forced}  by {e.actor}{reason}"


def diff_lines(result: Any) -> Iterator[tuple[str, str | None]]:
    """Lines of a manifest diff with a colour name for each (None: default)."""
    yield f"--- {result.a.name}@{result.a.version} ({_short(result.a.digest)})", None
    yield f"+++ {result.b.name}@{result.b.version} ({_short(result.b.digest)})", None
    if not result.changes:
        yield "(manifests are identical)", None
    for c in result.changes:
        if c.old is not None:
            yield f"- {c.path}: {_fmt(c.old)}", "red"
        if c.new is not None:
            yield f"+ {c.path}: {_fmt(c.new)}", "green"


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

    return advance
