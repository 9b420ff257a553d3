"""License identifiers and the compatibility checks modelreg runs on lineage and projects.

This is a conservative helper, not legal advice: when the table cannot decide,
the answer is "unknown" and a person has to look.

Identifiers are SPDX ids where SPDX has one (``MIT``, ``GPL-3.0-only``), the
Hugging Face ids for model licenses (``llama3``, ``openrail-m``, ``gemma``), and
``proprietary``. Matching is case-insensitive; the deprecated SPDX forms
``GPL-2.0``/``GPL-3.0``/``LGPL-2.1``/``LGPL-3.0`` mean ``-only`` and ``...+``
means ``-or-later``.

Derivative rules (a model fine-tuned, distilled or merged from parents), by the
parent's category -- see ``DERIVATIVE_RULES``:

=================  ==============================================================
parent category    the child's license must ...
=================  ==============================================================
public-domain      anything (compatible)
permissive         anything (compatible)
non-commercial     not allow commercial use (an NC child), else incompatible
share-alike        be the same license or one listed in ``RELICENSE_TO``
strong-copyleft    (e.g. CC-BY-SA-4.0 -> GPL-3.0-only, GPL-2.0-or-later ->
weak-copyleft      GPL-3.0-only); ``MAYBE_RELICENSE_TO`` pairs are unknown;
                   anything else is incompatible
restricted-use     be the same license (compatible); the same family but another
                   version is unknown; anything else is incompatible, because the
                   use restrictions must be passed on
proprietary        unknown: only the holder's agreement can say
=================  ==============================================================

Project rules (using a model inside a project under some license), by the
model's category -- see ``PROJECT_RULES``:

=================  ==============================================================
model category     the project ...
=================  ==============================================================
public-domain      anything (compatible)
permissive         anything (compatible)
weak-copyleft      anything (the model is a separable part), except the pairs
                   in ``PROJECT_CONFLICTS`` (LGPL-3.0 in a GPL-2.0-only project)
non-commercial     must not allow commercial use; ``proprietary`` counts as
                   commercial; else incompatible
share-alike        must be the same license or listed in ``COMBINES_WITH``,
strong-copyleft    else incompatible (the copyleft would cover the project)
restricted-use     same license: compatible; otherwise unknown (the use
                   restrictions must reach the project's users)
proprietary        unknown
=================  ==============================================================

Before any rule: a missing license is "unknown", and so is an identifier not in
``LICENSES`` (except that a permissive or public-domain model is compatible with
any project, known or not).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from modelreg.errors import UsageError

__all__ = [
    "CATEGORIES", "COMPATIBLE", "INCOMPATIBLE", "UNKNOWN", "LICENSES", "Finding", "License",
    "check_derivative", "check_project", "get", "is_known", "normalize",
]

Outcome = Literal["compatible", "incompatible", "unknown"]
COMPATIBLE: Outcome = "compatible"
INCOMPATIBLE: Outcome = "incompatible"
UNKNOWN: Outcome = "unknown"

CATEGORIES = (
    "permissive", "weak-copyleft", "strong-copyleft", "share-alike",
    "non-commercial", "restricted-use", "proprietary", "public-domain",
)


@dataclass(frozen=True)
class License:
    """One entry of the license table.

    id: canonical identifier. category: one of CATEGORIES. commercial_use: the
    license lets its licensees use the work commercially (``proprietary`` is
    treated as commercial). share_alike: derivatives must be offered under the
    same license (or a listed compatible one). family: groups versions of one
    license, so a restricted-use parent accepts e.g. ``llama3.1`` as "unknown"
    rather than "incompatible". notes: the obligations a user should know.
    """

    id: str
    name: str
    category: str
    commercial_use: bool
    share_alike: bool
    notes: str
    family: str = ""


def _lic(id, name, category, commercial_use, share_alike, notes, family=""):
    assert category in CATEGORIES, category
    return License(id, name, category, commercial_use, share_alike, notes, family or id)


_TABLE = [
    # ---- permissive: attribution / notice only
    _lic("MIT", "MIT License", "permissive", True, False,
         "Keep the copyright and permission notice."),
    _lic("Apache-2.0", "Apache License 2.0", "permissive", True, False,
         "Keep the license and NOTICE file, mark modified files; express patent grant that ends "
         "for a licensee who sues over patents in the work. Incompatible with GPL-2.0-only."),
    _lic("BSD-2-Clause", "BSD 2-Clause License", "permissive", True, False,
         "Keep the copyright notice and disclaimer in source and binary forms."),
    _lic("BSD-3-Clause", "BSD 3-Clause License", "permissive", True, False,
         "As BSD-2-Clause, and contributors' names may not be used to endorse derivatives."),
    _lic("ISC", "ISC License", "permissive", True, False,
         "Functionally the same as MIT / BSD-2-Clause: keep the notice."),
    _lic("CC-BY-4.0", "Creative Commons Attribution 4.0", "permissive", True, False,
         "Give credit, link the license, indicate changes. Any purpose, including commercial."),
    # ---- public domain
    _lic("Unlicense", "The Unlicense", "public-domain", True, False,
         "Public-domain dedication with a permissive fallback; no conditions."),
    # ---- weak copyleft: the licensed work stays under its license, larger works may differ
    _lic("MPL-2.0", "Mozilla Public License 2.0", "weak-copyleft", True, True,
         "File-level copyleft: modified MPL files stay MPL-2.0 with source available; may be combined "
         "into a larger work under other terms. Secondary-license (GPL/LGPL) combinations are allowed "
         "unless the work is marked 'Incompatible With Secondary Licenses'.", family="MPL"),
    _lic("LGPL-2.1-only", "GNU Lesser GPL v2.1 only", "weak-copyleft", True, True,
         "Changes to the library itself stay LGPL-2.1 with source; works that use it may be under any "
         "terms if users can replace/relink it. Section 3 lets a copy be converted to the GPL "
         "(v2 or, optionally, later).", family="LGPL"),
    _lic("LGPL-2.1-or-later", "GNU Lesser GPL v2.1 or later", "weak-copyleft", True, True,
         "As LGPL-2.1-only, and may be used under any later LGPL version.", family="LGPL"),
    _lic("LGPL-3.0-only", "GNU Lesser GPL v3.0 only", "weak-copyleft", True, True,
         "GPL-3.0 plus additional permissions for works that use the library; dropping those permissions "
         "gives GPL-3.0-only. Not compatible with GPL-2.0-only.", family="LGPL"),
    _lic("LGPL-3.0-or-later", "GNU Lesser GPL v3.0 or later", "weak-copyleft", True, True,
         "As LGPL-3.0-only, and may be used under any later LGPL version.", family="LGPL"),
    # ---- strong copyleft: derivatives and combined works must be under the same license
    _lic("GPL-2.0-only", "GNU GPL v2.0 only", "strong-copyleft", True, True,
         "Distributed derivatives and combined works must be GPL-2.0 with source. Incompatible with "
         "GPL-3.0 and Apache-2.0.", family="GPL"),
    _lic("GPL-2.0-or-later", "GNU GPL v2.0 or later", "strong-copyleft", True, True,
         "As GPL-2.0-only, and may be used under GPL-3.0 or any later version.", family="GPL"),
    _lic("GPL-3.0-only", "GNU GPL v3.0 only", "strong-copyleft", True, True,
         "Distributed derivatives and combined works must be GPL-3.0 with source; patent grant and "
         "anti-tivoization terms.", family="GPL"),
    _lic("GPL-3.0-or-later", "GNU GPL v3.0 or later", "strong-copyleft", True, True,
         "As GPL-3.0-only, and may be used under any later GPL version.", family="GPL"),
    # ---- share-alike (Creative Commons)
    _lic("CC-BY-SA-4.0", "Creative Commons Attribution-ShareAlike 4.0", "share-alike", True, True,
         "Adaptations must be licensed under CC-BY-SA-4.0 or a BY-SA Compatible License; Creative "
         "Commons lists GPL-3.0 as one (one-way).", family="CC-BY-SA"),
    # ---- non-commercial
    _lic("CC-BY-NC-4.0", "Creative Commons Attribution-NonCommercial 4.0", "non-commercial", False, False,
         "No use primarily intended for commercial advantage or monetary compensation; give credit. "
         "Adaptations may not be used commercially either.", family="CC-BY-NC"),
    # ---- restricted use: behavioural restrictions that travel with the model
    _lic("llama3", "Meta Llama 3 Community License", "restricted-use", True, True,
         "Commercial use allowed, but a licensee whose products had more than 700M monthly active users "
         "on the release date needs a separate license from Meta. Acceptable Use Policy applies. "
         "Redistribution must include the agreement and 'Built with Meta Llama 3'; derived models must "
         "have 'Llama 3' at the beginning of their name; outputs may not be used to improve other LLMs. "
         "Not OSI-approved.", family="llama"),
    _lic("llama3.1", "Llama 3.1 Community License", "restricted-use", True, True,
         "As llama3 (700M MAU limit, Acceptable Use Policy, include the agreement), with 'Built with "
         "Llama' attribution and 'Llama' at the beginning of derived model names; outputs may be used "
         "to improve other models. Not OSI-approved.", family="llama"),
    _lic("openrail-m", "Open RAIL-M", "restricted-use", True, False,
         "Royalty-free, commercial use allowed. The use-based restrictions (Attachment A) must be "
         "included as enforceable terms in any license for the model or its derivatives and passed "
         "on to their users.", family="openrail"),
    _lic("creativeml-openrail-m", "CreativeML Open RAIL-M", "restricted-use", True, False,
         "Open RAIL-M as released with Stable Diffusion: commercial use allowed, its own use-based "
         "restrictions must be passed on to derivatives and users.", family="openrail"),
    _lic("gemma", "Gemma Terms of Use", "restricted-use", True, False,
         "Commercial use allowed. The Prohibited Use Policy must be included as an enforceable provision "
         "in terms for the model and Model Derivatives (which include models trained on its outputs) and "
         "recipients must get a copy of the terms. Not OSI-approved."),
    # ---- proprietary
    _lic("proprietary", "Proprietary", "proprietary", True, False,
         "All rights reserved or a private agreement whose terms modelreg cannot see; treated as "
         "commercial."),
]

LICENSES: dict[str, License] = {lic.id: lic for lic in _TABLE}
"""Canonical id -> License."""

ALIASES: dict[str, str] = {
    "GPL-2.0": "GPL-2.0-only", "GPL-2.0+": "GPL-2.0-or-later",
    "GPL-3.0": "GPL-3.0-only", "GPL-3.0+": "GPL-3.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only", "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3.0": "LGPL-3.0-only", "LGPL-3.0+": "LGPL-3.0-or-later",
}
"""Deprecated SPDX spellings -> canonical id."""

_LOOKUP = {k.lower(): k for k in LICENSES} | {k.lower(): v for k, v in ALIASES.items()}

_GPL3 = {"GPL-3.0-only", "GPL-3.0-or-later"}
_GPL_ALL = {"GPL-2.0-only", "GPL-2.0-or-later"} | _GPL3

RELICENSE_TO: dict[str, set[str]] = {
    # A derivative of the key may be offered under any of these (besides the key itself).
    "GPL-2.0-only": set(),
    "GPL-2.0-or-later": _GPL_ALL,  # "or later" lets the deriver pick a version
    "GPL-3.0-only": set(),
    "GPL-3.0-or-later": _GPL3,
    "LGPL-2.1-only": _GPL_ALL,  # LGPL-2.1 section 3: convert a copy to the GPL v2 or later
    "LGPL-2.1-or-later": _GPL_ALL | {"LGPL-2.1-only", "LGPL-3.0-only", "LGPL-3.0-or-later"},
    "LGPL-3.0-only": {"GPL-3.0-only"},  # drop the additional permissions
    "LGPL-3.0-or-later": _GPL3 | {"LGPL-3.0-only"},
    "MPL-2.0": set(),
    "CC-BY-SA-4.0": {"GPL-3.0-only"},  # Creative Commons' BY-SA compatible license list
}

MAYBE_RELICENSE_TO: dict[str, set[str]] = {
    # MPL-2.0 section 3.3 secondary licenses: allowed for larger works unless the parent is marked
    # "Incompatible With Secondary Licenses", which modelreg cannot see.
    "MPL-2.0": {"GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later",
                "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later"},
}

COMBINES_WITH: dict[str, set[str]] = {
    # A project under any of these may include a model under the key (besides the same license).
    "GPL-2.0-only": {"GPL-2.0-or-later"},
    "GPL-2.0-or-later": _GPL_ALL,
    "GPL-3.0-only": _GPL3 | {"GPL-2.0-or-later"},  # the combination is conveyed under GPL-3.0
    "GPL-3.0-or-later": _GPL3 | {"GPL-2.0-or-later"},
    "CC-BY-SA-4.0": _GPL3,
}

PROJECT_CONFLICTS: dict[str, set[str]] = {
    # Weak-copyleft models that cannot sit in a project under these licenses.
    "LGPL-3.0-only": {"GPL-2.0-only"},
    "LGPL-3.0-or-later": {"GPL-2.0-only"},
}

# Rule kinds, judged by _RULES below.
ANY = "any"                    # compatible with everything
NO_COMMERCIAL = "no-commercial"  # the other side must not allow commercial use
COPYLEFT = "copyleft"          # same license or a listed one
PASS_ON = "pass-on"            # same license; same family is unknown; else incompatible
PASS_ON_OR_ASK = "pass-on-or-ask"  # same license; else unknown
LARGER_WORK = "larger-work"    # compatible unless listed in PROJECT_CONFLICTS
ASK_HOLDER = "ask-holder"      # always unknown

DERIVATIVE_RULES: dict[str, str] = {
    "public-domain": ANY,
    "permissive": ANY,
    "non-commercial": NO_COMMERCIAL,
    "share-alike": COPYLEFT,
    "strong-copyleft": COPYLEFT,
    "weak-copyleft": COPYLEFT,
    "restricted-use": PASS_ON,
    "proprietary": ASK_HOLDER,
}
"""Parent category -> how a derivative's license is judged."""

