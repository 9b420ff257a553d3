"""Promotion policy: the ``policy:`` section of config.yaml, and gate evaluation.

Pure: parsing takes the raw config mapping, evaluation takes folded version states
(:class:`modelreg.state.VersionState`). The registry runs :func:`evaluate` inside the
model's lock when promoting, and outside any lock for ``check``. See docs/policy.md.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .names import check_key
from .retention.rules import Retention
from .retention.rules import parse as parse_retention

POLICY_KEYS = ("require_previous_stage", "demote_to", "gates", "retention")
GATE_KEYS = ("require_suites", "thresholds", "not_worse_than_current", "require_approvals", "require_signatures")
DIRECTIONS = ("higher", "lower")
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
DEFAULT_REQUIRE_PREVIOUS = {"production": ("staging",)}
DEFAULT_DEMOTE_TO = {"production": "staging"}
_THRESHOLD_RE = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*\Z")


@dataclass(frozen=True)
class Threshold:
    """``path OP value``, e.g. ``core-v1.score >= 0.85``."""

    path: str
    op: str
    value: float

    @property
    def text(self) -> str:
        return f"{self.op} {_num(self.value)}"


@dataclass(frozen=True)
class Gates:
    """The gates a version must pass to enter one stage."""

    require_suites: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    not_worse_than_current: tuple[tuple[str, str], ...] = ()  # (path, "higher"|"lower")
    require_approvals: int = 0
    require_signatures: bool = False  # count only approvals/metrics signed by an allowed signer

    def to_dict(self) -> dict[str, Any]:
        return {
            "require_suites": list(self.require_suites),
            "thresholds": {t.path: t.text for t in self.thresholds},
            "not_worse_than_current": dict(self.not_worse_than_current),
            "require_approvals": self.require_approvals,
            "require_signatures": self.require_signatures,
        }


@dataclass(frozen=True)
class Policy:
    """Transition rules and gates, defaults filled in."""

    require_previous_stage: dict[str, tuple[str, ...]] = field(default_factory=dict)
    demote_to: dict[str, str] = field(default_factory=dict)
    gates: dict[str, Gates] = field(default_factory=dict)
    retention: Retention = field(default_factory=Retention)

    def to_dict(self) -> dict[str, Any]:
        return {
            "require_previous_stage": {s: list(v) for s, v in self.require_previous_stage.items()},
            "demote_to": dict(self.demote_to),
            "gates": {s: g.to_dict() for s, g in self.gates.items()},
            "retention": self.retention.to_dict(),
        }


# ------------------------------------------------------------------ parsing
def _bad(where: str, msg: str) -> UsageError:
    return UsageError(f"config.yaml: {where}: {msg}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, "must be a mapping")
    return value


def _stage(value: Any, where: str, stages: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in stages:
        raise _bad(where, f"{value!r} is not a declared stage (stages: {', '.join(stages)})")
    return value


def _metric_path(path: Any, where: str) -> str:
    if not isinstance(path, str) or "." not in path.strip(".") or path.startswith(".") or path.endswith("."):
        raise _bad(where, f"{path!r} is not a metric path SUITE.KEY")
    return path


def parse_threshold(text: Any, where: str = "threshold") -> tuple[str, float]:
    """``">= 0.85"`` -> ``(">=", 0.85)``; UsageError naming ``where`` otherwise."""
    m = _THRESHOLD_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise _bad(where, f"{text!r} is not 'OP NUMBER' with OP one of {' '.join(OPERATORS)}")
    try:
        value = float(m.group(2))
    except ValueError:
        raise _bad(where, f"{m.group(2)!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad(where, f"{m.group(2)!r} is not a finite number")
    return m.group(1), value


def _gates(raw: Any, where: str) -> Gates:
    raw = _mapping(raw, where)
    unknown = sorted(set(raw) - set(GATE_KEYS))
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"unknown gate; allowed: {', '.join(GATE_KEYS)}")
    suites = raw.get("require_suites") or []
    if not isinstance(suites, list):
        raise _bad(f"{where}.require_suites", "must be a list of suite names")
    for s in suites:
        if not isinstance(s, str):
            raise _bad(f"{where}.require_suites", f"{s!r} is not a suite name")
        _checked(check_key, "suite", s, f"{where}.require_suites")
    thresholds = []
    for path, text in _mapping(raw.get("thresholds"), f"{where}.thresholds").items():
        w = f"{where}.thresholds.{path}"
        op, value = parse_threshold(text, w)
        thresholds.append(Threshold(_metric_path(path, w), op, value))
    worse = []
    for path, direction in _mapping(raw.get("not_worse_than_current"), f"{where}.not_worse_than_current").items():
        w = f"{where}.not_worse_than_current.{path}"
        if direction not in DIRECTIONS:
            raise _bad(w, f"{direction!r} must be 'higher' or 'lower' (which direction is better)")
        worse.append((_metric_path(path, w), direction))
    approvals = raw.get("require_approvals", 0)
    if not isinstance(approvals, int) or isinstance(approvals, bool) or approvals < 0:
        raise _bad(f"{where}.require_approvals", f"{approvals!r} must be a non-negative integer")
    signatures = raw.get("require_signatures", False)
    if not isinstance(signatures, bool):
        raise _bad(f"{where}.require_signatures", f"{signatures!r} must be true or false")
    return Gates(tuple(suites), tuple(thresholds), tuple(worse), approvals, signatures)


def _checked(check: Callable[[str, str], str], kind: str, value: str, where: str) -> str:
    try:
        return check(kind, value)
    except UsageError as exc:
        raise _bad(where, exc.message) from None


def parse(raw: Any, stages: tuple[str, ...]) -> Policy:
    """Validate the ``policy:`` section (None: defaults) against the declared stages."""
    raw = _mapping(raw, "policy")
    unknown = sorted(set(raw) - set(POLICY_KEYS))
    if unknown:
        raise _bad(f"policy.{unknown[0]}", f"unknown key; allowed: {', '.join(POLICY_KEYS)}")

    if "require_previous_stage" in raw:
        previous: dict[str, tuple[str, ...]] = {}
        for stage, before in _mapping(raw["require_previous_stage"], "policy.require_previous_stage").items():
            w = f"policy.require_previous_stage.{stage}"
            _stage(stage, w, stages)
            items = before if isinstance(before, list) else [before]
            if not items:
                raise _bad(w, "must name at least one stage")
            previous[stage] = tuple(_stage(b, w, stages) for b in items)
    else:  # the default applies only where both stages are declared
        previous = {s: b for s, b in DEFAULT_REQUIRE_PREVIOUS.items() if s in stages and all(x in stages for x in b)}

    if "demote_to" in raw:
        demote: dict[str, str] = {}
        for stage, to in _mapping(raw["demote_to"], "policy.demote_to").items():
            w = f"policy.demote_to.{stage}"
            _stage(stage, w, stages)
            if to is None:
                continue
            if _stage(to, w, stages) == stage:
                raise _bad(w, "a stage cannot demote to itself")
            demote[stage] = to
    else:
        demote = {s: t for s, t in DEFAULT_DEMOTE_TO.items() if s in stages and t in stages}

    gates = {}
    for stage, g in _mapping(raw.get("gates"), "policy.gates").items():
        w = f"policy.gates.{stage}"
        _stage(stage, w, stages)
        gates[stage] = _gates(g, w)
    return Policy(previous, demote, gates, parse_retention(raw.get("retention")))


# --------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class GateResult:
    """One rule or gate applied to one subject (a suite, a metric path, a stage)."""

    gate: str
    subject: str
    expected: Any
    actual: Any
    passed: bool
    message: str
    hint: str = ""  # what to do about a failure (a command to run); shown after the message

    @property
    def detail(self) -> str:
        """The message with its hint, as the table and ``--json`` show it."""
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate, "subject": self.subject, "expected": self.expected,
            "actual": self.actual, "passed": self.passed, "message": self.detail,
        }


@dataclass(frozen=True)
class GateReport:
    """Every rule and gate for moving one version into one stage."""

    name: str
    version: str
    digest: str
    stage: str
    current: str | None  # the version that holds the stage now
    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """One line naming each failed gate."""
        if self.passed:
            return f"{self.name}@{self.version} passes every gate for {self.stage}"
        parts = [f"{r.gate} {r.subject}: {r.message}" for r in self.failed]
        return f"{self.name}@{self.version} fails {len(parts)} gate(s) for {self.stage}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "digest": self.digest, "stage": self.stage,
            "current": self.current, "passed": self.passed, "results": [r.to_dict() for r in self.results],
        }


def lookup(metrics: dict[str, dict[str, Any]], path: str) -> tuple[bool, Any]:
    """The value at ``SUITE.KEY``: the longest suite prefix that exists wins, then KEY (dots walk nested values)."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        suite = ".".join(parts[:i])
        if suite not in metrics:
            continue
        values = metrics[suite]
        key = ".".join(parts[i:])
        if key in values:
            return True, values[key]
        node: Any = values
        for p in parts[i:]:
            if not isinstance(node, dict) or p not in node:
                return False, None
            node = node[p]
        return True, node
    return False, None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _suite_key(metrics: dict[str, dict[str, Any]], path: str) -> tuple[str, str]:
    """(suite, key) of a metric path, split as :func:`lookup` does (suite names may hold dots)."""
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:i]) in metrics:
            return ".".join(parts[:i]), ".".join(parts[i:])
    return parts[0], ".".join(parts[1:])


