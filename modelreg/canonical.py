"""Canonical YAML: one byte sequence for one content, and a strict safe reader.

Writing rules (see docs/format.md, "Canonical YAML"):
- block style only, two-space indent, UTF-8, ``\\n`` line ends, no aliases, no folding;
- mapping keys sorted, except that ``ordered`` keys lead at the top level in the given order;
- a string is written plain only when it is unambiguous under both YAML 1.1 and 1.2
  (``[A-Za-z_][A-Za-z0-9_./-]*`` and not a boolean/null word); otherwise it is written
  double-quoted with JSON escapes. So ``1.10``, ``yes``, ``on``, ``2024-01-02``, ``0755``
  and ``1e3`` stay strings;
- integers in decimal; floats by ``repr`` with a ``.0`` added before an exponent when
  needed, so YAML 1.1 readers see a float; NaN and infinities are refused;
- empty mappings and lists are written ``{}`` and ``[]``.

Reading rejects anchors/aliases, duplicate keys, non-UTF-8 input, tags other than
the plain core types, and documents larger than a size cap.
"""

from __future__ import annotations

import json
import math
import re
TYPE_CHECKING = False  # typing is not imported at run time: this module is on the start-up path
if TYPE_CHECKING:
    from typing import Any

from .errors import UsageError

MAX_BYTES = 1 << 20  # 1 MiB: a manifest is metadata, never payload

_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*\Z")
# Characters YAML readers refuse, fold or take as line breaks: written as \uXXXX escapes.
_UNSAFE_RE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
MAX_DEPTH = 100  # libyaml's C loader crashes on very deep flow nesting; manifests are shallow
_SPECIAL_WORDS = frozenset(
    "y n yes no on off true false null nan inf infinity".split()
)


class CanonicalError(UsageError):
    """Data that cannot be written canonically or YAML that cannot be read safely."""


class Plain(str):
    """A plain (unquoted) YAML scalar read with ``load(..., plain=True)``: typed later by
    :func:`modelreg.values.type_tree`, so a user's file follows the one rule for values."""


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalError(f"cannot store {value!r}: only finite numbers are allowed")
        text = repr(value)
        if "e" in text and "." not in text:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"
        return text
    if isinstance(value, str):
        if _PLAIN_RE.match(value) and value.lower() not in _SPECIAL_WORDS and not value.endswith(":"):
            return value
        return _UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))
    raise CanonicalError(f"cannot store a value of type {type(value).__name__}")


def scalar(value: Any) -> str:
    """The canonical text of one scalar (what :func:`dump` writes after ``key: ``)."""
    return _scalar(value)


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise CanonicalError(f"mapping keys must be strings, got {key!r}")
    return _scalar(key)