PROJECT_RULES: dict[str, str] = {
    "public-domain": ANY,
    "permissive": ANY,
    "weak-copyleft": LARGER_WORK,
    "non-commercial": NO_COMMERCIAL,
    "share-alike": COPYLEFT,
    "strong-copyleft": COPYLEFT,
    "restricted-use": PASS_ON_OR_ASK,
    "proprietary": ASK_HOLDER,
}
"""Model category -> how the project's license is judged."""


@dataclass(frozen=True)
class Finding:
    """The verdict for one subject (a parent model, or a model in a project) and why, in one line."""

    outcome: Outcome
    subject: str
    reason: str


def normalize(spdx: str) -> str:
    """The canonical id for `spdx` (case-insensitive, deprecated aliases resolved).

    Raises UsageError for an identifier not in the table, suggesting close matches.
    """
    key = (spdx or "").strip().lower()
    if key in _LOOKUP:
        return _LOOKUP[key]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(_LOOKUP[c] for c in close)}?" if close else ""
    raise UsageError(f"unknown license identifier {spdx!r}{hint} (see 'modelreg licenses')")


def is_known(spdx: str | None) -> bool:
    """True if `spdx` names a license in the table (case-insensitive, aliases included)."""
    return bool(spdx) and spdx.strip().lower() in _LOOKUP


