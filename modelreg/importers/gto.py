"""Import a GTO registry (git tags and artifacts.yaml, read with git, no gto needed) with its history."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import ModelregError, NotFound, UsageError
from ..history import Origin, utc
from ..log import Event
from .common import (
    IGNORE, ImportResult, ModelPlan, Step, apply_group, check_owner, imported_events, parse_stage_map,
    to_name, unique_names,
)

if TYPE_CHECKING:
    from ..artifacts import ProgressFactory
    from ..history import HistoryWriter
    from ..registry import Registry

SOURCE = "gto"
DEFAULT_INDEX = "artifacts.yaml"
MAX_INDEX_BYTES = 1 << 20

# GTO's tag grammar (gto/constants.py, 1.x): NAME is letters, digits, '-', '_', '/', optionally
# prefixed by "dirname:" (written "dirname=" in a tag).
_NAME = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-/_]*[a-zA-Z0-9])?"
_DIRNAME = r"[a-zA-Z0-9\-_./]+"
_SEMVER = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-(?:(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)
TAG_RE = re.compile(
    rf"^(?P<artifact>(?:{_DIRNAME}=)?{_NAME})"
    rf"(?:(?:#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?)|@(?P<deprecated>deprecated))"
    r"(?:#(?P<counter>[0-9]+))?$"
)
# GTO orders events of the same second by this priority (gto/base.py), then we use the counter.
PRIORITY = {"deprecate": 2, "register": 3, "deregister": 4, "assign": 5, "unassign": 6}
_GTO_EVENT = {"deprecate": "deprecation", "register": "registration", "deregister": "deregistration",
              "assign": "assignment", "unassign": "unassignment"}


@dataclass(frozen=True)
class GtoTag:
    """One GTO event: an annotated git tag, parsed."""

    name: str
    artifact: str  # GTO's name, "dirname:name" form
    action: str  # register, deregister, assign, unassign, deprecate
    version: str | None
    stage: str | None
    counter: int | None
    commit: str
    time: int  # POSIX seconds (git keeps tag times to the second)
    tagger: str
    tagger_email: str
    message: str

    @property
    def key(self) -> tuple[int, int, int, str]:
        return (self.time, PRIORITY[self.action], self.counter or 0, self.name)

    @property
    def actor(self) -> str:
        return self.tagger_email or self.tagger or "unknown"


def parse_tag_name(name: str) -> dict[str, Any] | None:
    """GTO's reading of a tag name: artifact, action, version, stage, counter; None if not a GTO tag."""
    m = TAG_RE.match(name)
    if not m:
        return None
    if m["deprecated"]:
        action = "deprecate"
    elif m["version"]:
        action = "deregister" if m["cancel"] else "register"
    else:
        action = "unassign" if m["cancel"] else "assign"
    return {"artifact": m["artifact"].replace("=", ":"), "action": action, "version": m["version"],
            "stage": m["stage"], "counter": int(m["counter"]) if m["counter"] else None}


