"""The one rule for typed ``K=V`` values, and how a typed value is shown as text.

Every value a user types as text goes through :func:`parse_value`: ``-p``/``-m`` of
``register``, ``metrics set`` pairs, ``bind -p``, the plain (unquoted) scalars under
``params:`` and ``meta:`` of a ``register --from-file`` YAML or JSON file, and the VALUE of
a ``--where`` expression. The rule (docs/format.md, "Typed values"):

* a JSON number literal is a number: ``0.90``, ``3e-4``, ``1e3``, ``-2``, ``0`` (an int
  when it has no fraction and no exponent, else a float);
* ``true``, ``false`` and ``null`` are JSON's boolean and null;
* a value in double quotes is the JSON string inside them (``"0.90"``, ``"a\\tb"``), a
  value in single quotes the text between them (``'0.90'``);
* anything else is the string as typed: ``+1``, ``.5``, ``1.``, ``0755``, ``1_000``,
  ``NaN``, ``inf``, ``True``, ``yes``, ``1.2.3``, ``abc``, the empty string.

Version and model names are never values: they stay the text given. A typed value is
shown by :func:`display` so that typing the shown text back as ``K=V`` gives the same
value: numbers in their shortest form (``0.90`` is shown ``0.9``), strings bare unless
the rule would read them as something else (the string ``"0.90"`` is shown quoted).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import UsageError

__all__ = [
    "NUMBER_RE", "describe", "display", "is_number", "legacy_equal", "parse_pairs", "parse_value", "type_tree",
]

# JSON's number grammar (RFC 8259), nothing more: no "+", no ".5", no "1.", no leading zeros.
NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z", re.ASCII)
_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)\Z", re.ASCII)
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def parse_value(text: str, what: str = "value") -> Any:
    """``text`` typed by the one rule (see the module docstring); UsageError only for a number
    too large to be finite (``1e400``) or a double-quoted value that is not a JSON string."""
    if not isinstance(text, str):
        raise TypeError(f"parse_value takes a str, not {type(text).__name__}")
    if text in _WORDS:
        return _WORDS[text]
    if NUMBER_RE.match(text):
        if _INT_RE.match(text):
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            raise UsageError(f"{what} {text!r} is too large for a number; quote it to store the text: '\"{text}\"'")
        return number
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            raise UsageError(f"{what} {text!r} is not a valid double-quoted JSON string "
                             "(escape \\ and \" inside it, or use single quotes)") from None
        if not isinstance(value, str):  # e.g. '"a" + "b"' cannot load as one string; be safe
            raise UsageError(f"{what} {text!r} is not a valid double-quoted JSON string")
        return value
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    return text


def parse_pairs(pairs: list[str] | tuple[str, ...], what: str) -> dict[str, Any]:
    """``K=V`` pairs into a mapping, V typed by :func:`parse_value`; a dotted K nests
    (``optimizer.name=adamw`` -> ``{"optimizer": {"name": "adamw"}}``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{what} {pair!r}: expected KEY=VALUE")
        parts = key.split(".")
        if any(not p for p in parts):
            raise UsageError(f"{what} {pair!r}: empty part in key {key!r}")
        value = parse_value(raw, f"{what} {key}")
        node = out
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise UsageError(f"{what} {pair!r}: {part!r} is already a value")
            node = nxt
        if parts[-1] in node:
            raise UsageError(f"{what} {pair!r}: key given twice")
        node[parts[-1]] = value
    return out


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def display(value: Any) -> str:
    """A value as text such that ``K=<text>`` types back to the same value.

    Numbers, booleans and null as JSON (``0.9``, ``true``, ``null``); a string bare when
    :func:`parse_value` reads it back unchanged (``torch``, ``1.2.3``), else as a JSON string
    (``"0.90"``, ``"true"``, ``""``); lists and mappings as compact JSON.
    """
    if isinstance(value, str):
        try:
            same = parse_value(value) == value
        except UsageError:
            same = False
        bare = same and value != "" and value == value.strip() and value.isprintable()
        return value if bare else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def describe(value: Any) -> str:
    """What a value is, for messages: ``the string "0.90"``, ``a boolean (true)``, ``null``, ``the number 0.9``."""
    if isinstance(value, bool):
        return f"a boolean ({display(value)})"
    if value is None:
        return "null"
    if is_number(value):
        return f"the number {display(value)}"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def type_tree(value: Any, text_paths: frozenset[str] = frozenset(), path: str = "") -> Any:
    """Apply the rule to a tree read by ``canonical.load(..., plain=True)``.

    Plain (unquoted) YAML scalars arrive as :class:`canonical.Plain` strings and are typed
    by :func:`parse_value`; quoted scalars are already strings. Scalars at a path in
    ``text_paths`` (``version``, ``tags[]``, ``artifacts[].uri``...) keep their text.
    Mapping keys are always text.
    """
    from .canonical import Plain

    if isinstance(value, dict):
        return {str(k): type_tree(v, text_paths, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [type_tree(v, text_paths, f"{path}[]") for v in value]
    if isinstance(value, Plain):
        return str(value) if path in text_paths else parse_value(str(value), path or "value")
    return value


def legacy_equal(old: Any, new: Any) -> bool:
    """Whether ``old`` (read from a manifest written before typed values) is ``new`` once
    its strings are typed by the rule: ``{"lr": "3e-4"}`` and ``{"lr": 0.0003}`` are; a
    string that does not spell ``new`` is not."""
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(legacy_equal(old[k], new[k]) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(legacy_equal(a, b) for a, b in zip(old, new))
    if type(old) is type(new) and old == new:
        return True
    if isinstance(old, str) and not isinstance(new, str):
        try:
            typed = parse_value(old)
        except UsageError:
            return False
        return type(typed) is type(new) and typed == new
    return False


# Manifest fields that are names or text, never values: they keep the text of a plain scalar.
MANIFEST_TEXT_PATHS = frozenset({
    "name", "version", "description", "license", "tags[]", "parents[]", "parents[].digest", "parents[].relation",
    "artifacts[].role", "artifacts[].uri", "artifacts[].sha256",
})


def load_manifest(data: bytes, what: str) -> Any:
    """A user's manifest file (YAML or JSON) with its values typed by the one rule: plain
    scalars under ``params``/``meta`` (and artifact sizes) by :func:`parse_value`, names and
    text fields kept as written (``version: 1.10`` is the version ``"1.10"``)."""
    from . import canonical

    return type_tree(canonical.load(data, what=what, plain=True), MANIFEST_TEXT_PATHS)
