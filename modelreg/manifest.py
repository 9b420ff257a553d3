"""Version manifests: building, validating, canonical bytes, and differences between two.

A manifest holds only what is known at registration and never changes afterwards:
``name``, ``version``, ``description``, ``license``, ``artifacts``, ``params``, ``meta``,
``tags`` and ``parents``. Registration time and actor live in the event log; metrics,
later tags, approvals and archived state live beside the manifest as events.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
TYPE_CHECKING = False  # typing and dataclasses are not imported at run time: identity() is on the start-up path
if TYPE_CHECKING:
    from typing import Any

from . import canonical
from .errors import IntegrityError, UsageError
from .names import check_digest, check_key, check_model, check_version, is_full_digest

FIELDS = ("name", "version", "description", "license", "artifacts", "params", "meta", "tags", "parents")
ARTIFACT_FIELDS = ("role", "uri", "sha256", "size", "name", "tree", "layout", "files")
PARENT_FIELDS = ("digest", "relation")
RELATIONS = ("fine_tune", "distillation", "merge", "quantization", "other")
MAX_TEXT = 10_000
MAX_INT = 10**64  # integers in params/meta: 64 digits at most (huge ones cannot even be printed)


def _fail(msg: str) -> UsageError:
    return UsageError(f"invalid manifest: {msg}")


def _check_tree(value: Any, where: str, depth: int = 0) -> None:
    if depth > 32:
        raise _fail(f"{where} is nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise _fail(f"{where} has a key that is not a non-empty string: {k!r}")
            _check_tree(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_tree(v, f"{where}[{i}]", depth + 1)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        if not -MAX_INT < value < MAX_INT:
            raise _fail(f"{where} is an integer of more than 64 digits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(f"{where} is not a finite number")
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise _fail(f"{where} is longer than {MAX_TEXT} characters")
    else:
        raise _fail(f"{where} has a value of type {type(value).__name__} (dates and other types must be quoted)")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        hint = " (quote it: YAML reads 1.10 as 1.1)" if isinstance(value, (int, float)) else ""
        raise _fail(f"{where} must be a string{hint}")
    if len(value) > MAX_TEXT:
        raise _fail(f"{where} is longer than {MAX_TEXT} characters")
    return value


def validate(m: Any, stages: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """Check a manifest mapping and return it normalised (sorted tags, artifacts by role, parents by digest)."""
    if not isinstance(m, dict):
        raise _fail("the top level must be a mapping")
    unknown = sorted(set(m) - set(FIELDS))
    if unknown:
        raise _fail(f"unknown field(s) {', '.join(map(str, unknown))}; allowed: {', '.join(FIELDS)}")
    out: dict[str, Any] = {}
    out["name"] = check_model(_text(m.get("name"), "name"))
    out["version"] = check_version(_text(m.get("version"), "version"), stages)
    if m.get("description"):
        out["description"] = _text(m["description"], "description")
    if m.get("license") is not None:
        out["license"] = _text(m["license"], "license")
    artifacts = m.get("artifacts") or []
    if not isinstance(artifacts, list):
        raise _fail("artifacts must be a list")
    arts: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(artifacts):
        arts_entry = _artifact(a, f"artifacts[{i}]")
        if arts_entry["role"] in arts:
            raise _fail(f"two artifacts have the role {arts_entry['role']!r}; give each a distinct ROLE=")
        arts[arts_entry["role"]] = arts_entry
    if arts:
        out["artifacts"] = [arts[r] for r in sorted(arts)]
    for key in ("params", "meta"):
        value = m.get(key) or {}
        if not isinstance(value, dict):
            raise _fail(f"{key} must be a mapping")
        _check_tree(value, key)
        if value:
            out[key] = value
    tags = m.get("tags") or []
    if not isinstance(tags, list):
        raise _fail("tags must be a list")
    tags = sorted({check_key("tag", _text(t, "tags[]")) for t in tags})
    if tags:
        out["tags"] = tags
    parents = m.get("parents") or []
    if not isinstance(parents, list):
        raise _fail("parents must be a list")
    ps: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(parents):
        entry = _parent(p, f"parents[{i}]")
        ps[entry["digest"]] = entry
    if ps:
        out["parents"] = [ps[d] for d in sorted(ps)]
    return out


def _artifact(a: Any, where: str) -> dict[str, Any]:
    if not isinstance(a, dict):
        raise _fail(f"{where} must be a mapping with role and uri")
    unknown = sorted(set(a) - set(ARTIFACT_FIELDS))
    if unknown:
        raise _fail(f"{where} has unknown field(s) {', '.join(map(str, unknown))}")
    entry: dict[str, Any] = {
        "role": check_key("artifact role", _text(a.get("role"), f"{where}.role")),
        "uri": _text(a.get("uri"), f"{where}.uri"),
    }
    if not entry["uri"]:
        raise _fail(f"{where}.uri is empty")
    if not entry["uri"].isprintable():
        raise _fail(f"{where}.uri contains a control or line-break character")
    if "files" in a or "tree" in a or "layout" in a:  # a directory artifact (docs/format.md)
        from .trees import validate_tree_entry

        try:
            validate_tree_entry(a, entry, where)
        except UsageError as exc:
            raise _fail(exc.message.removeprefix("invalid manifest: ")) from None
        return entry
    sha = a.get("sha256")
    if sha is not None:
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise _fail(f"{where}.sha256 must be 64 lower-case hex digits")
        entry["sha256"] = sha
    size = a.get("size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _fail(f"{where}.size must be a non-negative integer")
        entry["size"] = size
    name = a.get("name")
    if name is not None:
        name = _text(name, f"{where}.name")
        if not name or "/" in name or name in (".", "..") or len(name) > 255 or not name.isprintable():
            raise _fail(f"{where}.name must be a plain file name (no '/', printable, at most 255 characters)")
        entry["name"] = name
    return entry


def _parent(p: Any, where: str) -> dict[str, Any]:
    if isinstance(p, str):
        p = {"digest": p}
    if not isinstance(p, dict):
        raise _fail(f"{where} must be a digest or a mapping with digest")
    unknown = sorted(set(p) - set(PARENT_FIELDS))
    if unknown:
        raise _fail(f"{where} has unknown field(s) {', '.join(map(str, unknown))}")
    digest = p.get("digest")
    if not isinstance(digest, str) or not is_full_digest(digest):
        raise _fail(f"{where}.digest must be sha256: and 64 lower-case hex digits")
    entry: dict[str, Any] = {"digest": check_digest(digest)}
    if p.get("relation") is not None:
        if p["relation"] not in RELATIONS:
            raise _fail(f"{where}.relation must be one of {', '.join(RELATIONS)}")
        entry["relation"] = p["relation"]
    return entry


def to_bytes(m: dict[str, Any]) -> bytes:
    """The canonical bytes of a validated manifest."""
    return canonical.dump(m, ordered=FIELDS)


def from_bytes(data: bytes, what: str = "manifest") -> dict[str, Any]:
    """Parse stored manifest bytes (strict YAML, then validated)."""
    return validate(canonical.load(data, what=what))


def from_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse the bytes of a stored object: a valid manifest whose bytes are exactly its canonical form.

    Re-dumping the parsed manifest must give the same bytes, so no two byte strings (two
    digests) describe the same content and no reader can see a field another reader misses.
    Anything else is an IntegrityError (exit 6).
    """
    fast = canonical.load_canonical(data)  # no YAML parser for what modelreg wrote; checked below
    if fast is not None:
        try:
            m = validate(fast)
            if to_bytes(m) == data:
                return m
        except (UsageError, ValueError, RecursionError):
            pass  # the full path below says what is wrong
    try:
        m = from_bytes(data, what)
        again = to_bytes(m)
    except UsageError as exc:
        raise IntegrityError(exc.message if exc.message.startswith(what) else f"{what}: {exc.message}") from None
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"{what} cannot be read: {str(exc)[:120]}") from None
    if again != data:
        raise IntegrityError(
            f"{what} is not canonical: its bytes differ from what modelreg writes for the same content "
            "(edited by hand or forged); run 'modelreg fsck'"
        )
    return m