# --------------------------------------------------------------------------- git
class GitRepo:
    """Read-only access to a git repository through the git CLI (tags, files at a commit)."""

    _FIELDS = ("%(refname)", "%(objecttype)", "%(*objecttype)", "%(*objectname)", "%(taggerdate:unix)",
               "%(taggername)", "%(taggeremail)", "%(contents)")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        if not p.exists():
            raise NotFound(f"--repo {path}: no such directory")
        if not p.is_dir():
            raise UsageError(f"--repo {path}: not a directory")
        what = f"--repo {path}"
        if self._run(["rev-parse", "--is-bare-repository"], cwd=p, what=what).decode().strip() == "true":
            top = self._run(["rev-parse", "--absolute-git-dir"], cwd=p, what=what).decode().strip()
        else:
            top = self._run(["rev-parse", "--show-toplevel"], cwd=p, what=what).decode().strip()
        self.root = Path(top)
        self._batch: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _env() -> dict[str, str]:
        env = dict(os.environ)
        for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
            env.pop(var, None)
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1")
        return env

    def _run(self, args: list[str], cwd: Path | None = None, what: str = "git") -> bytes:
        try:
            proc = subprocess.run(["git", *args], cwd=cwd or self.root, capture_output=True, env=self._env(),
                                  check=False)
        except FileNotFoundError:
            raise ModelregError("git is not installed or not on PATH") from None
        if proc.returncode != 0:
            first = next((ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()), "")
            if "not a git repository" in first:
                raise UsageError(f"{what} is not a git repository")
            raise ModelregError(f"git {args[0]}: {first.strip() or f'exit status {proc.returncode}'}")
        return proc.stdout

    def tags(self, warnings: list[str]) -> list[GtoTag]:
        """Every annotated tag of the repository that GTO reads, in GTO's event order."""
        out = self._run(["for-each-ref", "--format=" + "%00".join(self._FIELDS) + "%00", "refs/tags"])
        tags = []
        for record in out.split(b"\0\n"):
            if not record.strip(b"\n"):
                continue
            fields = record.decode("utf-8", "replace").split("\0")
            if len(fields) != len(self._FIELDS):
                continue
            ref, otype, target_type, target, when, tagger, email, contents = fields
            name = ref.removeprefix("refs/tags/")
            parsed = parse_tag_name(name)
            if parsed is None:
                continue
            if otype != "tag":
                warnings.append(f"tag {name} is a lightweight tag: GTO ignores those, and so does the import")
                continue
            if target_type != "commit":
                warnings.append(f"tag {name} does not point at a commit; skipped")
                continue
            message = re.split(r"\n-----BEGIN [A-Z ]*SIGNATURE-----", contents, maxsplit=1)[0].strip()
            tags.append(GtoTag(name=name, commit=target, time=int(when or 0), tagger=tagger.strip(),
                               tagger_email=email.strip().strip("<>"), message=message, **parsed))
        return sorted(tags, key=lambda t: t.key)

    def read(self, commit: str, path: str, *, keep: int = MAX_INDEX_BYTES) -> tuple[str, int, bytes | None, str | None]:
        """``(type, size, bytes or None, sha256 or None)`` of ``path`` at ``commit``; type "missing" if absent.

        Blobs are hashed while read; bytes are returned only up to ``keep`` (larger: None).
        """
        if "\n" in path or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
            return ("missing", 0, None, None)
        if self._batch is None:
            self._batch = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.root, env=self._env(),
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        proc = self._batch
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{commit}:{path}\n".encode())
        proc.stdin.flush()
        header = proc.stdout.readline().decode("utf-8", "replace").split()
        if len(header) != 3:
            return ("missing", 0, None, None)
        otype, size = header[1], int(header[2])
        h = hashlib.sha256()
        kept: list[bytes] = []
        left = size
        while left:
            chunk = proc.stdout.read(min(left, 1 << 20))
            if not chunk:
                raise ModelregError(f"git cat-file stopped while reading {commit[:12]}:{path}")
            left -= len(chunk)
            h.update(chunk)
            if size <= keep:
                kept.append(chunk)
        proc.stdout.read(1)  # the newline after the object
        data = b"".join(kept) if size <= keep else None
        return (otype, size, data, h.hexdigest() if otype == "blob" else None)

    def close(self) -> None:
        if self._batch is not None:
            for stream in (self._batch.stdin, self._batch.stdout):
                if stream:
                    stream.close()
            self._batch.wait()
            self._batch = None

    def config(self) -> dict[str, Any]:
        """The repository's ``.gto`` settings (work tree), or {} when there are none or they do not parse."""
        from .. import canonical

        try:
            data = (self.root / ".gto").read_bytes()[:MAX_INDEX_BYTES]
            cfg = canonical.load(data, what=".gto")
        except (OSError, ModelregError):
            return {}
        return cfg if isinstance(cfg, dict) else {}

    def index_name(self) -> str:
        """The annotations file GTO reads: ``INDEX`` in ``.gto``, else artifacts.yaml."""
        value = self.config().get("INDEX")
        return value if isinstance(value, str) and value.strip() and "\n" not in value else DEFAULT_INDEX


# --------------------------------------------------------------------------- GTO's rules
@dataclass
class _Version:
    name: str
    commit: str
    first: GtoTag  # the tag that made it known: its registration, or the first assignment to its commit
    direct: str | None = None  # last of register/deregister
    stages: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)  # stage -> (last action, last assign key)

    @property
    def registered(self) -> bool:
        return self.direct is not None

    @property
    def active(self) -> bool:
        return self.direct == "register" or (self.direct is None and bool(self.stages))


