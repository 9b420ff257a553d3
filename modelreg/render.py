"""Human renderings for the CLI: tables, event lines, diffs, progress bars. Imported only when used.

Every string that came from the registry is passed through :mod:`modelreg.printable` here, so
control characters and terminal escapes are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import canonical
from .printable import block, line


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
    return "\n".join(line(x) for x in lines) + "\n---\n" + block(body)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]], *, stderr: bool = False,
           colours: dict[str, str] | None = None) -> None:
    """Print aligned columns, two spaces apart, like ``git branch -v``; no trailing spaces.

    Plain text on purpose: rich's Table measured and rendered every cell and took 4.6 s
    for a model with 10,000 versions; this is linear and a few milliseconds. It also never
    wraps a cell at 80 columns, so CI logs keep one row per line. ``colours`` maps a cell's
    text (``pass``, ``FAIL``) to a colour, used only where colour is allowed.
    """
    import sys

    rows = [tuple(line(c) for c in row) for row in rows]
    stream = sys.stderr if stderr else sys.stdout
    paint = _painter(stream) if colours else None
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    last = len(headers) - 1
    out = []
    for n, row in enumerate((headers, *rows)):
        cells = []
        for i, c in enumerate(row):
            text = c if i == last else c.ljust(widths[i])
            if paint is not None and n and colours and c in colours:
                text = paint(c, colours[c]) + text[len(c):]
            cells.append(text)
        out.append("  ".join(cells).rstrip() + "\n")
    stream.write("".join(out))
    stream.flush()


def _painter(stream: Any) -> Callable[[str, str], str] | None:
    """ANSI colouring for ``stream`` when colour is allowed (a terminal, no NO_COLOR), else None."""
    from .cli import use_colour

    if not use_colour(stream):
        return None
    codes = {"red": "31", "green": "32", "yellow": "33", "bold red": "1;31"}
    return lambda text, colour: f"\x1b[{codes.get(colour, '0')}m{text}\x1b[0m"


def when(timestamp: str | None) -> str:
    """A stored UTC time as text: ``2026-11-23 11:00:04Z`` (as in ``modelreg log``)."""
    return timestamp[:19].replace("T", " ") + "Z" if timestamp else "?"


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
          when(v.registered_at)) for v in versions],
    )


def event_text(e: Any, labels: dict[str, str] | None = None) -> str:
    """One event as a line, like ``git log --oneline`` with who and why.

    A stage move reads ``NAME@STAGE: 1.1.0 -> 1.0.0``: versions from ``labels`` (digest ->
    version), a short digest only for one no version is known for; ``--json`` has the digests.
    """
    from .lifecycle.order import MOVES

    labels = labels or {}

    def label(digest: str | None) -> str:
        return "(empty)" if digest is None else labels.get(digest) or _short(digest)

    when = e.time[:19].replace("T", " ") + "Z"
    if e.action in MOVES and e.stage:
        what = f"{e.model}@{e.stage}"
        move = f": {label(e.from_)} -> {label(e.to)}"
    else:
        what = f"{e.model}@{e.version}" if e.version else e.model
        if e.stage:
            what += f" -> {e.stage}"
        move = ""
    forced = " [forced]" if e.data.get("forced") else ""
    reason = f"  # {e.reason}" if e.reason else ""
    return line(f"{when}  {e.action:<9} {what}{move}{_annotation(e)}{forced}  by {e.actor}{reason}")


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
        return f" {d.get('provider')}" + (f" {d['id']}" if d.get("id") else "") + (
            f" ({d['status']})" if d.get("status") else "")
    if e.action == "bind-update":
        return f" {d.get('provider')}" + "".join(f" {k}={_fmt(v)}" for k, v in d.items() if k != "provider")
    if e.action == "rate":
        return f" {d.get('score')}/5" + (f": {d['comment']}" if d.get("comment") else "")
    if e.action == "model" and isinstance(d.get("fields"), dict):
        return "".join(f" {k}={_fmt(v)}" for k, v in d["fields"].items())
    if e.action == "purge":
        return f" {len(d.get('artifacts') or [])} object(s), {d.get('bytes') or 0} bytes"
    if e.action == "noop":
        return f" ({d.get('command')}: already {'held' if e.to else 'empty'})"
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
    for text, colour in _diff_lines(result):
        yield line(text), colour


def _diff_lines(result: Any) -> Iterator[tuple[str, str | None]]:
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
    for text, colour in _stage_diff_lines(sd):
        yield line(text), colour


def _stage_diff_lines(sd: Any) -> Iterator[tuple[str, str | None]]:

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
    import sys

    current = f" (now: {report.current})" if report.current else " (now: empty)"
    stream = sys.stderr if stderr else sys.stdout
    stream.write(line(f"{report.name}@{report.version} -> {report.stage}{current}") + "\n")
    rows = [(r.gate, r.subject, _fmt(r.expected), "-" if r.actual is None else _fmt(r.actual),
             "pass" if r.passed else "FAIL", getattr(r, "detail", r.message)) for r in report.results]
    _table(("GATE", "SUBJECT", "EXPECTED", "ACTUAL", "RESULT", "DETAIL"), rows, stderr=stderr,
           colours={"pass": "green", "FAIL": "bold red"})


def metrics_lines(metrics: dict[str, dict[str, Any]]) -> Iterator[str]:
    """``suite  key  value`` lines, suites and keys sorted, values as JSON."""
    if not metrics:
        yield "(no metrics recorded)"
    for suite in sorted(metrics):
        for key in sorted(metrics[suite]):
            yield "\t".join(line(x) for x in (suite, key, _fmt(metrics[suite][key])))


def stats_lines(stats: dict[str, Any]) -> Iterator[str]:
    """The statistics of ``stats [NAME]`` as ``name: value`` lines, then a table of models."""
    if "per_model" not in stats:  # one model
        yield f"model:     {stats['name']}"
        yield (f"versions:  {stats['versions']} ({stats['archived']} archived, {stats['purged']} purged)")
        yield "stages:    " + ("  ".join(f"{s}={v}" for s, v in stats["stages"].items()) or "-")
        yield f"bytes:     {stats['bytes']} ({stats['live_bytes']} in unarchived versions, {stats['purged_bytes']} purged)"
        yield "retention: " + _retention_text(stats, stats["would_archive"])
        return
    yield f"models:    {stats['models']}"
    yield f"versions:  {stats['versions']} ({stats['archived']} archived, {stats['purged']} purged)"
    for stage, n in stats["stages"].items():
        yield f"  {stage}: {n}"
    yield f"bytes:     {stats['bytes']} in artifacts ({stats['live_bytes']} in unarchived versions, " \
          f"{stats['purged_bytes']} purged)"
    yield f"size:      {stats['size_bytes']} bytes in {stats['files']} files"
    yield "retention: " + _retention_text(stats, stats["would_archive"])
    if stats["per_model"]:
        yield ""
        rows = []
        for name, m in stats["per_model"].items():
            rows.append((name, str(m["versions"]), str(m["archived"]), str(m["purged"]), str(m["bytes"]),
                         "  ".join(f"{s}={v}" for s, v in m["stages"].items()) or "-",
                         ", ".join(m["would_archive"]) or "-"))
        widths = [max(len(r[i]) for r in [_STATS_HEAD, *rows]) for i in range(len(_STATS_HEAD))]
        for r in [_STATS_HEAD, *rows]:
            yield "  ".join(c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)).rstrip()


_STATS_HEAD = ("MODEL", "VERSIONS", "ARCHIVED", "PURGED", "BYTES", "STAGES", "WOULD ARCHIVE")


def _retention_text(stats: dict[str, Any], would: list[str]) -> str:
    rule = stats.get("retention") or {}
    if rule.get("keep") is None:
        return "no policy.retention.keep (prune needs --keep)"
    auto = ", applied by register" if rule.get("auto") else ""
    return f"keep {rule['keep']}{auto}; would archive next: {', '.join(would) or 'nothing'}"


def bindings_table(rows: list[Any]) -> None:
    """Print bindings: where each version is served, its status and observed figures."""
    def fig(v: Any) -> str:
        return "-" if v is None else _fmt(v)

    _table(
        ("MODEL", "VERSION", "PROVIDER", "ID", "STATUS", "STAGES", "LATENCY_MS", "SUCCESS", "LAST_USED", "ENDPOINT"),
        [(b.name, b.version, b.provider, b.id or "-", b.status, ", ".join(b.stages) or "-", fig(b.latency_ms),
          fig(b.success_rate), when(b.last_used) if b.last_used else "-", b.endpoint or "-") for b in rows],
    )


def _fmt(value: Any) -> str:
    """A value as text by the one rule (modelreg.values.display): the string "0.90" quoted, the number 0.9 bare."""
    from .values import display

    return display(value)


def progress_bar(label: str, total: int) -> Callable[[int], None]:
    """A rich progress bar on stderr counting bytes; returns the per-chunk callback (closes itself at total)."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    return _bar(label, total, DownloadColumn(), TransferSpeedColumn())