def identity(data: bytes, what: str) -> tuple[str, str]:
    """``(name, version)`` of stored manifest bytes, read from their first two lines without a YAML parser.

    Canonical bytes always begin ``name: N`` then ``version: V``; both are checked against the
    name rules and must be written exactly as :func:`to_bytes` writes them, so this cheap read
    and a full parse can never disagree on them (IntegrityError otherwise).
    """
    lines = data.split(b"\n", 2)
    if len(lines) < 3:
        raise IntegrityError(f"{what} is not a version manifest")
    return (_header(lines[0], "name", check_model, what),
            _header(lines[1], "version", lambda v: check_version(v), what))


def _header(line: bytes, key: str, check: Callable[[str], str], what: str) -> str:
    prefix = key.encode() + b": "
    if not line.startswith(prefix):
        raise IntegrityError(f"{what} is not a canonical version manifest (no '{key}:' where it belongs)")
    try:
        text = line[len(prefix):].decode("ascii")
        value = json.loads(text) if text.startswith('"') else text
    except ValueError:
        raise IntegrityError(f"{what} has an unreadable {key}") from None
    if not isinstance(value, str):
        raise IntegrityError(f"{what} has an unreadable {key}")
    try:
        check(value)
    except UsageError as exc:
        raise IntegrityError(f"{what} declares an {exc.message}") from None
    if canonical.scalar(value) != text:
        raise IntegrityError(f"{what} is not canonical: its {key} is not written the way modelreg writes it")
    return value


class Change:
    """One difference between two manifests: a dotted path and its old and new value (immutable)."""

    __slots__ = ("path", "old", "new")
    path: str
    old: Any
    new: Any

    def __init__(self, path: str, old: Any, new: Any) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "old", old)
        object.__setattr__(self, "new", new)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Change is immutable: cannot set {key!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Change:
            return NotImplemented
        return (self.path, self.old, self.new) == (other.path, other.old, other.new)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.path, repr(self.old), repr(self.new)))

    def __repr__(self) -> str:
        return f"Change(path={self.path!r}, old={self.old!r}, new={self.new!r})"

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


def flatten(m: dict[str, Any]) -> dict[str, Any]:
    """Dotted-path view of a manifest; artifacts keyed by role and parents by digest."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k in sorted(value):
                walk(f"{prefix}.{k}" if prefix else k, value[k])
        else:
            out[prefix] = value

    for key, value in m.items():
        if key == "artifacts":
            for a in value:
                walk(f"artifacts.{a['role']}", {k: v for k, v in a.items() if k not in ("role", "files")})
                for f in a.get("files", []):  # a directory artifact: one path per file
                    out[f"artifacts.{a['role']}.files.{f['path']}"] = {k: v for k, v in f.items() if k != "path"}
        elif key == "parents":
            for p in value:
                out[f"parents.{p['digest']}"] = p.get("relation", "")
        else:
            walk(key, value)
    return out


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    """Every path whose value differs between manifests ``a`` and ``b``."""
    fa, fb = flatten(a), flatten(b)
    return [
        Change(p, fa.get(p), fb.get(p))
        for p in sorted(set(fa) | set(fb))
        if fa.get(p) != fb.get(p) or (p in fa) != (p in fb)
    ]