def _emit(value: Any, indent: int, out: list[str], ordered: tuple[str, ...] = ()) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        head = [k for k in ordered if k in value]
        rest = sorted(k for k in value if k not in ordered)
        for k in rest:
            if not isinstance(k, str):
                raise CanonicalError(f"mapping keys must be strings, got {k!r}")
        for k in head + rest:
            v = value[k]
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_key(k)}:\n")
                _emit(v, indent + 1 if isinstance(v, dict) else indent, out)
            else:
                out.append(f"{pad}{_key(k)}: {_inline(v)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                lines: list[str] = []
                _emit(item, indent + 1, lines)
                first = lines[0]
                lines[0] = f"{pad}- {first[len(pad) + 2:]}"
                out.extend(lines)
            elif isinstance(item, list) and item:
                lines = []
                _emit(item, indent + 1, lines)
                lines[0] = f"{pad}- {lines[0][len(pad) + 2:]}"
                out.extend(lines)
            else:
                out.append(f"{pad}- {_inline(item)}\n")
    else:
        raise CanonicalError("the top level must be a mapping")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump(data: dict[str, Any], ordered: tuple[str, ...] = ()) -> bytes:
    """Return the canonical YAML bytes of a mapping."""
    if not isinstance(data, dict):
        raise CanonicalError("the top level must be a mapping")
    if not data:
        return b"{}\n"
    out: list[str] = []
    _emit(data, 0, out, ordered)
    return "".join(out).encode("utf-8")


def _loader_class() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def refuse(tag: str, hint: str = "") -> Any:
        def construct(loader: Any, node: Any) -> Any:
            raise CanonicalError(f"YAML type {tag} is not allowed{hint}")

        return construct

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        """SafeLoader that refuses duplicate and merge keys (anchors are refused before parsing)."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise CanonicalError("YAML merge keys ('<<') are not allowed")
                key = self.construct_object(key_node, deep=True)
                try:
                    hashable = key in seen
                except TypeError:
                    raise CanonicalError("mapping keys must be plain scalars") from None
                if hashable:
                    raise CanonicalError(f"duplicate key {key!r}")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    for tag in ("binary", "set", "omap", "pairs"):
        StrictLoader.add_constructor(f"tag:yaml.org,2002:{tag}", refuse(f"!!{tag}"))
    StrictLoader.add_constructor(
        "tag:yaml.org,2002:timestamp", refuse("timestamp", " (quote dates and times: \"2024-01-02\")")
    )
    return StrictLoader


def _plain_loader_class(strict: type) -> type:
    class PlainLoader(strict):  # type: ignore[misc, valid-type]
        """StrictLoader that leaves plain scalars untyped (:class:`Plain`); quoted ones are strings."""

        yaml_implicit_resolvers: dict[Any, Any] = {}

    def construct_str(loader: Any, node: Any) -> Any:
        value = loader.construct_scalar(node)
        if node.style:  # quoted or block scalar: a string as written ('' or None is plain)
            return value
        return Plain(value) if value != "" else None

    PlainLoader.add_constructor("tag:yaml.org,2002:str", construct_str)
    return PlainLoader


_LOADER: type | None = None
_PLAIN_LOADER: type | None = None


def load(data: bytes, *, what: str = "YAML document", plain: bool = False) -> Any:
    """Parse YAML bytes strictly (size cap, UTF-8, no aliases, no duplicate keys).

    With ``plain``, plain scalars are returned as :class:`Plain` strings (an empty one as
    None) instead of being typed by YAML 1.1's rules (``yes``, ``0755``, ``1e3``...).
    """
    global _LOADER, _PLAIN_LOADER
    if len(data) > MAX_BYTES:
        raise CanonicalError(f"{what} is larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CanonicalError(f"{what} is not valid UTF-8") from None
    if "&" in text or "*" in text:
        _reject_anchors(text, what)
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _reject_deep_nesting(text, what)
    import yaml

    if _LOADER is None:
        _LOADER = _loader_class()
    if plain and _PLAIN_LOADER is None:
        _PLAIN_LOADER = _plain_loader_class(_LOADER)
    try:
        loader = (_PLAIN_LOADER if plain else _LOADER)(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except CanonicalError as exc:
        raise CanonicalError(f"{what}: {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CanonicalError(f"{what} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise CanonicalError(f"{what} is nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        raise CanonicalError(f"{what} holds a value that cannot be read: {str(exc)[:100]}") from None


def _reject_deep_nesting(text: str, what: str) -> None:
    depth = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise CanonicalError(f"{what} is nested more than {MAX_DEPTH} levels deep")
        elif ch in "]}":
            depth -= 1


def _reject_anchors(text: str, what: str) -> None:
    import yaml

    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise CanonicalError(f"{what}: YAML anchors and aliases are not allowed")
    except yaml.YAMLError:
        return  # the full load reports syntax errors with a position


def header(data: bytes, keys: tuple[str, ...]) -> dict[str, Any]:
    """Read top-level scalar ``keys`` from canonical bytes without a YAML parser.

    Only valid for bytes written by :func:`dump` (callers verify the hash first).
    """
    found: dict[str, Any] = {}
    for line in data.decode("utf-8").split("\n"):
        if not line or line[0] in " -":
            continue
        key, sep, value = line.partition(": ")
        if sep and key in keys:
            found[key] = json.loads(value) if value.startswith('"') else value
            if len(found) == len(keys):
                break
    return found


# ------------------------------------------------------------------ the canonical subset, fast
_DECODER = json.JSONDecoder()
_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")


class _NotCanonical(Exception):
    pass


def load_canonical(data: bytes) -> Any:
    """Parse bytes written by :func:`dump` without a YAML parser; None for anything it does not read.

    Only a shortcut: the caller must check that :func:`dump` of the result gives back ``data``
    exactly, and use :func:`load` otherwise. For canonical bytes the result is then what
    :func:`load` returns (canonical YAML round-trips through the strict loader), so fsck and the
    index read manifests about twice as fast without a second opinion on what they say.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n") or text == "{}\n":
        return {} if text == "{}\n" else None
    lines = text[:-1].split("\n")
    try:
        value, i = _block(lines, 0, 0)
    except (_NotCanonical, ValueError, IndexError, RecursionError):
        return None
    return value if i == len(lines) and isinstance(value, dict) else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split_key(s: str) -> tuple[str, str] | None:
    """``(key, rest)`` of ``KEY: rest`` / ``KEY:``; None if ``s`` is not a mapping entry."""
    if s.startswith('"'):
        key, end = _DECODER.raw_decode(s)
        if not isinstance(key, str):
            raise _NotCanonical
    else:
        end = s.find(":")
        if end <= 0:
            return None
        key = s[:end]
    if s[end:end + 1] != ":":
        return None
    rest = s[end + 1:]
    if rest and not rest.startswith(" "):
        raise _NotCanonical
    return key, rest[1:]


def _value(tok: str) -> Any:
    if tok.startswith('"'):
        v, end = _DECODER.raw_decode(tok)
        if end != len(tok) or not isinstance(v, str):
            raise _NotCanonical
        return v
    if tok == "{}":
        return {}
    if tok == "[]":
        return []
    if tok == "null":
        return None
    if tok == "true":
        return True
    if tok == "false":
        return False
    if _PLAIN_RE.match(tok):
        return tok
    if _INT_RE.match(tok):
        return int(tok)
    return float(tok)  # ValueError for anything else: not canonical


def _block(lines: list[str], i: int, indent: int, depth: int = 0) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise _NotCanonical
    pad = " " * indent
    if lines[i].startswith(pad + "- "):
        out: list[Any] = []
        while i < len(lines) and lines[i].startswith(pad + "- ") and _indent(lines[i]) == indent:
            item = lines[i][indent + 2:]
            if item.startswith("- ") or _split_key(item) is not None:  # a nested list or a mapping
                lines[i] = pad + "  " + item
                v, i = _block(lines, i, indent + 2, depth + 1)
            else:
                v, i = _value(item), i + 1
            out.append(v)
        return out, i
    obj: dict[str, Any] = {}
    while i < len(lines) and _indent(lines[i]) == indent and not lines[i].startswith(pad + "- "):
        kv = _split_key(lines[i][indent:])
        if kv is None or kv[0] in obj:
            raise _NotCanonical
        key, rest = kv
        if rest:
            obj[key], i = _value(rest), i + 1
            continue
        nxt = lines[i + 1]
        if nxt.startswith(pad + "- ") and _indent(nxt) == indent:
            obj[key], i = _block(lines, i + 1, indent, depth + 1)
        elif _indent(nxt) == indent + 2:
            obj[key], i = _block(lines, i + 1, indent + 2, depth + 1)
        else:
            raise _NotCanonical
    if not obj:
        raise _NotCanonical
    return obj, i
