"""Untrusted text made safe to print: control characters and terminal escapes shown, never obeyed.

Reasons, actors, tags, metric keys, URIs and file names come from the registry, which
arrives by git. Printed raw, an escape sequence could rewrite the terminal, a newline could
forge an extra line of ``log`` output or an extra variable in ``$GITHUB_ENV``, a bidi
override could make text read differently from what it is. Every human-readable line
goes through :func:`line` (or :func:`block` for multi-line text such as a manifest);
JSON output goes through :func:`json_text`.
"""

from __future__ import annotations

import re

# DEL, C1 controls, zero-width and bidi controls, line/paragraph separators, BOM
_OTHERS = "\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_LINE = re.compile(f"[\x00-\x1f{_OTHERS}]")  # every C0 control, newline and tab included
_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # all but tab and newline
_JSON = re.compile(f"[{_OTHERS}]")  # json.dumps already escapes C0


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def line(text: str) -> str:
    """One line of output: every control character (newline and tab included) escaped as ``\\xNN``."""
    return _LINE.sub(_escape, text)


def block(text: str) -> str:
    """Multi-line output: like :func:`line`, but newlines and tabs stay."""
    return _BLOCK.sub(_escape, text)


def json_text(text: str) -> str:
    """Serialized JSON with the characters ``json.dumps(ensure_ascii=False)`` leaves raw escaped too."""
    return _JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
