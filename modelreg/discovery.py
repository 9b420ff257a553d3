"""Finding models: search records and their cache, lineage trees, params fingerprints, registration checks.

Everything here is derived. The search cache lives in the user's cache directory
(:func:`modelreg.cachedir.cache_dir`, never under ``.modelreg/`` where git could deliver a
forged one) and holds one JSON file per model with a record for each version; it is keyed
by the ``(inode, size, mtime_ns)`` of the model's event log and versions directory,
validated on every read, rebuilt transparently when stale, unreadable or malformed, and
``modelreg reindex`` rebuilds it all. It is never the only copy of anything, and a cache
that cannot be read or written only makes queries slower.

A rebuild re-reads the model's version refs and event log but parses only the manifests
it has not seen before (manifests are immutable, so a cached digest's fields never go
stale). Stage holders are read live from the refs on every query: they are a handful of
small files per model and can change under a ``git checkout``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cachedir, canonical, fileio, log, query
from .errors import Conflict, ModelregError, NotFound, UsageError
from .hashing import sha256_bytes
from .lookalike import find_lookalike
from .names import check_model, check_version, is_full_digest
from .state import VersionState

if TYPE_CHECKING:
    from .registry import Registry, Resolved

CACHE_FORMAT = 2  # 2: in the user's cache directory, records validated on read
DIRECTIONS = ("ancestors", "descendants")
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")


def fingerprint(params: dict[str, Any] | None) -> str:
    """The training-config fingerprint: ``sha256:`` of the canonical YAML of ``{"params": params}``."""
    return "sha256:" + sha256_bytes(canonical.dump({"params": params or {}}))


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class SearchRecord:
    """One version as the query language sees it (see :mod:`modelreg.query`).

    ``parents`` are ``{digest, relation, name, version}``; ``parent_names`` lists the
    parent models' names so ``--where parent_names==llama-3.1-8b`` works; ``fingerprint``
    is the params fingerprint.
    """

    name: str
    version: str
    digest: str
    stages: list[str] = field(default_factory=list)
    archived: bool = False
    tags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    license: str | None = None
    parents: list[dict[str, Any]] = field(default_factory=list)
    registered_at: str | None = None
    parent_names: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    rating: dict[str, Any] = field(default_factory=lambda: {"avg": None, "count": 0})
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider -> {id, status, endpoint, ...}
    model: dict[str, Any] = field(default_factory=dict)  # the model's own fields (model set)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _fold_signature() -> list[str]:
    # When the log fold learns new fields (metrics, tags, ...), old caches become stale.
    return sorted(f.name for f in dataclasses.fields(VersionState))


def _version_fields(st: VersionState | None, manifest_tags: list[str]) -> dict[str, Any]:
    """What the log says about a version, read defensively: the fold gains fields over time."""
    tags = set(manifest_tags)
    if st is not None:
        current = getattr(st, "tags", None)
        if isinstance(current, (set, frozenset, list, tuple)):
            tags |= set(current)
        tags |= set(getattr(st, "tags_added", ()) or ())
        tags -= set(getattr(st, "tags_removed", ()) or ())
    metrics = getattr(st, "metrics", None) if st is not None else None
    bindings = getattr(st, "bindings", None) if st is not None else None
    rating = getattr(st, "rating", None) if st is not None else None
    return {
        "archived": bool(st and st.archived),
        "registered_at": st.registered_at if st else None,
        "tags": sorted(tags),
        "metrics": _copy(metrics) if isinstance(metrics, dict) else {},
        "rating": dict(rating) if isinstance(rating, dict) else {"avg": None, "count": 0},
        "bindings": {p: {k: _copy(v) for k, v in b.items() if k not in ("time", "actor", "updated_by")}
                     for p, b in bindings.items()} if isinstance(bindings, dict) else {},
    }


# -------------------------------------------------------------------- cache
class SearchIndex:
    """The per-model search cache of one registry."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.dir = cachedir.cache_dir(reg.path) / "search"

    def _file(self, model: str) -> Path:
        return self.dir / f"{check_model(model)}.json"

    def _stamp(self, model: str) -> list[Any]:
        out: list[Any] = [CACHE_FORMAT, _fold_signature()]
        for p in (log.path_for(self.reg.logs_dir, model), self.reg.refs.versions_dir / model):
            s = fileio.lstat(p)
            out.append(None if s is None else [s.st_ino, s.st_size, s.st_mtime_ns])
        return out

    def _load(self, model: str) -> dict[str, Any] | None:
        data = cachedir.read_json(self._file(model))
        if not isinstance(data, dict) or not isinstance(data.get("records"), list) or data.get("model") != model:
            return None
        return data

    def records(self, model: str) -> list[dict[str, Any]]:
        """The cached records of one model (without stages), rebuilt first if stale, unreadable or malformed."""
        stamp = self._stamp(model)
        cached = self._load(model)
        if cached is not None and cached.get("stamp") == stamp and all(
            _valid_record(r, model) for r in cached["records"]
        ):
            return cached["records"]
        return self._build(model, stamp, cached)

    def rebuild(self, model: str) -> int:
        """Rebuild one model's cache from scratch; the number of versions."""
        return len(self._build(model, self._stamp(model), None))

    def _build(self, model: str, stamp: list[Any], old: dict[str, Any] | None) -> list[dict[str, Any]]:
        known: dict[str, dict[str, Any]] = {}
        if old is not None:
            for r in old["records"]:
                if _valid_record(r, model):
                    known[r["digest"]] = r
        digests = self.reg.refs.versions(model)
        state = self.reg.model_state(model)
        records = []
        for v in state.order(list(digests)):
            d = digests[v]
            part = known.get(d)
            if part is None or part.get("version") != v or part.get("name") != model or not all(
                k in part for k in _MANIFEST_KEYS
            ):
                part = self._manifest_part(model, v, d)
            else:
                part = {k: part[k] for k in _MANIFEST_KEYS}
            st = state.versions.get(v)
            records.append({**part, **_version_fields(st, part.get("manifest_tags", [])), "model": _copy(state.fields)})
        self._write(model, {"format": CACHE_FORMAT, "model": model, "stamp": stamp, "records": records})
        return records

    def _manifest_part(self, model: str, version: str, digest: str) -> dict[str, Any]:
        from .registry import Resolved

        m = self.reg._manifest_of(Resolved(model, version, digest))
        parents = []
        for p in m.get("parents", []):
            entry = {"digest": p["digest"], "relation": p.get("relation"), "name": None, "version": None}
            try:
                ident = self.reg._identity(p["digest"])
                entry["name"], entry["version"] = ident.name, ident.version
            except ModelregError:
                pass
            parents.append(entry)
        return {
            "name": model,
            "version": version,
            "digest": digest,
            "manifest_tags": list(m.get("tags", [])),
            "meta": m.get("meta", {}),
            "params": m.get("params", {}),
            "license": m.get("license"),
            "parents": parents,
            "parent_names": sorted({p["name"] for p in parents if p["name"]}),
            "fingerprint": fingerprint(m.get("params")) if m.get("params") else None,
            "artifacts": [{k: a.get(k) for k in ("role", "uri", "sha256", "size", "tree")}
                          for a in m.get("artifacts", [])],
        }

    def _write(self, model: str, data: dict[str, Any]) -> None:
        cachedir.write_json(self._file(model), data)  # a cache that cannot be written is only slower

    def reindex(self) -> dict[str, int]:
        """Drop this registry's whole cache directory (never anything under ``.modelreg/``) and
        rebuild each model's search records; model -> version count."""
        cachedir.clear(self.dir.parent)
        return {m: self.rebuild(m) for m in self.reg.refs.models()}


