"""``config.yaml``: the format version and the registry's settings (stages, policy, storage).

The schema is :data:`SCHEMA`, in one place (docs/policy.md shows it whole): a key it does not
name is refused (exit 2) with the closest valid key, by every command, because a typo in
``policy:`` would otherwise turn every gate off.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

TYPE_CHECKING = False  # typing and dataclasses are not imported at run time (start-up path)
if TYPE_CHECKING:
    from typing import Any

from . import canonical, fileio
from .errors import IntegrityError, UsageError
from .names import check_stage

FORMAT = 1
DEFAULT_STAGES = ("staging", "production")
ARCHIVED = "archived"  # not a stage: ``promote NAME@VERSION archived`` archives the version
_FORMAT_LINE = re.compile(rb"^format:[ \t]*[\"']?(\d+)[\"']?[ \t]*(?:#.*)?$", re.M)
# A line that starts a top-level key: plain (not a list item, comment, directive or flow
# collection) or quoted. The scan may see more than the parser would; a suspect is confirmed by it.
_TOP_KEY = re.compile(
    rb"^(?:\"([^\"\n]*)\"|'([^'\n]*)'|([^\s#'\"?:,\[\]{}&*!|>%@`-][^:#\n]*?))[ \t]*:(?=[ \t\r]|$)", re.M)


class Key:
    """One top-level key of config.yaml: its default and where its rules are specified."""

    __slots__ = ("name", "default", "doc")

    def __init__(self, name: str, default: Any, doc: str) -> None:
        self.name, self.default, self.doc = name, default, doc

    def __repr__(self) -> str:
        return f"Key(name={self.name!r}, default={self.default!r}, doc={self.doc!r})"


SCHEMA: tuple[Key, ...] = (
    Key("format", FORMAT, "registry format number; required (docs/format.md)"),
    Key("stages", list(DEFAULT_STAGES), "stages a version can be promoted to, in promotion order"),
    Key("policy", {}, "promotion rules, gates and retention (docs/policy.md); defaults filled in by 'policy show'"),
    Key("artifact_store", None, "where 'register --upload' copies local artifacts (docs/artifacts.md)"),
    Key("storage_options", {}, "fsspec options per protocol, never credentials (docs/artifacts.md)"),
)
TOP_LEVEL_KEYS = tuple(k.name for k in SCHEMA)


def closest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The choice most like ``word`` (for "did you mean"), or None when none is close."""
    import difflib  # only on the error path

    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def unknown_key_error(path: Path | str, key: str, where: str = "", valid: tuple[str, ...] = TOP_LEVEL_KEYS) -> UsageError:
    """The refusal of an unknown key: the file, the key, the closest valid key and all valid keys."""
    near = closest(key, valid)
    hint = f" (did you mean {near!r}?)" if near else ""
    return UsageError(
        f"{path}: unknown key {where}{key!r}{hint}; valid keys: {', '.join(valid)}",
        info={"file": str(path), "key": f"{where}{key}", "closest": near, "valid": list(valid)},
    )


def check_keys(data: bytes, path: Path) -> None:
    """Refuse unknown top-level keys, cheaply: a scan of the lines that start a top-level key,
    parsed in full (which names the key exactly) only when the scan finds a suspect."""
    for m in _TOP_KEY.finditer(data):
        if (m.group(1) or m.group(2) or m.group(3)).decode("utf-8", "replace") not in TOP_LEVEL_KEYS:
            load(path)  # raises for a real unknown key; a false alarm of the scan passes
            return

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
#   retention: {{keep: 10, auto: false, purge_after_days: 90}}   # prune, prune --purge
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