class Simulation:
    """GTO's state of one artifact, tag by tag (gto/base.py and ``gto show``'s default view).

    A version is visible while its last registration event is a registration (versions known
    only from an assignment to their commit, named by the commit, are visible too) and the
    artifact's most recent event is not a deprecation. A stage is held by the visible version
    whose active assignment of it is the most recent one.
    """

    def __init__(self, artifact: str) -> None:
        self.artifact = artifact
        self.versions: dict[str, _Version] = {}
        self.deprecated = False

    def _at_commit(self, tag: GtoTag) -> _Version:
        found = [v for v in self.versions.values() if v.commit == tag.commit and v.registered]
        if len(found) > 1:
            raise UsageError(f"GTO tag {tag.name}: versions {', '.join(sorted(v.name for v in found))} are all "
                             f"registered at commit {tag.commit[:12]}, so GTO cannot tell which one it assigns")
        if found:
            return found[0]
        return self.versions.setdefault(tag.commit, _Version(tag.commit, tag.commit, tag))

    def apply(self, tag: GtoTag) -> _Version | None:
        """Apply one tag; the version it concerns (None for a deprecation)."""
        self.deprecated = tag.action == "deprecate"
        if tag.action == "deprecate":
            return None
        if tag.action in ("register", "deregister"):
            assert tag.version is not None
            v = self.versions.setdefault(tag.version, _Version(tag.version, tag.commit, tag))
            v.direct = tag.action
            return v
        v = self._at_commit(tag)
        assert tag.stage is not None
        _, last_assign = v.stages.get(tag.stage, ("", ()))
        v.stages[tag.stage] = (tag.action, tag.key if tag.action == "assign" else last_assign)
        return v

    def visible(self) -> dict[str, bool]:
        return {n: (not self.deprecated) and v.active for n, v in self.versions.items()}

    def holders(self) -> dict[str, str]:
        best: dict[str, tuple[tuple[Any, ...], str]] = {}
        for n, v in self.versions.items():
            if self.deprecated or not v.active:
                continue
            for stage, (last, key) in v.stages.items():
                if last == "assign" and (stage not in best or key > best[stage][0]):
                    best[stage] = (key, n)
        return {s: n for s, (_, n) in best.items()}


@dataclass
class _Record:
    """One tag and GTO's state just before and just after it."""

    tag: GtoTag
    version: str | None
    new_version: bool
    visible_before: dict[str, bool]
    visible_after: dict[str, bool]
    holders_before: dict[str, str]
    holders_after: dict[str, str]


def replay(tags: list[GtoTag]) -> tuple[list[_Record], Simulation]:
    """Run GTO's rules over one artifact's tags (in order); the state around each tag and the final one."""
    sim = Simulation(tags[0].artifact if tags else "")
    records = []
    for tag in tags:
        vis, hold, known = sim.visible(), sim.holders(), set(sim.versions)
        v = sim.apply(tag)
        records.append(_Record(tag, v.name if v else None, bool(v and v.name not in known), vis, sim.visible(),
                               hold, sim.holders()))
    return records, sim


# --------------------------------------------------------------------------- manifests
def _manifest(repo: GitRepo, reg: Registry, v: _Version, artifact: str, model: str, index: dict[str, Any] | None,
              check: bool, warnings: list[str]) -> dict[str, Any]:
    """The modelreg manifest of one GTO version, from ``artifacts.yaml`` at its commit."""
    gto_meta: dict[str, Any] = {"artifact": artifact, "tag": v.first.name}
    raw: dict[str, Any] = {"name": model, "version": v.name, "meta": {"commit": v.commit, "gto": gto_meta}}
    entry = index.get(artifact) if isinstance(index, dict) else None
    if not isinstance(entry, dict):
        return raw
    for key in ("type", "virtual", "custom"):
        if entry.get(key) is not None:
            gto_meta[key] = entry[key]
    labels = entry.get("labels") or []
    if isinstance(labels, list) and labels:
        tags = sorted({to_name("tag", str(label)) for label in labels if str(label).strip()})  # tag rule = stage rule
        raw["tags"] = tags
        if tags != sorted(str(label) for label in labels):
            gto_meta["labels"] = [str(label) for label in labels]
    if isinstance(entry.get("description"), str) and entry["description"].strip():
        raw["description"] = entry["description"]
    path = entry.get("path")
    if isinstance(path, str) and path.strip():
        role = to_name("artifact role", str(entry["type"])) if entry.get("type") else "model"
        raw["artifacts"] = [_artifact(repo, reg, v, role, path.strip(), check, warnings)]
    return raw


