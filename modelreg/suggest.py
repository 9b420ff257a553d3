"""Did-you-mean suggestions, and one-line usage messages for mistyped commands and options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["closest", "did_you_mean", "usage_message"]


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates most like ``word``: same after folding case and separators, one edit
    away, a prefix either way; if none, difflib's close matches. Best first, at most ``n``."""
    import difflib

    from .lookalike import fold, within_one_edit

    pool = sorted(set(candidates) - {word})
    if not word or not pool:
        return []
    folded = fold(word)
    ranked: list[str] = []
    for test in (
        lambda c: fold(c) == folded,
        lambda c: len(word) >= 4 and within_one_edit(word.lower(), c.lower()),
        lambda c: len(word) >= 3 and (c.startswith(word) or word.startswith(c)),
    ):
        ranked += [c for c in pool if c not in ranked and test(c)]
    if not ranked:  # nothing near by edit or prefix: difflib's similar-looking words
        ranked = difflib.get_close_matches(word, pool, n=n, cutoff=0.5)
    return ranked[:n]


def did_you_mean(word: str, candidates: Iterable[str], quote: str = "'") -> str:
    """``" (did you mean 'x'?)"`` or ``" (did you mean 'x' or 'y'?)"``, or ``""`` when nothing is close:
    put right after the unknown word, as config.yaml's unknown keys are."""
    found = closest(word, candidates)
    if not found:
        return ""
    shown = [f"{quote}{c}{quote}" for c in found]
    return " (did you mean " + (shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]) + "?)"


def usage_message(exc: Any) -> str:
    """A click usage error as one modelreg line: lower-case start, the closest commands or
    options, and the help of the command it concerns (``see 'modelreg resolve --help'``)."""
    import re

    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None and ctx.command_path else "modelreg"
    helper = f"; see '{path} --help'"
    name = type(exc).__name__
    if name == "NoSuchOption":
        opts = [o for p in ctx.command.params for o in (*p.opts, *p.secondary_opts)] if ctx is not None else []
        opts += ["--help"]
        return f"no such option {exc.option_name} for '{path}'" + did_you_mean(exc.option_name, opts) + helper
    text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    m = re.match(r"No such command '([^']*)'", text)
    if m and ctx is not None:
        commands = [c for c in ctx.command.list_commands(ctx) if not getattr(ctx.command.get_command(ctx, c), "hidden", False)]
        return f"unknown command '{m.group(1)}' for '{path}'" + did_you_mean(m.group(1), commands) + helper
    text = text.strip().splitlines()[0] if text.strip() else name
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    return text.rstrip(".") + helper
