"""Renders the site's pages from the Jinja2 templates in ``templates/`` and the data files the pages' script loads.

Autoescaping is on for every template: each name, reason, URI and value from the registry
is untrusted. Data handed to scripts is JSON made safe for a ``<script>`` context
(:func:`script_json`), in ``.js`` files loaded by ``<script src>`` (Chromium does not let a
page opened from ``file://`` fetch sibling files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ModelregError
from . import charts
from .data import ModelData, SiteData, VersionData

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
ASSETS = HERE / "assets"
PAGE_ROWS = 50  # table rows rendered into the HTML (the rest arrive as data when asked for)
CHUNK = 1000  # rows per data file of a model's versions table
EVENT_CHUNK = 2000  # rows per data file of the events table
EVENT_ROWS = 100

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'")

INSTALL_HINT = "the site needs Jinja2: pip install 'modelreg[site]'"

_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                   0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(value: Any) -> str:
    """JSON that stays inert inside ``<script>`` and in JavaScript source (``<``, ``>``, ``&``, U+2028/9 escaped)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def data_js(key: str, value: Any) -> bytes:
    """A data file: one call that hands ``value`` to the page's script under ``key``."""
    return f"MR.put({script_json(key)},{script_json(value)});\n".encode("utf-8")


@dataclass(frozen=True)
class Options:
    title: str = "Model registry"
    base_url: str | None = None  # absolute URL of the site root, ending in "/"


def _require_jinja() -> Any:
    try:
        import jinja2
    except ImportError:
        raise ModelregError(INSTALL_HINT) from None
    return jinja2


_ENVIRONMENTS: dict[tuple[str, tuple[str, ...]], Any] = {}
TEMPLATE_NAMES = ("base.html", "_macros.html", "overview.html", "model.html", "version.html", "events.html")


def _environment(title: str, stages: tuple[str, ...]) -> Any:
    """The Jinja2 environment for one title and stage list, templates compiled once per process (and
    inherited by forked workers)."""
    key = (title, tuple(stages))
    env = _ENVIRONMENTS.get(key)
    if env is not None:
        return env
    jinja2 = _require_jinja()
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(size=fmt_size, json=fmt_json, time=charts.short_time, value=charts.fmt_value,
                       detail=event_detail)
    env.globals.update(  # the CSP is a constant of ours: its quotes need no escaping inside "..."
        site_title=title, version=__version__, csp=Markup(CSP), stages=tuple(stages), flatten=flatten,
    )
    for name in TEMPLATE_NAMES:
        env.get_template(name)
    if len(_ENVIRONMENTS) > 4:
        _ENVIRONMENTS.clear()
    _ENVIRONMENTS[key] = env
    return env


def fmt_size(n: Any) -> str:
    if not isinstance(n, int) or isinstance(n, bool):
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def fmt_json(v: Any) -> str:
    """A value as text: strings as they are, everything else as compact JSON."""
    if isinstance(v, str):
        return v
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # what json.dumps writes for a finite float
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted ``(key, value)`` rows of a nested mapping (lists stay values)."""
    if not isinstance(d, dict) or not d:
        return [(prefix, d)] if prefix else []
    rows: list[tuple[str, Any]] = []
    for k in d:
        rows.extend(flatten(d[k], f"{prefix}.{k}" if prefix else str(k)))
    return rows


def event_detail(e: Any) -> str:
    """A short human summary of an event's ``data`` (known actions), or its JSON (any other action)."""
    d = e.data if isinstance(e.data, dict) else {}
    a = e.action
    text = ""
    if a == "metrics" and isinstance(d.get("values"), dict):
        text = f"{d.get('suite')}: " + ", ".join(f"{k}={fmt_json(v)}" for k, v in d["values"].items())
    elif a == "tag":
        text = " ".join([f"+{t}" for t in d.get("add") or []] + [f"-{t}" for t in d.get("remove") or []])
    elif a == "approve":
        text = f"for {d.get('stage')}" + (f": {d['comment']}" if d.get("comment") else "")
    elif a == "bind":
        text = f"{d.get('provider')}: {d.get('id')}" + (f" at {d['endpoint']}" if d.get("endpoint") else "")
    elif a == "unbind":
        text = f"{d.get('provider')}"
    elif a == "rate":
        text = f"{d.get('score')}/5" + (f": {d['comment']}" if d.get("comment") else "")
    elif d:
        parts = []
        if d.get("forced"):
            parts.append("forced")
        failed = d.get("failed_gates")
        if isinstance(failed, list) and failed:
            gates = [f"{g.get('gate')} {g.get('subject')}" for g in failed if isinstance(g, dict)]
            parts.append("failed: " + ", ".join(gates))
        rest = {k: v for k, v in d.items() if k not in ("forced", "failed_gates", "by", "replaced_in")}
        if rest:
            parts.append(fmt_json(rest))
        text = "; ".join(parts)
    return text if len(text) <= 300 else text[:299] + "…"