def _artifact(repo: GitRepo, reg: Registry, v: _Version, role: str, path: str, check: bool,
              warnings: list[str]) -> dict[str, Any]:
    from .. import uris

    where = f"{v.name} ({v.first.name})"
    if not uris.is_local(path):
        uris.check_uri_safe(path)
        if not check:
            return {"role": role, "uri": path}
        from ..artifacts import describe

        _store, options = reg.artifact_settings()
        return describe({"role": role, "uri": path}, reg.root, check=True, storage_options=options)
    local = uris._file_uri_to_path(path) if path.startswith("file:") else Path(path)
    absolute = local if local.is_absolute() else repo.root / local
    absolute = Path(os.path.normpath(absolute))
    entry: dict[str, Any] = {"role": role, "uri": _stored_uri(absolute, reg.root)}
    try:
        rel = absolute.relative_to(repo.root)
    except ValueError:
        rel = None
    if rel is not None and rel.parts:
        kind, size, data, sha = repo.read(v.commit, PurePosixPath(*rel.parts).as_posix(), keep=1024)
        if kind == "blob":
            lfs = _lfs_pointer(data)
            entry["sha256"], entry["size"] = lfs if lfs else (sha, size)
            return entry
        if kind == "tree":
            return entry  # a folder: recorded as given
    if check and not absolute.exists():
        warnings.append(f"{where}: artifact {path} is neither in git at {v.commit[:12]} nor in the work tree; "
                        "recorded as given")
    return entry


def _stored_uri(absolute: Path, project_root: Path) -> str:
    root = Path(os.path.normpath(project_root.resolve()))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return absolute.as_uri()


def _lfs_pointer(data: bytes | None) -> tuple[str, int] | None:
    """(sha256, size) of the real file when ``data`` is a Git LFS pointer."""
    if not data or not data.startswith(b"version https://git-lfs.github.com/spec/"):
        return None
    oid = re.search(rb"^oid sha256:([0-9a-f]{64})$", data, re.M)
    size = re.search(rb"^size ([0-9]+)$", data, re.M)
    return (oid.group(1).decode(), int(size.group(1))) if oid and size else None


