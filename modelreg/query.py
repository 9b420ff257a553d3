"""Filter expressions (``--where``) and type-aware ordering (``--sort``) over model records.

A record is the plain nested dict the registry produces for one model version::

    {"name": "faq-bot", "version": "1.2.0", "digest": "sha256:...",
     "stages": ["production"], "archived": False, "tags": ["nlp"],
     "meta": {"framework": "torch"}, "params": {"lr": 0.001},
     "metrics": {"core-v1.2": {"score": 0.91}}, "license": "MIT"}

Expressions are ``FIELD OP VALUE``:

* FIELD is a dotted path (``params.optimizer.name``, ``metrics.core-v1.2.score``).
  Keys may themselves contain dots (metric suites do), so a path is resolved
  greedily: at each level the longest key that matches a prefix of the remaining
  dotted path wins, falling back to shorter keys if the longer one leads nowhere.
* OP is one of ``== != < <= > >= ~=``; ``~=`` is a regular-expression search.
* VALUE is bare (the rest of the expression, stripped) or quoted with ``'`` or
  ``"`` (no escapes; use the other quote character). A bare VALUE is typed by the
  one rule of :mod:`modelreg.values` (``0.9`` and ``3e-4`` are numbers, ``true``,
  ``false``, ``null`` JSON's); a quoted VALUE is a string. On the name fields
  (``name``, ``version``, ``digest``, ``license``, ``stages``, ``tags``,
  ``parent_names``, ``model.task``, ``bindings.P.id``, ...) VALUE is always the text,
  never a number.

Comparison sees the record's typed value, as gates and ``show --json`` do:

1. a boolean against ``true``/``false`` (any case) compares as booleans;
2. on the ``version`` field, two versions compare in version order;
3. a number against a number compares numerically;
4. a string against a string compares in version order when both parse as
   versions, else by code point;
5. anything else (the string ``"0.90"`` against the number ``0.85``, a number
   against ``abc``) is a type mismatch: it matches only ``!=``, and is counted in
   :attr:`Condition.mismatches` so the CLI can say so.

``FIELD == null`` matches a missing or null value, ``FIELD != null`` a present one.
Otherwise a missing field (or a ``null`` / mapping where a value is expected) matches
nothing except ``!=``. A list value (``tags``, ``stages``) matches ``==`` when it
contains the value, ``!=`` when it does not, and ``~=`` or an ordering operator when
any element does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelreg.errors import UsageError
from modelreg.values import parse_value

__all__ = ["OPERATORS", "Condition", "parse_where", "resolve", "sort_key", "version_key"]

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "~=")
_OP_CHARS = frozenset("=!<>~")
_QUOTES = ("'", '"')
_FIELD_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")
# Fields whose values are names or text: VALUE is compared as the text given, never typed.
TEXT_FIELDS = frozenset({
    "name", "version", "digest", "license", "registered_at", "stages", "tags", "parent_names", "fingerprint",
})
# Text fields of the model record and of bindings (``model.task``, ``bindings.openai.id``).
MODEL_TEXT_FIELDS = frozenset({"description", "task", "subject", "owner"})
BINDING_TEXT_FIELDS = frozenset({"id", "status", "endpoint", "last_used"})
_MISSING: Any = object()

# --------------------------------------------------------------------------- versions

_SEMVER_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_RE = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<pre>{_SEMVER_IDENT}(?:\.{_SEMVER_IDENT})*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z",
    re.ASCII,
)
# PEP 440's public + local version grammar (the same shape `packaging` uses).
_PEP440_RE = re.compile(
    r"v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>\d+)?)?"
    r"(?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?"
    r"(?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\Z",
    re.IGNORECASE | re.ASCII,
)
_PRE_SPELLINGS = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc", "preview": "rc", "rc": "rc"}

# Section ranks inside a key: a dev-only release < any pre-release < the release itself.
_DEV_ONLY, _PRE, _FINAL = 0, 1, 2


def _ident(part: str) -> tuple[int, int, str]:
    """Semver pre-release identifier: numeric ones compare numerically and sort before alphanumeric ones."""
    return (0, int(part), "") if part.isdigit() else (1, 0, part)


def _local_part(part: str) -> tuple[int, int, str]:
    """PEP 440 local segment: alphanumeric segments sort before numeric ones."""
    return (1, int(part), "") if part.isdigit() else (0, 0, part.lower())


def _release(parts: list[int]) -> tuple[int, ...]:
    while len(parts) > 1 and parts[-1] == 0:  # 1.0 == 1.0.0
        parts.pop()
    return tuple(parts)


def version_key(s: str) -> tuple | None:
    """A sortable key for a semver 2.0 or PEP 440 version string, or None if `s` is neither.

    Keys of different versions compare in version order: ``1.9 < 1.10``,
    ``1.0.0-rc.1 < 1.0.0``, ``1.0.dev2 < 1.0a1 < 1.0rc1 < 1.0 < 1.0.post1``,
    ``2.0.0 > 1.99.0``, epochs (``1!0.1 > 2.0``) first. Trailing zero release
    components are insignificant (``1.0 == 1.0.0``). A PEP 440 pre-release
    ``rc1`` is the same key as the semver ``-rc.1``. Semver build metadata and
    PEP 440 local labels (``+...``) only break ties (PEP 440 order), so sorting
    stays total. A leading ``v`` is accepted.
    """
    if not isinstance(s, str):
        return None
    s = s.strip()
    m = _SEMVER_RE.match(s)
    if m:
        release = _release([int(m["major"]), int(m["minor"]), int(m["patch"])])
        if m["pre"]:
            pre = (_PRE, *(_ident(p) for p in m["pre"].split(".")))
        else:
            pre = (_FINAL,)
        local = (1, *(_local_part(p) for p in m["build"].split("."))) if m["build"] else (0,)
        return (0, release, pre, -1, (1, 0), local)
    m = _PEP440_RE.match(s)
    if not m:
        return None
    release = _release([int(p) for p in m["release"].split(".")])
    post_n = m["post_n1"] or m["post_n2"] or ("0" if m["post_l"] else None)
    post = int(post_n) if post_n is not None else -1
    dev = (0, int(m["dev_n"] or 0)) if m["dev_l"] else (1, 0)  # no dev sorts after any dev
    if m["pre_l"]:
        pre = (_PRE, _ident(_PRE_SPELLINGS[m["pre_l"].lower()]), _ident(str(int(m["pre_n"] or 0))))
    elif m["dev_l"] and post < 0:
        pre = (_DEV_ONLY,)
    else:
        pre = (_FINAL,)
    local = (1, *(_local_part(p) for p in re.split(r"[-_.]", m["local"]))) if m["local"] else (0,)
    return (int(m["epoch"] or 0), release, pre, post, dev, local)


# --------------------------------------------------------------------------- values


def resolve(record: dict, path: str) -> Any:
    """The value at dotted `path` in `record`, or the module's missing sentinel.

    Keys containing dots are honoured: the longest key matching a prefix of the
    remaining path is tried first, then shorter ones.
    """
    return _resolve(record, path.split("."))


def _resolve(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    if not isinstance(node, dict):
        return _MISSING
    for k in range(len(parts), 0, -1):
        key = ".".join(parts[:k])
        if key in node:
            found = _resolve(node[key], parts[k:])
            if found is not _MISSING:
                return found
    return _MISSING


def is_missing(value: Any) -> bool:
    """True for what `resolve` returns when a path is absent."""
    return value is _MISSING


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"true": True, "false": False}.get(v.strip().lower()) if isinstance(v, str) else None


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _sign(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _compare(a: Any, literal: Any, text: str, is_version_field: bool) -> int | None:
    """Three-way compare record scalar `a` with the expression's typed `literal` (written `text`);
    None when they are not comparable (a type mismatch, NaN)."""
    if isinstance(a, bool):
        b = _as_bool(literal)
        return None if b is None else _sign(a, b)
    if is_version_field:
        ka, kb = version_key(_text(a)), version_key(text)
        if ka is not None and kb is not None:
            return _sign(ka, kb)
    if _is_number(a):
        if not _is_number(literal) or a != a or literal != literal:  # NaN is neither equal nor ordered
            return None
        return _sign(a, literal)
    if isinstance(a, str) and isinstance(literal, str):
        ka, kb = version_key(a), version_key(literal)
        if ka is not None and kb is not None:
            return _sign(ka, kb)
        return _sign(a, literal)
    return None


_TESTS: dict[str, Callable[[int], bool]] = {
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """One parsed ``FIELD OP VALUE`` filter.

    ``value`` is the text of VALUE (quotes removed); ``literal`` is VALUE typed by the one
    rule (a quoted VALUE, or any VALUE on a :data:`TEXT_FIELDS` field, is the text).
    ``mismatches`` counts records whose value could not be compared with ``literal``
    (a string against a number...), with the first such value.
    """

    field: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    literal: Any = field(default=_MISSING, compare=False, repr=False)
    mismatches: dict[str, Any] = field(default_factory=lambda: {"count": 0, "example": None},
                                       compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.literal is _MISSING:
            literal = parse_value(self.value)
            if self._text_field() and literal is not None:  # names are text; `null` still means "no value"
                literal = self.value
            object.__setattr__(self, "literal", literal)

    def _text_field(self) -> bool:
        parts = self.field.split(".")
        return (self.field in TEXT_FIELDS or parts[0] == "parents"
                or (parts[0] == "model" and len(parts) == 2 and parts[1] in MODEL_TEXT_FIELDS)
                or (parts[0] == "bindings" and len(parts) >= 3 and parts[-1] in BINDING_TEXT_FIELDS))

    def __str__(self) -> str:
        return f"{self.field} {self.op} {self.value!r}"

    def matches(self, record: dict) -> bool:
        """Whether `record` satisfies this condition (see the module docstring for the rules)."""
        v = resolve(record, self.field)
        if self.literal is None and self.op in ("==", "!="):
            absent = v is _MISSING or v is None
            return absent if self.op == "==" else not absent
        if v is _MISSING or v is None or isinstance(v, dict):
            return self.op == "!="
        if isinstance(v, (list, tuple, set, frozenset)):
            items = [x for x in v if x is not None and not isinstance(x, (dict, list))]
            if self.op == "!=":
                return not any(self._test(x, "==") for x in items)
            return any(self._test(x, self.op) for x in items)
        return self._test(v, self.op)

    def mismatch_note(self) -> str | None:
        """One line saying that values could not be compared with VALUE, and what to type instead."""
        n, example = self.mismatches["count"], self.mismatches["example"]
        if not n:
            return None
        from modelreg.values import describe, is_number

        what = f"{n} value(s) of {self.field} could not be compared with {describe(self.literal)} (e.g. {describe(example)})"
        if isinstance(example, str) and is_number(self.literal):
            return f"{what}; quote VALUE to compare text: --where \"{self.field} {self.op} '{self.value}'\""
        if is_number(example) and isinstance(self.literal, str):
            return f"{what}; numbers compare with a bare number VALUE (0.9, 3e-4)"
        return what

    def _test(self, v: Any, op: str) -> bool:
        if op == "~=":
            assert self.regex is not None
            return self.regex.search(_text(v)) is not None
        c = _compare(v, self.literal, self.value, self.field == "version")
        if c is None:
            if self.mismatches["count"] == 0 or (isinstance(v, str) and not isinstance(self.mismatches["example"], str)):
                self.mismatches["example"] = v  # a string is the likeliest mistake: show one
            self.mismatches["count"] += 1
            return op == "!="
        return _TESTS[op](c)


def _bad(expr: str, what: str, pos: int, *, detail: str = "") -> UsageError:
    msg = f"bad --where '{expr}': {what} at position {pos} ({expr[pos:]!r})"
    return UsageError(msg + (f": {detail}" if detail else ""))


def _check_field(expr: str, fld: str, start: int, option: str = "--where") -> None:
    if _FIELD_RE.match(fld):
        return
    for i, ch in enumerate(fld):
        if not (ch.isascii() and (ch.isalnum() or ch in "_-.")):
            raise UsageError(
                f"bad {option} '{expr}': invalid character {ch!r} in field at position {start + i} "
                f"({expr[start + i:]!r})"
            )
    # Only dots can be wrong now: leading, trailing or doubled.
    i = next(i for i, ch in enumerate(fld) if ch == "." and (i == 0 or i == len(fld) - 1 or fld[i + 1] == "."))
    raise UsageError(
        f"bad {option} '{expr}': empty path segment in field at position {start + i} ({expr[start + i:]!r})"
    )


def parse_where(expr: str) -> Condition:
    """Parse ``FIELD OP VALUE``; raise UsageError pointing at the first bad part."""
    if not expr.strip():
        raise UsageError(f"bad --where '{expr}': empty expression, expected FIELD OP VALUE")
    n = len(expr)
    i = 0
    while i < n and expr[i].isspace():
        i += 1
    j = i
    while j < n and expr[j] not in _OP_CHARS and not expr[j].isspace() and expr[j] not in _QUOTES:
        j += 1
    fld = expr[i:j]
    if not fld:
        raise _bad(expr, "missing field", i)
    _check_field(expr, fld, i)

    k = j
    while k < n and expr[k].isspace():
        k += 1
    m = k
    while m < n and expr[m] in _OP_CHARS:
        m += 1
    op = expr[k:m]
    if not op:
        if k == n:
            raise UsageError(f"bad --where '{expr}': missing operator after {fld!r} at position {k}")
        raise _bad(expr, "expected an operator (== != < <= > >= ~=)", k)
    if op not in OPERATORS:
        raise _bad(expr, "unknown operator", k)

    p = m
    while p < n and expr[p].isspace():
        p += 1
    if p == n:
        raise UsageError(f"bad --where '{expr}': missing value after {op!r} at position {p}")
    if expr[p] in _QUOTES:
        close = expr.find(expr[p], p + 1)
        if close < 0:
            raise _bad(expr, "unterminated quote", p)
        value = expr[p + 1 : close]
        rest = close + 1
        while rest < n and expr[rest].isspace():
            rest += 1
        if rest < n:
            raise _bad(expr, "unexpected text after the quoted value", rest)
    else:
        value = expr[p:].rstrip()

    if expr[p] not in _QUOTES:
        try:
            literal = parse_value(value, "value")
        except UsageError as exc:
            raise _bad(expr, "bad value", p, detail=exc.message) from None
        if literal is None and op not in ("==", "!=", "~="):
            raise _bad(expr, "null compares only with == or !=", p)
    regex = None
    if op == "~=":
        try:
            regex = re.compile(value)
        except re.error as e:
            raise _bad(expr, "invalid regex", p, detail=str(e)) from None
    cond = Condition(fld, op, value, regex)
    if expr[p] in _QUOTES:
        object.__setattr__(cond, "literal", value)
    return cond


# --------------------------------------------------------------------------- sorting

# Ranks keep the key total across mixed types: booleans, then numbers, then
# versions, then other strings, then lists (element-wise).
_R_BOOL, _R_NUM, _R_VER, _R_STR, _R_LIST = range(5)


def _scalar_key(v: Any, is_version_field: bool) -> tuple:
    if isinstance(v, bool):
        return (_R_BOOL, v)
    if is_version_field:
        k = version_key(_text(v))
        if k is not None:
            return (_R_VER, k)
    if _is_number(v):
        return (_R_NUM, v) if v == v else (_R_STR, _text(v))
    k = version_key(_text(v))
    if k is not None:
        return (_R_VER, k)
    return (_R_STR, _text(v))


def _value_key(v: Any, is_version_field: bool) -> tuple | None:
    if v is _MISSING or v is None or isinstance(v, dict):
        return None
    if isinstance(v, (list, tuple)):
        items = [x for x in v if x is not None and not isinstance(x, (dict, list, tuple))]
        if not items:
            return None
        return (_R_LIST, tuple(_scalar_key(x, is_version_field) for x in items))
    return _scalar_key(v, is_version_field)


@functools.total_ordering
class _SortKey:
    __slots__ = ("key", "descending")

    def __init__(self, key: tuple | None, descending: bool) -> None:
        self.key = key
        self.descending = descending

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SortKey) and self.key == other.key

    def __lt__(self, other: _SortKey) -> bool:
        if self.key is None:  # missing values sort last in both directions
            return False
        if other.key is None:
            return True
        return other.key < self.key if self.descending else self.key < other.key


def sort_key(spec: str) -> Callable[[dict], Any]:
    """A key function for ``sorted(records, key=sort_key("-metrics.core-v1.score"))``.

    A leading ``-`` sorts descending. Ordering is the same type-aware order
    ``--where`` uses; records where the field is missing sort last either way.
    """
    s = spec.strip()
    descending = s.startswith("-")
    fld = s[1:].strip() if descending else s
    if not fld:
        raise UsageError(f"bad --sort '{spec}': missing field")
    _check_field(spec, fld, spec.index(fld), option="--sort")
    is_version = fld == "version"

    def key(record: dict) -> _SortKey:
        return _SortKey(_value_key(resolve(record, fld), is_version), descending)

    return key
