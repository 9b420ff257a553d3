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


def json_dumps(data: object) -> str:
    """``json.dumps(data, indent=2, ensure_ascii=False)``, the same text, faster.

    CPython's C encoder is not used when ``indent`` is set (before 3.13), and ``--json`` of a
    10,000-version model spends most of its time there. This walks the value once, dispatching
    on the exact type, with the C string escaper; tests/test_fastpath.py checks it against
    ``json.dumps`` on many values.
    """
    from json.encoder import encode_basestring

    fast = {str: encode_basestring, int: int.__repr__, float: _float, bool: _bool, type(None): _null}
    out: list[str] = []
    _encode(data, "\n", out, fast)
    return "".join(out)


def _bool(o: bool) -> str:
    return "true" if o else "false"


def _null(o: None) -> str:
    return "null"


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == float("inf"):
        return "Infinity"
    if o == -float("inf"):
        return "-Infinity"
    return float.__repr__(o)


def _scalar(o: object, fast: dict) -> str | None:
    """A subclass of str, int or float (the exact types are in ``fast``), as json writes it; None otherwise."""
    if isinstance(o, str):
        return fast[str](o)
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        return _float(o)
    return None


def _key(k: object) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _float(k)
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


def _encode(o: object, nl: str, out: list[str], fast: dict) -> None:
    f = fast.get(type(o))
    if f is not None:
        out.append(f(o))
        return
    inner = nl + "  "
    if isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        sep = "[" + inner
        for x in o:
            out.append(sep)
            sep = "," + inner
            f = fast.get(type(x))
            if f is not None:
                out.append(f(x))
            else:
                _encode(x, inner, out, fast)
        out.append(nl + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        sep = "{" + inner
        esc = fast[str]
        for k, x in o.items():
            f = fast.get(type(x))
            if f is not None:
                out.append(f"{sep}{esc(k if type(k) is str else _key(k))}: {f(x)}")
            else:
                out.append(f"{sep}{esc(k if type(k) is str else _key(k))}: ")
                _encode(x, inner, out, fast)
            sep = "," + inner
        out.append(nl + "}")
    else:
        s = _scalar(o, fast)
        if s is None:
            raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")
        out.append(s)
