"""``register NAME --next patch|minor|major``: the next semantic version after a model's highest.

Only release versions count: ``MAJOR.MINOR.PATCH`` (also ``MAJOR.MINOR`` and ``MAJOR``, read with
the missing parts 0), with an optional leading ``v`` that the next version keeps. Pre-releases
(``1.3.0-rc.1``), build metadata and other names (``2024-05``, ``exp-a``) are ignored. With no
release yet the base is 0.0.0: ``patch`` gives 0.0.1, ``minor`` 0.1.0, ``major`` 1.0.0. The
registry picks the version inside the model's lock, so concurrent registrations get distinct ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import UsageError

PARTS = ("patch", "minor", "major")
_RELEASE_RE = re.compile(r"(v?)(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?\Z", re.ASCII)


def check_part(part: str) -> str:
    if part not in PARTS:
        raise UsageError(f"--next must be one of {', '.join(PARTS)}, not {part!r}", info={"next": part})
    return part


def release(version: str) -> tuple[str, tuple[int, int, int]] | None:
    """``(prefix, (major, minor, patch))`` of a release version name, else None."""
    m = _RELEASE_RE.match(version)
    if m is None:
        return None
    return m.group(1), (int(m.group(2)), int(m.group(3) or 0), int(m.group(4) or 0))


def next_version(existing: Iterable[str], part: str) -> str:
    """The version after the highest release in ``existing``, bumping ``part``."""
    check_part(part)
    found = [r for r in (release(v) for v in existing) if r is not None]
    prefix, (major, minor, patch) = max(found, key=lambda r: r[1]) if found else ("", (0, 0, 0))
    if part == "major":
        major, minor, patch = major + 1, 0, 0
    elif part == "minor":
        minor, patch = minor + 1, 0
    else:
        patch += 1
    return f"{prefix}{major}.{minor}.{patch}"
