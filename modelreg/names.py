"""Name rules and the one reference parser used everywhere.

Model, stage and suite names:  ``[a-z0-9][a-z0-9._-]*``, at most 64 characters.
Version names:                  ``[A-Za-z0-9][A-Za-z0-9._+-]*``, at most 128 characters.
Both: ASCII only, no ``..``, no trailing ``.`` and no ``.lock`` suffix, and not a
Windows device name (``con``, ``nul``, ``com1`` ...). A version may not be called
``latest``, nor like a stage. Two versions of one model may not differ only by case.
Every name is checked here before it becomes part of a path.

References:  ``NAME@VERSION``, ``NAME@STAGE``, ``NAME@latest``, ``NAME@sha256:HEX``
(HEX a unique prefix of at least 7 lower-case hex digits), or a bare ``sha256:HEX``.
"""

from __future__ import annotations

import re
from .errors import UsageError

MODEL_MAX = 64
VERSION_MAX = 128
DIGEST_PREFIX_MIN = 7

_MODEL_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")
_HEX_RE = re.compile(r"[0-9a-f]+\Z")
_FULL_HEX_RE = re.compile(r"[0-9a-f]{64}\Z")
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)
RESERVED_VERSIONS = frozenset(["latest"])


_PLAIN_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")  # no dot: none of the rules below can apply


def _common(kind: str, name: str, limit: int, pattern: re.Pattern[str]) -> str:
    if pattern is _MODEL_RE and type(name) is str and _PLAIN_NAME_RE.match(name) and name not in _WINDOWS_DEVICES:
        return name  # the usual case, checked at C speed (listings validate every name they read)
    if not isinstance(name, str) or not name:
        raise UsageError(f"invalid {kind} name: it is empty")
    shown = name if len(name) <= 40 else name[:37] + "..."
    if len(name) > limit:
        raise UsageError(f"invalid {kind} name {shown!r}: longer than {limit} characters")
    if not name.isascii() or not pattern.match(name):
        allowed = "a-z 0-9 . _ -" if kind != "version" else "A-Z a-z 0-9 . _ + -"
        raise UsageError(
            f"invalid {kind} name {shown!r}: use only {allowed}, starting with a letter or digit"
        )
    if ".." in name:
        raise UsageError(f"invalid {kind} name {shown!r}: '..' is not allowed")
    if name.endswith(".") or name.lower().endswith(".lock"):
        raise UsageError(f"invalid {kind} name {shown!r}: may not end with '.' or '.lock'")
    if name.split(".")[0].lower() in _WINDOWS_DEVICES:
        raise UsageError(f"invalid {kind} name {shown!r}: reserved device name on Windows")
    return name


def check_model(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise UsageError."""
    return _common("model", name, MODEL_MAX, _MODEL_RE)


def check_stage(name: str) -> str:
    """Return ``name`` if it is a valid stage name, else raise UsageError."""
    return _common("stage", name, MODEL_MAX, _MODEL_RE)


def check_key(kind: str, name: str) -> str:
    """Validate a tag, suite, role or provider-like key (same rule as model names)."""
    return _common(kind, name, MODEL_MAX, _MODEL_RE)


def check_version(name: str, stages: frozenset[str] | set[str] = frozenset()) -> str:
    """Return ``name`` if it is a valid version name, else raise UsageError."""
    _common("version", name, VERSION_MAX, _VERSION_RE)
    if name.lower() in RESERVED_VERSIONS:
        raise UsageError(f"invalid version name {name!r}: reserved word")
    if name.lower() in stages:
        raise UsageError(f"invalid version name {name!r}: it is the name of a stage")
    return name


def is_full_digest(value: str) -> bool:
    """True for ``sha256:`` followed by 64 lower-case hex digits."""
    return value.startswith("sha256:") and bool(_FULL_HEX_RE.match(value[7:]))


def check_digest(value: str) -> str:
    """Return a full ``sha256:HEX`` digest or raise UsageError."""
    if not isinstance(value, str) or not is_full_digest(value):
        raise UsageError(f"invalid digest {str(value)[:80]!r}: expected sha256: and 64 lower-case hex digits")
    return value


class Ref:
    """A parsed reference. ``kind`` is one of version, stage, latest, digest, word.

    ``word`` means ``NAME@X`` where X is a valid stage *and* version name: whether it
    names a stage or a version is decided against the registry (see Registry.resolve).
    Immutable; a plain class rather than a dataclass because it is on the start-up path.
    """

    __slots__ = ("name", "kind", "value")
    name: str | None
    kind: str
    value: str

    def __init__(self, name: str | None, kind: str, value: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "value", value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Ref is immutable: cannot set {key!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Ref:
            return NotImplemented
        return (self.name, self.kind, self.value) == (other.name, other.kind, other.value)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, self.kind, self.value))

    def __repr__(self) -> str:
        return f"Ref(name={self.name!r}, kind={self.kind!r}, value={self.value!r})"

    def __str__(self) -> str:
        if self.name is None:
            return self.value
        return f"{self.name}@{self.value}"


def parse_ref(text: str) -> Ref:
    """Parse a reference string; raise UsageError when it is malformed."""
    if not isinstance(text, str) or not text:
        raise UsageError("empty reference: use NAME@VERSION, NAME@STAGE, NAME@latest or NAME@sha256:HEX")
    if text.startswith("sha256:"):
        return Ref(None, "digest", _digest_prefix(text, text))
    if "@" not in text:
        raise UsageError(
            f"invalid reference {text[:80]!r}: use NAME@VERSION, NAME@STAGE, NAME@latest or NAME@sha256:HEX"
        )
    name, _, rest = text.partition("@")
    check_model(name)
    if not rest:
        raise UsageError(f"invalid reference {text[:80]!r}: nothing after '@'")
    if rest == "latest":
        return Ref(name, "latest", rest)
    if rest.startswith("sha256:"):
        return Ref(name, "digest", _digest_prefix(rest, text))
    check_version(rest)
    if _MODEL_RE.match(rest) and len(rest) <= MODEL_MAX:
        return Ref(name, "word", rest)
    return Ref(name, "version", rest)


def _digest_prefix(value: str, text: str) -> str:
    hexpart = value[7:]
    if not _HEX_RE.match(hexpart) or len(hexpart) > 64:
        raise UsageError(f"invalid reference {text[:80]!r}: a digest is sha256: and lower-case hex")
    if len(hexpart) < DIGEST_PREFIX_MIN:
        raise UsageError(
            f"invalid reference {text[:80]!r}: a digest prefix needs at least {DIGEST_PREFIX_MIN} hex digits"
        )
    return value