class Renderer:
    """Pages and data files of one site (one instance per process)."""

    def __init__(self, site: SiteData, options: Options) -> None:
        self.site = site
        self.options = options
        self.env = _environment(options.title, site.stages)
        self._model_ctx: dict[str, dict[str, Any]] = {}
        self._events: list[tuple[ModelData, Any]] | None = None

    def _render(self, template: str, root: str, path: str, **ctx: Any) -> bytes:
        canonical = None
        if self.options.base_url:
            canonical = self.options.base_url + (path[: -len("index.html")] if path.endswith("index.html") else path)
        html = self.env.get_template(template).render(root=root, canonical=canonical, **ctx)
        return html.encode("utf-8")

    # --------------------------------------------------------------- pages
    def overview(self) -> bytes:
        site = self.site
        rows = []
        for m in site.models:
            latest = m.latest
            terms = [m.name] + [f"{s}:{h.version}" for s, h in m.holders.items()]
            rows.append({"m": m, "latest": latest, "search": " ".join(terms)})
        totals = {
            "models": len(site.models), "versions": site.versions,
            "archived": sum(m.archived for m in site.models), "events": sum(len(m.events) for m in site.models),
        }
        extra = sorted({s for m in site.models for s in m.holders if s not in site.stages})
        return self._render("overview.html", "", "index.html", page="overview", rows=rows, totals=totals,
                            stage_columns=list(site.stages) + extra)

    def _ctx(self, m: ModelData) -> dict[str, Any]:
        """Per-model values every version page of that model needs (kept for the model being rendered)."""
        ctx = self._model_ctx.get(m.name)
        if ctx is None:
            by_version: dict[str, list[Any]] = {}
            for e in m.events:
                if e.version is not None:
                    by_version.setdefault(e.version, []).append(e)
            top = self.site.top_stage
            holder = m.holders.get(top) if top else None
            names = {v.digest: v.version for v in m.versions}
            ctx = {"events": by_version, "top": top, "flat": {},
                   "top_version": self.site.by_digest.get(holder.digest) if holder else None, "names": names}
            self._model_ctx = {m.name: ctx}  # one model at a time: jobs come grouped by model
        return ctx

    def model(self, m: ModelData) -> bytes:
        rows = list(reversed(m.versions[-PAGE_ROWS:]))
        chunks = max(1, -(-len(m.versions) // CHUNK))
        gates_by_stage = {c["stage"]: c for c in m.checks}
        return self._render(
            "model.html", "../", f"{m.name}/index.html", page="model", m=m, rows=rows, chunks=chunks,
            page_rows=PAGE_ROWS, timeline=charts.timeline(m, self.site.stages),
            metrics=charts.metric_charts(m, self.site), checks=gates_by_stage, latest=m.latest,
        )

    def version(self, m: ModelData, v: VersionData) -> bytes:
        """One version's page. The heavy parts (diffs, tables) arrive as rows of plain strings: at 100k
        versions every expression the template evaluates costs seconds."""
        ctx = self._ctx(m)
        prev = m.versions[v.index - 1] if v.index > 0 else None
        top_v = ctx["top_version"]
        diffs = []
        if prev is not None:
            same = top_v is not None and top_v.digest == prev.digest
            label = "previous version" + (f", in {ctx['top']}" if same else "")
            diffs.append((label, prev.version, self._diff(ctx, prev, v)))
        if top_v is not None and top_v.digest != v.digest and (prev is None or top_v.digest != prev.digest):
            diffs.append((ctx["top"], top_v.version, self._diff(ctx, top_v, v)))
        man = v.manifest or {}
        names = ctx["names"]
        events = []
        for e in reversed(ctx["events"].get(v.version, [])):
            change = ""
            if e.stage is not None:
                change = f"{names.get(e.from_, (e.from_ or '∅')[:15])} → {names.get(e.to, (e.to or '∅')[:15])}"
            events.append((e.time, charts.short_time(e.time), e.action, e.stage or "", change, e.actor,
                           e.reason or "", event_detail(e)))
        artifacts = [(a.get("role", ""), a.get("uri", ""), fmt_size(a.get("size")),
                      "" if a.get("size") is None else str(a.get("size")), a.get("sha256") or "",
                      charts.short_time(v.purged[a.get("uri")].get("time")) if a.get("uri") in v.purged else "")
                     for a in man.get("artifacts", [])]
        bindings = []
        for provider, b in sorted(v.bindings.items()):
            other = {k: x for k, x in b.items() if k not in _BINDING_COLUMNS and x not in ({}, None)}
            bindings.append((provider, b.get("id") or "", b.get("status") or "", b.get("endpoint") or "",
                             fmt_json(other) if other else "", charts.short_time(b.get("time")), b.get("actor") or ""))
        metrics = [(suite, _rows(values)) for suite, values in sorted(v.metrics.items())]
        return self._render(
            "version.html", "../../", f"{m.name}/{v.version}/index.html", page="version", m=m, v=v,
            man=man, diffs=diffs, lineage=charts.lineage(v, self.site, "../../"), events=events,
            parents=self._parents(v), artifacts=artifacts, params=_rows(man.get("params")),
            meta=_rows(man.get("meta")), metrics=metrics, registered=charts.short_time(v.registered_at),
            bindings=bindings,
            api_page=api_page_name(v.index),
        )

    def _diff(self, ctx: dict[str, Any], a: VersionData, b: VersionData) -> list[tuple[str, str, str, str]] | None:
        """Manifest changes from ``a`` to ``b`` (the version field aside) as ``(kind, path, old, new)`` text,
        parents named by version. Flattened manifests are kept per model: each is flattened once."""
        fa, fb = self._flat(ctx, a), self._flat(ctx, b)
        if fa is None or fb is None:
            return None
        rows = []
        for p in sorted(fa.keys() | fb.keys()):
            if p == "version":
                continue
            old, new = fa.get(p, _MISSING), fb.get(p, _MISSING)
            if old == new and (old is _MISSING) == (new is _MISSING):
                continue
            gone_before, gone_after = old is _MISSING or old is None, new is _MISSING or new is None
            kind = "added" if gone_before else "removed" if gone_after else "changed"
            path = p
            if p.startswith("parents."):
                other = self.site.by_digest.get(p[len("parents."):])
                if other is not None:
                    path = f"parents.{other.name}@{other.version}"
            rows.append((kind, path, "" if old is _MISSING or old is None else fmt_json(old),
                         "" if new is _MISSING or new is None else fmt_json(new)))
        return rows

    def _flat(self, ctx: dict[str, Any], v: VersionData) -> dict[str, Any] | None:
        if v.manifest is None:
            return None
        cache = ctx["flat"]
        flat = cache.get(v.digest)
        if flat is None:
            from ..manifest import flatten as flatten_manifest

            if len(cache) > 8:
                cache.clear()
            flat = cache[v.digest] = flatten_manifest(v.manifest)
        return flat

    def _parents(self, v: VersionData) -> list[dict[str, Any]]:
        out = []
        for p in (v.manifest or {}).get("parents", []):
            other = self.site.by_digest.get(p["digest"])
            out.append({"digest": p["digest"], "relation": p.get("relation"),
                        "name": other.name if other else None, "version": other.version if other else None})
        return out

    def events(self) -> bytes:
        evs = self._all_events()
        actors = sorted({e.actor for _, e in evs})
        actions = sorted({e.action for _, e in evs})
        other = {e.stage for _, e in evs if e.stage and e.stage not in self.site.stages}
        stages = list(self.site.stages) + sorted(other)
        head = [self._event_row(m, e) for m, e in evs[:EVENT_ROWS]]
        chunks = max(1, -(-len(evs) // EVENT_CHUNK))
        return self._render("events.html", "", "events.html", page="events", rows=head, total=len(evs),
                            chunks=chunks, actors=actors[:2000], actions=actions, event_stages=stages,
                            models=[m.name for m in self.site.models], page_rows=EVENT_ROWS)

    # ---------------------------------------------------------- data files
    def _all_events(self) -> list[tuple[ModelData, Any]]:
        """Every event of every model, newest first (sorted once per build)."""
        if self._events is None:
            evs = [(m, e) for m in self.site.models for e in m.events]
            evs.sort(key=lambda me: (me[1].time, me[1].id), reverse=True)
            self._events = evs
        return self._events

    def _event_row(self, m: ModelData, e: Any) -> list[Any]:
        names = self._names(m)
        moved = e.stage is not None
        return [e.time, e.actor, e.action, e.model, e.version, e.stage,
                names.get(e.from_, e.from_[:15]) if moved and e.from_ else None,
                names.get(e.to, e.to[:15]) if moved and e.to else None, e.reason, event_detail(e)]

    _names_cache: tuple[str, dict[str, str]] | None = None

    def _names(self, m: ModelData) -> dict[str, str]:
        if self._names_cache is None or self._names_cache[0] != m.name:
            self._names_cache = (m.name, {v.digest: v.version for v in m.versions})
        return self._names_cache[1]

    def event_chunks(self) -> list[tuple[str, bytes]]:
        evs = self._all_events()
        out = []
        for k in range(max(1, -(-len(evs) // EVENT_CHUNK))):
            rows = [self._event_row(m, e) for m, e in evs[k * EVENT_CHUNK: (k + 1) * EVENT_CHUNK]]
            out.append((f"_data/events-{k + 1}.js", data_js(f"events:{k + 1}", rows)))
        return out

    def version_chunks(self, m: ModelData) -> list[tuple[str, bytes]]:
        """A model's versions as table rows, newest first, ``CHUNK`` per file."""
        newest = list(reversed(m.versions))
        out = []
        for k in range(max(1, -(-len(newest) // CHUNK))):
            rows = [version_row(v) for v in newest[k * CHUNK: (k + 1) * CHUNK]]
            out.append((f"_data/{m.name}/versions-{k + 1}.js", data_js(f"versions:{m.name}:{k + 1}", rows)))
        return out

    def search_js(self) -> bytes:
        rows = []
        for m in self.site.models:
            for v in m.versions:
                rows.append([m.name, v.version, " ".join(v.stages), 1 if v.archived else 0, " ".join(v.tags)])
        return data_js("search", rows)


def version_row(v: VersionData) -> list[Any]:
    """One row of a versions table, as the page's script expects it."""
    return [v.index, v.version, v.digest, v.stages, 1 if v.archived else 0, v.registered_at, v.registered_by, v.tags]


_MISSING: Any = object()
_BINDING_COLUMNS = frozenset({"id", "endpoint", "status", "time", "actor", "updated_at", "updated_by"})


def _rows(d: Any) -> list[tuple[str, str]]:
    """``(dotted key, text)`` rows of a nested mapping, for key/value tables."""
    return [(k, fmt_json(v)) for k, v in flatten(d)] if isinstance(d, dict) else []


def api_page_name(index: int) -> str:
    """The API versions page that lists the version at registration position ``index``."""
    from .api import PER_PAGE, page_name

    return page_name(index // PER_PAGE + 1)


def static_files() -> list[tuple[str, bytes]]:
    """The shipped stylesheet, script and icon, as ``(site path, bytes)``."""
    return [(f"_static/{p.name}", p.read_bytes()) for p in sorted(ASSETS.iterdir()) if p.is_file()]
