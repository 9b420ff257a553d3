"""The ``policy.retention`` section of config.yaml and the versions a keep-N rule archives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..registry import Registry, Resolved
    from ..state import ModelState

KEYS = ("keep", "auto", "purge_after_days")
WHERE = "policy.retention"


@dataclass(frozen=True)
class Retention:
    """``keep``: the newest N unarchived versions of each model are kept (``prune`` without
    ``--keep``); ``auto``: ``register`` applies ``keep`` in the same lock; ``purge_after_days``:
    ``prune --purge`` deletes the stored content of versions archived at least this long ago."""

    keep: int | None = None
    auto: bool = False
    purge_after_days: float | int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"keep": self.keep, "auto": self.auto, "purge_after_days": self.purge_after_days}

    def reason(self, at_registration: bool = False) -> str:
        """The reason recorded on each archive the rule makes (by ``prune``, or by ``register``)."""
        return f"policy.retention: keep {self.keep}" + (", applied at registration" if at_registration else "")


DEFAULT = Retention()


def _bad(where: str, msg: str) -> UsageError:
    return UsageError(f"config.yaml: {where}: {msg}", info={"key": where})


def parse(raw: Any) -> Retention:
    """Validate ``policy.retention`` (None: the default, nothing retained automatically)."""
    if raw is None:
        return DEFAULT
    if not isinstance(raw, dict):
        raise _bad(WHERE, "must be a mapping with keep, auto, purge_after_days")
    for key in raw:
        if key not in KEYS:
            from ..config import unknown_key_error

            raise unknown_key_error("config.yaml", str(key), f"{WHERE}.", KEYS)
    keep = raw.get("keep")
    if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 0):
        raise _bad(f"{WHERE}.keep", f"{keep!r} must be a non-negative integer")
    auto = raw.get("auto", False)
    if not isinstance(auto, bool):
        raise _bad(f"{WHERE}.auto", f"{auto!r} must be true or false")
    if auto and keep is None:
        raise _bad(f"{WHERE}.auto", "auto: true needs keep: N (how many versions register keeps)")
    days = raw.get("purge_after_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))
                             or not math.isfinite(days) or days < 0):
        raise _bad(f"{WHERE}.purge_after_days", f"{days!r} must be a non-negative number of days")
    return Retention(keep, auto, days)


def from_config(raw_config: dict[str, Any]) -> Retention:
    """Only the retention rule of a raw config mapping (register reads it without the gates)."""
    policy = raw_config.get("policy")
    if not isinstance(policy, dict):  # a policy that is not a mapping is refused where gates are read
        return DEFAULT
    return parse(policy.get("retention"))


def check_keep(keep: Any) -> int:
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
        raise UsageError(f"--keep must be a non-negative integer, not {keep!r}")
    return keep


def plan(reg: Registry, name: str, keep: int, state: ModelState | None = None,
         digests: dict[str, str] | None = None, holders: dict[str, str] | None = None) -> list[Resolved]:
    """The versions a keep-``keep`` rule archives now, oldest first: every unarchived version but the
    newest ``keep`` (registration order), except one that holds a stage (it still counts toward
    ``keep`` when among the newest). Already archived versions neither count nor appear."""
    from ..registry import Resolved

    digests = reg.refs.versions(name) if digests is None else digests
    state = reg.model_state(name) if state is None else state
    staged = set((reg.stage_holders(name) if holders is None else holders).values())
    live = [v for v in state.order(list(digests)) if not (state.versions.get(v) and state.versions[v].archived)]
    old = live[: max(len(live) - keep, 0)]
    return [Resolved(name, v, digests[v]) for v in old if digests[v] not in staged]


def archive_locked(reg: Registry, name: str, keep: int, who: str, reason: str,
                   data: dict[str, Any]) -> list[Resolved]:
    """Archive what :func:`plan` names (the caller holds the model's lock): one ``archive`` event each,
    with ``reason`` and ``data`` (the rule)."""
    chosen = plan(reg, name, keep)
    for r in chosen:
        reg._archive_locked(r, who, reason, False, False, data)
    return chosen