_RECORD_KEYS = frozenset({
    "name", "version", "digest", "manifest_tags", "meta", "params", "license", "parents", "parent_names",
    "fingerprint", "archived", "registered_at", "tags", "metrics", "artifacts", "rating", "bindings", "model",
})
_MANIFEST_KEYS = (
    "name", "version", "digest", "manifest_tags", "meta", "params", "license", "parents", "parent_names", "fingerprint",
    "artifacts",
)


def _strs(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _valid_record(r: Any, model: str) -> bool:
    """True if a cached record has every field with the type a rebuild gives it (else: rebuild)."""
    if not isinstance(r, dict) or not _RECORD_KEYS <= r.keys() or r["name"] != model:
        return False
    if not isinstance(r["version"], str) or not isinstance(r["digest"], str) or not is_full_digest(r["digest"]):
        return False
    try:
        check_version(r["version"])
    except UsageError:
        return False
    return (
        isinstance(r["meta"], dict) and isinstance(r["params"], dict) and isinstance(r["metrics"], dict)
        and _strs(r["tags"]) and _strs(r["manifest_tags"]) and _strs(r["parent_names"])
        and isinstance(r["parents"], list)
        and all(isinstance(p, dict) and isinstance(p.get("digest"), str) for p in r["parents"])
        and _opt_str(r["license"]) and _opt_str(r["registered_at"]) and _opt_str(r["fingerprint"])
        and isinstance(r["archived"], bool)
        and isinstance(r["artifacts"], list) and all(
            isinstance(a, dict) and isinstance(a.get("role"), str) and isinstance(a.get("uri"), str)
            and _opt_str(a.get("sha256")) and (a.get("size") is None or type(a["size"]) is int)
            for a in r["artifacts"])
        and isinstance(r["rating"], dict) and isinstance(r["model"], dict)
        and isinstance(r["bindings"], dict) and all(isinstance(b, dict) for b in r["bindings"].values())
    )


def record_dicts(reg: Registry, name_regex: re.Pattern[str] | None = None, stages: bool = True) -> list[dict[str, Any]]:
    """Every version's record as a plain dict (fresh from the cache: callers may keep it), models in
    name order, versions in registration order; stages read live from the refs."""
    index = SearchIndex(reg)
    out = []
    for model in reg.refs.models():
        if name_regex is not None and not name_regex.search(model):
            continue
        records = index.records(model)
        by_digest: dict[str, list[str]] = {}
        if stages:
            holders = reg.checked_holders(model, {r["version"]: r["digest"] for r in records})
            for s in reg._stage_order(holders):
                by_digest.setdefault(holders[s], []).append(s)
        for r in records:
            r.pop("manifest_tags", None)
            r["stages"] = by_digest.get(r["digest"], [])
            out.append(r)
    return out


def iter_records(reg: Registry, name_regex: re.Pattern[str] | None = None) -> list[SearchRecord]:
    """Every version's :class:`SearchRecord` (see :func:`record_dicts`)."""
    return [SearchRecord.from_dict(d) for d in record_dicts(reg, name_regex)]


# ------------------------------------------------------------------- search
def search(
    reg: Registry,
    *,
    name_regex: str | None = None,
    stage: str | None = None,
    staged: bool = False,
    tag: str | None = None,
    archived: bool | None = None,
    where: list[str | query.Condition] = (),  # type: ignore[assignment]
    sort: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[SearchRecord]:
    """Versions matching every given filter (AND), sorted, then ``offset`` skipped and at most ``limit`` kept.

    The order is stable, so pages of ``offset``/``limit`` never skip or repeat a version of an
    unchanged registry: models by name and versions in registration order, and with ``sort``
    that order breaks ties (the sort is stable)."""
    pattern = None
    if name_regex is not None:
        try:
            pattern = re.compile(name_regex)
        except re.error as exc:
            raise UsageError(f"bad --name regex {name_regex!r}: {exc}") from None
    if stage is not None:
        reg._check_stage(stage)
    conditions = [query.parse_where(w) if isinstance(w, str) else w for w in where]
    key = query.sort_key(sort) if sort else None
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 or more")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise UsageError("--offset must be 0 or more")
    out = []
    for rec in record_dicts(reg, pattern):
        if stage is not None and stage not in rec["stages"]:
            continue
        if staged and not rec["stages"]:
            continue
        if tag is not None and tag not in rec["tags"]:
            continue
        if archived is not None and rec["archived"] != archived:
            continue
        if conditions and not all(c.matches(rec) for c in conditions):
            continue
        out.append(rec)
    if key is not None:
        out.sort(key=key)
    out = out[offset:] if limit is None else out[offset:offset + limit]
    return [SearchRecord.from_dict(d) for d in out]


# ------------------------------------------------------------------ lineage
@dataclass
class LineageNode:
    """One version in a lineage tree; ``relation`` is how it relates to the node above it."""

    name: str | None
    version: str | None
    digest: str
    relation: str | None = None
    license: str | None = None
    children: list[LineageNode] = field(default_factory=list)
    truncated: bool = False  # depth limit reached while it still had relatives

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "version": self.version, "digest": self.digest,
            "relation": self.relation, "license": self.license,
            "children": [c.to_dict() for c in self.children],
        }
        if self.truncated:
            d["truncated"] = True
        return d

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}" if self.name else f"(missing) {self.digest[:19]}"


