"""Import an MLflow model registry through its REST API only: versions, aliases and stages, run metrics."""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelregError, NotFound, Unreachable, UsageError
from ..history import Origin, utc
from ..log import Event, utc_now
from ..state import MOVES
from .common import (
    ARCHIVED, IGNORE, ImportResult, ModelPlan, Step, check_owner, imported_events, parse_stage_map, to_name,
    unique_names,
)

if TYPE_CHECKING:
    from ..artifacts import ProgressFactory
    from ..history import HistoryWriter
    from ..registry import Registry

SOURCE = "mlflow"
DEFAULT_SUITE = "mlflow"
LEGACY_STAGES = ("None", "Staging", "Production", "Archived")
DEFAULT_MAP = {"@champion": "production", "@challenger": "staging", "Production": "production",
               "Staging": "staging", "Archived": ARCHIVED, "None": IGNORE}
PAGE = 1000
TIMEOUT = 30.0


# --------------------------------------------------------------------------- REST client
class MlflowRest:
    """A read-only client of an MLflow tracking server's REST API (``/api/2.0/mlflow``).

    Credentials come from the environment, as for MLflow's own client:
    ``MLFLOW_TRACKING_TOKEN`` (bearer) or ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``.
    """

    def __init__(self, uri: str, timeout: float = TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(uri.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"--tracking-uri {uri!r}: give the http(s) URL of an MLflow tracking server; modelreg reads MLflow "
                "only through its REST API (for a local mlruns/ or sqlite store, run 'mlflow server "
                "--backend-store-uri ...' and point at it)")
        if parts.username or parts.password:
            raise UsageError("--tracking-uri must not carry credentials; set MLFLOW_TRACKING_USERNAME/"
                             "MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN instead")
        self.base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "modelreg-import"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user and password:
            self.headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base}/api/2.0/mlflow/{endpoint}" + (f"?{query}" if query else "")
        req = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - http(s) only, checked above
                data = resp.read(64 << 20)
        except urllib.error.HTTPError as exc:
            body = exc.read(1 << 16).decode("utf-8", "replace")
            try:
                err = json.loads(body)
                message = f"{err.get('error_code', '')}: {err.get('message', '')}".strip(": ")
            except ValueError:
                message = body.strip().splitlines()[0][:200] if body.strip() else exc.reason
            if exc.code == 404 and "RESOURCE_DOES_NOT_EXIST" in body:
                raise NotFound(f"MLflow: {message}") from None
            hint = " (set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)" if exc.code in (401, 403) else ""
            raise ModelregError(f"MLflow answered HTTP {exc.code} for {endpoint}: {message}{hint}") from None
        except (urllib.error.URLError, socket.timeout, ssl.SSLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the MLflow tracking server at {self.base}: {reason}") from None
        try:
            out = json.loads(data)
        except ValueError:
            raise ModelregError(f"MLflow's answer to {endpoint} is not JSON: is {self.base} a tracking server?") from None
        if not isinstance(out, dict):
            raise ModelregError(f"MLflow's answer to {endpoint} is not a JSON object")
        return out

    def _pages(self, endpoint: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        for _ in range(100_000):
            page = self.get(endpoint, max_results=PAGE, page_token=token, **params)
            yield from (x for x in page.get(key) or [] if isinstance(x, dict))
            token = page.get("next_page_token")
            if not token:
                return

    def registered_models(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """The registered models named (NotFound if one is missing), or all of them."""
        if names:
            return [self.get("registered-models/get", name=n).get("registered_model") or {} for n in names]
        return list(self._pages("registered-models/search", "registered_models"))

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of a registered model (MLflow's search, filtered by name)."""
        if "'" not in name:
            flt = f"name='{name}'"
        elif '"' not in name:
            flt = f'name="{name}"'
        else:
            return [v for v in self._pages("model-versions/search", "model_versions") if v.get("name") == name]
        return [v for v in self._pages("model-versions/search", "model_versions", filter=flt) if v.get("name") == name]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """A run (info and data), or None if MLflow no longer has it."""
        try:
            return self.get("runs/get", run_id=run_id).get("run") or None
        except NotFound:
            return None


# --------------------------------------------------------------------------- what MLflow says now
@dataclass
class _Wanted:
    """One registered model as MLflow shows it now, in modelreg's terms."""

    model: str
    source_name: str
    versions: dict[str, dict[str, Any]]  # version -> MLflow's version record (READY ones)
    stages: dict[str, tuple[str, str, int | None]] = field(default_factory=dict)  # stage -> (version, why, ms)
    archived: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # version -> (why, ms)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, tuple[dict[str, Any], int | None, str]] = field(default_factory=dict)  # version -> values


def _mapping(stage_map: dict[str, str]) -> dict[str, str]:
    """``--stage-map`` over the defaults, keys normalised: ``@alias`` for aliases, MLflow's spelling for stages."""
    out = dict(DEFAULT_MAP)
    for key, value in stage_map.items():
        legacy = next((s for s in LEGACY_STAGES if s.lower() == key.lower()), None)
        out[legacy or (key if key.startswith("@") else f"@{key}")] = value
    return out


def _target(mapping: dict[str, str], key: str) -> str:
    """Where an alias (``@name``) or legacy stage goes: a stage, archived, or none."""
    if key in mapping:
        return mapping[key]
    return to_name("stage", key.lstrip("@"), f"; map it with --stage-map {key}=STAGE")


def _wanted(rm: dict[str, Any], versions: list[dict[str, Any]], mapping: dict[str, str],
            warnings: list[str]) -> _Wanted:
    source_name = str(rm.get("name"))
    w = _Wanted(to_name("model", source_name, "; rename it in MLflow first"), source_name, {})
    for v in versions:
        status = v.get("status", "READY")
        if status != "READY":
            warnings.append(f"{source_name} version {v.get('version')}: status {status}; not imported")
            continue
        w.versions[str(v["version"])] = v
    legacy: dict[str, list[tuple[int, str]]] = {}
    for number, v in w.versions.items():
        stage = str(v.get("current_stage") or "None")
        target = _target(mapping, next((s for s in LEGACY_STAGES if s.lower() == stage.lower()), stage))
        when = _ms(v.get("last_updated_timestamp"))
        if target == ARCHIVED:
            w.archived[number] = (f"stage {stage}", when)
        elif target != IGNORE:
            legacy.setdefault(target, []).append((when or 0, number))
    for target, holders in legacy.items():
        holders.sort()
        when, number = holders[-1]
        if len(holders) > 1:
            warnings.append(f"{source_name}: versions {', '.join(n for _, n in holders)} all map to stage {target}; "
                            f"the most recently updated, {number}, takes it")
        w.stages[target] = (number, f"stage {w.versions[number].get('current_stage')}", when or None)
    by_alias: dict[str, tuple[str, str]] = {}
    for a in rm.get("aliases") or []:
        alias, number = str(a.get("alias")), str(a.get("version"))
        if number not in w.versions:
            warnings.append(f"{source_name}: alias @{alias} names version {number}, which is not imported")
            continue
        target = _target(mapping, f"@{alias}")
        if target == IGNORE:
            continue
        if target == ARCHIVED:
            w.archived[number] = (f"alias @{alias}", None)
            continue
        if target in by_alias and by_alias[target][0] != number:
            raise UsageError(f"{source_name}: aliases @{by_alias[target][1]} and @{alias} both map to stage {target} "
                             f"but name versions {by_alias[target][0]} and {number}; map one elsewhere with --stage-map")
        by_alias[target] = (number, alias)
        w.stages[target] = (number, f"alias @{alias}", None)  # aliases win over legacy stages
    for target, (number, why, _) in w.stages.items():
        if number in w.archived:
            warnings.append(f"{source_name} version {number} is {w.archived[number][0]} but holds {why}: "
                            f"imported as not archived, in {target}")
            del w.archived[number]
    return w


def _ms(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _when(ms: int | None) -> str:
    return utc(ms / 1000) if ms else utc_now()


def _safe_uri(uri: str, root: Path, where: str, warnings: list[str]) -> str:
    from .. import uris

    if uris.is_local(uri):
        path = uris._file_uri_to_path(uri) if uri.startswith("file:") else Path(uri)
        if not path.is_absolute():
            return uri
        try:
            return path.relative_to(root.resolve()).as_posix()
        except ValueError:
            return path.as_uri()
    try:
        uris.check_uri_safe(uri)
        return uri
    except UsageError:
        parts = urllib.parse.urlsplit(uri)
        clean = urllib.parse.urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
        warnings.append(f"{where}: source URI carries credentials; recorded without them as {clean}")
        return clean


def _manifest(w: _Wanted, number: str, root: Path, warnings: list[str]) -> dict[str, Any]:
    v = w.versions[number]
    meta: dict[str, Any] = {"model": w.source_name, "version": number}
    for key in ("run_id", "source", "model_id"):
        if v.get(key):
            meta[key] = str(v[key])
    tags = {str(t.get("key")): str(t.get("value", "")) for t in v.get("tags") or [] if t.get("key")}
    if tags:
        meta["tags"] = tags
    raw: dict[str, Any] = {"name": w.model, "version": number, "meta": {"mlflow": meta}}
    if isinstance(v.get("description"), str) and v["description"].strip():
        raw["description"] = v["description"]
    if v.get("source"):
        raw["artifacts"] = [{"role": "model", "uri": _safe_uri(str(v["source"]), root,
                                                               f"{w.source_name} version {number}", warnings)}]
    return raw


def _run_metrics(client: MlflowRest, w: _Wanted, number: str, warnings: list[str]) -> None:
    v = w.versions[number]
    run_id = v.get("run_id")
    if not run_id:
        return
    run = client.run(str(run_id))
    if run is None:
        warnings.append(f"{w.source_name} version {number}: source run {run_id} is gone; no metrics")
        return
    values: dict[str, Any] = {}
    latest = 0
    for m in (run.get("data") or {}).get("metrics") or []:
        key, value = m.get("key"), m.get("value")
        if not isinstance(key, str) or not key or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if not math.isfinite(value):
            warnings.append(f"{w.source_name} version {number}: metric {key} is {value}; not imported")
            continue
        values[key] = value
        latest = max(latest, _ms(m.get("timestamp")) or 0)
    if values:
        info = run.get("info") or {}
        when = max(latest or _ms(info.get("end_time")) or 0, _ms(v.get("creation_timestamp")) or 0)
        w.metrics[number] = (values, when or None, str(info.get("user_id") or ""))


# --------------------------------------------------------------------------- the import
def import_registry(
    reg: Registry,
    tracking_uri: str,
    *,
    models: list[str] | None = None,
    stage_map: list[str] | dict[str, str] | None = None,
    metrics_suite: str = DEFAULT_SUITE,
    dry_run: bool = False,
    actor: str | None = None,
    progress: ProgressFactory | None = None,
    client: MlflowRest | None = None,
) -> ImportResult:
    """Import MLflow's registered models (all, or ``models``) from the tracking server at ``tracking_uri``.

    Each READY model version becomes a modelreg version named by its number, with the source
    as its ``model`` artifact (recorded as given, not fetched) and run id, MLflow version and
    tags in ``meta.mlflow``; the source run's latest metrics go to suite ``metrics_suite``.
    Aliases and legacy stages go through ``stage_map`` (``{"@champion": "production",
    "Staging": "qa", "Archived": "archived", "@shadow": "none"}``; defaults: @champion ->
    production, @challenger -> staging, Production/Staging -> production/staging, Archived ->
    archived, other aliases -> a stage of the same name, added to config.yaml). Versions
    deleted in MLflow since an earlier import are archived. MLflow keeps no history of stage or
    alias changes, so the import itself is recorded: registrations at MLflow's creation time by
    MLflow's user, legacy stages at the version's last update, aliases at the import's time,
    stage and archive events by ``actor``. A later run changes only what changed in MLflow since
    the last one. Everything is read before anything is written.
    """
    from ..names import check_key
    from ..registry import resolve_actor

    check_key("suite", metrics_suite)
    models = list(dict.fromkeys(models)) if models else None
    mapping = _mapping(parse_stage_map(stage_map))
    client = client or MlflowRest(tracking_uri)
    result = ImportResult(SOURCE, dry_run)
    wanted = []
    for rm in client.registered_models(models):
        w = _wanted(rm, client.versions(str(rm.get("name"))), mapping, result.warnings)
        for number in w.versions:
            w.manifests[number] = _manifest(w, number, reg.root, result.warnings)
            _run_metrics(client, w, number, result.warnings)
        wanted.append(w)
    unique_names("model", {w.source_name: w.model for w in wanted})
    _validate(wanted, reg)
    who = resolve_actor(actor)
    plans = [ModelPlan(w.model, w.source_name, 1, _builder(w, metrics_suite, who)) for w in wanted]
    stages = [s for w in wanted for s in w.stages]
    from .common import run

    return run(reg, result, plans, stages, progress)


def _validate(wanted: list[_Wanted], reg: Registry) -> None:
    from .. import manifest as manifest_mod

    for w in wanted:
        for number, raw in w.manifests.items():
            try:
                manifest_mod.validate(raw, set(reg.stages) | set(w.stages))
            except UsageError as exc:
                raise UsageError(f"MLflow {w.source_name} version {number}: {exc.message}") from None


def _last_imported(w: HistoryWriter) -> tuple[dict[str, str | None], dict[str, bool], dict[str, dict[str, Any]]]:
    """What earlier imports recorded: stage -> version, version -> archived, version -> metrics."""
    stages: dict[str, str | None] = {}
    archived: dict[str, bool] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for e in imported_events(w, SOURCE):
        if e.action in MOVES and e.stage:
            stages[e.stage] = w.version_of(e.to) if e.to else None
        elif e.action in ("archive", "unarchive") and e.version:
            archived[e.version] = e.action == "archive"
        elif e.action == "metrics" and e.version:
            metrics.setdefault(e.version, {}).update(e.data.get("values") or {})
    return stages, archived, metrics


def _builder(want: _Wanted, suite: str, who: str):  # noqa: ANN202 - a ModelPlan.build
    def build(w: HistoryWriter) -> Iterator[list[Event]]:
        check_owner(w, SOURCE, "MLflow")
        last_stages, last_archived, last_metrics = _last_imported(w)
        src = {"source": SOURCE, "model": want.source_name}
        timed: list[tuple[int, int, Step]] = []  # (ms, order, step): applied oldest first
        for number in sorted(want.versions, key=lambda n: (_ms(want.versions[n].get("creation_timestamp")) or 0, n)):
            v = want.versions[number]
            created = _ms(v.get("creation_timestamp"))
            if number not in w.versions:
                origin = Origin(_when(created), str(v.get("user_id") or "") or who,
                                f"imported from MLflow: {want.source_name} version {number}",
                                {**src, "version": number})
                timed.append((created or 0, 0, Step("register", origin, version=number, manifest=want.manifests[number])))
            if number in want.metrics:
                values, when, user = want.metrics[number]
                previous = last_metrics.get(number, {})
                if any(previous.get(k) != val for k, val in values.items()):
                    origin = Origin(_when(when), user or who, f"imported from MLflow: metrics of run {v.get('run_id')}",
                                    {**src, "version": number, "run_id": v.get("run_id")})
                    timed.append((when or 0, 1, Step("metrics", origin, version=number, suite=suite, values=values)))
        now = int(_now_ms())
        gone = sorted(n for n in w.versions if n not in want.versions and last_archived.get(n) is not True
                      and n not in w.archived)
        for number, shown in last_archived.items():
            if shown and number in want.versions and number not in want.archived:
                ms = _ms(want.versions[number].get("last_updated_timestamp"))
                origin = Origin(_when(ms), who, f"imported from MLflow: version {number} is no longer archived",
                                {**src, "version": number})
                timed.append((ms or now, 2, Step("unarchive", origin, version=number)))
        for stage in sorted(set(want.stages) | set(last_stages)):
            number, why, ms = want.stages.get(stage, (None, "", None))
            if stage in last_stages and last_stages[stage] == number:
                continue
            if stage not in last_stages and number is None:
                continue
            if number is None:
                origin = Origin(utc_now(), who, f"imported from MLflow: nothing maps to {stage} any more",
                                {**src, "stage": stage})
                timed.append((now, 3, Step("move", origin, version=None, stage=stage, only_if=last_stages[stage])))
            else:
                origin = Origin(_when(ms), who, f"imported from MLflow: {why} of version {number}",
                                {**src, "version": number, "stage": stage, "from": why})
                timed.append((ms or now, 3, Step("move", origin, version=number, stage=stage)))
        for number, (why, ms) in sorted(want.archived.items()):
            if last_archived.get(number) is not True and number not in w.archived:
                origin = Origin(_when(ms), who, f"imported from MLflow: version {number} is {why}",
                                {**src, "version": number})
                timed.append((ms or now, 4, Step("archive", origin, version=number)))
        for number in gone:
            origin = Origin(utc_now(), who, f"imported from MLflow: version {number} was deleted in MLflow",
                            {**src, "version": number})
            timed.append((now, 4, Step("archive", origin, version=number)))
        timed.sort(key=lambda t: (t[0], t[1]))
        out = [ev for _, _, step in timed for ev in step.apply(w)]
        yield out

    return build


def _now_ms() -> float:
    import time

    return time.time() * 1000
