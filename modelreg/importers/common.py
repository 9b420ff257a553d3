"""What the importers share: name and stage mapping, the steps of a plan, applying them, the result."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Conflict, UsageError
from ..history import Origin
from ..log import Event
from ..names import check_key, check_model, check_stage

if TYPE_CHECKING:
    from ..artifacts import ProgressFactory
    from ..history import HistoryWriter
    from ..registry import Registry

ARCHIVED = "archived"  # a --stage-map value: the version becomes archived instead of holding a stage
IGNORE = "none"  # a --stage-map value: the source stage or alias is not imported
_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")


def to_name(kind: str, text: str, hint: str = "") -> str:
    """``text`` as a modelreg name of ``kind`` (model, stage, tag, artifact role): lower case, other
    characters as ``-``; UsageError if that still is not a valid name."""
    name = _NOT_ALLOWED.sub("-", text.strip().lower())
    name = re.sub(r"\.{2,}", ".", name).strip("-._")
    if kind == "stage" and name in (ARCHIVED, IGNORE):
        raise UsageError(f"{kind} {text!r} maps to the reserved word {name!r}{hint}")
    try:
        return check_model(name) if kind == "model" else check_key(kind, name)
    except UsageError as exc:
        raise UsageError(f"cannot name {kind} {text!r} in modelreg ({exc.message}){hint}") from None


def parse_stage_map(items: list[str] | dict[str, str] | None) -> dict[str, str]:
    """``["SOURCE=STAGE", ...]`` (an item may hold several, comma-separated; or a mapping) ->
    ``{SOURCE: STAGE}``; STAGE is a stage name, ``archived`` or ``none``."""
    if not items:
        return {}
    pairs = items.items() if isinstance(items, dict) else (
        _split(part) for i in items for part in (i.split(",") if i.count("=") > 1 else [i]))
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise UsageError(f"--stage-map: {key!r} is mapped twice")
        if value not in (ARCHIVED, IGNORE):
            try:
                check_stage(value)
            except UsageError as exc:
                raise UsageError(f"--stage-map {key}={value}: {exc.message}") from None
        out[key] = value
    return out


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise UsageError(f"--stage-map {item!r}: expected SOURCE=STAGE (a stage name, {ARCHIVED} or {IGNORE})")
    return key.strip(), value.strip()


def unique_names(kind: str, names: dict[str, str]) -> None:
    """UsageError if two source names map to one modelreg name (``names``: source -> modelreg)."""
    seen: dict[str, str] = {}
    for source, name in sorted(names.items()):
        if name in seen:
            raise UsageError(f"{kind}s {seen[name]!r} and {source!r} would both become {name!r} in modelreg"
                             + ("; map one elsewhere with --stage-map" if kind == "stage" else ""))
        seen[name] = source


# ----------------------------------------------------------------------- steps
@dataclass
class Step:
    """One change a source event asks for, applied to the model's :class:`HistoryWriter`."""

    kind: str  # register, move, archive, unarchive, metrics, note
    origin: Origin
    version: str | None = None
    stage: str | None = None
    manifest: dict[str, Any] | None = None
    only_if: Any = ...  # move: the version (None: nothing) the stage must hold now
    fallback: bool = False  # move: the stage goes back because its holder left it (see HistoryWriter.move)
    suite: str | None = None
    values: dict[str, Any] | None = None

    def apply(self, w: HistoryWriter) -> list[Event]:
        if self.kind == "register":
            assert self.manifest is not None
            ev = w.register(self.manifest, self.origin)
        elif self.kind == "move":
            assert self.stage is not None
            if self.version is not None and self.version in w.archived:
                w.skipped.append(f"{w.name}@{self.version} is archived in modelreg, so it was not put in "
                                 f"{self.stage} ({self.origin.reason})")
                return []
            ev = w.move(self.stage, self.version, self.origin, only_if=self.only_if, fallback=self.fallback)
        elif self.kind in ("archive", "unarchive"):
            assert self.version is not None
            return w.archive(self.version, self.origin, undo=self.kind == "unarchive")
        elif self.kind == "metrics":
            assert self.version is not None and self.suite is not None and self.values is not None
            ev = w.metrics(self.version, self.suite, self.values, self.origin)
        elif self.kind == "note":
            ev = w.note(self.origin, version=self.version, stage=self.stage)
        else:  # pragma: no cover - a programming error
            raise ValueError(self.kind)
        return [ev] if ev else []