def lineage(reg: Registry, ref: str, direction: str = "ancestors", depth: int | None = None) -> LineageNode:
    """The ancestors (parents, their parents, ...) or descendants of ``ref`` as a tree."""
    if direction not in DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if depth is not None and depth < 0:
        raise UsageError("--depth must be 0 or more")
    root = reg.resolve(ref)
    by_digest = {r.digest: r for r in iter_records(reg)}
    if direction == "ancestors":
        def relatives(d: str) -> list[tuple[str, str | None]]:
            rec = by_digest.get(d)
            if rec is not None:
                found = [(p["digest"], p.get("relation")) for p in rec.parents]
            else:
                try:
                    found = [(p["digest"], p.get("relation")) for p in reg.manifest(d).get("parents", [])]
                except ModelregError:
                    found = []
            return sorted(found, key=lambda x: _sort_label(by_digest.get(x[0])))
    else:
        children: dict[str, list[tuple[str, str | None]]] = {}
        for rec in by_digest.values():
            for p in rec.parents:
                children.setdefault(p["digest"], []).append((rec.digest, p.get("relation")))

        def relatives(d: str) -> list[tuple[str, str | None]]:
            return sorted(children.get(d, []), key=lambda x: _sort_label(by_digest.get(x[0])))

    def node(d: str, relation: str | None, level: int, path: frozenset[str]) -> LineageNode:
        rec = by_digest.get(d)
        if rec is not None:
            n = LineageNode(rec.name, rec.version, d, relation, rec.license)
        else:
            try:
                ident = reg._identity(d)
                n = LineageNode(ident.name, ident.version, d, relation, reg.manifest(d).get("license"))
            except ModelregError:
                n = LineageNode(None, None, d, relation)
        rels = [r for r in relatives(d) if r[0] not in path]  # a cycle (only a damaged registry) stops here
        if depth is not None and level >= depth:
            n.truncated = bool(rels)
            return n
        n.children = [node(c, rel, level + 1, path | {c}) for c, rel in rels]
        return n

    return node(root.digest, None, 0, frozenset({root.digest}))