class Config:
    """Parsed settings. ``raw`` keeps every section so later features read their own."""

    def __init__(self, format: int = FORMAT, stages: tuple[str, ...] = DEFAULT_STAGES,
                 raw: dict[str, Any] | None = None) -> None:
        self.format = format
        self.stages = stages
        self.raw = raw if raw is not None else {}

    def __repr__(self) -> str:
        return f"Config(format={self.format!r}, stages={self.stages!r}, raw={self.raw!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return (self.format, self.stages, self.raw) == (other.format, other.stages, other.raw)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    @functools.cached_property
    def policy(self) -> "policy_mod.Policy":  # noqa: F821 - imported on use
        """The validated ``policy:`` section, defaults filled in (parsed on first use, so a bad
        policy fails promote/check/fsck with a usage error but does not block reading)."""
        from . import policy as policy_mod

        return policy_mod.parse(self.raw.get("policy"), self.stages)

    def effective(self, storage: tuple[Any, Any]) -> dict[str, Any]:
        """The whole config as modelreg reads it, every key of :data:`SCHEMA` present, defaults
        filled in (``storage`` is the validated ``(artifact_store, storage_options)``)."""
        store, options = storage
        return {
            "format": self.format,
            "stages": list(self.stages),
            "policy": self.policy.to_dict(),
            "artifact_store": store,
            "storage_options": options or {},
        }


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
    """Read and validate ``config.yaml`` against :data:`SCHEMA`."""
    data = fileio.read_file(path, canonical.MAX_BYTES)
    raw = canonical.load(data, what=str(path.name))
    if not isinstance(raw, dict):
        raise UsageError(f"{path.name} must be a mapping")
    refuse_commands(raw, path.name)  # before the unknown-key check: say why hooks are refused
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise unknown_key_error(path, str(key))
    fmt = raw.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise IntegrityError(f"{path} has no valid 'format' field")
    check_format(fmt, path)
    stages = raw.get("stages", list(DEFAULT_STAGES))
    if not isinstance(stages, list) or not stages or not all(isinstance(s, str) for s in stages):
        raise UsageError(f"{path.name}: 'stages' must be a non-empty list of names")
    for s in stages:
        check_stage(s)
        if s == ARCHIVED:
            raise UsageError(f"{path.name}: 'stages' cannot list {ARCHIVED!r}: it is not a stage "
                             f"('promote NAME@VERSION {ARCHIVED}' archives a version and clears its stages)")
    if len(set(stages)) != len(stages):
        raise UsageError(f"{path.name}: 'stages' lists a stage twice")
    return Config(format=fmt, stages=tuple(stages), raw=raw)


_STAGES_KEY = re.compile(r"^stages[ \t]*:(.*)$")
_BLOCK_ITEM = re.compile(r"^[ \t]*-([ \t].*)?$")


def add_stages(registry_path: Path, stages: list[str]) -> list[str]:
    """Append ``stages`` that ``config.yaml`` does not list yet (in the given order); the stages added.

    The one place that changes ``stages:``. The edit is textual, so comments and the other
    sections stay as the user wrote them: a block or one-line flow list is replaced by a block
    list, a missing ``stages:`` (the defaults) is written out with the defaults first. The new
    text is parsed again before it replaces the file (atomically, under ``locks/_config.lock``).
    """
    for s in stages:
        check_stage(s)
    path = Path(registry_path) / "config.yaml"
    fileio.makedirs(Path(registry_path) / "locks")
    with fileio.lock(Path(registry_path) / "locks" / "_config.lock"):  # "_" never starts a model name
        current = load(path)
        new = [s for s in dict.fromkeys(stages) if s not in current.stages]
        if not new:
            return []
        wanted = [*current.stages, *new]
        text = fileio.read_file(path, canonical.MAX_BYTES).decode("utf-8")
        updated = _replace_stages(text, wanted)
        check = canonical.load(updated.encode("utf-8"), what=path.name)
        if not isinstance(check, dict) or check.get("stages") != wanted:
            raise UsageError(f"{path.name}: could not add stages {', '.join(new)} automatically; "
                             f"add them to 'stages:' by hand")
        fileio.atomic_write(path, updated.encode("utf-8"))
    return new


def _replace_stages(text: str, stages: list[str]) -> str:
    block = "stages:\n" + "".join(f"- {s}\n" for s in stages)
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        m = _STAGES_KEY.match(line)
        if not m:
            continue
        rest = m.group(1).split("#", 1)[0].strip()
        end = i + 1
        if not rest:  # a block list: its items follow (comments and blank lines between them too)
            j = end
            while j < len(lines) and (_BLOCK_ITEM.match(lines[j]) or not lines[j].strip()
                                      or lines[j].lstrip().startswith("#")):
                j += 1
                if _BLOCK_ITEM.match(lines[j - 1]):
                    end = j
        elif not (rest.startswith("[") and rest.endswith("]")):
            break  # a multi-line flow list or something odd: let the caller refuse
        return "".join(lines[:i]) + block + "".join(lines[end:])
    sep = "" if not text or text.endswith("\n") else "\n"
    return text + sep + block
