"""Detect a project's license offline from a LICENSE file, a directory holding one, or a pyproject.toml.

``license-check --project-license PATH`` uses this. It is a small, honest text matcher, not a
license scanner: the text is lower-cased with every run of non-letters and non-digits made one
space, and each known license is recognised by phrases from its own text (its title line with
the version, or for MIT, ISC and the BSD licenses their grant and condition sentences). What it
can and cannot do:

- it knows the licenses in :data:`RULES` (the common open-source ones and the model licenses of
  :mod:`modelreg.licenses`); any other text is "not detected" (a usage error asking for the id);
- an ``SPDX-License-Identifier: ID`` line wins over the text;
- a text holding two known licenses (dual licensing, a bundled third-party license) is refused
  as ambiguous rather than guessed, and so is a directory whose license files disagree;
- the GNU licenses' full texts do not say "only" or "or later" (that is in each source file's
  notice), so they are read as ``-only``, the stricter reading; pass ``GPL-3.0-or-later`` yourself
  if that is what your project says;
- a modified text (an extra clause, a changed condition) that still contains the phrases is
  reported as the original license;
- ``pyproject.toml``: ``[project] license`` as an SPDX id (PEP 639) or ``{file = ...}`` /
  ``{text = ...}``, else ``[tool.poetry] license``, else an unambiguous ``License ::`` classifier;
  compound expressions (``MIT OR Apache-2.0``) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

MAX_BYTES = 1 << 20
# File names (case-insensitive) of a directory's license file, best first.
_PRIMARY = re.compile(r"(licen[cs]e|copying)(\.(txt|md|rst))?\Z", re.I)
_SECONDARY = re.compile(r"(licen[cs]e|copying)[-_.][\w.-]+\Z", re.I)
_SPDX_LINE = re.compile(r"SPDX-License-Identifier:\s*([^\s*#]+(?:\s+(?:OR|AND|WITH)\s+[^\s*#]+)*)", re.I)

RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (id, phrases that must all appear, phrases that must not). The GNU licenses are told apart by
    # their title lines (each text also names the others: the GPL-3 ends by suggesting the LGPL).
    ("LGPL-3.0-only", ("gnu lesser general public license version 3 29 june 2007",), ()),
    ("LGPL-2.1-only", ("gnu lesser general public license version 2 1 february 1999",), ()),
    ("GPL-3.0-only", ("gnu general public license version 3 29 june 2007",), ()),
    ("GPL-2.0-only", ("gnu general public license version 2 june 1991",), ()),
    ("MPL-2.0", ("mozilla public license version 2 0",), ()),
    ("Apache-2.0", ("apache license", "version 2 0"), ()),
    ("MIT", ("permission is hereby granted free of charge to any person obtaining a copy",
             "the above copyright notice and this permission notice shall be included"), ()),
    ("ISC", ("permission to use copy modify and or distribute this software for any purpose with or without fee "
             "is hereby granted",), ()),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms with or without modification are permitted",
                      "neither the name of"), ("all advertising materials",)),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms with or without modification are permitted",
                      "redistributions of source code must retain the above copyright notice"),
     ("neither the name of", "all advertising materials", "may not be used to endorse")),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",), ()),
    ("CC-BY-SA-4.0", ("creative commons attribution sharealike 4 0 international public license",), ()),
    ("CC-BY-NC-4.0", ("creative commons attribution noncommercial 4 0 international public license",), ()),
    ("CC-BY-4.0", ("creative commons attribution 4 0 international public license",), ()),
    ("llama3.1", ("llama 3 1 community license agreement",), ()),
    ("llama3", ("meta llama 3 community license agreement",), ()),
    ("gemma", ("gemma terms of use",), ()),
    ("creativeml-openrail-m", ("creativeml open rail m license",), ()),
)

# pyproject classifiers that name one license unambiguously.
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "License :: OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "License :: CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
}


@dataclass(frozen=True)
class Detected:
    """A license found at ``source`` (a file), and how: ``text``, ``spdx-line``, ``pyproject``, ``classifier``."""

    id: str
    source: str
    how: str


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def from_text(text: str, source: str = "text") -> Detected:
    """The one known license ``text`` holds; UsageError when none or several are found."""
    from . import licenses

    m = _SPDX_LINE.search(text)
    if m:
        return Detected(_known_id(m.group(1).strip(), f"{source}: SPDX-License-Identifier"), source, "spdx-line")
    flat = normalise(text)
    found = [lic for lic, must, never in RULES
             if all(p in flat for p in must) and not any(p in flat for p in never)]
    found = [f for f in found if licenses.is_known(f)]
    if not found:
        raise UsageError(f"could not recognise the license in {source}: modelreg detects only common license texts "
                         "offline; pass its identifier instead (--project-license MIT, see 'modelreg licenses')",
                         info={"source": source})
    if len(found) > 1:
        raise UsageError(f"{source} holds more than one license text ({', '.join(found)}); pass the one the project "
                         "is under with --project-license ID", info={"source": source, "found": found})
    return Detected(found[0], source, "text")


def _known_id(expr: str, where: str) -> str:
    from . import licenses

    if re.search(r"\s(OR|AND|WITH)\s|[()]", expr, re.I):
        raise UsageError(f"{where} is the expression {expr!r}: pass the one license to check with "
                         "--project-license ID")
    if not licenses.is_known(expr):
        raise UsageError(f"{where} names {expr!r}, which modelreg does not know (see 'modelreg licenses')")
    return licenses.normalize(expr)


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as f:  # the user's own file: a plain open
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{path} is larger than {MAX_BYTES} bytes: not a license file")
    return data.decode("utf-8", "replace")


def from_pyproject(path: Path) -> Detected:
    import tomllib

    try:
        data = tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    lic = project.get("license")
    where = f"{path} [project] license"
    if isinstance(lic, str) and lic.strip():
        return Detected(_known_id(lic.strip(), where), str(path), "pyproject")
    if isinstance(lic, dict):
        if isinstance(lic.get("file"), str):
            return from_file(path.parent / lic["file"])
        if isinstance(lic.get("text"), str) and lic["text"].strip():
            from . import licenses

            text = lic["text"].strip()
            if licenses.is_known(text):
                return Detected(licenses.normalize(text), str(path), "pyproject")
            return from_text(text, where)
    poetry = ((data.get("tool") or {}).get("poetry") or {}) if isinstance(data.get("tool"), dict) else {}
    if isinstance(poetry, dict) and isinstance(poetry.get("license"), str) and poetry["license"].strip():
        return Detected(_known_id(poetry["license"].strip(), f"{path} [tool.poetry] license"), str(path), "pyproject")
    named = sorted({CLASSIFIERS[c] for c in project.get("classifiers") or [] if c in CLASSIFIERS})
    if len(named) == 1:
        from . import licenses

        if licenses.is_known(named[0]):
            return Detected(licenses.normalize(named[0]), str(path), "classifier")
    raise UsageError(f"{path} names no license modelreg can read ([project] license, [tool.poetry] license or one "
                     "License :: classifier); pass --project-license ID", info={"source": str(path)})


def from_file(path: Path) -> Detected:
    if path.name == "pyproject.toml":
        return from_pyproject(path)
    return from_text(_read(path), str(path))


def from_directory(path: Path) -> Detected:
    try:
        names = sorted(p.name for p in path.iterdir() if p.is_file())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    files = [n for n in names if _PRIMARY.match(n)] or [n for n in names if _SECONDARY.match(n)]
    if files:
        found = [from_file(path / n) for n in files]
        ids = sorted({d.id for d in found})
        if len(ids) > 1:
            shown = ", ".join(f"{d.id} ({Path(d.source).name})" for d in found)
            raise UsageError(f"{path} holds license files for different licenses: {shown}; pass the one to check "
                             "with --project-license ID", info={"source": str(path), "found": ids})
        return found[0]
    if "pyproject.toml" in names:
        return from_pyproject(path / "pyproject.toml")
    raise UsageError(f"{path} holds no LICENSE, LICENCE or COPYING file and no pyproject.toml; pass "
                     "--project-license ID", info={"source": str(path)})


def detect(path: str | Path) -> Detected:
    """The license of a LICENSE file, a directory holding one (or a pyproject.toml), or a pyproject.toml."""
    p = Path(path)
    if p.is_dir():
        return from_directory(p)
    if p.is_file():
        return from_file(p)
    raise UsageError(f"{path}: no such file or directory", info={"source": str(path)})