def _not_a_number(metrics: dict[str, dict[str, Any]], path: str, value: Any, name: str, version: str) -> tuple[str, str]:
    """Why a metric value cannot meet a numeric gate, naming suite and key; and the fix (or "")."""
    from .values import describe, display, is_number, parse_value

    suite, key = _suite_key(metrics, path)
    msg = f"key {key} of suite {suite} is {describe(value)}, not a number"
    try:
        typed = parse_value(value) if isinstance(value, str) else None
    except UsageError:
        typed = None
    if is_number(typed):  # e.g. "0.90" recorded before values were typed, or quoted
        return msg, f"record it as a number: modelreg metrics set {name}@{version} --suite {suite} {key}={display(typed)}"
    return msg, ""


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return repr(value) if not isinstance(value, str) else value


def evaluate(
    policy: Policy, stage: str, name: str, version: str, digest: str, candidate: Any,
    current_version: str | None = None, current: Any = None, signatures: str | None = None,
) -> GateReport:
    """Apply the rules and gates for ``stage`` to ``candidate`` (a VersionState; ``current`` holds the stage).

    With the gate's ``require_signatures``, the caller passes states folded from signed approvals and
    metrics only (approvals keyed by signer), and ``signatures`` names what keeps signatures from being
    checked at all (no allowed signers file), which fails the gate.
    """
    results: list[GateResult] = []
    archived = bool(candidate and candidate.archived)
    results.append(GateResult("not_archived", version, False, archived, not archived,
                              "archived versions cannot be promoted" if archived else "not archived"))
    held = candidate.stages_held if candidate else set()
    for before in [policy.require_previous_stage[stage]] if stage in policy.require_previous_stage else []:
        ok = any(b in held for b in before)
        want = " or ".join(before)
        results.append(GateResult(
            "require_previous_stage", want, f"was in {want}", sorted(held), ok,
            f"was in {want}" if ok else f"never was in {want}; promote it to {before[0]} first",
        ))
    gates = policy.gates.get(stage, Gates())
    if gates.require_signatures:
        results.append(GateResult(
            "require_signatures", stage, "allowed signers file", "missing" if signatures else "present",
            signatures is None,
            signatures or "only signed approvals and metrics count",
        ))
    metrics = candidate.metrics if candidate else {}
    for suite in gates.require_suites:
        ok = suite in metrics
        results.append(GateResult("require_suites", suite, "present", "present" if ok else "missing", ok,
                                  f"suite {suite} recorded" if ok else f"no metrics recorded for suite {suite}",
                                  "" if ok else f"record them: modelreg metrics set {name}@{version} --suite {suite} "
                                  "KEY=VALUE"))
    for t in gates.thresholds:
        found, value = lookup(metrics, t.path)
        if not found:
            suite, key = _suite_key(metrics, t.path)
            results.append(GateResult("thresholds", t.path, t.text, None, False, f"{t.path} not recorded",
                                      f"record it: modelreg metrics set {name}@{version} --suite {suite} {key}=VALUE"))
        elif not _is_number(value):
            results.append(GateResult("thresholds", t.path, t.text, value, False,
                                      *_not_a_number(metrics, t.path, value, name, version)))
        else:
            ok = OPERATORS[t.op](value, t.value)
            results.append(GateResult("thresholds", t.path, t.text, value, ok, f"{_num(value)} {t.op} {_num(t.value)}"
                                      + ("" if ok else " is false")))
    other = current_version if current_version and current_version != version else None
    for path, direction in gates.not_worse_than_current:
        found, value = lookup(metrics, path)
        cur_found, cur = lookup(current.metrics, path) if (other and current) else (False, None)
        want = f"{'>=' if direction == 'higher' else '<='} {_num(cur) if cur_found else '?'}"
        hint = ""
        if other is None:
            ok, msg = True, f"{stage} is empty or already holds this version"
        elif found and value is not None and not _is_number(value):  # present but not comparable: say so
            ok, (msg, hint) = False, _not_a_number(metrics, path, value, name, version)
        elif not (found and cur_found and _is_number(value) and _is_number(cur)):
            from .values import describe

            why = "missing" if not (found and cur_found) else f"{describe(cur)}, not a number,"
            ok, msg = True, f"not compared: {path} {why} on {'the candidate' if not found else other}"
        else:
            ok = value >= cur if direction == "higher" else value <= cur
            msg = f"{_num(value)} vs {_num(cur)} on {other} ({direction} is better)" + ("" if ok else ": worse")
        results.append(GateResult("not_worse_than_current", path, want, value if found else None, ok, msg,
                                  hint if not ok else ""))
    if gates.require_approvals:
        actors = sorted((candidate.approvals if candidate else {}).get(stage, {}))
        ok = len(actors) >= gates.require_approvals
        signed = " signed" if gates.require_signatures else ""
        results.append(GateResult(
            "require_approvals", stage, f">= {gates.require_approvals}", len(actors), ok,
            f"{len(actors)} of {gates.require_approvals}{signed} approval(s)" + (f" ({', '.join(actors)})" if actors else ""),
            "" if ok else f"each approver runs: modelreg approve {name}@{version} --stage {stage}"
            + (" --sign" if gates.require_signatures else ""),
        ))
    return GateReport(name, version, digest, stage, current_version, results)
