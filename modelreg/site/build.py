"""Runs one site build: gather the registry's data, render every page, data file and API document (in forked
workers for large registries), write only the files whose bytes changed, and report what happened."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import UsageError
from . import api, cache
from .data import ModelData, RegistrySource, SiteData, can_fork, gather
from .output import Output, valid_rel
from .charts import LINEAGE_DEPTH
from .render import Options, Renderer, _require_jinja, static_files

if TYPE_CHECKING:
    from ..registry import Registry

DEFAULT_OUT = "site"
DEFAULT_TITLE = "Model registry"
VERSION_TASK = 400  # version pages per worker task
PARALLEL_FROM = 3000  # versions; below this a build runs in one process


@dataclass(frozen=True)
class BuildReport:
    """What a build did: ``files`` in the site, ``written`` of them (bytes changed), ``removed`` stale ones."""

    out: str
    files: int
    written: int
    removed: int
    models: int
    versions: int
    seconds: float
    jobs: int
    problems: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent gathering, rendering, finishing

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "files": self.files, "written": self.written, "unchanged": self.files - self.written,
                "removed": self.removed, "models": self.models, "versions": self.versions,
                "seconds": round(self.seconds, 3), "jobs": self.jobs, "problems": self.problems,
                "phases": {k: round(v, 3) for k, v in self.phases.items()}}


def normalize_base_url(url: str | None) -> str | None:
    """``--base-url``: an absolute http(s) URL, returned ending in ``/``; UsageError otherwise."""
    if url is None or url == "":
        return None
    if not re.fullmatch(r"https?://[^\s\"'<>\\`]+", url):
        raise UsageError(f"--base-url {url!r} must be an absolute http:// or https:// URL")
    return url if url.endswith("/") else url + "/"


def check_paths(site: SiteData) -> None:
    """Refuse names that would make two parts of the site the same file (one clear error, nothing written)."""
    names = {m.name for m in site.models}
    for name in sorted(names & {"index.html", "events.html"}):
        raise UsageError(f"model {name!r} would overwrite the site's page {name}; the site cannot be built")
    stages = set(site.stages) | {s for m in site.models for s in m.holders}
    for s in sorted(stages):
        if s == "versions" or re.fullmatch(r"versions-\d+", s):
            raise UsageError(f"stage {s!r} would overwrite the API file {s}.json; the site cannot be built")
    api_files = {"models.json", "stats.json"} | {f"{n}.json" for n in names}
    for m in site.models:
        for v in m.versions:
            if v.version == "index.html" or (m.name == "api" and v.version in api_files):
                raise UsageError(f"version {m.name}@{v.version} would overwrite another file of the site; "
                                 "the site cannot be built")


# --------------------------------------------------------------- workers
_STATE: dict[str, Any] = {}


def _worker() -> tuple[Renderer, Output]:
    if "output" not in _STATE:  # first task in this process (the renderer came with the fork)
        _STATE["output"] = Output(_STATE["root"], _STATE["previous"])
    return _STATE["renderer"], _STATE["output"]


def _run(task: tuple[Any, ...]) -> tuple[int, list[tuple[str, int, int]], int]:
    """Render and write one task: its model's index, ``(path, size, mtime_ns)`` of the files it produced,
    and how many of them it wrote."""
    renderer, output = _worker()
    site: SiteData = _STATE["site"]
    before = output.written
    files: list[tuple[str, bytes]] = []
    if task[0] == "model":
        m = site.models[task[1]]
        files.append((f"{m.name}/index.html", renderer.model(m)))
        files.extend(renderer.version_chunks(m))
        files.extend(_model_api(m, site))
    else:
        m = site.models[task[1]]
        for v in m.versions[task[2]:task[3]]:
            files.append((f"{m.name}/{v.version}/index.html", renderer.version(m, v)))
    rels = [rel for rel, _ in files]
    output.journal(rels)
    stamps = []
    for rel, data in files:
        output.write(rel, data)
        st = os.lstat(os.path.join(output.root, rel))
        stamps.append((rel, st.st_size, st.st_mtime_ns))
    return task[1], stamps, output.written - before


def _model_api(m: ModelData, site: SiteData) -> list[tuple[str, bytes]]:
    out = [(f"api/{m.name}.json", api.dumps(api.model_doc(m, site)))]
    for fname, doc in api.version_pages(m):
        out.append((f"api/{m.name}/{fname}", api.dumps(doc)))
    for stage in list(site.stages) + [s for s in m.holders if s not in site.stages]:
        out.append((f"api/{m.name}/{stage}.json", api.dumps(api.stage_doc(m, stage))))
    return out


def _site_files(renderer: Renderer, site: SiteData) -> list[tuple[str, bytes]]:
    files = [("index.html", renderer.overview()), ("events.html", renderer.events()),
             ("_data/search.js", renderer.search_js()), (".nojekyll", b"")]
    files.extend(renderer.event_chunks())
    files.extend(static_files())
    files.append(("api/models.json", api.dumps(api.models_doc(site))))
    files.append(("api/stats.json", api.dumps(api.stats_doc(site))))
    return files


def _tasks(site: SiteData, models: list[int]) -> list[tuple[Any, ...]]:
    tasks: list[tuple[Any, ...]] = []
    for i in models:
        tasks.append(("model", i))
        for lo in range(0, len(site.models[i].versions), VERSION_TASK):
            tasks.append(("versions", i, lo, lo + VERSION_TASK))
    return tasks


# ------------------------------------------------------ incremental builds
_CODE: list[str] = []


def code_signature() -> str:
    """Changes whenever the site's code, templates or assets (or modelreg's version) change."""
    if not _CODE:
        h = hashlib.sha256(__version__.encode())
        here = Path(__file__).resolve().parent
        for p in sorted(here.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".html", ".css", ".js", ".svg"):
                h.update(p.relative_to(here).as_posix().encode() + b"\0" + p.read_bytes())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def model_signature(m: ModelData, site: SiteData, base: str) -> str:
    """A digest of everything a model's own files (its page, version pages, data and API files) are made
    from: its events, versions, stages and problems, the versions derived from it, and the names of its
    parents. Equal signatures give byte-identical files, so a rebuild can leave them alone."""
    h = hashlib.sha256(base.encode())
    h.update(m.name.encode())
    for e in m.events:
        h.update(repr((e.id, e.time, e.actor, e.action, e.version, e.stage, e.from_, e.to, e.reason,
                       e.data, getattr(e, "sig", None))).encode())
    for s, holder in m.holders.items():
        h.update(repr((s, holder.digest)).encode())
    for v in m.versions:
        h.update(repr((v.version, v.digest, v.problem)).encode())
        if site.children.get(v.digest) or (v.manifest or {}).get("parents"):
            h.update(repr(_lineage_edges(v.digest, site)).encode())
    h.update(repr((m.problems, m.fields)).encode())
    return h.hexdigest()


def _lineage_edges(digest: str, site: SiteData, depth: int = LINEAGE_DEPTH + 1) -> list[Any]:
    """Every edge a version's lineage graph can draw or count (one generation beyond the drawing), with
    the names of the versions at both ends, in a stable order."""
    edges: list[Any] = []
    for direction in ("parent", "child"):
        seen, frontier = {digest}, [digest]
        for _ in range(depth):
            nxt = []
            for d in frontier:
                if direction == "child":
                    relatives = site.children.get(d, [])
                else:
                    v = site.by_digest.get(d)
                    parents = ((v.manifest or {}) if v else {}).get("parents", [])
                    relatives = [(p["digest"], p.get("relation")) for p in parents]
                for other, relation in relatives:
                    o = site.by_digest.get(other)
                    edges.append((direction, d, other, relation, o and o.name, o and o.version))
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
    return edges


def _intact(root: str, files: Any) -> bool:
    """True if every file recorded for a model is still there as the last build left it."""
    if not isinstance(files, list) or not files:
        return False
    try:
        for rel, size, mtime in files:
            if not valid_rel(rel):
                return False
            st = os.lstat(os.path.join(root, rel))
            if not stat.S_ISREG(st.st_mode) or st.st_size != size or st.st_mtime_ns != mtime:
                return False
    except (OSError, TypeError, ValueError):
        return False
    return True


def _unchanged(
    site: SiteData, signatures: dict[str, str], root: str, state_file: Path | None,
) -> tuple[list[int], list[str], dict[str, Any]]:
    """Models to render (indexes), the files of those that need nothing, and their recorded state."""
    last = (cache.read_json(state_file) if state_file else None) or {}
    last_models = last.get("models") if isinstance(last.get("models"), dict) else {}
    todo, produced, kept = [], [], {}
    for i, m in enumerate(site.models):
        old = last_models.get(m.name)
        if isinstance(old, dict) and old.get("sig") == signatures[m.name] and _intact(root, old.get("files")):
            kept[m.name] = old  # nothing it is made from changed, and its files are as the last build left them
            produced.extend(rel for rel, _, _ in old["files"])
        else:
            todo.append(i)
    return todo, produced, kept


def _render_models(
    site: SiteData, todo: list[int], produced: list[str], n_jobs: int,
) -> tuple[int, dict[str, list[tuple[str, int, int]]]]:
    """Render and write the files of the models ``todo`` (in ``n_jobs`` forked workers when more than one);
    returns how many files were written and each model's ``(path, size, mtime_ns)``."""
    tasks = _tasks(site, todo)
    written = 0
    stamps: dict[str, list[tuple[str, int, int]]] = {}

    def collect(result: tuple[int, list[tuple[str, int, int]], int]) -> None:
        nonlocal written
        i, files, n = result
        stamps.setdefault(site.models[i].name, []).extend(files)
        produced.extend(rel for rel, _, _ in files)
        written += n

    if n_jobs > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(n_jobs) as pool:
            for result in pool.imap_unordered(_run, tasks, chunksize=4):
                collect(result)
    else:
        for task in tasks:
            collect(_run(task))
    return written, stamps


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