def get(spdx: str) -> License:
    """The License for `spdx`; UsageError if unknown."""
    return LICENSES[normalize(spdx)]


def _judge(kind: str, this: License, other: License, *, derivative: bool) -> tuple[Outcome, str]:
    """Apply one rule kind: `this` is the parent (or the model), `other` the child (or the project)."""
    role = "derivative" if derivative else "project"
    if kind == ANY:
        return COMPATIBLE, f"{this.id} is {this.category}: any {role} license is fine"
    if kind == NO_COMMERCIAL:
        if other.commercial_use:
            return INCOMPATIBLE, f"{this.id} forbids commercial use but the {role} license {other.id} allows it"
        return COMPATIBLE, f"{this.id} is non-commercial and so is {other.id}"
    if kind == COPYLEFT:
        allowed = RELICENSE_TO if derivative else COMBINES_WITH
        if other.id == this.id or other.id in allowed.get(this.id, ()):
            return COMPATIBLE, f"{this.id} is {this.category} and {other.id} satisfies it"
        if derivative and other.id in MAYBE_RELICENSE_TO.get(this.id, ()):
            return UNKNOWN, f"{this.id} allows {other.id} only for larger works and only if not marked incompatible"
        if derivative:
            return INCOMPATIBLE, f"{this.id} is {this.category}: a derivative must stay under {this.id}, not {other.id}"
        return INCOMPATIBLE, f"{this.id} is {this.category}: it would require the {role} to be under {this.id}, not {other.id}"
    if kind == LARGER_WORK:
        if other.id in PROJECT_CONFLICTS.get(this.id, ()):
            return INCOMPATIBLE, f"{this.id} cannot be combined with a {other.id} project"
        return COMPATIBLE, f"{this.id} may be used in a {other.id} project; changes to the model itself stay {this.id}"
    if kind in (PASS_ON, PASS_ON_OR_ASK):
        if other.id == this.id:
            return COMPATIBLE, f"{this.id} use restrictions are passed on under the same license"
        if kind == PASS_ON and other.family == this.family:
            return UNKNOWN, f"{this.id} and {other.id} are different versions of one license; check they allow this"
        if kind == PASS_ON:
            return INCOMPATIBLE, f"{this.id} use restrictions must be passed on: a derivative must carry {this.id}, not {other.id}"
        return UNKNOWN, f"{this.id} use restrictions must reach the users of a {other.id} project; check they do"
    if kind == ASK_HOLDER:
        return UNKNOWN, f"{this.id} terms are private: ask the holder"
    raise AssertionError(f"unknown rule kind {kind!r}")


