"""Untrusted text made safe to print: control characters and terminal escapes shown, never obeyed.

Reasons, actors, tags, metric keys, URIs and file names come from the registry, which
arrives by git. Printed raw, an escape sequence could rewrite the terminal, a newline could
forge an extra line of ``log`` output or an extra variable in ``$GITHUB_ENV``, a bidi
override could make text read differently from what it is. Every human-readable line
goes through :func:`line` (or :func:`block` for multi-line text such as a manifest);
JSON output goes through :func:`json_text`.

Every character that is not printable (``str.isprintable``: controls, DEL, C1, format and
bidi controls, line and paragraph separators, unassigned code points) is written the way
Python's ``repr`` writes it (``\\n``, ``\\x1b``, ``\\u202e``), like ``trust.settings.shown``.
"""

from __future__ import annotations


def _escape(c: str) -> str:
    return c if c.isprintable() else repr(c)[1:-1]


def line(text: str) -> str:
    """One line of output: every character that is not printable (newline and tab included) escaped."""
    if text.isprintable():
        return text
    return "".join(_escape(c) for c in text)


def block(text: str) -> str:
    """Multi-line output: like :func:`line`, but newlines and tabs stay."""
    return "\n".join("\t".join(line(part) for part in row.split("\t")) for row in text.split("\n"))


def json_text(text: str) -> str:
    """Serialized JSON (``ensure_ascii=False``) with every unprintable character it left raw escaped as ``\\uXXXX``."""
    if text.replace("\n", "").isprintable():  # the usual case, at C speed
        return text
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)


def _json_escape(c: str) -> str:
    n = ord(c)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"