# ------------------------------------------------------------------ build
def build(
    reg: Registry, out: str | os.PathLike[str] = DEFAULT_OUT, *, title: str | None = None,
    base_url: str | None = None, jobs: int | None = None,
) -> BuildReport:
    """Build the site of ``reg`` into ``out``; see docs/site.md."""
    t0 = time.perf_counter()
    _require_jinja()
    options = Options(title=title if title is not None and title.strip() else DEFAULT_TITLE,
                      base_url=normalize_base_url(base_url))
    if jobs is not None and jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    Output.check(out, reg.path)  # refuse early, before the (long) gathering
    cache_dir = cache.cache_root(reg.path)
    source = RegistrySource(reg, cache_dir)
    size = source.version_count()
    n_jobs = jobs if jobs is not None else (default_jobs() if size >= PARALLEL_FROM else 1)
    if not can_fork():
        n_jobs = 1
    site = gather(source, n_jobs)
    check_paths(site)
    output = Output.open(out, reg.path)
    phases = {"gather": time.perf_counter() - t0}
    _STATE.clear()
    renderer = Renderer(site, options)  # templates compiled here, before any fork
    _STATE.update(site=site, options=options, root=Path(output.root), previous=output.previous, renderer=renderer)
    state_file = cache.state_path(cache_dir, output.root)
    base = json.dumps([code_signature(), options.title, options.base_url, list(site.stages), site.policy])
    signatures = {m.name: model_signature(m, site, base) for m in site.models}
    try:
        todo, produced, models_state = _unchanged(site, signatures, output.root, state_file)
        written, stamps = _render_models(site, todo, produced, n_jobs)
        for name, files in stamps.items():
            models_state[name] = {"sig": signatures[name], "files": sorted(files)}
        phases["pages"] = time.perf_counter() - t0 - phases["gather"]
        site_files = _site_files(renderer, site)
        output.journal([rel for rel, _ in site_files])
        for rel, data in site_files:
            output.write(rel, data)
            produced.append(rel)
        files_set = set(produced)
        removed = output.finish(files_set)
        written += output.written
    finally:
        _STATE.clear()
    if state_file is not None:
        cache.write_json(state_file, {"models": models_state})
    problems = [p for m in site.models for p in m.problems]
    seconds = time.perf_counter() - t0
    phases["site"] = seconds - phases["gather"] - phases["pages"]
    return BuildReport(str(out), len(files_set) + 1, written, removed, len(site.models), site.versions,
                       seconds, n_jobs, problems, phases)