def count_bar(label: str, total: int) -> Callable[[int], None]:
    """A rich progress bar on stderr counting steps (N/TOTAL); returns the per-step callback."""
    from rich.progress import MofNCompleteColumn, TimeRemainingColumn

    return _bar(label, total, MofNCompleteColumn(), TimeRemainingColumn())


def _bar(label: str, total: int, *columns: Any) -> Callable[[int], None]:
    """A transient bar on stderr with ``columns`` after it; the callback advances it and stops it at
    ``total``; its ``close()`` stops it early (a transfer cut short)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress

    progress = Progress("[progress.description]{task.description}", BarColumn(), *columns,
                        console=Console(stderr=True), transient=True)
    task = progress.add_task(label[-40:], total=total)
    progress.start()
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        progress.update(task, advance=n)
        if done[0] >= total:
            progress.stop()

    advance.close = progress.stop  # type: ignore[attr-defined]
    return advance


def verify_table(reports: list[Any]) -> None:
    """Print one row per artifact of each verified version: role, status, size and hash checked."""
    rows = []
    for rep in reports:
        label = f"{rep.ref.name}@{rep.ref.version}"
        if not rep.results:
            rows.append((label, "-", "ok", "-", "-", "no artifacts"))
        for r in rep.results:
            size = r.actual_size if r.actual_size is not None else r.expected_size
            rows.append((label, r.role, r.status, "-" if size is None else str(size), (r.expected_sha256 or "-")[:12],
                         r.message))
    statuses = {r.status for rep in reports for r in rep.results} | {"ok"}
    _table(("VERSION", "ROLE", "STATUS", "SIZE", "SHA256", "DETAIL"), rows,
           colours={s: {"ok": "green", "unreachable": "yellow", "unverified": "yellow"}.get(s, "red") for s in statuses})


def fetch_lines(report: Any) -> Iterator[str]:
    """``STATUS  ROLE  PATH`` per fetched file; one line per directory artifact (its files counted)."""
    from collections import Counter

    trees: dict[str, list[Any]] = {}
    for f in report.files:
        if f.file is None:
            yield f"{f.status:<10}  {f.role}  {f.path}"
        else:
            trees.setdefault(f.role, []).append(f)
    for role, files in trees.items():
        counts = Counter(f.status for f in files)
        status = next((s for s in ("downloaded", "unverified", "present") if counts.get(s)), "present")
        detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        top = files[0].path[: len(files[0].path) - len(files[0].file)]
        yield f"{status:<10}  {role}  {top}  ({len(files)} files: {detail})"