def _lookup(spdx: str | None) -> License | None:
    return LICENSES[normalize(spdx)] if is_known(spdx) else None


def check_derivative(child: str | None, parents: list[tuple[str, str | None]]) -> list[Finding]:
    """One Finding per parent (subject = the parent's name): may a model derived from it carry `child`?"""
    findings = []
    child_lic = _lookup(child)
    for parent_name, parent_license in parents:
        parent_lic = _lookup(parent_license)
        if not parent_license:
            outcome, reason = UNKNOWN, "the parent has no license"
        elif parent_lic is None:
            outcome, reason = UNKNOWN, f"the parent's license {parent_license!r} is not in modelreg's table"
        elif not child:
            outcome, reason = UNKNOWN, f"the derivative has no license (parent is {parent_lic.id})"
        elif child_lic is None:
            outcome, reason = UNKNOWN, f"the derivative's license {child!r} is not in modelreg's table"
        else:
            outcome, reason = _judge(DERIVATIVE_RULES[parent_lic.category], parent_lic, child_lic, derivative=True)
        findings.append(Finding(outcome, parent_name, reason))
    return findings


def check_project(license: str | None, project_license: str | None) -> Finding:
    """May a model under `license` be used in a project under `project_license`? Subject = the model license."""
    model_lic = _lookup(license)
    subject = model_lic.id if model_lic else (license or "(no license)")
    if not license:
        return Finding(UNKNOWN, subject, "the model has no license")
    if model_lic is None:
        return Finding(UNKNOWN, subject, f"the model's license {license!r} is not in modelreg's table")
    kind = PROJECT_RULES[model_lic.category]
    project_lic = _lookup(project_license)
    if project_lic is None:
        if kind == ANY:
            return Finding(COMPATIBLE, subject, f"{model_lic.id} is {model_lic.category}: any project license is fine")
        what = "has no license" if not project_license else f"license {project_license!r} is not in modelreg's table"
        return Finding(UNKNOWN, subject, f"the project {what}")
    outcome, reason = _judge(kind, model_lic, project_lic, derivative=False)
    return Finding(outcome, subject, reason)
