"""Lays out the site's SVG drawings (stage timeline, metric series, lineage graph) as plain geometry for the
templates; no markup is produced here, so every label reaches the page through Jinja's escaping."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..log import Event
    from .data import ModelData, SiteData, VersionData

PALETTE = 8  # colour classes c0..c7 in site.css (light and dark variants)
LINEAGE_DEPTH = 4  # generations drawn each way in a version's lineage graph
LINEAGE_LIMIT = 24  # versions drawn each way
MARKERS_MAX = 1500  # above this many points a metric chart draws its line without one marker per point


def _num(x: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0`` (smaller pages, stable bytes)."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def fmt_value(v: Any) -> str:
    """A metric value for labels: up to 4 significant digits for floats."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def short_time(text: str | None) -> str:
    """``2024-05-01 12:34 UTC`` from a log time; the raw text when it does not parse."""
    t = _time(text)
    return t.strftime("%Y-%m-%d %H:%M UTC") if t else (text or "")


# ------------------------------------------------------------------ timeline
@dataclass
class Segment:
    x: str
    w: str
    version: str | None
    colour: int
    label: bool
    title: str


@dataclass
class Mark:
    x: str
    action: str
    shape: str
    title: str


@dataclass
class Lane:
    stage: str
    y: str
    label_y: str
    segments: list[Segment] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)


@dataclass
class Timeline:
    width: int
    height: int
    left: int
    lanes: list[Lane]
    ticks: list[tuple[str, str, str]]  # (x, label, text-anchor)
    axis_y: str
    points: int


SHAPES = {"promote": "up", "demote": "down", "rollback": "diamond", "clear": "cross"}


def timeline(model: ModelData, stages: tuple[str, ...]) -> Timeline | None:
    """Which version held each stage over time, with every stage move marked."""
    moves = [e for e in model.events if e.stage is not None]
    if not moves:
        return None
    by_digest = {v.digest: v for v in model.versions}
    lane_names = [s for s in stages if any(e.stage == s for e in moves)]
    lane_names += sorted({e.stage for e in moves if e.stage not in lane_names})  # type: ignore[misc]
    times = [t for t in (_time(e.time) for e in model.events) if t is not None]
    t0 = min(_time(e.time) or times[0] for e in moves)
    t1 = max(times)
    span = (t1 - t0).total_seconds()
    if span <= 0:
        span = 1.0
    t1 = t0 + timedelta(seconds=span * 1.04)  # room after the last move: "still holds"
    span *= 1.04
    left, right, lane_h, top = 96, 16, 30, 8
    width = 800
    plot_w = width - left - right

    def x_of(t: datetime) -> float:
        return left + plot_w * (t - t0).total_seconds() / span

    lanes = []
    for i, stage in enumerate(lane_names):
        y = top + i * lane_h
        lane = Lane(stage, _num(y + 6), _num(y + lane_h / 2 + 4))
        evs = [e for e in moves if e.stage == stage]
        for j, e in enumerate(evs):
            start = _time(e.time) or t0
            end = (_time(evs[j + 1].time) or t1) if j + 1 < len(evs) else t1
            held = by_digest.get(e.to) if e.to else None
            version = held.version if held else (e.to[:15] if e.to else None)
            if e.to:
                x0, x1 = x_of(start), x_of(end)
                lane.segments.append(Segment(
                    _num(x0), _num(max(x1 - x0, 1.5)), version,
                    (held.index if held else 0) % PALETTE, x1 - x0 > 7 * len(version or "") + 8,
                    f"{stage}: {version} from {short_time(e.time)}"
                    + (f" to {short_time(evs[j + 1].time)}" if j + 1 < len(evs) else " (holds it now)"),
                ))
            lane.marks.append(Mark(_num(x_of(start)), e.action, SHAPES.get(e.action, "dot"), _move_title(e, version)))
        lanes.append(lane)
    axis_y = top + len(lanes) * lane_h + 4
    ticks = []
    n = 5
    fmt = "%Y-%m-%d" if span > 3 * 86400 else "%m-%d %H:%M" if span > 3600 else "%H:%M:%S"
    for k in range(n + 1):
        t = t0 + timedelta(seconds=span * k / n)
        label = t.strftime(fmt) + (f".{t.microsecond // 1000:03d}" if span < 30 else "")  # moves seconds apart
        ticks.append((_num(x_of(t)), label, "start" if k == 0 else "end" if k == n else "middle"))
    return Timeline(width, axis_y + 22, left, lanes, ticks, _num(axis_y), len(moves))


def _move_title(e: Event, version: str | None) -> str:
    what = {"clear": f"cleared {e.stage}", "demote": f"{version} demoted to {e.stage}"}.get(
        e.action, f"{e.action} {version or '(empty)'} to {e.stage}")
    text = f"{short_time(e.time)} · {what} by {e.actor}"
    if e.data.get("forced"):
        text += " (forced)"
    return text + (f" — {e.reason}" if e.reason else "")


