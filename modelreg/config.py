"""``config.yaml``: the format version and the registry's settings (stages, policy, storage)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import canonical, fileio
from .errors import IntegrityError, UsageError
from .names import check_stage

FORMAT = 1
DEFAULT_STAGES = ("staging", "production")
_FORMAT_LINE = re.compile(rb"^format:[ \t]*[\"']?(\d+)[\"']?[ \t]*(?:#.*)?$", re.M)

DEFAULT_TEXT = f"""\
# modelreg registry settings. The on-disk format is specified in docs/format.md.
format: {FORMAT}
# Stages a version can be promoted to, in promotion order.
stages:
- staging
- production
# Promotion rules and gates (docs/policy.md). Defaults: a version must have been in
# staging before production, and the version production replaces moves to staging.
# policy:
#   require_previous_stage: {{production: staging}}
#   demote_to: {{production: staging}}
#   gates:
#     production:
#       require_suites: [core-v1]
#       thresholds: {{"core-v1.score": ">= 0.85"}}
#       not_worse_than_current: {{"core-v1.score": higher}}
#       require_approvals: 2
"""


def format_version(data: bytes, path: Path) -> int:
    """The ``format`` number of a config file's bytes (full parse only if the quick scan fails)."""
    m = _FORMAT_LINE.findall(data)
    if len(m) == 1:
        return int(m[0])
    raw = canonical.load(data, what=str(path))
    value = raw.get("format") if isinstance(raw, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise IntegrityError(f"{path} has no valid 'format' field")
    return value


def check_format(version: int, path: Path) -> None:
    """Refuse registries written in a format this modelreg does not know."""
    if version > FORMAT:
        raise UsageError(
            f"{path.parent} uses registry format {version}, this modelreg reads format {FORMAT}: upgrade modelreg"
        )
    if version < 1:
        raise IntegrityError(f"{path} declares an invalid format {version}")


@dataclass
class Config:
    """Parsed settings. ``raw`` keeps every section so later features read their own."""

    format: int = FORMAT
    stages: tuple[str, ...] = DEFAULT_STAGES
    raw: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def policy(self) -> "policy_mod.Policy":  # noqa: F821 - imported on use
        """The validated ``policy:`` section, defaults filled in (parsed on first use, so a bad
        policy fails promote/check/fsck with a usage error but does not block reading)."""
        from . import policy as policy_mod

        return policy_mod.parse(self.raw.get("policy"), self.stages)


# Words that make a committed setting a command to run (hooks, scripts, shells): refused, like git
# never takes hooks from a clone. Matched as words of a key, so `post_promote_hook` counts.
_RUN_WORDS = frozenset({
    "hook", "hooks", "webhook", "webhooks", "command", "commands", "cmd", "exec", "execute", "script", "scripts",
    "shell", "program", "subprocess", "callback", "callbacks", "plugin", "plugins", "on",
})
WHY_NO_COMMANDS = (
    "a committed config.yaml cannot define hooks or commands to run: anyone who can open a pull request "
    "could then run code in CI with its credentials (as git never takes hooks from a clone); configure hooks "
    "in your own config (~/.config/modelreg/config.yaml 'hooks:') or MODELREG_HOOK (docs/security.md)"
)


def refuse_commands(raw: dict[str, Any], name: str) -> None:
    """Refuse a committed config whose keys define hooks or commands (outside ``policy``, whose schema is strict)."""
    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(key)).lower())
            if any(w in _RUN_WORDS for w in words if w):
                shown = f"{where}.{key}" if where else str(key)
                raise UsageError(f"{name}: '{shown[:80]}' is refused: {WHY_NO_COMMANDS}")
            if where or key != "policy":
                walk(value, f"{where}.{key}" if where else str(key))

    walk(raw, "")


def load(path: Path) -> Config:
    """Read and validate ``config.yaml``."""
    data = fileio.read_file(path, canonical.MAX_BYTES)
    raw = canonical.load(data, what=str(path.name))
    if not isinstance(raw, dict):
        raise UsageError(f"{path.name} must be a mapping")
    refuse_commands(raw, path.name)
    fmt = raw.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise IntegrityError(f"{path} has no valid 'format' field")
    check_format(fmt, path)
    stages = raw.get("stages", list(DEFAULT_STAGES))
    if not isinstance(stages, list) or not stages or not all(isinstance(s, str) for s in stages):
        raise UsageError(f"{path.name}: 'stages' must be a non-empty list of names")
    for s in stages:
        check_stage(s)
    if len(set(stages)) != len(stages):
        raise UsageError(f"{path.name}: 'stages' lists a stage twice")
    return Config(format=fmt, stages=tuple(stages), raw=raw)