def _sort_label(rec: SearchRecord | None) -> tuple[str, tuple, str]:
    if rec is None:
        return ("", (), "")
    return (rec.name, query.version_key(rec.version) or (), rec.version)


def ancestors(reg: Registry, digest: str) -> list[tuple[str, str | None, int]]:
    """Every ancestor of ``digest`` once, breadth first: (digest, relation to its child, generation)."""
    seen = {digest}
    out: list[tuple[str, str | None, int]] = []
    frontier = [digest]
    generation = 0
    while frontier:
        generation += 1
        nxt = []
        for d in frontier:
            try:
                parents = reg.manifest(d).get("parents", [])
            except ModelregError:
                continue
            for p in parents:
                if p["digest"] not in seen:
                    seen.add(p["digest"])
                    out.append((p["digest"], p.get("relation"), generation))
                    nxt.append(p["digest"])
        frontier = nxt
    return out


# ----------------------------------------------------------------- licenses
@dataclass(frozen=True)
class LicenseFinding:
    """One verdict: ``kind`` is ``derivative`` (against an ancestor) or ``project``."""

    kind: str
    subject: str
    license: str | None
    outcome: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LicenseReport:
    """The license of a version checked against all its ancestors and, optionally, a project license."""

    version: Resolved
    license: str | None
    project_license: str | None
    findings: list[LicenseFinding]
    project_license_source: dict[str, str] | None = None  # {path, how} when detected from a file

    @property
    def ok(self) -> bool:
        return not any(f.outcome == "incompatible" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "license": self.license,
            "project_license": self.project_license,
            "project_license_source": self.project_license_source,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
        }