def apply_group(w: HistoryWriter, steps: list[Step], note: Origin | None, *,
                version: str | None = None, stage: str | None = None) -> list[Event]:
    """Apply the steps of one source event as one batch (see :meth:`HistoryWriter.batch`); when none
    changed anything, record ``note`` instead (so the log shows the source event and a later import
    knows it was seen). The events written."""
    with w.batch() as written:
        changed = [ev for s in steps for ev in s.apply(w)]
        if not changed and note is not None:
            w.note(note, version=version if version in w.versions else None, stage=stage)
    return written


@dataclass
class ModelPlan:
    """What to import into one model: ``build(writer)`` yields the events written, one batch per source
    event; it runs while the writer holds the model's lock, so it decides against the current state."""

    name: str
    source_name: str
    total: int
    build: Callable[[HistoryWriter], Iterator[list[Event]]]


# ----------------------------------------------------------------------- results
@dataclass
class ModelResult:
    """What an import did (or, in a dry run, would do) to one model."""

    name: str
    source_name: str
    versions: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # digest -> version, to print the events

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source_name": self.source_name, "versions_created": self.versions,
                "events": [e.to_dict() for e in self.events]}


@dataclass
class ImportResult:
    """The outcome of an import: per model, the versions created and the events written."""

    source: str
    dry_run: bool
    models: list[ModelResult] = field(default_factory=list)
    stages_added: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def versions_created(self) -> int:
        return sum(len(m.versions) for m in self.models)

    @property
    def events_written(self) -> int:
        return sum(len(m.events) for m in self.models)

    @property
    def changed(self) -> bool:
        return bool(self.events_written or self.stages_added)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "dry_run": self.dry_run, "changed": self.changed,
                "versions_created": self.versions_created, "events_written": self.events_written,
                "stages_added": self.stages_added, "warnings": self.warnings,
                "models": [m.to_dict() for m in self.models]}


def check_owner(w: HistoryWriter, source: str, what: str) -> None:
    """Conflict if the model already exists in modelreg and was not imported from ``source``: two
    histories of one model cannot be interleaved."""
    if not w.versions:
        return
    def ours(e: Event) -> bool:
        return (e.data.get("import") or {}).get("source") == source

    registers = [e for e in w.log_events if e.action == "register"]
    if all(ours(e) for e in registers or w.log_events):  # no events at all: a first import cut short
        return
    raise Conflict(f"model {w.name} already exists in this registry and was not imported from {what}; "
                   f"its history cannot be merged with {what}'s (import into a fresh registry, or rename it there)")


def imported_events(w: HistoryWriter, source: str) -> list[Event]:
    """The model's events that an import from ``source`` wrote, oldest first."""
    return [e for e in w.log_events if (e.data.get("import") or {}).get("source") == source]


def run(reg: Registry, result: ImportResult, plans: list[ModelPlan], stages: list[str],
        progress: ProgressFactory | None) -> ImportResult:
    """Add the ``stages`` the plans need to config.yaml, then apply each plan under its model's lock."""
    from .. import config as config_mod

    if result.dry_run:
        result.stages_added = [s for s in dict.fromkeys(stages) if s not in reg.stages]
    else:
        result.stages_added = config_mod.add_stages(reg.path, stages)
        reg._config = None  # re-read: the new stages are valid from here on
    total = sum(p.total for p in plans)
    bar = progress(f"import {result.source}", total) if progress and total else None
    try:
        for plan in plans:
            model = ModelResult(plan.name, plan.source_name)
            with reg.history(plan.name, dry_run=result.dry_run) as w:
                for events in plan.build(w):
                    model.events.extend(events)
                    model.versions.extend(e.version for e in events if e.action == "register" and e.version
                                          and e.version not in model.versions and e.to in w.objects)
                    if bar:
                        bar(1)
                result.warnings.extend(w.skipped)
                model.labels = {d: v for v, d in w.versions.items()}
            result.models.append(model)
    finally:
        close = getattr(bar, "close", None)
        if close:
            close()
    return result
