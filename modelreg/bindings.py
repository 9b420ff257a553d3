"""Provider bindings: where a version is served, its status, and the figures a serving job reports.

A binding is a ``bind`` event (provider, id, endpoint, params, status, optional figures); a
``bind-update`` event changes only the fields it carries (status, endpoint, ``latency_ms``,
``success_rate``, ``last_used``) of the binding in place, so a serving job can report what it
observed without replacing the binding. Both are folded by :mod:`modelreg.state`. This module
validates those fields and lists bindings; :class:`modelreg.registry.Registry` writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .registry import Registry

STATUSES = ("active", "inactive", "deprecated")


def check_status(status: Any) -> str:
    if status not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}",
                         info={"status": status, "statuses": list(STATUSES)})
    return status


def check_figures(latency_ms: Any = None, success_rate: Any = None, last_used: Any = None) -> dict[str, Any]:
    """The observed figures given (None: not given), validated: ``latency_ms`` a number >= 0,
    ``success_rate`` a number from 0 to 1, ``last_used`` a time (``now`` or ISO 8601)."""
    out: dict[str, Any] = {}
    if latency_ms is not None:
        out["latency_ms"] = _number(latency_ms, "--latency-ms", 0, math.inf)
    if success_rate is not None:
        out["success_rate"] = _number(success_rate, "--success-rate", 0, 1)
    if last_used is not None:
        out["last_used"] = parse_time(last_used)
    return out


def _number(value: Any, option: str, low: float, high: float) -> float | int:
    if isinstance(value, str):
        from .values import is_number, parse_value

        parsed = parse_value(value, option)
        if not is_number(parsed):
            raise UsageError(f"{option} must be a number, not {value!r}")
        value = parsed
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number, not {value!r}")
    if not low <= value <= high:
        bound = f"from {low:g} to {high:g}" if math.isfinite(high) else f"{low:g} or more"
        raise UsageError(f"{option} must be {bound}, not {value!r}")
    return value


def parse_time(text: Any) -> str:
    """``now`` or an ISO 8601 time (a date, or a time with ``Z`` or an offset; no zone means UTC) as
    the event-time form ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"--last-used must be 'now' or an ISO 8601 time, not {text!r}")
    if text.strip() == "now":
        from .log import utc_now

        return utc_now()
    raw = text.strip()
    try:
        t = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise UsageError(f"--last-used {text!r} is not 'now' or an ISO 8601 time "
                         "(e.g. 2026-05-01T12:00:00Z)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class BindingInfo:
    """One binding of one version, as ``modelreg bindings`` lists it."""

    name: str
    version: str
    digest: str
    provider: str
    id: str | None
    endpoint: str | None = None
    status: str = "active"
    params: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | int | None = None
    success_rate: float | int | None = None
    last_used: str | None = None
    stages: list[str] = field(default_factory=list)
    archived: bool = False
    bound_at: str | None = None
    bound_by: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_bindings(reg: Registry, name: str | None = None, provider: str | None = None,
                  status: str | None = None) -> list[BindingInfo]:
    """Every binding (of model ``name``; to ``provider``; with ``status``): models by name, versions in
    registration order, providers by name."""
    from .names import check_key, check_model

    if provider is not None:
        check_key("provider", provider)
    if status is not None:
        check_status(status)
    if name is not None:
        check_model(name)
        reg._require_model(name)
    out = []
    for model in [name] if name is not None else reg.refs.models():
        digests = reg.refs.versions(model)
        state = reg.model_state(model)
        holders = reg.stage_holders(model)
        order = reg._stage_order(holders)
        for v in state.order(list(digests)):
            st = state.versions.get(v)
            if st is None:
                continue
            for p in sorted(st.bindings):
                b = st.bindings[p]
                if (provider is not None and p != provider) or (status is not None and b.get("status") != status):
                    continue
                out.append(BindingInfo(
                    model, v, digests[v], p, b.get("id"), b.get("endpoint"), b.get("status") or "active",
                    b.get("params") or {}, b.get("latency_ms"), b.get("success_rate"), b.get("last_used"),
                    [s for s in order if holders[s] == digests[v]], st.archived, b.get("time"), b.get("actor"),
                    b.get("updated_at"), b.get("updated_by"),
                ))
    return out