def license_check(reg: Registry, ref: str, project_license: str | None = None) -> LicenseReport:
    """Check ``ref``'s license against every ancestor's (it is a derivative of each) and a project license.

    With a project license, the version and each ancestor are checked against it: using a
    derivative in a project uses the work it was derived from.
    """
    from . import licenses

    source = None
    if project_license is not None:
        if not licenses.is_known(project_license) and _looks_like_path(project_license):
            from .licensefile import detect

            found = detect(project_license)
            project_license, source = found.id, {"path": found.source, "how": found.how}
        project_license = licenses.normalize(project_license)
    r = reg.resolve(ref)
    own = reg.manifest(r.digest).get("license")
    findings: list[LicenseFinding] = []
    subjects: list[tuple[str, str | None]] = []
    for d, relation, generation in ancestors(reg, r.digest):
        try:
            ident = reg._identity(d)
            label = f"{ident.name}@{ident.version}"
            lic = reg.manifest(d).get("license")
        except ModelregError:
            label, lic = f"(missing) {d[:19]}", None
        how = relation or "derived"
        label_full = f"{label} ({how}, generation {generation})"
        subjects.append((label, lic))
        f = licenses.check_derivative(own, [(label_full, lic)])[0]
        findings.append(LicenseFinding("derivative", f.subject, lic, f.outcome, f.reason))
    if project_license is not None:
        for label, lic in [(f"{r.name}@{r.version}", own), *subjects]:
            f = licenses.check_project(lic, project_license)
            findings.append(LicenseFinding("project", label, lic, f.outcome, f.reason))
    return LicenseReport(r, own, project_license, findings, source)


def _looks_like_path(value: str) -> bool:
    """A ``--project-license`` that names a file or directory rather than an identifier."""
    return os.path.exists(value) or "/" in value or os.sep in value or value.lower().endswith(".toml")


# ------------------------------------------------------- registration checks


