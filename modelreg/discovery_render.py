"""Human renderings of search results, lineage trees and license reports. Imported only when used."""

from __future__ import annotations

from typing import Any

from .printable import line

_MARK = {"compatible": "ok", "incompatible": "INCOMPATIBLE", "unknown": "unknown"}


def _console() -> Any:
    import sys

    from rich.console import Console

    from .cli import use_colour

    # Piped output is read by scripts and people alike: do not wrap rows at 80 columns.
    tty = sys.stdout.isatty()
    return Console(highlight=False, soft_wrap=False, width=None if tty else 250,
                   color_system="auto" if use_colour(sys.stdout) else None)  # None: no escape codes at all


def search_table(records: list[Any]) -> None:
    """Print matching versions, one per row (plain aligned text, like ``ls NAME``)."""
    from .render import _table, when

    _table(
        ("MODEL", "VERSION", "DIGEST", "STAGES", "TAGS", "LICENSE", "ARCHIVED", "REGISTERED"),
        [(r.name, r.version, r.digest[:19], ", ".join(r.stages) or "-", ", ".join(r.tags) or "-",
          r.license or "-", "yes" if r.archived else "", when(r.registered_at)) for r in records],
    )


def _node_label(n: Any) -> str:
    from rich.markup import escape

    text = f"[bold]{escape(line(n.label))}[/bold] [dim]{n.digest[:19]}[/dim]"
    if n.relation:
        text += f" [cyan]{escape(line(n.relation))}[/cyan]"
    if n.license:
        text += f" [dim]({escape(line(n.license))})[/dim]"
    if n.truncated:
        text += " [dim]...[/dim]"
    return text


def lineage_tree(root: Any) -> None:
    """Print a lineage tree with rich."""
    from rich.tree import Tree

    def add(tree: Any, node: Any) -> None:
        for child in node.children:
            add(tree.add(_node_label(child)), child)

    tree = Tree(_node_label(root))
    add(tree, root)
    _console().print(tree)


def license_lines(report: Any) -> list[str]:
    """A license report as lines: the version, then one line per finding."""
    v = report.version
    lines = [f"{v.name}@{v.version}: license {report.license or '(none)'}"
             + (f", project license {report.project_license}" if report.project_license else "")]
    if not report.findings:
        lines.append("  no ancestors" + ("" if report.project_license else " and no --project-license: nothing to check"))
    for f in report.findings:
        lines.append(f"  {_MARK[f.outcome]:<12} {f.kind:<10} {f.subject}: {f.reason}")
    return [line(x) for x in lines]