# --------------------------------------------------------------------------- the import
def import_repo(
    reg: Registry,
    repo: str | os.PathLike[str] = ".",
    *,
    check: bool = True,
    dry_run: bool = False,
    stage_map: list[str] | dict[str, str] | None = None,
    actor: str | None = None,
    progress: ProgressFactory | None = None,
) -> ImportResult:
    """Import every GTO artifact of the git repository at ``repo`` into ``reg``, with its history.

    Each registered version (and each commit GTO assigned a stage to without a registration,
    named by the commit as ``gto show`` names it) becomes a version whose manifest comes from
    ``artifacts.yaml`` at its commit. Every tag becomes events at the tag's time, by its
    tagger, with the reason naming the tag; stages end where ``gto show`` puts them and
    versions it does not show (deregistered, or of a deprecated artifact) are archived. A
    tag that changes nothing in modelreg is still recorded (an ``import`` event). Running it
    again imports only tags it has not seen. ``stage_map`` renames GTO stages
    (``{"prod": "production"}``, ``none`` drops one); other stages are lower-cased and added
    to config.yaml. ``actor`` is recorded for the events no tag explains (reconciling tags
    that arrived late). Nothing is written before every manifest has been built and checked.
    """
    from ..registry import resolve_actor

    mapping = parse_stage_map(stage_map)
    for key, value in mapping.items():
        if value == "archived":
            raise UsageError(f"--stage-map {key}=archived: GTO stages map to stages (or {IGNORE}); "
                             "deregistered versions are archived anyway")
    result = ImportResult(SOURCE, dry_run)
    git = GitRepo(repo)
    try:
        tags = git.tags(result.warnings)
        by_artifact: dict[str, list[GtoTag]] = {}
        for t in tags:
            by_artifact.setdefault(t.artifact, []).append(t)
        models = {a: to_name("model", a, "; rename the artifact in GTO first") for a in by_artifact}
        unique_names("model", models)
        declared = git.config().get("stages")
        declared = [x for x in declared if isinstance(x, str)] if isinstance(declared, list) else []
        used = {t.stage for t in tags if t.stage}
        gto_stages = [x for x in declared if x in used] + list(dict.fromkeys(t.stage for t in tags if t.stage
                                                                             and t.stage not in declared))
        stages = {s: mapping.get(s) or to_name("stage", s, f"; map it with --stage-map {s}=STAGE") for s in gto_stages}
        unique_names("stage", {s: n for s, n in stages.items() if n != IGNORE})
        for key in mapping:
            if key not in stages:
                result.warnings.append(f"--stage-map {key}: no GTO tag uses stage {key!r}")
        index_name = git.index_name()
        plans, needed = [], []
        fallback_actor = resolve_actor(actor)
        for artifact in sorted(by_artifact):
            records, sim = replay(by_artifact[artifact])
            model = models[artifact]
            known = _registered(reg, model)
            manifests: dict[str, dict[str, Any]] = {}
            indexes: dict[str, Any] = {}
            for v in sim.versions.values():
                if v.name in known:
                    continue
                if v.commit not in indexes:
                    indexes[v.commit] = _read_index(git, v.commit, index_name)
                manifests[v.name] = _manifest(git, reg, v, artifact, model, indexes[v.commit], check, result.warnings)
            _validate(manifests, reg)
            needed.extend(stages[t.stage] for t in by_artifact[artifact] if t.stage and stages[t.stage] != IGNORE)
            plans.append(ModelPlan(model, artifact, len(records) + 1,
                                   _builder(records, sim, manifests, stages, fallback_actor, result.warnings)))
    finally:
        git.close()
    from .common import run

    needed.sort(key=lambda n: [stages[g] for g in gto_stages].index(n))
    return run(reg, result, plans, needed, progress)


def _registered(reg: Registry, model: str) -> set[str]:
    """Versions of ``model`` with an entry and a register event (a crash may have left the entry only)."""
    if not reg.refs.version_names(model):
        return set()
    state = reg.model_state(model)
    return {v for v in reg.refs.version_names(model) if v in state.versions and state.versions[v].registered_at}


def _read_index(git: GitRepo, commit: str, index_name: str) -> dict[str, Any] | None:
    from .. import canonical

    kind, _size, data, _ = git.read(commit, index_name)
    if kind != "blob" or data is None:
        return None
    try:
        loaded = canonical.load(data, what=f"{index_name} at {commit[:12]}")
    except ModelregError as exc:
        raise UsageError(f"cannot read {index_name} at commit {commit[:12]}: {exc.message}") from None
    return loaded if isinstance(loaded, dict) else None


def _validate(manifests: dict[str, dict[str, Any]], reg: Registry) -> None:
    from .. import manifest as manifest_mod

    for raw in manifests.values():
        try:
            manifest_mod.validate(raw, set(reg.stages))
        except UsageError as exc:
            raise UsageError(f"GTO version {raw['name']}@{raw['version']}: {exc.message}") from None


def _origin(tag: GtoTag, reason: str | None = None) -> Origin:
    first = tag.message.splitlines()[0].strip()[:200] if tag.message else ""
    source = {"source": SOURCE, "tag": tag.name, "event": _GTO_EVENT[tag.action], "commit": tag.commit,
              "author": tag.tagger}
    if tag.message and tag.message != first:
        source["message"] = tag.message[:10_000]
    return Origin(utc(tag.time), tag.actor,
                  reason or f"imported from GTO tag {tag.name}" + (f": {first}" if first else ""), source)


