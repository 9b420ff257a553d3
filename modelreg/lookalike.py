"""Warn before registering a model whose name is easy to confuse with an existing one.

Two names look alike when they are one edit apart (insert, delete, substitute,
or swap two adjacent characters: Damerau-Levenshtein distance 1), or equal
after `fold`, which erases case, separators and the usual glyph swaps.
``faq-bot``, ``faq_bot``, ``faqbot``, ``FAQ-b0t`` all look alike;
``bert-base`` and ``bert-large`` do not.

The check is one linear pass over the existing names: each name is folded once,
and the edit-distance test runs only on names whose length is within one of the
new name's, and stops at the second difference.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["find_lookalike", "fold", "within_one_edit"]

_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "-": None, "_": None, ".": None})


def fold(name: str) -> str:
    """Lower-case, ``0``->``o``, ``1``/``l``/``i``->``l``, and drop ``-``, ``_``, ``.``."""
    return name.lower().translate(_FOLD)


def within_one_edit(a: str, b: str) -> bool:
    """True if `a` and `b` differ by at most one insertion, deletion, substitution or adjacent swap."""
    la, lb = len(a), len(b)
    if la > lb:
        a, b, la, lb = b, a, lb, la
    if lb - la > 1:
        return False
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if i == la:  # a is b, or a prefix of b one shorter
        return True
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:  # substitution
            return True
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]  # swap
    return a[i:] == b[i + 1 :]  # b has one extra character at i


def find_lookalike(new: str, existing: Iterable[str]) -> str | None:
    """An existing name (other than `new` itself) that looks like `new`, or None.

    A name equal after folding is preferred over one merely an edit away; among
    equals, the first in `existing` order wins. Call it for names not yet in the
    registry: a new version of an existing model is not a look-alike of itself.
    """
    target = fold(new)
    n = len(new)
    near: str | None = None
    for name in existing:
        if name == new:
            continue
        if fold(name) == target:
            return name
        if near is None and abs(len(name) - n) <= 1 and within_one_edit(new, name):
            near = name
    return near