# ------------------------------------------------------------------- metrics
@dataclass
class Point:
    x: str
    y: str
    version: str
    value: str
    prod: bool


@dataclass
class Threshold:
    y: str
    label: str
    label_y: str


@dataclass
class MetricChart:
    suite: str
    key: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    path: str
    band: str  # for dense series: the min-max range of each pixel column ("" otherwise)
    points: list[Point]  # one per version with a value (markers omitted above MARKERS_MAX, see markers)
    markers: bool
    radius: float  # of a point's marker: smaller when there are many
    count: int
    prod: Point | None
    thresholds: list[Threshold]
    yticks: list[tuple[str, str]]
    first: str
    last: str


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{suite: {key: number}}`` with nested objects flattened to dotted keys and non-numbers dropped."""
    out: dict[str, dict[str, float]] = {}
    for suite, values in metrics.items():
        if not isinstance(values, dict):
            continue
        flat: dict[str, float] = {}
        _numbers("", values, flat)
        if flat:
            out[suite] = flat
    return out


def _numbers(prefix: str, v: Any, into: dict[str, float], depth: int = 0) -> None:
    if isinstance(v, dict) and depth < 4:
        for k, x in v.items():
            _numbers(f"{prefix}.{k}" if prefix else str(k), x, into, depth + 1)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        into[prefix] = v


def metric_charts(model: ModelData, site: SiteData) -> list[tuple[str, list[MetricChart]]]:
    """One small chart per numeric metric key, grouped by suite, versions in registration order."""
    series: dict[str, dict[str, list[tuple[VersionData, float]]]] = {}
    for v in model.versions:
        for suite, flat in numeric_metrics(v.metrics).items():
            keys = series.setdefault(suite, {})
            for key, value in flat.items():
                keys.setdefault(key, []).append((v, value))
    top = site.top_stage
    prod = model.holders.get(top) if top else None
    thresholds = site.thresholds()
    out = []
    for suite in sorted(series):
        charts = [_metric_chart(suite, key, pts, prod.digest if prod else None, thresholds.get(f"{suite}.{key}", []))
                  for key, pts in sorted(series[suite].items())]
        out.append((suite, charts))
    return out


def _metric_chart(suite: str, key: str, pts: list[tuple[VersionData, float]], prod_digest: str | None,
                  thresholds: list[tuple[str, str, float]]) -> MetricChart:
    width, height, left, right, top, bottom = 380, 170, 52, 12, 12, 34
    values = [p[1] for p in pts] + [t[2] for t in thresholds]
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    else:
        pad = (hi - lo) * 0.08
        lo, hi = lo - pad, hi + pad
    i0, i1 = pts[0][0].index, pts[-1][0].index
    plot_w, plot_h = width - left - right, height - top - bottom

    def x_of(i: int) -> float:
        return left + (plot_w * (i - i0) / (i1 - i0) if i1 > i0 else plot_w / 2)

    def y_of(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    points = [Point(_num(x_of(v.index)), _num(y_of(val)), v.version, fmt_value(val), v.digest == prod_digest)
              for v, val in pts]
    band = ""
    if len(points) <= 2 * plot_w:
        path = "M" + " L".join(f"{p.x} {p.y}" for p in points)
    else:  # more points than pixels: the range of each pixel column as a band, its mean as the line
        columns: dict[int, list[float]] = {}
        for v, val in pts:
            columns.setdefault(int(x_of(v.index) - left), []).append(val)
        xs = sorted(columns)
        path = "M" + " L".join(f"{_num(left + x)} {_num(y_of(sum(columns[x]) / len(columns[x])))}" for x in xs)
        upper = [f"{_num(left + x)} {_num(y_of(max(columns[x])))}" for x in xs]
        lower = [f"{_num(left + x)} {_num(y_of(min(columns[x])))}" for x in reversed(xs)]
        band = "M" + " L".join(upper + lower) + " Z"
    prod = next((p for p in points if p.prod), None)
    markers = len(points) <= MARKERS_MAX
    thr = [Threshold(_num(y_of(v)), f"{stage} {op} {fmt_value(v)}", _num(y_of(v) - 3)) for stage, op, v in thresholds]
    yticks = [(_num(y_of(v)), fmt_value(v)) for v in (lo + (hi - lo) * k / 4 for k in (0, 2, 4))]
    radius = 3 if len(points) <= 60 else 2 if len(points) <= 300 else 1.2
    return MetricChart(suite, key, width, height, left, right, top, bottom, path, band, points if markers else [],
                       markers, radius, len(points), prod, thr, yticks, pts[0][0].version, pts[-1][0].version)


# ------------------------------------------------------------------- lineage
@dataclass
class Node:
    digest: str
    label: str
    full: str
    href: str | None
    layer: int
    x: str = "0"
    y: str = "0"
    center: bool = False
    more: int = 0  # relatives left out of the drawing


@dataclass
class Edge:
    d: str
    relation: str | None
    title: str


@dataclass
class Lineage:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]
    node_w: int
    node_h: int


def lineage(v: VersionData, site: SiteData, root: str, depth: int = LINEAGE_DEPTH,
            limit: int = LINEAGE_LIMIT) -> Lineage | None:
    """Ancestors (left) and descendants (right) of ``v`` as a layered graph, at most ``limit`` per side."""

    def parents_of(d: str) -> list[tuple[str, str | None]]:
        vd = v if d == v.digest else site.by_digest.get(d)
        return [(p["digest"], p.get("relation")) for p in ((vd.manifest or {}) if vd else {}).get("parents", [])]

    def children_of(d: str) -> list[tuple[str, str | None]]:
        return site.children.get(d, [])

    def make(d: str, layer: int) -> Node:
        vd = site.by_digest.get(d)
        if vd is not None:
            full = f"{vd.name}@{vd.version}"
            href: str | None = f"{root}{vd.name}/{vd.version}/index.html"
        else:
            full, href = f"(missing) {d[:19]}", None
        label = full if len(full) <= 24 else full[:23] + "…"
        return Node(d, label, full, href, layer)

    nodes: dict[str, Node] = {v.digest: make(v.digest, 0)}
    nodes[v.digest].center = True
    edges: list[tuple[str, str, str | None]] = []

    def walk(direction: int) -> None:
        relatives = parents_of if direction < 0 else children_of
        frontier, count = [v.digest], 0
        for level in range(1, depth + 1):
            nxt = []
            for d in frontier:
                for other, relation in relatives(d):
                    edge = (other, d, relation) if direction < 0 else (d, other, relation)
                    if other in nodes:  # reached twice (a diamond): one more edge, no new node
                        if edge not in edges and nodes[other].layer * direction > 0:
                            edges.append(edge)
                        continue
                    if count >= limit:
                        nodes[d].more += 1
                        continue
                    nodes[other] = make(other, direction * level)
                    edges.append(edge)
                    nxt.append(other)
                    count += 1
            frontier = nxt
            if not frontier:
                return
        for d in frontier:  # relatives beyond the depth limit
            nodes[d].more += len(relatives(d))

    walk(-1)
    walk(1)
    if len(nodes) == 1:
        return None
    # longest-path layering: a version derived from two drawn versions sits right of both
    for _ in range(len(nodes)):
        moved = False
        for a, b, _rel in edges:
            na, nb = nodes[a], nodes[b]
            if nb.layer > 0 and nb.layer <= na.layer:
                nb.layer, moved = na.layer + 1, True
            elif na.layer < 0 and na.layer >= nb.layer:
                na.layer, moved = nb.layer - 1, True
        if not moved:
            break
    layers: dict[int, list[Node]] = {}
    for n in nodes.values():
        layers.setdefault(n.layer, []).append(n)
    node_w, node_h, gap_x, gap_y, pad = 176, 30, 56, 14, 8
    ordered = sorted(layers)
    column = {layer: i for i, layer in enumerate(ordered)}
    long_edges = any(abs(column[nodes[a].layer] - column[nodes[b].layer]) > 1 for a, b, _ in edges)
    top = pad + (26 if long_edges else 0)  # room for edges that arc over a column
    tallest = max(len(ns) for ns in layers.values())
    height = top + pad + tallest * node_h + (tallest - 1) * gap_y
    width = pad * 2 + len(ordered) * node_w + (len(ordered) - 1) * gap_x
    pos: dict[str, tuple[float, float]] = {}
    for col, layer in enumerate(ordered):
        ns = layers[layer]
        col_h = len(ns) * node_h + (len(ns) - 1) * gap_y
        y0 = top + (height - top - pad - col_h) / 2
        for row, n in enumerate(ns):
            x, y = pad + col * (node_w + gap_x), y0 + row * (node_h + gap_y)
            n.x, n.y = _num(x), _num(y)
            pos[n.digest] = (x, y)
    out_edges = []
    for a, b, relation in edges:
        (ax, ay), (bx, by) = pos[a], pos[b]
        if abs(column[nodes[a].layer] - column[nodes[b].layer]) > 1:  # over the columns between: arc above them
            x0, y0, x1, y1 = ax + node_w / 2, ay, bx + node_w / 2, by
            peak = min(y0, y1) - 2 * (top - pad) + 6
            d = (f"M{_num(x0)} {_num(y0)} C{_num(x0)} {_num(peak)} {_num(x1)} {_num(peak)} "
                 f"{_num(x1)} {_num(y1 - 2)}")
        else:
            x0, y0, x1, y1 = ax + node_w, ay + node_h / 2, bx, by + node_h / 2
            mid = (x0 + x1) / 2
            d = f"M{_num(x0)} {_num(y0)} C{_num(mid)} {_num(y0)} {_num(mid)} {_num(y1)} {_num(x1 - 2)} {_num(y1)}"
        title = f"{nodes[a].full} → {nodes[b].full}" + (f" ({relation})" if relation else "")
        out_edges.append(Edge(d, relation, title))
    return Lineage(width, height, list(nodes.values()), out_edges, node_w, node_h)