class FingerprintIndex:
    """``fingerprints/ab/cdef...`` in the cache directory: the versions whose params have that fingerprint,
    and ``fingerprints/artifacts/ab/cdef...``: the versions with an artifact of that sha256.

    Derivable like the search cache: ``stamps.json`` remembers which state of each model's
    log and versions it covers; a model whose stamp changed (a git pull, another clone's
    registration) is re-read from its search records before a lookup. So a lookup costs one
    stat per model and one small file read, not a scan of every record.
    """

    FORMAT = 2  # 2: artifact sha256s are indexed too; stamps of another format cover nothing

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.index = SearchIndex(reg)
        self.dir = self.index.dir.parent / "fingerprints"

    def _file(self, fp: str) -> Path:
        hexd = fp.removeprefix("sha256:")  # no ':' in file names (Windows), sharded like objects/
        return self.dir / hexd[:2] / hexd[2:]

    def _artifact_file(self, sha: str) -> Path:
        return self.dir / "artifacts" / sha[:2] / sha[2:]

    def _stamps(self) -> dict[str, Any]:
        data = cachedir.read_json(self.dir / "stamps.json")
        if not isinstance(data, dict) or data.get("_format") != self.FORMAT:
            return {}
        return data

    def _save_stamps(self, stamps: dict[str, Any]) -> None:
        stamps["_format"] = self.FORMAT  # not a model name: those start with a letter or digit
        cachedir.write_json(self.dir / "stamps.json", stamps)  # renamed into place, not fsynced: a cache

    def _add(self, fp: str, digest: str, name: str, version: str, path: Path | None = None,
             role: str | None = None) -> None:
        path = self._file(fp) if path is None else path
        line = f"{digest} {name} {version}" + (f" {role}" if role else "") + "\n"
        current = cachedir.read_bytes(path)
        if current is not None and (b"\n" + current).find(b"\n" + line.encode()) >= 0:
            return
        fence = b"\n" if current and not current.endswith(b"\n") else b""  # never glue onto a torn line
        cachedir.append_line(path, fence + line.encode())

    def _add_artifacts(self, artifacts: list[dict[str, Any]], digest: str, name: str, version: str) -> None:
        for a in artifacts:
            sha = a.get("sha256")
            if isinstance(sha, str) and _SHA256_RE.match(sha):  # a path: only 64 lower-case hex digits
                self._add(sha, digest, name, version, self._artifact_file(sha), a["role"])

    def refresh(self) -> None:
        """Bring the index up to date with every model whose log or versions changed."""
        stamps = self._stamps()
        changed = False
        for model in self.reg.refs.models():
            stamp = self.index._stamp(model)
            if stamps.get(model) == stamp:
                continue
            for d in self.index.records(model):
                if d.get("fingerprint"):
                    self._add(d["fingerprint"], d["digest"], d["name"], d["version"])
                self._add_artifacts(d.get("artifacts") or [], d["digest"], d["name"], d["version"])
            stamps[model] = self.index._stamp(model)
            changed = True
        if changed:
            self._save_stamps(stamps)

    def lookup(self, fp: str) -> list[tuple[str, str, str]]:
        """(digest, name, version) of every version whose params have fingerprint ``fp``.

        Each line read from the index is checked against the registry (a well-formed line
        whose version entry holds that digest); anything else is ignored.
        """
        self.refresh()
        found = self._read(self._file(fp), 3)
        if found is None:  # garbage in the index: it cannot be trusted to be complete, rebuild it
            cachedir.clear(self.dir)
            self.refresh()
            found = self._read(self._file(fp), 3) or set()
        return sorted(found, key=lambda t: (t[1], t[2]))  # type: ignore[return-value]

    def lookup_artifacts(self, shas: list[str]) -> dict[str, list[tuple[str, str, str, str]]]:
        """sha256 -> (digest, name, version, role) of every version with an artifact of those bytes
        (lines checked against the registry as in :meth:`lookup`)."""
        self.refresh()
        out: dict[str, list[tuple[str, str, str, str]]] = {}
        for sha in shas:
            if not _SHA256_RE.match(sha):
                continue
            found = self._read(self._artifact_file(sha), 4)
            if found is None:
                cachedir.clear(self.dir)
                self.refresh()
                found = self._read(self._artifact_file(sha), 4) or set()
            if found:
                out[sha] = sorted(found, key=lambda t: (t[1], t[2], t[3]))  # type: ignore[misc]
        return out

    def _read(self, path: Path, fields: int) -> set[tuple[str, ...]] | None:
        """The registered versions listed in an index file (lines of ``fields`` words: digest, name,
        version[, role]); None if the file holds a malformed line."""
        data = cachedir.read_bytes(path)
        found: set[tuple[str, ...]] = set()
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            parts = line.split(" ")
            if len(parts) != fields or not is_full_digest(parts[0]):
                if line:
                    return None
                continue
            if self._registered(*parts[:3]):  # a stale line (a version since removed by git) is skipped
                found.add(tuple(parts))
        return found

    def _registered(self, digest: str, name: str, version: str) -> bool:
        try:
            return is_full_digest(digest) and self.reg.refs.read_version(check_model(name), check_version(version)) == digest
        except UsageError:
            return False

    def covers(self, model: str) -> bool:
        """True if the index is current for ``model`` (call inside the model's lock, before writing)."""
        return self._stamps().get(model) == self.index._stamp(model)

    def registered(self, m: dict[str, Any], digest: str, was_current: bool) -> None:
        """Record a registration just made (inside the model's lock); best effort, it is a cache."""
        if m.get("params"):
            self._add(fingerprint(m["params"]), digest, m["name"], m["version"])
        self._add_artifacts(m.get("artifacts") or [], digest, m["name"], m["version"])
        if was_current:
            stamps = self._stamps()
            stamps[m["name"]] = self.index._stamp(m["name"])
            self._save_stamps(stamps)


@dataclass
class RegisterChecks:
    """What the checks before a registration found (``duplicates``: same params fingerprint)."""

    duplicates: list[Resolved] = field(default_factory=list)


