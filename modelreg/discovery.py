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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import cachedir, fileio, log, query
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
    """``fingerprints/`` in the cache directory: for each model, the versions whose params have a
    fingerprint, and those with an artifact of given bytes (sha256).

    ``by-model/<model>/fp/ab/cdef...`` lists ``digest model version`` lines for fingerprint
    ``sha256:abcdef...``, and ``by-model/<model>/sha256/ab/cdef...`` lists ``digest model version
    role`` lines for artifacts whose sha256 is ``abcdef...``, appended as versions are registered.
    ``stamps.json`` remembers, per model, the ``lstat`` of its log and how far the index has read it (a
    :class:`modelreg.derived.logtail.Mark`). A log that only grew since is read from that mark:
    the versions its new ``register`` events name are added (one manifest read each). A log
    changed otherwise (a git merge inserts lines, a checkout replaces it) makes that model's
    part rebuilt from its whole log. So keeping the index current costs what was appended
    since, never a scan of a model's history, and a lookup reads the newest lines of one
    small file per model. Derivable like the search cache: garbage makes it rebuilt.
    """

    FORMAT = 4  # 4: artifact sha256s too; stamps of another format cover nothing
    SHOWN = 5  # duplicates a lookup returns per model: the most recently registered

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.dir = cachedir.cache_dir(reg.path) / "fingerprints"

    def _file(self, model: str, fp: str, kind: str = "fp") -> Path:
        hexd = fp.removeprefix("sha256:")  # no ':' in file names (Windows), sharded like objects/
        return self.dir / "by-model" / check_model(model) / kind / hexd[:2] / hexd[2:]

    def _stamps(self) -> dict[str, Any]:
        data = cachedir.read_json(self.dir / "stamps.json")
        if isinstance(data, dict) and data.get("format") == self.FORMAT and isinstance(data.get("models"), dict):
            return data["models"]
        cachedir.clear(self.dir)  # absent, garbage or another format: start again
        return {}

    def _save_stamps(self, stamps: dict[str, Any]) -> None:
        # renamed into place, not fsynced: a cache
        cachedir.write_json(self.dir / "stamps.json", {"format": self.FORMAT, "models": stamps})

    def _append(self, path: Path, line: str) -> None:
        self._append_lines(path, [line])

    def _append_lines(self, path: Path, lines: list[str]) -> None:
        last = cachedir.read_bytes_at_end(path, 1)
        fence = b"\n" if last and not last.endswith(b"\n") else b""  # never glue onto a torn line
        cachedir.append_line(path, fence + "".join(line + "\n" for line in lines).encode())

    def _lines(self, m: dict[str, Any], digest: str) -> list[tuple[Path, str]]:
        """The index lines of one version's manifest ``m``: its params' fingerprint, its artifacts' sha256s."""
        name, version = m["name"], m["version"]
        out = []
        if m.get("params"):
            out.append((self._file(name, fingerprint(m["params"])), f"{digest} {name} {version}"))
        for a in m.get("artifacts") or []:
            sha, role = a.get("sha256"), a.get("role")
            if isinstance(sha, str) and _SHA256_RE.match(sha) and isinstance(role, str) and role \
                    and not any(c in role for c in "\r\n"):
                out.append((self._file(name, sha, "sha256"), f"{digest} {name} {version} {role}"))
        return out

    def _add(self, m: dict[str, Any], digest: str) -> None:
        """Index one version's manifest ``m``."""
        for path, line in self._lines(m, digest):
            self._append(path, line)

    def _log_stat(self, model: str) -> list[int] | None:
        s = fileio.lstat(log.path_for(self.reg.logs_dir, model))
        return None if s is None else [s.st_ino, s.st_size, s.st_mtime_ns]

    def _current(self, model: str, stamp: Any) -> bool:
        return isinstance(stamp, dict) and stamp.get("stat") == self._log_stat(model)

    def _catch_up(self, model: str, stamp: Any) -> dict[str, Any]:
        """Add the versions registered in ``model``'s log since ``stamp`` (all of them, after removing
        the model's part, when the log changed other than by appending); the new stamp."""
        from .derived import logtail

        mark = logtail.Mark.from_json(stamp.get("mark")) if isinstance(stamp, dict) else None
        stat_ = self._log_stat(model)
        fd = logtail.open_log(self.reg.logs_dir, model)
        try:
            if fd is None or mark is None or not logtail.holds(fd, mark):
                cachedir.clear(self.dir / "by-model" / model)
                mark = logtail.Mark()
            end = mark.offset
            registered = []
            if fd is not None:
                for e, end in logtail.events(fd, mark.offset):
                    if e is not None and e.action == "register" and e.version and e.to and e.model == model:
                        registered.append((e.version, e.to))
            self._index_versions(model, registered)
            return {"stat": stat_, "mark": (logtail.mark_at(fd, end) if fd is not None else mark).to_json()}
        finally:
            if fd is not None:
                os.close(fd)

    def _index_versions(self, model: str, registered: list[tuple[str, str]]) -> None:
        """Index the versions ``[(version, digest)]`` of ``model``: many at once (a cold cache in a fresh
        CI job) ask the disk for all their files first, and each index file is appended to once."""
        from .registry import Resolved

        if len(registered) > 8:
            paths = []
            for version, digest in registered:
                try:
                    paths += [str(self.reg.refs.version_path(model, version)), str(self.reg.objects.path(digest))]
                except ModelregError:
                    continue
            fileio.prefetch(paths)
        out: dict[Path, list[str]] = {}
        for version, digest in registered:
            try:
                if self.reg.refs.read_version(model, version) != digest:
                    continue
                m = self.reg._manifest_of(Resolved(model, version, digest))
            except ModelregError:
                continue  # an unreadable version is for fsck to report; the index only skips it
            for path, line in self._lines(m, digest):
                out.setdefault(path, []).append(line)
        for path, lines in out.items():
            self._append_lines(path, lines)

    def refresh(self, only: str | None = None) -> list[str]:
        """Bring the index up to date with every model whose log changed (or just ``only``); the models."""
        stamps = self._stamps()
        models = self.reg.refs.models() if only is None else ([only] if self.reg.refs.has_versions(only) else [])
        changed = False
        for model in models:
            if not self._current(model, stamps.get(model)):
                stamps[model] = self._catch_up(model, stamps.get(model))
                changed = True
        if changed:
            self._save_stamps(stamps)
        return models

    def lookup(self, fp: str) -> list[tuple[str, str, str]]:
        """(digest, name, version) of versions whose params have fingerprint ``fp``: of each model
        (in name order) the most recently registered, newest first, at most SHOWN + 2.

        Each line read from the index is checked against the registry (a well-formed line
        whose version entry holds that digest); anything else is ignored.
        """
        models = self.refresh()
        found = self._read(models, fp)
        if found is None:  # garbage in the index: it cannot be trusted to be complete, rebuild it
            cachedir.clear(self.dir)
            models = self.refresh()
            found = self._read(models, fp) or []
        return found

    def lookup_artifacts(self, shas: list[str], model: str | None = None) -> dict[str, list[tuple[str, str, str, str]]]:
        """sha256 -> (digest, name, version, role) of versions with an artifact of those bytes (of ``model``
        only, if given): of each model the most recently registered, at most SHOWN + 2 per sha256 and model.
        Each line is checked against the registry as in :meth:`lookup`."""
        wanted = sorted({s for s in shas if isinstance(s, str) and _SHA256_RE.match(s)})
        if not wanted:
            return {}
        for attempt in (1, 2):
            models = self.refresh(model)
            out: dict[str, list[tuple[str, str, str, str]]] = {}
            bad = False
            for sha in wanted:
                for m in models:
                    found = self._read_model(m, sha, "sha256")
                    if found is None:
                        bad = True
                        break
                    out.setdefault(sha, []).extend(found)  # type: ignore[arg-type]
            if not bad:
                return {sha: found for sha, found in out.items() if found}
            cachedir.clear(self.dir)  # garbage in the index: rebuild it
        return {}

    def _read(self, models: list[str], fp: str) -> list[tuple[str, str, str]] | None:
        out: list[tuple[str, str, str]] = []
        for model in models:
            found = self._read_model(model, fp)
            if found is None:
                return None
            out += found
        return out

    def _read_model(self, model: str, fp: str, kind: str = "fp") -> list[tuple[str, ...]] | None:
        """The registered versions of ``model`` listed for ``fp`` (a fingerprint, or with ``kind`` "sha256"
        an artifact's sha256: then with the artifact's role), newest line first, from the file's last
        64 KiB (at most SHOWN + 2); None if a line read is malformed."""
        data = cachedir.read_bytes_at_end(self._file(model, fp, kind), 64 << 10)
        if not data:
            return []
        lines = data.decode("utf-8", "replace").split("\n")
        if len(data) == 64 << 10:
            lines = lines[1:]  # the first line read may be cut: the window starts inside it
        found: dict[tuple[str, ...], None] = {}
        for line in reversed(lines):
            if not line:
                continue
            parts = line.split(" ", 3)
            if len(parts) != (3 if kind == "fp" else 4) or not is_full_digest(parts[0]) or parts[1] != model:
                return None
            key = tuple(parts)
            if key not in found and self._registered(*parts[:3]):  # a stale line (a version removed by git) is skipped
                found[key] = None
                if len(found) >= self.SHOWN + 2:  # one more than shown even when one is the version itself
                    break
        return list(found)

    def _registered(self, digest: str, name: str, version: str) -> bool:
        try:
            return is_full_digest(digest) and self.reg.refs.read_version(check_model(name), check_version(version)) == digest
        except UsageError:
            return False

    def covers(self, model: str) -> bool:
        """True if the index is current for ``model`` (call inside the model's lock, before writing)."""
        return self._current(model, self._stamps().get(model))

    def registered(self, m: dict[str, Any], digest: str, was_current: bool) -> None:
        """Record a registration just made (inside the model's lock); best effort, it is a cache."""
        self._add(m, digest)
        if was_current:
            self.mark_current(m["name"])

    def mark_current(self, model: str) -> None:
        """Record that the index holds every version of ``model``'s log as it is now (call inside the
        model's lock, after adding the versions just registered, as :meth:`registered` does)."""
        from .derived import logtail

        fd = logtail.open_log(self.reg.logs_dir, model)
        if fd is None:
            return
        try:
            end = os.fstat(fd).st_size  # the log ends with the last registration's line
            if end and os.pread(fd, 1, end - 1) != b"\n":
                return  # a line still being written: the next lookup catches up instead
            stamps = self._stamps()
            stamps[model] = {"stat": self._log_stat(model), "mark": logtail.mark_at(fd, end).to_json()}
        finally:
            os.close(fd)
        self._save_stamps(stamps)


@dataclass
class RegisterChecks:
    """What the checks before a registration found (``duplicates``: same params fingerprint)."""

    duplicates: list[Resolved] = field(default_factory=list)
    more: bool = False  # more versions than ``duplicates`` lists have the same params


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
    if not new_model and not reg.refs.has_versions(name):
        existing = find_lookalike(name, reg.refs.models())
        if existing is not None:
            raise Conflict(
                f"model name {name!r} looks like existing {existing!r}; "
                "use --new-model if it really is a new model"
            )
    out = RegisterChecks()
    if m.get("params"):
        fp = fingerprint(m["params"])
        index = FingerprintIndex(reg)
        found = [Resolved(n, v, d) for d, n, v in index.lookup(fp) if not (n == name and v == version)]
        shown: list[Resolved] = []
        for r in found:  # of each model the SHOWN most recently registered
            if sum(1 for x in shown if x.name == r.name) < index.SHOWN:
                shown.append(r)
        out.duplicates = sorted(shown, key=lambda r: (r.name, r.version))
        out.more = len(shown) < len(found)
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
    if not wanted or not reg.refs.has_versions(name):
        return []
    out = []
    for sha, found in FingerprintIndex(reg).lookup_artifacts(sorted(wanted), name).items():
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