def _steps(rec: _Record, manifests: dict[str, dict[str, Any]], stages: dict[str, str]) -> list[Step]:
    """What one tag changes in modelreg: GTO's state after it minus GTO's state before it."""
    o = _origin(rec.tag)
    steps: list[Step] = []
    if rec.new_version and rec.version in manifests:
        steps.append(Step("register", o, version=rec.version, manifest=manifests[rec.version]))
    before, after = rec.visible_before, rec.visible_after
    steps += [Step("unarchive", o, version=v) for v, shown in after.items() if shown and before.get(v) is False]
    for gto_stage in sorted(set(rec.holders_before) | set(rec.holders_after)):
        stage = stages.get(gto_stage, IGNORE)
        old, new = rec.holders_before.get(gto_stage), rec.holders_after.get(gto_stage)
        if stage == IGNORE or old == new:
            continue
        if new is not None and rec.tag.action == "assign" and rec.tag.stage == gto_stage and rec.version == new:
            steps.append(Step("move", o, version=new, stage=stage))  # an explicit assignment
        else:  # the holder left (unassigned, deregistered, deprecated): GTO falls back to the one before
            steps.append(Step("move", o, version=new, stage=stage, only_if=old, fallback=True))
    steps += [Step("archive", o, version=v) for v, shown in after.items()
              if not shown and (before.get(v) is True or (v == rec.version and rec.new_version))]
    return steps


def _builder(records: list[_Record], sim: Simulation, manifests: dict[str, dict[str, Any]], stages: dict[str, str],
             actor: str, warnings: list[str]):  # noqa: ANN202 - a ModelPlan.build
    def build(w: HistoryWriter) -> Iterator[list[Event]]:
        check_owner(w, SOURCE, "GTO")
        seen = {(e.data.get("import") or {}).get("tag"): e for e in w.complete(imported_events(w, SOURCE))}
        current = {r.tag.name for r in records}
        for name in sorted(n for n in seen if n and n not in current):
            warnings.append(f"{w.name}: tag {name} was imported before but is gone from the repository; "
                            "modelreg keeps what it recorded")
        newest = max((r.tag.key for r in records if r.tag.name in seen), default=None)
        late: list[_Record] = []
        for rec in records:
            if rec.tag.name in seen:
                yield []
                continue
            stage = stages.get(rec.tag.stage or "", IGNORE)
            stage = None if stage == IGNORE else stage
            if newest is not None and rec.tag.key < newest:
                late.append(rec)  # GTO's state after it is known only at the end: reconciled there
                yield []
            else:
                yield apply_group(w, _steps(rec, manifests, stages), _origin(rec.tag), version=rec.version,
                                  stage=stage)
        yield _reconcile(w, late, sim, manifests, stages, actor) if late else []

    return build


def _reconcile(w: HistoryWriter, late: list[_Record], sim: Simulation, manifests: dict[str, dict[str, Any]],
               stages: dict[str, str], actor: str) -> list[Event]:
    """One batch for the tags that arrived late: each is recorded (its version registered if new, else an
    ``import`` event), then what they concern is brought to GTO's final state (what ``gto show`` says now)."""
    from ..log import utc_now

    with w.batch() as written:
        for rec in late:
            stage = stages.get(rec.tag.stage or "", IGNORE)
            note = _origin(rec.tag, f"imported from GTO tag {rec.tag.name}, which arrived after later tags "
                                    "had been imported: its effect is reconciled with GTO's current state")
            if rec.new_version and rec.version in manifests and rec.version not in w.registered:
                Step("register", _origin(rec.tag), version=rec.version, manifest=manifests[rec.version]).apply(w)
            else:
                w.note(note, version=rec.version if rec.version in w.versions else None,
                       stage=None if stage == IGNORE else stage)
        names = ", ".join(r.tag.name for r in late)
        o = Origin(utc_now(), actor, f"imported from GTO: reconciled with GTO's current state after tags {names} "
                                     "arrived late", {"source": SOURCE, "tags": [r.tag.name for r in late]})
        deprecations = any(r.tag.action == "deprecate" for r in late)
        versions = set(sim.versions) if deprecations else {r.version for r in late if r.version}
        gto_stages = set(stages) if deprecations else {r.tag.stage for r in late if r.tag.stage}
        gto_stages |= {s for v in versions if v in sim.versions for s in sim.versions[v].stages}
        visible, holders = sim.visible(), sim.holders()
        steps = [Step("unarchive", o, version=v) for v in sorted(versions) if visible.get(v) and v in w.archived]
        for gto_stage in sorted(gto_stages):
            stage = stages.get(gto_stage, IGNORE)
            if stage != IGNORE:
                steps.append(Step("move", o, version=holders.get(gto_stage), stage=stage))
        steps += [Step("archive", o, version=v) for v in sorted(versions) if not visible.get(v) and v in w.versions]
        for step in steps:
            step.apply(w)
    return written