def check_registration(
    reg: Registry,
    m: dict[str, Any],
    *,
    strict: bool = False,
    new_model: bool = False,
    allow_unknown_license: bool = False,
) -> RegisterChecks:
    """Checks on a validated manifest before anything is written; may normalise ``m["license"]``.

    - an unknown license identifier is a UsageError unless ``allow_unknown_license``;
    - every parent must exist (NotFound);
    - a new model whose name looks like an existing one is a Conflict unless ``new_model``;
    - other versions with the same params fingerprint are returned, or a Conflict if ``strict``
      and the version is new.
    """
    from . import licenses
    from .registry import Resolved

    if m.get("license") is not None:
        if licenses.is_known(m["license"]):
            m["license"] = licenses.normalize(m["license"])
        elif not allow_unknown_license:
            try:
                licenses.normalize(m["license"])
            except UsageError as exc:
                raise UsageError(f"{exc.message}; use --allow-unknown-license to register it anyway") from None
    for p in m.get("parents", []):
        if not reg.objects.exists(p["digest"]):
            raise NotFound(f"parent {p['digest']} does not exist in this registry")
    name, version = m["name"], m["version"]
    if not reg.refs.version_names(name) and not new_model:
        existing = find_lookalike(name, reg.refs.models())
        if existing is not None:
            raise Conflict(
                f"model name {name!r} looks like existing {existing!r}; "
                "use --new-model if it really is a new model"
            )
    out = RegisterChecks()
    if m.get("params"):
        fp = fingerprint(m["params"])
        out.duplicates = [
            Resolved(n, v, d) for d, n, v in FingerprintIndex(reg).lookup(fp) if not (n == name and v == version)
        ]
        # --strict refuses a new version only: re-registering an existing one is identical (exit 0)
        # or a conflict with its own content (exit 4), decided under the lock by register_manifest.
        if out.duplicates and strict and (version is None or reg.refs.read_version(name, version) is None):
            shown = ", ".join(f"{d.name}@{d.version}" for d in out.duplicates[:5])
            raise Conflict(f"{name}@{version or '(next)'} has the same params fingerprint as {shown} (--strict); "
                           "without --strict it is registered with a warning")
    return out


@dataclass(frozen=True)
class SameArtifact:
    """Another version of the same model whose artifact ``other_role`` has the bytes of this one's ``role``."""

    version: Resolved
    role: str
    other_role: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "role": self.role, "other_role": self.other_role, "sha256": self.sha256}

    def message(self) -> str:
        same = self.role if self.role == self.other_role else f"{self.role} (its {self.other_role})"
        return (f"artifact {same} has the same bytes as {self.version.name}@{self.version.version} "
                f"(sha256 {self.sha256[:12]})")


def same_artifacts(reg: Registry, m: dict[str, Any], *, strict: bool = False) -> list[SameArtifact]:
    """Other versions of ``m``'s model holding an artifact with the same sha256 as one of ``m``'s
    (read from the :class:`FingerprintIndex`: a stat per model and a small file per sha256). With
    ``strict``, a Conflict for a new version (re-registering an existing version identically is
    not refused)."""
    from .registry import Resolved

    wanted = {a["sha256"]: a["role"] for a in m.get("artifacts", []) if a.get("sha256")}
    name, version = m["name"], m.get("version")
    if not wanted or not reg.refs.version_names(name):
        return []
    out = []
    for sha, found in FingerprintIndex(reg).lookup_artifacts(sorted(wanted)).items():
        for digest, n, v, role in found:
            if n == name and v != version:
                out.append(SameArtifact(Resolved(name, v, digest), wanted[sha], role, sha))
    out.sort(key=lambda s: (query.version_key(s.version.version) is None, query.version_key(s.version.version) or (),
                            s.version.version, s.other_role))
    if out and strict and (version is None or reg.refs.read_version(name, version) is None):
        shown = "; ".join(s.message() for s in out[:3])
        raise Conflict(f"{name}@{version or '(next)'}: {shown} (--strict); without --strict it is registered "
                       "with a warning", info={"same_artifacts": [s.to_dict() for s in out]})
    return out
