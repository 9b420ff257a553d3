"""Finding models: search over the query index, lineage trees, params fingerprints, registration checks.

Everything here is derived. Queries read the SQLite index in the user's cache directory
(:mod:`modelreg.index`, never under ``.modelreg/`` where git could deliver a forged one),
which is brought up to date from the registry's stamps on every call and rebuilt by
``modelreg reindex``. It is never the only copy of anything: when it cannot be used (an
unwritable cache directory, SQLite busy for too long) the same records are computed from the
registry directly, only slower.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import query
from .errors import Conflict, ModelregError, NotFound, UsageError
from .index.records import _copy, fingerprint, manifest_part, version_fields
from .lookalike import find_lookalike
from .names import check_model, check_version, is_full_digest

if TYPE_CHECKING:
    from .registry import Registry, Resolved

DIRECTIONS = ("ancestors", "descendants")
__all__ = ["fingerprint"]  # re-exported: the params fingerprint is part of the discovery API
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")


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


def _open_index(reg: Registry) -> Any:
    from .index.db import open_index

    return open_index(reg)


def _live_records(reg: Registry, models: list[str]) -> list[dict[str, Any]]:
    """The records of ``models`` computed from the registry itself (no index), as the index holds them."""
    from .registry import Resolved

    out = []
    for model in models:
        digests = reg.refs.versions(model)
        state = reg.model_state(model)
        holders = reg.checked_holders(model, digests)
        by_digest: dict[str, list[str]] = {}
        for s in reg._stage_order(holders):
            by_digest.setdefault(holders[s], []).append(s)
        for v in state.order(list(digests)):
            d = digests[v]
            part = manifest_part(reg, model, v, d)
            r = {**part, **version_fields(state.versions.get(v), part["manifest_tags"]),
                 "model": _copy(getattr(state, "fields", {}) or {})}
            r.pop("manifest_tags", None)
            r["stages"] = by_digest.get(d, [])
            out.append(r)
    _ = Resolved
    return out


def record_dicts(reg: Registry, name_regex: re.Pattern[str] | None = None, stages: bool = True) -> list[dict[str, Any]]:
    """Every version's record as a plain dict (fresh: callers may keep it), models in name order,
    versions in registration order, with the stages each holds (``stages=False``: kept for callers
    of the old cache, stages are always filled in)."""
    return _select(reg, name_regex)


def _select(reg: Registry, name_regex: re.Pattern[str] | None, filters: Any = None) -> list[dict[str, Any]]:
    """Records of the models matching ``name_regex``; ``filters(con)`` gives the SQL narrowing them
    (see :func:`modelreg.index.filters.candidates`), a superset the caller checks again."""
    idx = _open_index(reg)
    if idx is None:
        models = [m for m in reg.refs.models() if name_regex is None or name_regex.search(m)]
        return _live_records(reg, models)
    try:
        models = None if name_regex is None else [m["name"] for m in idx.models() if name_regex.search(m["name"])]
        vids, vid_params, sql, params = filters(idx.con) if filters is not None else ("", (), "", ())
        return idx.records(models, sql, params, vids, vid_params)
    finally:
        idx.close()


def model_records(reg: Registry, name: str) -> list[dict[str, Any]]:
    """One model's records (artifacts included), in registration order. Unlike a query, a stage
    holding an unregistered manifest does not stop it (``stats`` still counts such a model)."""
    try:
        return _select(reg, re.compile(f"\\A{re.escape(name)}\\Z"))
    except ModelregError:
        digests = reg.refs.versions(name)
        state = reg.model_state(name)
        out = []
        for v in state.order(list(digests)):
            part = manifest_part(reg, name, v, digests[v])
            out.append({**part, **version_fields(state.versions.get(v), part["manifest_tags"])})
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
    from .index.filters import candidates

    out = []
    for rec in _select(reg, pattern, lambda con: candidates(con, stage, staged, tag, archived, conditions)):
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
    """The versions whose params have a given fingerprint, or with an artifact of a given sha256, from the
    query index (:mod:`modelreg.index`).

    A lookup brings the index up to date (a stat per model; a changed model is refolded) and
    checks each version it returns against the registry (its version entry must hold that
    digest). Without a usable index, every record is computed from the registry.
    """

    FORMAT = 2  # 2: artifact sha256s are indexed too; stamps of another format cover nothing

    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    def lookup(self, fp: str) -> list[tuple[str, str, str]]:
        """(digest, name, version) of every version whose params have fingerprint ``fp``."""
        idx = _open_index(self.reg)
        if idx is None:
            rows = [(r["digest"], r["name"], r["version"]) for r in record_dicts(self.reg) if r["fingerprint"] == fp]
        else:
            try:
                rows = idx.by_fingerprint(fp)
            finally:
                idx.close()
        found = {(d, n, v) for d, n, v in rows if self._registered(d, n, v)}
        return sorted(found, key=lambda t: (t[1], t[2]))

    def lookup_artifacts(self, shas: list[str]) -> dict[str, list[tuple[str, str, str, str]]]:
        """sha256 -> (digest, name, version, role) of every version with an artifact of those bytes
        (each checked against the registry as in :meth:`lookup`)."""
        wanted = sorted({s for s in shas if isinstance(s, str) and _SHA256_RE.match(s)})
        if not wanted:
            return {}
        idx = _open_index(self.reg)
        if idx is None:
            rows = [(a.get("sha256"), r["digest"], r["name"], r["version"], a.get("role"))
                    for r in record_dicts(self.reg) for a in r.get("artifacts") or [] if a.get("sha256") in wanted]
        else:
            try:
                rows = idx.by_artifact(wanted)
            finally:
                idx.close()
        out: dict[str, list[tuple[str, str, str, str]]] = {}
        for sha, d, n, v, role in rows:
            if isinstance(role, str) and self._registered(d, n, v):
                out.setdefault(sha, []).append((d, n, v, role))
        return {sha: sorted(set(found), key=lambda t: (t[1], t[2], t[3])) for sha, found in out.items()}

    def _registered(self, digest: str, name: str, version: str) -> bool:
        try:
            return is_full_digest(digest) and self.reg.refs.read_version(check_model(name), check_version(version)) == digest
        except UsageError:
            return False

    def covers(self, model: str) -> bool:
        """Kept for the write path: the index follows the registry's stamps by itself."""
        return True

    def registered(self, m: dict[str, Any], digest: str, was_current: bool) -> None:
        """Kept for the write path: the next query picks the registration up from the stamps."""


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
